#include "runner.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "runtime/placement.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t nu_run_output_rows(const nu_items *items, nu_forward_mode mode)
{
    return mode == NU_FORWARD_TRAIN ? items->users_len + items->count : items->count;
}

/* Output rows of items [lo, hi): one each (INFER), n + 1 each (TRAIN). */
static size_t range_rows(const nu_items *items, size_t lo, size_t hi, nu_forward_mode mode)
{
    size_t rows = 0;
    for (size_t i = lo; i < hi; i++)
        rows += mode == NU_FORWARD_TRAIN ? nu_items_n_users(items, i) + 1 : 1;
    return rows;
}

void nu_run_stats_free(nu_run_stats *s)
{
    free(s->batch_seconds);
    free(s->batch_node);
    free(s->batch_thread);
    memset(s, 0, sizeof *s);
}

/* Per-node weights: node 0 uses the model's own buffer; other nodes get a
 * copy of everything after the user table (the table is read a few rows per
 * item and stays shared). */
typedef struct node_weights {
    nu_model_view view;
    float *copy;
    size_t bytes;
    int bound;
} node_weights;

static nu_status make_node_weights(const nu_model *m, const nu_placement *pl, node_weights *nw)
{
    nw[0].view = m->w;
    const nu_param_spec *users = nu_param_find(&m->layout, "user_emb");
    size_t skip = users ? (users->count + 15) / 16 * 16 : 0;
    for (int n = 1; n < pl->nodes; n++) {
        nw[n].bytes = (m->layout.total - skip) * sizeof(float);
        nw[n].copy = nu_placement_alloc_on_node(pl, n, nw[n].bytes ? nw[n].bytes : 64, &nw[n].bound);
        if (!nw[n].copy)
            return nu_error(NU_ERR_NOMEM, "out of memory for the weights of NUMA node %d", n);
        memcpy(nw[n].copy, m->params + skip, nw[n].bytes);
        nu_model_view_bind_from(&m->cfg, &m->layout, nw[n].copy, skip, &nw[n].view);
        nw[n].view.user_emb = m->w.user_emb;
    }
    return NU_OK;
}

/* Items per forward call: a bigger batch runs as consecutive slices so its
 * activations stay in cache (outputs are row-invariant, so slicing changes
 * no bit of them; tests/test_unit_forward.c checks batch-size invariance). */
#define RUN_SLICE 64

