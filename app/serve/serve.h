/* nextuser serve: an HTTP/1.1 JSON service over the public C API
 * (docs/serve.md).  Built from small parts: http.c (libmicrohttpd),
 * request.c (requests and answers), batcher.c (the bounded queue and the
 * micro-batching workers), model_version.c (loads, validation, swaps),
 * metrics.c (Prometheus text), log.c (one line per request). */
#ifndef NU_SERVE_H
#define NU_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "nextuser/nextuser.h"

/* The scan of a batch, run elsewhere (a sharded service: app/mpi,
 * docs/mpi.md).  n query vectors (nu_session_query's, rows qd floats
 * apart) and each one's excluded rows (ex_rows[i], ex_counts[i]: the item's
 * whole history, nu_batch_item_history) in; the top max_k rows and scores of
 * each out (n x max_k), exactly what nu_session_recommend would give.
 * Returns NU_OK, or a status with nu_last_error() set.  Several workers may
 * call it at once: it serialises what it must. */
typedef nu_status (*nu_serve_search_fn)(void *ctx, unsigned long version, const float *queries,
                                        size_t n, size_t qd, const uint32_t *const *ex_rows,
                                        const size_t *ex_counts, uint32_t *rows, float *scores);
/* Sharded serving: model version `version` (1, 2, ... in load order; the
 * search hook names the version of each batch) has its table opened where
 * the scans run, before it validates; NU_OK or a status with
 * nu_last_error() set (the load then fails and the old version serves). */
typedef nu_status (*nu_serve_table_load_fn)(void *ctx, unsigned long version, const char *dir,
                                            const nu_model *m);
/* ... and released when the version is freed (its last request done). */
typedef void (*nu_serve_table_release_fn)(void *ctx, unsigned long version);

typedef struct nu_serve_config {
    const char *model_dir;    /* the model served at start and by a bare reload */
    const char *listen;       /* HOST:PORT of the API (port 0: ephemeral) */
    const char *admin_listen; /* HOST:PORT of /admin/reload, or NULL: none */
    int threads;              /* engine threads per batch (0: cores / workers) */
    int workers;              /* batching workers, each with its own session */
    int http_threads;         /* libmicrohttpd threads */
    size_t max_batch;         /* most items per engine call */
    unsigned max_wait_us;     /* longest the oldest queued item waits for a batch */
    /* A request that finds the service idle this long (nothing queued or
     * running) runs at once on its HTTP thread with idle_threads engine
     * threads (0: threads), with no hand-off to a worker and back (0: never). */
    unsigned idle_us;
    int idle_threads;
    size_t queue_items;       /* queued items at most; beyond: 503 */
    size_t max_items;         /* items per request at most */
    size_t k, max_k;          /* default and largest users per item */
    nu_dtype dtype;
    nu_dtype gen_dtype; /* generator weights: fp32 or bf16 (--gen-dtype) */
    int table_map;      /* 1: scan the table file's mapping; 0: a private copy */
    size_t pool;        /* bf16/int8 candidates (0: the library's default) */
    size_t max_body;    /* request body bytes at most; beyond: 413 */
    unsigned timeout_s; /* idle connection timeout */
    unsigned max_connections;
    int log_level;
    /* Sharded serving (docs/mpi.md); all zero for a single process. */
    nu_serve_search_fn search; /* NULL: the worker's nu_session_recommend */
    nu_serve_table_load_fn table_load;       /* with search: per version */
    nu_serve_table_release_fn table_release;
    void *search_ctx;                        /* of the three hooks */
    size_t table_first, table_rows; /* table_rows > 0: open only these rows
                                       (nu_table_open_rows) for the generator's engine */
    int ranks;                      /* > 1: processes scanning (reported in /metrics) */
} nu_serve_config;

/* Runs the service until SIGTERM/SIGINT; returns the process exit code. */
int nu_serve_main(const nu_serve_config *cfg);

#endif
