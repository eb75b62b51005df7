/* Prometheus text format 0.0.4 (metrics.h): HELP and TYPE before each
 * family, histograms with cumulative buckets, _sum and _count. */
#include "metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static const char *const endpoint_names[SV_EP_COUNT] = {"recommend", "embed",  "healthz", "readyz",
                                                        "metrics",   "reload", "other"};

const char *sv_endpoint_name(sv_endpoint e)
{
    return (unsigned)e < SV_EP_COUNT ? endpoint_names[e] : "other";
}

/* Upper bounds of the latency buckets, seconds. */
static const double lat_bounds[] = {0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                    0.05,    0.1,    0.2,   0.5,   1,     2,    5};
#define N_LAT (sizeof lat_bounds / sizeof lat_bounds[0])
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define N_BATCH (sizeof batch_bounds / sizeof batch_bounds[0])
#define MAX_CODES 16

typedef struct histogram {
    uint64_t le[N_LAT > N_BATCH ? N_LAT : N_BATCH]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
} histogram;

struct sv_metrics {
    pthread_mutex_t mu;
    struct {
        int code[MAX_CODES];
        uint64_t n[MAX_CODES];
        size_t n_codes;
        histogram lat;
    } ep[SV_EP_COUNT];
    histogram batch;
    uint64_t items_scored;
    uint64_t idle_batches;
    uint64_t reloads_ok, reloads_failed;
};

sv_metrics *sv_metrics_create(void)
{
    sv_metrics *m = calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void sv_metrics_free(sv_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void observe(histogram *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    if (i < nb)
        h->le[i]++;
    h->count++;
    h->sum += v;
}

void sv_metrics_request(sv_metrics *m, sv_endpoint e, int code, double seconds)
{
    if ((unsigned)e >= SV_EP_COUNT)
        e = SV_EP_OTHER;
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    while (i < m->ep[e].n_codes && m->ep[e].code[i] != code)
        i++;
    if (i == m->ep[e].n_codes && i < MAX_CODES) {
        m->ep[e].code[i] = code;
        m->ep[e].n_codes++;
    }
    if (i < MAX_CODES)
        m->ep[e].n[i]++;
    observe(&m->ep[e].lat, lat_bounds, N_LAT, seconds);
    pthread_mutex_unlock(&m->mu);
}

void sv_metrics_batch(sv_metrics *m, size_t items, int idle)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->batch, batch_bounds, N_BATCH, (double)items);
    m->items_scored += items;
    m->idle_batches += idle != 0;
    pthread_mutex_unlock(&m->mu);
}

void sv_metrics_reload(sv_metrics *m, int ok)
{
    pthread_mutex_lock(&m->mu);
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
    pthread_mutex_unlock(&m->mu);
}

/* A label value: backslash, double quote and line feed escaped. */
static void label_value(sv_strbuf *b, const char *s)
{
    sv_sb_puts(b, "\"");
    for (; s && *s; s++) {
        if (*s == '\\')
            sv_sb_puts(b, "\\\\");
        else if (*s == '"')
            sv_sb_puts(b, "\\\"");
        else if (*s == '\n')
            sv_sb_puts(b, "\\n");
        else
            sv_sb_append(b, s, 1);
    }
    sv_sb_puts(b, "\"");
}

static void family(sv_strbuf *b, const char *name, const char *type, const char *help)
{
    sv_sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Buckets of one histogram series; labels is "" or `endpoint="x",`. */
static void render_histogram(sv_strbuf *b, const char *name, const char *labels, const histogram *h,
                             const double *bounds, size_t nb)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < nb; i++) {
        cum += h->le[i];
        sv_sb_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, bounds[i],
                     (unsigned long long)cum);
    }
    sv_sb_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->count);
    size_t ll = strlen(labels);
    if (ll) { /* the labels without their trailing comma */
        sv_sb_printf(b, "%s_sum{%.*s} %.9g\n", name, (int)(ll - 1), labels, h->sum);
        sv_sb_printf(b, "%s_count{%.*s} %llu\n", name, (int)(ll - 1), labels,
                     (unsigned long long)h->count);
    } else {
        sv_sb_printf(b, "%s_sum %.9g\n", name, h->sum);
        sv_sb_printf(b, "%s_count %llu\n", name, (unsigned long long)h->count);
    }
}

