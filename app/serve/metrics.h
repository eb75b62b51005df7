/* The service's counters and histograms, rendered in the Prometheus text
 * format 0.0.4.  Every function is thread-safe (one mutex). */
#ifndef NU_SERVE_METRICS_H
#define NU_SERVE_METRICS_H

#include <stddef.h>

typedef enum sv_endpoint {
    SV_EP_RECOMMEND,
    SV_EP_EMBED,
    SV_EP_HEALTHZ,
    SV_EP_READYZ,
    SV_EP_METRICS,
    SV_EP_RELOAD,
    SV_EP_OTHER,
    SV_EP_COUNT
} sv_endpoint;

const char *sv_endpoint_name(sv_endpoint e);

typedef struct sv_metrics sv_metrics;

sv_metrics *sv_metrics_create(void);
void sv_metrics_free(sv_metrics *m);
void sv_metrics_request(sv_metrics *m, sv_endpoint e, int code, double seconds);
/* An engine call of `items`; idle: run on an HTTP thread at once
 * (sv_batcher_run_if_idle), not by a worker. */
void sv_metrics_batch(sv_metrics *m, size_t items, int idle);
void sv_metrics_reload(sv_metrics *m, int ok);

/* What the text reports about the moment it is made. */
typedef struct sv_metrics_state {
    size_t queue_items;
    int model_loaded;
    const char *version, *dtype;
    double load_seconds;
    size_t table_rows;
    int draining;
    int ranks; /* processes scanning the table (1: a single process) */
} sv_metrics_state;

/* The exposition text (malloc'd; NULL when out of memory). */
char *sv_metrics_render(sv_metrics *m, const sv_metrics_state *st, size_t *len);

#endif
