/* infer/<shape>/B<b>/threads:<t>: the generator over many items through the
 * OpenMP runner (each thread runs whole batches of B items), a warm-up run
 * then `reps` timed runs.  Another generator encoding than fp32 adds
 * /gen:<name> before /threads (infer/base/B64/gen:bf16/threads:1).  items/s is the median over runs; p50/p99 are over
 * the latencies of every batch of the timed runs. */
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "bench/flops.h"
#include "bench/shapes.h"
#include "bench/stats.h"
#include "bench/user_model.h"
#include "error.h"
#include "model/model.h"
#include "runtime/runner.h"

#define INFER_USERS 10000 /* users of the model (as the peers' infer model) */

typedef struct infer_run {
    const nu_model *m;
    const nu_items *items;
    float *out;
    nu_gen_encoding gen;
} infer_run;

/* Mean FLOPs per item over items [0, count): a user model's items carry
 * their own context lengths. */
static double mean_flops(const nu_model_config *cfg, const nu_items *items, size_t count)
{
    double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += nu_bench_infer_flops(cfg, nu_items_n_users(items, i));
    return count ? sum / (double)count : 0;
}

/* One run over `count` items; appends its batch latencies to lat. */
static nu_status run_once(const infer_run *r, size_t B, int T, size_t count, double *seconds,
                          double *lat, size_t *n_lat)
{
    nu_run_options o = {.threads = T, .batch_items = B, .mode = NU_FORWARD_INFER, .count = count,
                        .pin = 1, .gen = r->gen};
    nu_run_stats st;
    nu_status s = nu_run_forward(r->m, r->items, &o, r->out, &st);
    if (s != NU_OK)
        return s;
    *seconds = st.seconds;
    if (lat)
        for (size_t b = 0; b < st.batches; b++)
            lat[(*n_lat)++] = st.batch_seconds[b];
    nu_run_stats_free(&st);
    return NU_OK;
}

static nu_status one_case(const nu_bench_config *c, const nu_bench_peaks *p, const infer_run *r,
                          size_t pool, size_t B, int T, nu_bench_results *out)
{
    char gen[32] = "";
    if (r->gen != NU_GEN_FP32)
        snprintf(gen, sizeof gen, "gen:%s/", nu_gen_encoding_name(r->gen));
    nu_bench_progress("infer/%s/B%zu/%sthreads:%d", c->shape, B, gen, T);
    size_t unit = B * (size_t)T, count = 2 * unit, n_lat = 0;
    /* the most items the pool holds in whole rounds of T batches */
    size_t most = pool >= unit ? pool / unit * unit : pool;
    if (count > most)
        count = most;
    double sec;
    nu_status s = run_once(r, B, T, count, &sec, NULL, NULL); /* warm-up, and the rate */
    if (s != NU_OK)
        return s;
    /* Runs of about rep_seconds, whole rounds of T batches. */
    size_t want = (size_t)((double)count / sec * c->rep_seconds / (double)unit + 0.999) * unit;
    if (want < unit)
        want = unit;
    if (want > most)
        want = most;
    count = want;
    double *rate = malloc((size_t)c->reps * sizeof *rate);
    double *lat = malloc(((size_t)c->reps * (count / B + 1)) * sizeof *lat);
    if (!rate || !lat) {
        free(rate);
        free(lat);
        return nu_error(NU_ERR_NOMEM, "out of memory for infer statistics");
    }
    for (int rep = 0; rep < c->reps && s == NU_OK; rep++) {
        s = run_once(r, B, T, count, &sec, lat, &n_lat);
        rate[rep] = (double)count / sec;
    }
    if (s == NU_OK) {
        double ips = nu_bench_median(rate, (size_t)c->reps);
        double flops_item = mean_flops(&r->m->cfg, r->items, count);
        nu_bench_sort(lat, n_lat);
        nu_bench_result *e = nu_bench_add(out, T, "infer/%s/B%zu/%sthreads:%d", c->shape, B, gen, T);
        if (!e)
            s = nu_error(NU_ERR_NOMEM, "out of memory");
        else {
            double gflops = ips * flops_item * 1e-9, peak = nu_bench_peak_fma(p, T);
            nu_bench_set(e, "items_per_second", ips);
            nu_bench_set_latency(e, c->reps, lat, n_lat);
            nu_bench_set(e, "gflops", gflops);
            nu_bench_set(e, "frac_peak", peak > 0 ? gflops / peak : 0);
            nu_bench_set(e, "mflop_per_item", flops_item * 1e-6);
        }
    }
    free(rate);
    free(lat);
    return s;
}

int nu_bench_max_threads(const nu_bench_config *c)
{
    int maxT = 1;
    for (int i = 0; i < c->n_threads; i++)
        maxT = c->threads[i] > maxT ? c->threads[i] : maxT;
    return maxT;
}

size_t nu_bench_infer_pool(const nu_bench_config *c)
{
    size_t maxB = 1;
    for (int i = 0; i < c->n_infer_batches; i++)
        maxB = c->infer_batches[i] > maxB ? c->infer_batches[i] : maxB;
    size_t pool = 2 * maxB * (size_t)nu_bench_max_threads(c);
    return pool < 8192 ? 8192 : pool;
}

nu_status nu_bench_infer(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out)
{
    size_t pool = nu_bench_infer_pool(c);
    nu_model *made = NULL;
    const nu_model *m;
    nu_items synth;
    const nu_items *items = &synth;
    nu_status s = NU_OK;
    if (c->user) {
        /* The user's model and items (repeated to at least the pool). */
        m = c->user->model;
        items = nu_bench_user_items_of(c->user);
        if (pool > items->count)
            pool = items->count;
    } else {
        nu_model_config cfg;
        s = nu_bench_shape_config(c->shape, INFER_USERS, &cfg);
        if (s == NU_OK)
            s = nu_bench_model(&cfg, c->seed, &made);
        if (s != NU_OK)
            return s;
        m = made;
        s = nu_bench_items(&cfg, pool, c->seed + 1, &synth);
        if (s != NU_OK) {
            nu_model_free(made);
            return s;
        }
    }
    float *buf = malloc(pool * m->cfg.d * sizeof(float));
    if (!buf)
        s = nu_error(NU_ERR_NOMEM, "out of memory for %zu outputs", pool);
    infer_run r = {m, items, buf, NU_GEN_FP32};
    for (int gi = 0; gi < c->n_gen_dtypes && s == NU_OK; gi++) {
        r.gen = c->gen_dtypes[gi];
        if (!nu_bench_gen_runs(r.gen, "infer"))
            continue;
        for (int bi = 0; bi < c->n_infer_batches && s == NU_OK; bi++)
            for (int ti = 0; ti < c->n_threads && s == NU_OK; ti++)
                s = one_case(c, p, &r, pool, c->infer_batches[bi], c->threads[ti], out);
    }
    free(buf);
    if (!c->user)
        nu_items_free(&synth);
    nu_model_free(made);
    return s;
}
