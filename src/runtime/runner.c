#include "runner.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model/packed_weights.h"
#include "runtime/placement.h"
#include "util/clock.h"


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
 * item and stays shared).  With packed weights (fp32 panels, bf16) every node also
 * gets its own packed linears, which its view points to. */
struct nu_node_weights {
    nu_model_view view;
    float *copy;
    size_t bytes;
    int bound;
    void *packed;
    size_t packed_bytes;
    int packed_bound;
};
typedef struct nu_node_weights node_weights;

/* Below this many items a one-shot run keeps fp32 weights in place: packing
 * them all (~30 us for the base shape, plus the fresh pages) costs about
 * what 2-4 items gain from the packed kernel (~15 us each). */
#define PACK_FP32_MIN_ITEMS 8

static nu_status make_node_weights(const nu_model *m, const nu_placement *pl, nu_gen_encoding gen,
                                   int pack, node_weights *nw)
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
    const size_t packed = pack ? nu_packed_weights_bytes(&m->cfg, gen) : 0;
    for (int n = 0; packed && n < pl->nodes; n++) {
        nw[n].packed_bytes = packed;
        nw[n].packed = nu_placement_alloc_on_node(pl, n, packed, &nw[n].packed_bound);
        if (!nw[n].packed)
            return nu_error(NU_ERR_NOMEM, "out of memory for the %s weights of NUMA node %d",
                            nu_gen_encoding_name(gen), n);
        nu_packed_weights_fill(&m->cfg, gen, nw[n].packed, &nw[n].view);
    }
    return NU_OK;
}

/* Items per forward call: a bigger batch runs as consecutive slices so its
 * activations stay in cache (outputs are row-invariant, so slicing changes
 * no bit of them; tests/test_unit_forward.c checks batch-size invariance). */
#define RUN_SLICE 64
/* With weights packed once (fp32 panels or bf16) a matmul call packs no
 * weight, so small slices cost nothing and keep each layer's activations
 * (and the FFN's 4d wide hidden rows) in L1/L2 instead of streaming
 * megabytes through L3: 2 items gave ~10% more items/s than 64 at B = 64
 * on one Zen 5 core. */
#define RUN_SLICE_PACKED 2

nu_status nu_forward_plan_make(const nu_model *m, int threads, int pin, nu_gen_encoding gen,
                               size_t items, nu_forward_plan *p)
{
    memset(p, 0, sizeof *p);
    nu_status st = nu_init();
    if (st == NU_OK)
        st = nu_placement_plan(threads, &p->pl);
    if (st != NU_OK)
        return st;
    p->m = m;
    p->pl.pin = pin;
    p->gen = nu_gen_encoding_effective(gen);
    p->nw = calloc((size_t)p->pl.nodes, sizeof *p->nw);
    const int pack = p->gen != NU_GEN_FP32 || items == 0 || items >= PACK_FP32_MIN_ITEMS;
    st = p->nw ? make_node_weights(m, &p->pl, p->gen, pack, p->nw)
               : nu_error(NU_ERR_NOMEM, "out of memory planning the run");
    if (st != NU_OK)
        nu_forward_plan_free(p);
    return st;
}

void nu_forward_plan_free(nu_forward_plan *p)
{
    for (int n = 0; p->nw && n < p->pl.nodes; n++) {
        if (n > 0)
            nu_placement_free_node_memory(&p->pl, p->nw[n].copy, p->nw[n].bytes, p->nw[n].bound);
        nu_placement_free_node_memory(&p->pl, p->nw[n].packed, p->nw[n].packed_bytes,
                                      p->nw[n].packed_bound);
    }
    free(p->nw);
    nu_placement_free(&p->pl);
    memset(p, 0, sizeof *p);
}

nu_status nu_forward_arenas_make(const nu_forward_plan *p, size_t per, nu_forward_mode mode,
                                 nu_arena **out)
{
    per = per ? per : 64;
    size_t bytes = nu_forward_scratch_bytes(&p->m->cfg, per < RUN_SLICE ? per : RUN_SLICE, mode);
    nu_arena *a = calloc((size_t)p->pl.threads, sizeof *a);
    nu_status st = a ? NU_OK : nu_error(NU_ERR_NOMEM, "out of memory for thread scratch");
    for (int t = 0; st == NU_OK && t < p->pl.threads; t++)
        if (!nu_arena_create(&a[t], bytes))
            st = nu_error(NU_ERR_NOMEM, "out of memory for thread scratch (%zu bytes)", bytes);
    if (st != NU_OK) {
        nu_forward_arenas_free(p, a);
        return st;
    }
    *out = a;
    return NU_OK;
}

void nu_forward_arenas_free(const nu_forward_plan *p, nu_arena *a)
{
    for (int t = 0; a && t < p->pl.threads; t++)
        nu_arena_destroy(&a[t]);
    free(a);
}

