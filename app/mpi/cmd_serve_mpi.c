/* mpirun -np R nextuser serve: rank 0 answers HTTP and runs the generator
 * (app/serve, unchanged but for its scan hook); every rank scans its shard
 * of the user table for each batch (mpi_search.h, docs/mpi.md "Sharded
 * serving"). */
#ifdef NU_HAVE_SERVE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "error.h"
#include "mpi_cmds.h"
#include "mpi_search.h"
#include "mpi_shard.h"
#include "mpi_table.h"
#include "serve/serve.h"

/* Rank 0's side of the scan hook: one batch of the protocol at a time. */
typedef struct serve_scan {
    nu_mpi_search ms;
    pthread_mutex_t mu;
    nu_id_list *ex; /* max_batch */
} serve_scan;

static nu_status scan_batch(void *ctx, const float *q, size_t n, size_t qd,
                            const uint32_t *const *ex_rows, const size_t *ex_counts,
                            uint32_t *rows, float *scores)
{
    serve_scan *x = ctx;
    if (qd != x->ms.qd || n > x->ms.max_b)
        return nu_error(NU_ERR_INTERNAL, "sharded scan: %zu queries of %zu floats (the ranks "
                        "expect at most %zu of %zu)", n, qd, x->ms.max_b, x->ms.qd);
    pthread_mutex_lock(&x->mu);
    for (size_t i = 0; i < n; i++) {
        x->ex[i].ids = ex_rows[i];
        x->ex[i].count = ex_counts[i];
    }
    int rc = nu_mpi_search_batch(&x->ms, q, n, x->ex, rows, scores);
    pthread_mutex_unlock(&x->mu);
    /* nu_mpi_search_batch printed the failing ranks' messages. */
    return rc ? nu_error(NU_ERR_INTERNAL, "the sharded scan failed on a rank (see its message "
                         "on standard error)") : NU_OK;
}

int nu_mpi_cmd_serve(MPI_Comm comm, int argc, char **argv)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    nu_serve_config c;
    nu_mpi_quiet q = nu_mpi_quiet_begin(rank);
    int parsed = nu_cli_parse_serve(argc, argv, &c);
    nu_mpi_quiet_end(&q);
    if (parsed >= 0)
        return parsed;
    c.threads = nu_mpi_threads(comm, c.threads);
    if (!c.workers)
        c.workers = 1; /* batches run one at a time through the ranks anyway */
    serve_scan x;
    memset(&x, 0, sizeof x);
    nu_user_table table = {0};
    nu_model *m = NULL;
    size_t users = 0, qd = 0;
    int rc = 0, provided = 0;
    MPI_Query_thread(&provided);
    if (rank == 0) {
        if (provided < MPI_THREAD_SERIALIZED)
            rc = (nu_error(NU_ERR_UNSUPPORTED, "the MPI library gives no MPI_THREAD_SERIALIZED "
                           "(the service's workers call MPI)"), NU_EXIT_FAIL);
        else if (nu_init() != NU_OK || nu_model_load(c.model_dir, &m) != NU_OK)
            rc = NU_EXIT_FAIL;
        else {
            users = nu_model_num_users(m);
            qd = nu_model_query_dim(m);
        }
        nu_model_free(m); /* the service loads its own */
    }
    if ((rc = nu_mpi_agree(comm, "serve", rc)) != 0)
        return rc;
    nu_mpi_share_shape(comm, &users, &qd);
    nu_table_dtype dt = nu_mpi_table_dtype(c.dtype);
    nu_search_opts so = {.k = c.max_k, .dtype = dt, .threads = c.threads, .pool = c.pool};
    if (nu_mpi_open_shard(comm, c.model_dir, users, qd, dt, !c.table_map, &table) != NU_OK ||
        nu_mpi_search_init(&x.ms, comm, "serve", &table, &so, c.max_batch) != NU_OK)
        rc = NU_EXIT_FAIL;
    if (rc == 0 && rank == 0 &&
        (!(x.ex = calloc(c.max_batch, sizeof *x.ex)) || pthread_mutex_init(&x.mu, NULL) != 0))
        rc = (nu_error(NU_ERR_NOMEM, "out of memory"), NU_EXIT_FAIL);
    if ((rc = nu_mpi_agree(comm, "serve", rc)) != 0) {
        free(x.ex);
        nu_mpi_search_free(&x.ms);
        nu_user_table_free(&table);
        return rc;
    }
    if (rank == 0) {
        /* The generator's engine opens rank 0's rows (mapped; it scans them
         * only to validate the model); the batches' scans go through the
         * ranks. */
        nu_mpi_shard_rows(users, size, 0, &c.table_first, &c.table_rows);
        c.search = scan_batch;
        c.search_ctx = &x;
        c.ranks = size;
        c.reload_refused = "a sharded service (mpirun) cannot reload yet: restart it with the "
                           "new model";
        rc = nu_serve_main(&c);
        nu_mpi_search_stop(&x.ms, rc);
        pthread_mutex_destroy(&x.mu);
    } else
        rc = nu_mpi_search_serve(&x.ms);
    if (rc == 0) /* collective: every rank, with or without batches */
        nu_mpi_search_report(&x.ms);
    free(x.ex);
    nu_mpi_search_free(&x.ms);
    nu_user_table_free(&table);
    return rc;
}
#endif
