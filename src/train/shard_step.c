/* One optimiser step of a sharded run (shard.h): this process's slice of
 * the batch, computed on a compact model of the rows it reads, then the
 * gradients summed across processes in rank order and applied by lazy Adam
 * to each process's own rows. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "shard_comm.h"
#include "shard_rows.h"
#include "train/shard.h"
#include "util/clock.h"
#include "util/rng.h"

/* The step's compact model: this step's rows of each table, every dense
 * parameter (copied from this process's own). */
static nu_status make_step_model(nu_shard *sh, const nu_model_config *full, size_t *offset)
{
    nu_param_layout_free(&sh->step.layout);
    sh->step.cfg = nu_shard_config(sh, full, sh->n_need);
    nu_status s = nu_param_layout_build(&sh->step.cfg, &sh->step.layout);
    if (s != NU_OK)
        return s;
    size_t total = sh->step.layout.total;
    if (total > sh->step_cap) {
        free(sh->step.params);
        sh->step.params = aligned_alloc(64, (total * sizeof(float) + 63) / 64 * 64 + 64);
        sh->step_cap = sh->step.params ? total : 0;
        if (!sh->step.params)
            return nu_error(NU_ERR_NOMEM, "out of memory for a step's %zu parameters", total);
    }
    nu_model_view_bind(&sh->step.cfg, &sh->step.layout, sh->step.params, &sh->step.w);
    for (size_t i = 0; i < sh->nspec; i++) {
        offset[i] = sh->step.layout.specs[i].offset;
        if (sh->field[i] == -2)
            memcpy(sh->step.params + offset[i], sh->own.params + sh->own.layout.specs[i].offset,
                   sh->own.layout.specs[i].count * sizeof(float));
    }
    return NU_OK;
}

/* Each thread's gradient buffer in the step model's layout, zeroed. */
static nu_status bind_worker_grads(run *r)
{
    nu_shard *sh = r->shard;
    size_t total = sh->step.layout.total;
    for (int t = 0; t < r->T; t++) {
        worker *w = &r->w[t];
        if (total > sh->grad_cap) {
            free(w->grad);
            w->grad = aligned_alloc(64, (total * sizeof(float) + 63) / 64 * 64 + 64);
            if (!w->grad)
                return nu_error(NU_ERR_NOMEM, "out of memory for a step's gradient");
        }
        memset(w->grad, 0, total * sizeof(float));
        nu_model_view_bind(&sh->step.cfg, &sh->step.layout, w->grad, &w->gview);
    }
    if (total > sh->grad_cap)
        sh->grad_cap = total;
    return NU_OK;
}

/* The dense gradient summed over the processes in rank order: block q of
 * it is summed by process q (a reduce-scatter), then every process gets
 * every block (an all-gather).  Result in sh->grad's dense parameters. */
