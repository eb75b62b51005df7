/* mpirun -np R nextuser retrieve: the options and output of nextuser
 * retrieve; rank 0 reads the items and runs the generator, every rank
 * scans its shard of the table (mpi_search.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/items_jsonl.h"
#include "engine/engine.h"
#include "error.h"
#include "io/atomic_file.h"
#include "model/feature_prior.h"
#include "mpi_cmds.h"
#include "mpi_search.h"
#include "mpi_shard.h"
#include "mpi_table.h"
#include "cli/table_residency.h"
#include "util/clock.h"

/* Rank 0's generator: the engine over its own shard (it embeds only). */
typedef struct generator {
    nu_model *m;
    nu_items items;
    int items_ready;
    nu_engine eng;
    nu_session ses;
    nu_id_list *ex;
} generator;

static void generator_free(generator *g)
{
    free(g->ex);
    nu_session_release(&g->ses);
    nu_engine_release(&g->eng);
    if (g->items_ready)
        nu_items_free(&g->items);
    if (g->m)
        nu_model_free(g->m);
}

/* Items [first, first + n): their queries into g->ses.q and their
 * histories (every known user, before the max_users cut) as exclusions. */
static nu_status generate(generator *g, size_t first, size_t n)
{
    nu_status st = nu_engine_embed(&g->ses, &g->items, first, n, g->ses.q);
    if (st != NU_OK)
        return st;
    nu_model_query_tails(g->m, &g->items, first, g->ses.q, n);
    for (size_t i = 0; i < n; i++) {
        g->ex[i].ids = g->items.hist + g->items.hist_off[first + i];
        g->ex[i].count = nu_items_n_hist(&g->items, first + i);
    }
    return NU_OK;
}

static int run_batches(nu_mpi_search *ms, const nu_cli_retrieval_opts *o, generator *g,
                       nu_atomic_file *af)
{
    size_t B = o->batch, n_items = g->items.count, nb = (n_items + B - 1) / B, k = o->k;
    uint32_t *ids = malloc((B * k + 1) * sizeof *ids);
    float *scores = malloc((B * k + 1) * sizeof *scores);
    double *lat = malloc((nb + 1) * sizeof *lat);
    int rc = 0;
    if (!ids || !scores || !lat) {
        fprintf(stderr, "nextuser retrieve: out of memory\n");
        rc = NU_EXIT_FAIL;
    }
    fputs("item,rank,user,score\n", af->fp);
    double t_start = nu_now_seconds(), t_gen = 0;
    for (size_t b = 0; rc == 0 && b < nb; b++) {
        size_t first = b * B, cnt = first + B <= n_items ? B : n_items - first;
        double t0 = nu_now_seconds();
        if (generate(g, first, cnt) != NU_OK) {
            rc = nu_cli_fail("retrieve");
            break;
        }
        t_gen += nu_now_seconds() - t0;
        rc = nu_mpi_search_batch(ms, g->ses.q, cnt, g->ex, ids, scores);
        lat[b] = nu_now_seconds() - t0;
        for (size_t i = 0; rc == 0 && i < cnt; i++)
            if (!nu_cli_write_topk(af->fp, g->items.ids[first + i], ids + i * k, scores + i * k, k,
                                   g->m)) {
                fprintf(stderr, "nextuser retrieve: %s: write failed: %s\n", o->out,
                        strerror(errno));
                rc = NU_EXIT_FAIL;
            }
    }
    double total = nu_now_seconds() - t_start;
    if (rc == 0 && nu_atomic_commit(af) != NU_OK)
        rc = nu_cli_fail("retrieve");
    if (rc == 0) {
        qsort(lat, nb, sizeof *lat, nu_cli_cmp_double);
        fprintf(stderr,
                "nextuser retrieve: %zu items in %.3f s (%.0f items/s); batch of %zu: p50 %.2f "
                "ms, p99 %.2f ms; %zu users, %s table (rows of the file %s), k %llu, isa %s; "
                "sharded over %d ranks x %d threads, generator %.3f s on rank 0\n",
                n_items, total, total > 0 ? (double)n_items / total : 0.0, B,
                1e3 * nu_cli_percentile(lat, nb, 50), 1e3 * nu_cli_percentile(lat, nb, 99),
                g->m->cfg.num_users, nu_dtype_name(o->dtype),
                o->resident ? "copied" : "memory-mapped", (unsigned long long)k, nu_isa_active(),
                ms->size, ms->plan.pl.threads, t_gen);
    }
    free(ids);
    free(scores);
    free(lat);
    return rc;
}

