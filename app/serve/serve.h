/* nextuser serve: an HTTP/1.1 JSON service over the public C API
 * (docs/serve.md).  Built from small parts: http.c (libmicrohttpd),
 * request.c (requests and answers), batcher.c (the bounded queue and the
 * micro-batching workers), model_version.c (loads, validation, swaps),
 * metrics.c (Prometheus text), log.c (one line per request). */
#ifndef NU_SERVE_H
#define NU_SERVE_H

#include <stddef.h>

#include "nextuser/nextuser.h"

typedef struct nu_serve_config {
    const char *model_dir;    /* the model served at start and by a bare reload */
    const char *listen;       /* HOST:PORT of the API (port 0: ephemeral) */
    const char *admin_listen; /* HOST:PORT of /admin/reload, or NULL: none */
    int threads;              /* engine threads per batch (0: cores / workers) */
    int workers;              /* batching workers, each with its own session */
    int http_threads;         /* libmicrohttpd threads */
    size_t max_batch;         /* most items per engine call */
    unsigned max_wait_us;     /* longest the oldest queued item waits for a batch */
    size_t queue_items;       /* queued items at most; beyond: 503 */
    size_t max_items;         /* items per request at most */
    size_t k, max_k;          /* default and largest users per item */
    nu_dtype dtype;
    int table_map;      /* 1: scan the table file's mapping; 0: a private copy */
    size_t pool;        /* bf16/int8 candidates (0: the library's default) */
    size_t max_body;    /* request body bytes at most; beyond: 413 */
    unsigned timeout_s; /* idle connection timeout */
    unsigned max_connections;
    int log_level;
} nu_serve_config;

/* Runs the service until SIGTERM/SIGINT; returns the process exit code. */
int nu_serve_main(const nu_serve_config *cfg);

#endif