static nu_status sum_dense(run *r, const float *grad)
{
    nu_shard *sh = r->shard;
    size_t R = (size_t)sh->R, D = sh->dense_floats, me = (size_t)sh->rank;
    float *dense = sh->dense;
    for (size_t i = 0, k = 0; i < sh->nspec; i++)
        if (sh->field[i] == -2) {
            size_t n = sh->step.layout.specs[i].count;
            memcpy(dense + k, grad + sh->step.layout.specs[i].offset, n * sizeof(float));
            k += n;
        }
    size_t mine = D * (me + 1) / R - D * me / R;
    size_t *v = calloc(4 * R, sizeof *v);
    nu_status s = v ? nu_shard_grow(&sh->rbuf, &sh->rbuf_cap, R * mine * sizeof(float) + 1)
                    : nu_error(NU_ERR_NOMEM, "out of memory");
    s = nu_shard_agree(sh, s);
    if (s != NU_OK) {
        free(v);
        return s;
    }
    size_t *sb = v, *so = v + R, *rb = v + 2 * R, *ro = v + 3 * R;
    for (size_t q = 0; q < R; q++) {
        size_t lo = D * q / R, hi = D * (q + 1) / R;
        sb[q] = (hi - lo) * sizeof(float);
        so[q] = lo * sizeof(float);
        rb[q] = mine * sizeof(float);
        ro[q] = q * mine * sizeof(float);
    }
    s = nu_shard_alltoallv(sh, dense, sb, so, sh->rbuf, rb, ro, &sh->last.dense_bytes);
    if (s == NU_OK) {
        const float *in = (const float *)(const void *)sh->rbuf;
        float *out = dense + D * me / R;
        memcpy(out, in, mine * sizeof(float));
        for (size_t q = 1; q < R; q++)
            for (size_t k = 0; k < mine; k++)
                out[k] += in[q * mine + k];
        for (size_t q = 0; q < R; q++) {
            size_t lo = D * q / R, hi = D * (q + 1) / R;
            sb[q] = mine * sizeof(float);
            so[q] = (D * me / R) * sizeof(float);
            rb[q] = (hi - lo) * sizeof(float);
            ro[q] = lo * sizeof(float);
        }
        /* The send block is a copy: MPI forbids aliased send and receive
         * buffers. */
        memcpy(sh->rbuf, out, mine * sizeof(float));
        for (size_t q = 0; q < R; q++)
            so[q] = 0;
        s = nu_shard_alltoallv(sh, sh->rbuf, sb, so, dense, rb, ro, &sh->last.dense_bytes);
    }
    free(v);
    for (size_t i = 0, k = 0; s == NU_OK && i < sh->nspec; i++)
        if (sh->field[i] == -2) {
            size_t n = sh->own.layout.specs[i].count;
            memcpy(sh->grad + sh->own.layout.specs[i].offset, dense + k, n * sizeof(float));
            k += n;
        }
    return s;
}

/* The global gradient norm: the dense part (the same on every process) plus
 * every process's own rows, summed in rank order. */
static nu_status global_norm(nu_shard *sh, double *norm)
{
    double dense = 0, rows = 0;
    for (size_t i = 0; i < sh->nspec; i++) {
        const nu_param_spec *p = &sh->own.layout.specs[i];
        if (sh->field[i] == -2) {
            for (size_t k = 0; k < p->count; k++)
                dense += (double)sh->grad[p->offset + k] * sh->grad[p->offset + k];
            continue;
        }
        size_t w = p->shape[1];
        for (size_t k = 0; k < sh->own_rows[i].count; k++) {
            const float *g = sh->grad + p->offset + (size_t)sh->own_rows[i].rows[k] * w;
            for (size_t j = 0; j < w; j++)
                rows += (double)g[j] * g[j];
        }
    }
    double *all = calloc((size_t)sh->R, sizeof *all);
    if (!all)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    nu_status s = nu_shard_allgather(sh, &rows, all, sizeof rows, &sh->last.small_bytes);
    for (int q = 0; q < sh->R; q++)
        dense += all[q];
    free(all);
    *norm = sqrt(dense);
    return s;
}

/* The loss terms' batch means: every process's share, summed in rank order. */
static nu_status loss_means(run *r, size_t P, size_t Q, nu_train_progress *pr)
{
    nu_shard *sh = r->shard;
    nu_trainer_loss_means(r, P, Q, pr);
    double mine[3] = {pr->con, pr->ce, pr->aux}, *all = calloc(3 * (size_t)sh->R, sizeof *all);
    if (!all)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    nu_status s = nu_shard_allgather(sh, mine, all, sizeof mine, &sh->last.small_bytes);
    pr->con = pr->ce = pr->aux = 0;
    for (int q = 0; q < sh->R; q++) {
        pr->con += all[3 * q];
        pr->ce += all[3 * q + 1];
        pr->aux += all[3 * q + 2];
    }
    free(all);
    pr->total = r->o->lambda_con * pr->con + r->o->lambda_ce * pr->ce + r->o->lambda_aux * pr->aux;
    return s;
}

static nu_status first_worker_error(const run *r)
{
    for (int t = 0; t < r->T; t++)
        if (r->w[t].status != NU_OK)
            return nu_error(r->w[t].status, "%s", r->w[t].message);
    return NU_OK;
}

