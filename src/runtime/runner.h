/* Runs the generator over many items: batches spread over OpenMP threads
 * pinned by hwloc, one scratch arena per thread allocated once, one copy
 * of the weights per NUMA node. */
#ifndef NU_RUNNER_H
#define NU_RUNNER_H

#include "data/items.h"
#include "model/forward.h"

typedef struct nu_run_options {
    int threads;        /* <= 0: one per core */
    size_t batch_items; /* items per batch (0: 64) */
    nu_forward_mode mode;
    /* Called from the calling thread's team now and then with items done
     * (may be NULL). */
    void (*progress)(size_t done, size_t total, void *ctx);
    void *progress_ctx;
    /* Items [first, first + count) only; count 0 means all from first. */
    size_t first, count;
} nu_run_options;

/* Statistics of a run, for reports and tests. */
typedef struct nu_run_stats {
    int threads, nodes;
    size_t batches;
    double seconds;
    /* Per batch: seconds it took and the node/thread that ran it
     * (arrays of `batches`, owned by the caller via nu_run_stats_free). */
    double *batch_seconds;
    int *batch_node, *batch_thread;
} nu_run_stats;

/* Output rows: INFER one per item; TRAIN n+1 per item, items in order. */
size_t nu_run_output_rows(const nu_items *items, nu_forward_mode mode);

nu_status nu_run_forward(const nu_model *m, const nu_items *items, const nu_run_options *opt,
                         float *out, nu_run_stats *stats /* may be NULL */);
void nu_run_stats_free(nu_run_stats *s);

#endif
