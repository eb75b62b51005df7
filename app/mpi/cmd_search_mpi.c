/* mpirun -np R nextuser search: the options and output of nextuser search,
 * the table sharded over the ranks (mpi_search.h). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "error.h"
#include "io/atomic_file.h"
#include "model/feature_prior.h"
#include "model/model.h"
#include "mpi_cmds.h"
#include "mpi_search.h"
#include "mpi_shard.h"
#include "mpi_table.h"
#include "cli/table_residency.h"
#include "cli/retrieve_common.h"
#include "util/clock.h"

typedef struct search_input {
    nu_model *m;
    char **qids;
    float *q;
    size_t nq;
} search_input;

static void input_free(search_input *in)
{
    for (size_t i = 0; in->qids && i < in->nq; i++)
        free(in->qids[i]);
    free(in->qids);
    free(in->q);
    if (in->m)
        nu_model_free(in->m);
}

/* Rank 0: the batches, the output file and the summary line. */
static int run_batches(nu_mpi_search *ms, const nu_cli_retrieval_opts *o, const char *qpath,
                       search_input *in, nu_atomic_file *af)
{
    size_t B = o->batch, nb = (in->nq + B - 1) / B, k = o->k, d = ms->qd;
    uint32_t *ids = malloc((B * k + 1) * sizeof *ids);
    float *scores = malloc((B * k + 1) * sizeof *scores);
    double *lat = malloc((nb + 1) * sizeof *lat), busy = 0;
    int rc = 0;
    if (!ids || !scores || !lat) {
        fprintf(stderr, "nextuser search: out of memory\n");
        rc = NU_EXIT_FAIL;
    }
    fputs("item,rank,user,score\n", af->fp);
    for (size_t b = 0; rc == 0 && b < nb; b++) {
        size_t first = b * B, cnt = first + B <= in->nq ? B : in->nq - first;
        double t0 = nu_now_seconds();
        rc = nu_mpi_search_batch(ms, in->q + first * d, cnt, NULL, ids, scores);
        lat[b] = nu_now_seconds() - t0;
        busy += lat[b];
        if (rc)
            fprintf(stderr, "nextuser search: %s: queries %zu..%zu failed\n", qpath, first + 1,
                    first + cnt);
        for (size_t i = 0; rc == 0 && i < cnt; i++)
            nu_cli_write_topk(af->fp, in->qids[first + i], ids + i * k, scores + i * k, k,
                              in->m);
    }
    if (rc == 0 && nu_atomic_commit(af) != NU_OK)
        rc = nu_cli_fail("search");
    if (rc == 0) {
        qsort(lat, nb, sizeof *lat, nu_cli_cmp_double);
        fprintf(stderr,
                "nextuser search: %zu queries in %.3f s (%.1f queries/s); batch of %zu: p50 %.3f "
                "ms, p99 %.3f ms; %zu users, %s table (rows of the file %s), k %llu, isa %s; "
                "sharded over %d ranks x %d threads\n",
                in->nq, busy, busy > 0 ? (double)in->nq / busy : 0.0, B,
                1e3 * nu_cli_percentile(lat, nb, 50), 1e3 * nu_cli_percentile(lat, nb, 99),
                in->m->cfg.num_users, nu_dtype_name(o->dtype),
                o->resident ? "copied" : "memory-mapped", (unsigned long long)k, nu_isa_active(),
                ms->size, ms->plan.pl.threads);
    }
    free(ids);
    free(scores);
    free(lat);
    return rc;
}

int nu_mpi_cmd_search(MPI_Comm comm, int argc, char **argv)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    nu_cli_retrieval_opts o = {.k = 100, .batch = 1, .resident = NU_TABLE_AUTO};
    const char *qpath = NULL;
    int parsed = nu_mpi_parse(comm, "search", nu_cli_search_help, "--queries", &qpath, argc, argv,
                              &o);
    if (parsed >= 0)
        return parsed;
    o.threads = nu_mpi_threads(comm, o.threads);
    search_input in = {0};
    nu_user_table table = {0};
    nu_mpi_search ms = {0};
    nu_atomic_file af = {0};
    size_t users = 0, qd = 0;
    int rc = 0;
    if (rank == 0) {
        if (nu_init() != NU_OK || nu_model_load(o.model_dir, &in.m) != NU_OK)
            rc = NU_EXIT_FAIL;
        else {
            users = in.m->cfg.num_users;
            qd = nu_model_query_width(in.m);
            if (nu_cli_read_queries(qpath, qd, qd - in.m->cfg.d, &in.qids, &in.q, &in.nq) != NU_OK)
                rc = NU_EXIT_FAIL;
        }
    }
    if ((rc = nu_mpi_agree(comm, "search", rc)) != 0)
        goto done;
    nu_mpi_share_shape(comm, &users, &qd);
    o.resident = nu_mpi_table_copy(comm, o.resident, users, qd);
    nu_search_opts so = {.k = o.k, .dtype = nu_mpi_table_dtype(o.dtype), .threads = o.threads, .pool = o.pool};
    if (nu_mpi_open_shard(comm, o.model_dir, users, qd, nu_mpi_table_dtype(o.dtype), o.resident, &table) != NU_OK ||
        nu_mpi_search_init(&ms, comm, "search", &table, &so, o.batch) != NU_OK ||
        (rank == 0 && nu_atomic_open(o.out, &af) != NU_OK))
        rc = NU_EXIT_FAIL;
    if ((rc = nu_mpi_agree(comm, "search", rc)) != 0)
        goto done;
    if (rank == 0) {
        nu_cli_warn_k("search", o.k, users);
        rc = run_batches(&ms, &o, qpath, &in, &af);
        nu_mpi_search_stop(&ms, rc);
    } else
        rc = nu_mpi_search_serve(&ms);
    if (rc == 0)
        nu_mpi_search_report(&ms);
done:
    if (af.fp)
        nu_atomic_abort(&af);
    nu_mpi_search_free(&ms);
    nu_user_table_free(&table);
    input_free(&in);
    return rc;
}