nu_status nu_shard_step(run *r, const size_t *windows, size_t n, nu_train_progress *pr)
{
    nu_shard *sh = r->shard;
    double t0 = nu_now_seconds();
    memset(&sh->last, 0, sizeof sh->last);
    size_t U = r->m->cfg.num_users;
    for (uint64_t j = 0; j < r->o->negatives; j++)
        r->shared[j] = (uint32_t)nu_random_below(&r->rng, U);
    /* This process's slice of the batch, split over its threads. */
    size_t R = (size_t)sh->R, me = (size_t)sh->rank;
    size_t lo = n * me / R, hi = n * (me + 1) / R;
    int T = r->T;
#pragma omp parallel num_threads(T) if (T > 1)
    {
        int t = omp_get_thread_num();
        size_t m = hi - lo, a = lo + m * (size_t)t / (size_t)T, b = lo + m * (size_t)(t + 1) / (size_t)T;
        worker *w = &r->w[t];
        w->status = NU_OK;
        nu_trainer_build_chunk(r, w, windows + a, b - a);
        if (w->status != NU_OK)
            snprintf(w->message, sizeof w->message, "%s", nu_last_error());
    }
    nu_status s = nu_shard_agree(sh, first_worker_error(r));
    /* The loss's denominators count the whole batch. */
    uint64_t counts[2] = {0, 0}, *all = calloc(2 * R, sizeof *all);
    if (!all)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    for (int t = 0; t < T; t++) {
        counts[0] += r->w[t].positions;
        counts[1] += r->w[t].pairs;
    }
    if (s == NU_OK)
        s = nu_shard_allgather(sh, counts, all, sizeof counts, &sh->last.small_bytes);
    size_t P = 0, Q = 0;
    for (size_t q = 0; q < R; q++) {
        P += (size_t)all[2 * q];
        Q += (size_t)all[2 * q + 1];
    }
    free(all);
    size_t *offset = calloc(sh->nspec, sizeof *offset);
    if (s == NU_OK)
        s = nu_shard_agree(sh, offset ? nu_shard_collect(r) : nu_error(NU_ERR_NOMEM, "out of memory"));
    if (s == NU_OK)
        s = nu_shard_agree(sh, make_step_model(sh, &r->m->cfg, offset));
    if (s == NU_OK)
        s = nu_shard_fetch(r, offset);
    if (s == NU_OK)
        s = nu_shard_agree(sh, nu_shard_remap(r));
    if (s == NU_OK)
        s = nu_shard_agree(sh, bind_worker_grads(r));
    if (s == NU_OK) {
        uint32_t *global_shared = r->shared;
        r->shared = sh->shared_compact;
#pragma omp parallel num_threads(T) if (T > 1)
        nu_trainer_compute_chunk(r, &sh->step, &r->w[omp_get_thread_num()], P, Q);
        r->shared = global_shared;
        s = first_worker_error(r);
        if (s == NU_OK)
            s = nu_trainer_reduce(r, &sh->step);
        s = nu_shard_agree(sh, s);
    }
    if (s == NU_OK)
        s = sum_dense(r, r->w[0].grad);
    if (s == NU_OK)
        s = nu_shard_push(r, r->w[0].grad, offset);
    double norm = 0;
    if (s == NU_OK)
        s = global_norm(sh, &norm);
    nu_adam_stats as;
    if (s == NU_OK)
        s = nu_shard_agree(sh, nu_adam_apply(&sh->adam, &sh->own.layout, sh->own.params, sh->grad,
                                             sh->own_rows, norm, &as));
    if (s == NU_OK)
        s = loss_means(r, P, Q, pr);
    free(offset);
    sh->last.compute_s = nu_now_seconds() - t0 - sh->last.comm_s;
    sh->total.fetch_bytes += sh->last.fetch_bytes;
    sh->total.push_bytes += sh->last.push_bytes;
    sh->total.dense_bytes += sh->last.dense_bytes;
    sh->total.small_bytes += sh->last.small_bytes;
    sh->total.comm_s += sh->last.comm_s;
    sh->total.compute_s += sh->last.compute_s;
    return s;
}