char *sv_metrics_render(sv_metrics *m, const sv_metrics_state *st, size_t *len)
{
    sv_strbuf b = {0};
    pthread_mutex_lock(&m->mu);
    family(&b, "nextuser_requests_total", "counter",
           "HTTP requests answered, by endpoint and status code.");
    for (int e = 0; e < SV_EP_COUNT; e++)
        for (size_t i = 0; i < m->ep[e].n_codes; i++)
            sv_sb_printf(&b, "nextuser_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n",
                         endpoint_names[e], m->ep[e].code[i], (unsigned long long)m->ep[e].n[i]);
    family(&b, "nextuser_request_duration_seconds", "histogram",
           "Seconds from a request's headers to its answer sent, by endpoint.");
    for (int e = 0; e < SV_EP_COUNT; e++) {
        if (!m->ep[e].lat.count)
            continue;
        char labels[64];
        snprintf(labels, sizeof labels, "endpoint=\"%s\",", endpoint_names[e]);
        render_histogram(&b, "nextuser_request_duration_seconds", labels, &m->ep[e].lat, lat_bounds,
                         N_LAT);
    }
    family(&b, "nextuser_batch_items", "histogram", "Items per engine call (micro-batch size).");
    render_histogram(&b, "nextuser_batch_items", "", &m->batch, batch_bounds, N_BATCH);
    family(&b, "nextuser_items_scored_total", "counter",
           "Items run through the engine (recommend and embed).");
    sv_sb_printf(&b, "nextuser_items_scored_total %llu\n", (unsigned long long)m->items_scored);
    family(&b, "nextuser_idle_batches_total", "counter",
           "Engine calls run at once on an HTTP thread: the request found the service idle "
           "(--idle-us).");
    sv_sb_printf(&b, "nextuser_idle_batches_total %llu\n", (unsigned long long)m->idle_batches);
    family(&b, "nextuser_reloads_total", "counter", "Model reloads, by result.");
    sv_sb_printf(&b, "nextuser_reloads_total{result=\"ok\"} %llu\n",
                 (unsigned long long)m->reloads_ok);
    sv_sb_printf(&b, "nextuser_reloads_total{result=\"failed\"} %llu\n",
                 (unsigned long long)m->reloads_failed);
    pthread_mutex_unlock(&m->mu);

    family(&b, "nextuser_queue_items", "gauge", "Items waiting in the batching queue.");
    sv_sb_printf(&b, "nextuser_queue_items %zu\n", st->queue_items);
    family(&b, "nextuser_draining", "gauge", "1 while the service shuts down.");
    sv_sb_printf(&b, "nextuser_draining %d\n", st->draining ? 1 : 0);
    family(&b, "nextuser_ranks", "gauge",
           "Processes scanning the user table (MPI ranks; 1: a single process).");
    sv_sb_printf(&b, "nextuser_ranks %d\n", st->ranks > 1 ? st->ranks : 1);
    if (st->model_loaded) {
        family(&b, "nextuser_model_info", "gauge", "The model version serving new requests.");
        sv_sb_puts(&b, "nextuser_model_info{version=");
        label_value(&b, st->version);
        sv_sb_puts(&b, ",dtype=");
        label_value(&b, st->dtype);
        sv_sb_puts(&b, "} 1\n");
        family(&b, "nextuser_model_load_seconds", "gauge",
               "Seconds the serving model took to load and validate.");
        sv_sb_printf(&b, "nextuser_model_load_seconds %.6f\n", st->load_seconds);
        family(&b, "nextuser_table_rows", "gauge", "Users in the serving model's table.");
        sv_sb_printf(&b, "nextuser_table_rows %zu\n", st->table_rows);
    }
    return sv_sb_take(&b, len);
}