nu_status nu_forward_run(const nu_forward_plan *p, nu_arena *arenas, const nu_items *items,
                         const nu_run_options *opt, float *out, nu_run_stats *stats)
{
    const nu_model *m = p->m;
    const nu_placement *pl = &p->pl;
    size_t per = opt->batch_items ? opt->batch_items : 64;
    /* The range of items this run covers. */
    size_t first = opt->first, total = opt->count ? opt->count : items->count - first;
    if (first > items->count || total > items->count - first)
        return nu_error(NU_ERR_INVALID_ARG, "items [%zu, %zu) outside the %zu items", first,
                        first + total, items->count);
    if (total == 0)
        return NU_OK;
    size_t nb = (total + per - 1) / per;
    nu_status st = NU_OK;
    /* Small runs (the engine's B = 1) keep their bookkeeping on the stack. */
    size_t off_stack[65];
    _Atomic size_t next_stack[8];
    size_t *out_off = nb + 1 <= 65 ? off_stack : malloc((nb + 1) * sizeof *out_off);
    _Atomic size_t *next = pl->nodes <= 8 ? next_stack : calloc((size_t)pl->nodes, sizeof *next);
    if (!out_off || !next)
        st = nu_error(NU_ERR_NOMEM, "out of memory planning the run");
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->threads = pl->threads;
        stats->gen = p->gen;
        stats->nodes = pl->nodes;
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
    for (int n = 0; st == NU_OK && n < pl->nodes; n++) {
        size_t node_first, end;
        nu_placement_node_batches(pl, n, nb, &node_first, &end);
        atomic_store(&next[n], node_first);
    }
    _Atomic int failed = 0;
    nu_status fail_status = NU_OK;
    char fail_msg[512] = "";
    _Atomic size_t done = 0;
    double t0 = nu_now_seconds();
    /* Fewer batches than threads: thread t takes batch t (on its node's
     * weights), so a B = 1 call starts no team at all.  A team smaller than
     * the plan (opt->team) deals the batches in turn the same way. */
    int team = nb < (size_t)pl->threads ? (int)nb : pl->threads;
    if (opt->team > 0 && opt->team < team)
        team = opt->team;
    int dealt = team < pl->threads;
    if (st == NU_OK) {
        void *caller = nu_placement_save_caller(pl);
        /* One thread: no team at all (also keeps qemu-user, whose
         * emulation of libgomp's thread start hangs, usable for NEON tests). */
#pragma omp parallel num_threads(team) if (team > 1)
        {
            int tid = omp_get_thread_num();
            int node = pl->thread_node[tid];
            size_t node_first, end;
            nu_placement_bind_thread(pl, tid);
            nu_placement_node_batches(pl, node, nb, &node_first, &end);
            (void)node_first; /* the shared counter next[node] starts there */
            for (size_t turn = 0;; turn++) {
                size_t b = dealt ? (size_t)tid + turn * (size_t)team
                                 : atomic_fetch_add(&next[node], 1);
                if ((dealt ? b >= nb : b >= end) || atomic_load(&failed))
                    break;
                size_t lo = first + b * per;
                size_t cnt = lo + per < first + total ? per : first + total - lo;
                double bt = nu_now_seconds();
                nu_status s = NU_OK;
                size_t row = out_off[b];
                const size_t slice = p->nw[node].packed ? RUN_SLICE_PACKED : RUN_SLICE;
                for (size_t s0 = 0; s0 < cnt && s == NU_OK; s0 += slice) {
                    size_t sc = cnt - s0 < slice ? cnt - s0 : slice;
                    arenas[tid].used = 0;
                    s = nu_forward_batch(&m->cfg, &p->nw[node].view, items, lo + s0, sc, opt->mode,
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
                    stats->batch_seconds[b] = nu_now_seconds() - bt;
                    stats->batch_node[b] = node;
                    stats->batch_thread[b] = tid;
                }
                size_t d_now = atomic_fetch_add(&done, cnt) + cnt;
                if (opt->progress && tid == 0)
                    opt->progress(d_now, total, opt->progress_ctx);
            }
        }
        nu_placement_restore_caller(pl, caller);
        if (atomic_load(&failed))
            st = nu_error(fail_status, "%s", fail_msg);
    }
    if (stats)
        stats->seconds = nu_now_seconds() - t0;
    if (st == NU_OK && opt->progress)
        opt->progress(total, total, opt->progress_ctx);
    if (out_off != off_stack)
        free(out_off);
    if (next != next_stack)
        free((void *)next);
    if (st != NU_OK && stats)
        nu_run_stats_free(stats);
    return st;
}

nu_status nu_run_forward(const nu_model *m, const nu_items *items, const nu_run_options *opt,
                         float *out, nu_run_stats *stats)
{
    nu_forward_plan p;
    nu_arena *arenas = NULL;
    size_t first = opt->first <= items->count ? opt->first : items->count;
    size_t count = opt->count ? opt->count : items->count - first;
    nu_status st = nu_forward_plan_make(m, opt->threads, opt->pin, opt->gen, count ? count : 1, &p);
    if (st != NU_OK)
        return st;
    st = nu_forward_arenas_make(&p, opt->batch_items, opt->mode, &arenas);
    if (st == NU_OK)
        st = nu_forward_run(&p, arenas, items, opt, out, stats);
    nu_forward_arenas_free(&p, arenas);
    nu_forward_plan_free(&p);
    return st;
}
