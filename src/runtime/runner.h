/* Runs the generator over many items: batches spread over OpenMP threads
 * (pinned by hwloc when asked), one scratch arena per thread allocated once,
 * one copy of the weights per NUMA node.  A plan (placement and weights) and
 * the arenas can be made once and reused by any number of runs. */
#ifndef NU_RUNNER_H
#define NU_RUNNER_H

#include "data/items.h"
#include "model/forward.h"
#include "model/packed_weights.h"
#include "runtime/placement.h"
#include "util/arena.h"

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
    int pin; /* pin the team's threads to cores (nu_run_forward only) */
    /* Threads that run the batches (1 .. the plan's; 0: the plan's).  The
     * batches stay the same, so the output does too. */
    int team;
    /* generator weights' encoding (nu_run_forward only; the plan's otherwise) */
    nu_gen_encoding gen;
} nu_run_options;

/* Statistics of a run, for reports and tests. */
typedef struct nu_run_stats {
    int threads, nodes;
    nu_gen_encoding gen; /* the encoding that ran (bf16 asked may run fp32) */
    size_t batches;
    double seconds;
    /* Per batch: seconds it took and the node/thread that ran it
     * (arrays of `batches`, owned by the caller via nu_run_stats_free). */
    double *batch_seconds;
    int *batch_node, *batch_thread;
} nu_run_stats;

/* Output rows: INFER one per item; TRAIN n+1 per item, items in order. */
size_t nu_run_output_rows(const nu_items *items, nu_forward_mode mode);

/* Plans, runs and frees in one call. */
nu_status nu_run_forward(const nu_model *m, const nu_items *items, const nu_run_options *opt,
                         float *out, nu_run_stats *stats /* may be NULL */);

/* The placement of a thread count and the per-node weights of a model: made
 * once, read-only afterwards (shared by concurrent runs). */
typedef struct nu_forward_plan {
    const nu_model *m;
    nu_placement pl;
    struct nu_node_weights *nw; /* [pl.nodes] */
    nu_gen_encoding gen;        /* what runs: `gen` asked, or fp32 where the CPU lacks it */
} nu_forward_plan;

/* gen: the generator weights' encoding asked for; its packed weights (bf16,
 * or fp32 panels where the CPU has matmul_f32p) are made here once per NUMA
 * node; bf16 falls back to fp32 (nu_gen_encoding_effective).  items: how
 * many items the plan will run, 0 when many (an engine): fp32 packing is
 * skipped below a few items, where it would cost more than it saves (the
 * answers are the same bits either way). */
nu_status nu_forward_plan_make(const nu_model *m, int threads, int pin, nu_gen_encoding gen,
                               size_t items, nu_forward_plan *p);
void nu_forward_plan_free(nu_forward_plan *p);
/* One scratch arena per planned thread for batches of `per` items (0: 64);
 * one set per concurrent caller. */
nu_status nu_forward_arenas_make(const nu_forward_plan *p, size_t per, nu_forward_mode mode,
                                 nu_arena **out);
void nu_forward_arenas_free(const nu_forward_plan *p, nu_arena *arenas);
/* A run on a plan with its arenas (opt->threads and opt->pin are the plan's). */
nu_status nu_forward_run(const nu_forward_plan *p, nu_arena *arenas, const nu_items *items,
                         const nu_run_options *opt, float *out, nu_run_stats *stats);
void nu_run_stats_free(nu_run_stats *s);

#endif