int nu_mpi_cmd_retrieve(MPI_Comm comm, int argc, char **argv)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    nu_cli_retrieval_opts o = {.k = 100, .batch = 256, .resident = NU_TABLE_AUTO};
    const char *items_path = NULL;
    int parsed = nu_mpi_parse(comm, "retrieve", nu_cli_retrieve_help, "--items", &items_path,
                              argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    o.threads = nu_mpi_threads(comm, o.threads);
    generator g = {0};
    nu_user_table table = {0};
    nu_mpi_search ms = {0};
    nu_atomic_file af = {0};
    size_t users = 0, qd = 0;
    int rc = 0;
    if (rank == 0) {
        if (nu_init() != NU_OK || nu_model_load(o.model_dir, &g.m) != NU_OK)
            rc = NU_EXIT_FAIL;
        else {
            nu_items_init(&g.items, &g.m->cfg);
            g.items_ready = 1;
            users = g.m->cfg.num_users;
            qd = nu_model_query_width(g.m);
            if (nu_items_read_jsonl(items_path, g.m, &g.items) != NU_OK)
                rc = NU_EXIT_FAIL;
            else
                nu_cli_report_counts("retrieve", g.items.unknown_users, g.items.unknown_values,
                                     g.items.truncated_items, g.m->cfg.max_users);
        }
    }
    if ((rc = nu_mpi_agree(comm, "retrieve", rc)) != 0)
        goto done;
    nu_mpi_share_shape(comm, &users, &qd);
    o.resident = nu_mpi_table_copy(comm, o.resident, users, qd);
    nu_search_opts so = {.k = o.k, .dtype = nu_mpi_table_dtype(o.dtype), .threads = o.threads, .pool = o.pool};
    if (nu_mpi_open_shard(comm, o.model_dir, users, qd, nu_mpi_table_dtype(o.dtype), o.resident, &table) != NU_OK ||
        nu_mpi_search_init(&ms, comm, "retrieve", &table, &so, o.batch) != NU_OK)
        rc = NU_EXIT_FAIL;
    if (rc == 0 && rank == 0) {
        /* Threads are not pinned: mpirun binds each rank (docs/mpi.md). */
        nu_engine_opts eo = {.threads = o.threads, .max_batch = o.batch, .k = o.k,
                             .dtype = nu_mpi_table_dtype(o.dtype), .pool = o.pool, .pin = 0,
                             .gen = o.gen_dtype == NU_DTYPE_BF16 ? NU_GEN_BF16 : NU_GEN_FP32};
        g.ex = calloc(o.batch, sizeof *g.ex);
        if (!g.ex)
            rc = (nu_error(NU_ERR_NOMEM, "out of memory"), NU_EXIT_FAIL);
        else if (nu_engine_init(g.m, &table, &eo, &g.eng) != NU_OK ||
                 nu_session_init(&g.eng, &g.ses) != NU_OK || nu_atomic_open(o.out, &af) != NU_OK)
            rc = NU_EXIT_FAIL;
    }
    if ((rc = nu_mpi_agree(comm, "retrieve", rc)) != 0)
        goto done;
    if (rank == 0) {
        nu_cli_warn_k("retrieve", o.k, users);
        rc = run_batches(&ms, &o, &g, &af);
        nu_mpi_search_stop(&ms, rc);
    } else
        rc = nu_mpi_search_serve(&ms);
    if (rc == 0)
        nu_mpi_search_report(&ms);
done:
    if (af.fp)
        nu_atomic_abort(&af);
    nu_mpi_search_free(&ms);
    generator_free(&g);
    nu_user_table_free(&table);
    return rc;
}