nu_status nu_run_forward(const nu_model *m, const nu_items *items, const nu_run_options *opt,
                         float *out, nu_run_stats *stats)
{
    nu_status st = nu_init();
    if (st != NU_OK)
        return st;
    size_t per = opt->batch_items ? opt->batch_items : 64;
    /* The range of items this run covers. */
    size_t first = opt->first, total = opt->count ? opt->count : items->count - first;
    if (first > items->count || total > items->count - first)
        return nu_error(NU_ERR_INVALID_ARG, "items [%zu, %zu) outside the %zu items", first,
                        first + total, items->count);
    size_t nb = (total + per - 1) / per;
    nu_placement pl;
    if ((st = nu_placement_plan(opt->threads, &pl)) != NU_OK)
        return st;
    node_weights *nw = calloc((size_t)pl.nodes, sizeof *nw);
    size_t *out_off = malloc((nb + 1) * sizeof *out_off);
    nu_arena *arenas = calloc((size_t)pl.threads, sizeof *arenas);
    _Atomic size_t *next = calloc((size_t)pl.nodes, sizeof *next);
    if (!nw || !out_off || !arenas || !next)
        st = nu_error(NU_ERR_NOMEM, "out of memory planning the run");
    if (st == NU_OK)
        st = make_node_weights(m, &pl, nw);
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->threads = pl.threads;
        stats->nodes = pl.nodes;
        stats->batches = nb;
        stats->batch_seconds = calloc(nb + 1, sizeof(double));
        stats->batch_node = calloc(nb + 1, sizeof(int));
        stats->batch_thread = calloc(nb + 1, sizeof(int));
        if (!stats->batch_seconds || !stats->batch_node || !stats->batch_thread)
            st = nu_error(NU_ERR_NOMEM, "out of memory for run statistics");
    }
    /* Where each batch's output starts (rows vary per item in TRAIN mode). */
    if (st == NU_OK) {
        out_off[0] = 0;
        for (size_t b = 0; b < nb; b++) {
            size_t lo = first + b * per, hi = lo + per < first + total ? lo + per : first + total;
            out_off[b + 1] = out_off[b] + range_rows(items, lo, hi, opt->mode);
        }
    }
    size_t arena_bytes = nu_forward_scratch_bytes(&m->cfg, per < RUN_SLICE ? per : RUN_SLICE, opt->mode);
    for (int t = 0; st == NU_OK && t < pl.threads; t++)
        if (!nu_arena_create(&arenas[t], arena_bytes))
            st = nu_error(NU_ERR_NOMEM, "out of memory for thread scratch (%zu bytes)", arena_bytes);
    for (int n = 0; st == NU_OK && n < pl.nodes; n++) {
        size_t node_first, end;
        nu_placement_node_batches(&pl, n, nb, &node_first, &end);
        atomic_store(&next[n], node_first);
    }
    _Atomic int failed = 0;
    nu_status fail_status = NU_OK;
    char fail_msg[512] = "";
    _Atomic size_t done = 0;
    double t0 = now_s();
    if (st == NU_OK) {
        /* One thread: no team at all (also keeps qemu-user, whose
         * emulation of libgomp's thread start hangs, usable for NEON tests). */
#pragma omp parallel num_threads(pl.threads) if (pl.threads > 1)
        {
            int tid = omp_get_thread_num();
            int node = pl.thread_node[tid];
            size_t node_first, end;
            nu_placement_bind_thread(&pl, tid);
            nu_placement_node_batches(&pl, node, nb, &node_first, &end);
            (void)node_first; /* the shared counter next[node] starts there */
            for (;;) {
                size_t b = atomic_fetch_add(&next[node], 1);
                if (b >= end || atomic_load(&failed))
                    break;
                size_t lo = first + b * per;
                size_t cnt = lo + per < first + total ? per : first + total - lo;
                double bt = now_s();
                nu_status s = NU_OK;
                size_t row = out_off[b];
                for (size_t s0 = 0; s0 < cnt && s == NU_OK; s0 += RUN_SLICE) {
                    size_t sc = cnt - s0 < RUN_SLICE ? cnt - s0 : RUN_SLICE;
                    arenas[tid].used = 0;
                    s = nu_forward_batch(&m->cfg, &nw[node].view, items, lo + s0, sc, opt->mode,
                                         &arenas[tid], out + row * m->cfg.d);
                    row += range_rows(items, lo + s0, lo + s0 + sc, opt->mode);
                }
                if (s != NU_OK) {
#pragma omp critical(nu_runner_error)
                    if (!atomic_load(&failed)) {
                        fail_status = s;
                        snprintf(fail_msg, sizeof fail_msg, "%s", nu_last_error());
                        atomic_store(&failed, 1);
                    }
                    break;
                }
                if (stats) {
                    stats->batch_seconds[b] = now_s() - bt;
                    stats->batch_node[b] = node;
                    stats->batch_thread[b] = tid;
                }
                size_t d_now = atomic_fetch_add(&done, cnt) + cnt;
                if (opt->progress && tid == 0)
                    opt->progress(d_now, total, opt->progress_ctx);
            }
        }
        if (atomic_load(&failed))
            st = nu_error(fail_status, "%s", fail_msg);
    }
    if (stats)
        stats->seconds = now_s() - t0;
    if (st == NU_OK && opt->progress)
        opt->progress(total, total, opt->progress_ctx);
    for (int t = 0; arenas && t < pl.threads; t++)
        nu_arena_destroy(&arenas[t]);
    for (int n = 1; nw && n < pl.nodes; n++)
        nu_placement_free_node_memory(&pl, nw[n].copy, nw[n].bytes, nw[n].bound);
    free(arenas);
    free(nw);
    free(out_off);
    free((void *)next);
    nu_placement_free(&pl);
    if (st != NU_OK && stats)
        nu_run_stats_free(stats);
    return st;
}
