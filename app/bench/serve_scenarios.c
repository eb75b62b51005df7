/* serve/<shape>/<dtype>/U<u>/...: the generator and retrieval end to end.
 * offline: every item of a pool served in batches of serve_batch, back to
 * back (maximum throughput; p50/p99 over batch latencies).  server: Poisson
 * arrivals at offered rates swept over fractions of the offline throughput
 * (latency percentiles from each item's arrival), then a bisection between
 * the highest rate that met the p99 bound and the lowest that missed it:
 * server_max, the capacity figure `nextuser plan` reads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "bench/flops.h"
#include "bench/serve_engine.h"
#include "bench/server_sim.h"
#include "bench/shapes.h"
#include "bench/stats.h"
#include "bench/table_synth.h"
#include "bench/user_model.h"
#include "error.h"
#include "model/model.h"

#define SERVE_POOL 4096 /* distinct items served (cycled) */

typedef struct serve_ctx {
    const nu_bench_config *c;
    const nu_bench_peaks *p;
    nu_bench_results *out;
    char prefix[112]; /* serve/<shape>/<dtype>/U<u>[/gen:bf16] */
    double flops_item;
} serve_ctx;

static nu_status offline(serve_ctx *x, nu_serve_engine *e, int T, double *ips_out)
{
    const nu_bench_config *c = x->c;
    nu_bench_progress("%s/offline/threads:%d", x->prefix, T);
    size_t B = c->serve_batch, pool = e->items->count;
    double t0 = nu_bench_now();
    nu_status s = nu_serve_engine_run(e, 0, B); /* warm-up, and the rate */
    double one = nu_bench_now() - t0;
    size_t batches = (size_t)(c->rep_seconds / (one > 1e-6 ? one : 1e-6)) + 1;
    if (batches > pool / B)
        batches = pool / B;
    if (batches < 1)
        batches = 1;
    double *rate = malloc((size_t)c->reps * sizeof *rate);
    double *lat = malloc((size_t)c->reps * batches * sizeof *lat);
    size_t n_lat = 0;
    if (!rate || !lat)
        s = nu_error(NU_ERR_NOMEM, "out of memory");
    for (int rep = 0; rep < c->reps && s == NU_OK; rep++) {
        double r0 = nu_bench_now();
        for (size_t b = 0; b < batches && s == NU_OK; b++) {
            double b0 = nu_bench_now();
            s = nu_serve_engine_run(e, b * B, B);
            lat[n_lat++] = nu_bench_now() - b0;
        }
        rate[rep] = (double)(batches * B) / (nu_bench_now() - r0);
    }
    if (s == NU_OK) {
        double ips = nu_bench_median(rate, (size_t)c->reps), peak = nu_bench_peak_fma(x->p, T);
        nu_bench_sort(lat, n_lat);
        nu_bench_result *r = nu_bench_add(x->out, T, "%s/offline/threads:%d", x->prefix, T);
        if (!r)
            s = nu_error(NU_ERR_NOMEM, "out of memory");
        else {
            r->repetitions = c->reps;
            r->iterations = n_lat;
            r->real_time_ms = 1e3 * nu_bench_percentile(lat, n_lat, 50);
            nu_bench_set(r, "items_per_second", ips);
            nu_bench_set(r, "p50_ms", 1e3 * nu_bench_percentile(lat, n_lat, 50));
            nu_bench_set(r, "p99_ms", 1e3 * nu_bench_percentile(lat, n_lat, 99));
            nu_bench_set(r, "gflops", ips * x->flops_item * 1e-9);
            nu_bench_set(r, "frac_peak", peak > 0 ? ips * x->flops_item * 1e-9 / peak : 0);
            nu_bench_set(r, "batch", (double)B);
        }
        *ips_out = ips;
    }
    free(rate);
    free(lat);
    return s;
}

/* One offered rate: runs it and adds its row. */
static nu_status server_rate(serve_ctx *x, nu_serve_engine *e, int T, double rate, uint64_t seed,
                             nu_server_run *run)
{
    const nu_bench_config *c = x->c;
    long r_int = (long)(rate + 0.5);
    nu_bench_progress("%s/server/threads:%d/rate:%ld", x->prefix, T, r_int);
    nu_status s = nu_server_simulate(e, (double)r_int, c->rate_seconds, c->max_batch,
                                     c->max_wait_ms * 1e-3, seed, run);
    if (s != NU_OK)
        return s;
    nu_bench_result *r = nu_bench_add(x->out, T, "%s/server/threads:%d/rate:%ld", x->prefix, T, r_int);
    if (!r)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    r->iterations = run->batches;
    r->real_time_ms = run->p50_ms;
    nu_bench_set(r, "offered_per_second", run->offered);
    nu_bench_set(r, "items_per_second", run->achieved);
    nu_bench_set(r, "p50_ms", run->p50_ms);
    nu_bench_set(r, "p90_ms", run->p90_ms);
    nu_bench_set(r, "p99_ms", run->p99_ms);
    nu_bench_set(r, "batch_mean", run->batch_mean);
    nu_bench_set(r, "max_batch", (double)c->max_batch);
    nu_bench_set(r, "max_wait_ms", c->max_wait_ms);
    nu_bench_set(r, "items", (double)run->items);
    return NU_OK;
}

static nu_status server(serve_ctx *x, nu_serve_engine *e, int T, double offline_ips)
{
    const nu_bench_config *c = x->c;
    static const double full[] = {0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1, 1.2};
    static const double quick[] = {0.25, 0.5, 0.75, 0.9, 1.1};
    const double *fr = c->quick ? quick : full;
    size_t nf = c->quick ? sizeof quick / sizeof *quick : sizeof full / sizeof *full;
    double lo = 0, hi = 0, lo_p99 = 0;
    double offered[16], p99[16];
    uint64_t seed = c->seed * 1000003u + (uint64_t)T;
    nu_server_run run;
    nu_status s = NU_OK;
    size_t n_run = 0;
    for (size_t i = 0; i < nf && s == NU_OK; i++) {
        double rate = floor(fr[i] * offline_ips + 0.5);
        if (rate < 1 || (n_run && rate <= offered[n_run - 1]))
            continue; /* (a very slow path: rates round to the same integer) */
        s = server_rate(x, e, T, rate, seed + i, &run);
        offered[n_run] = run.offered;
        p99[n_run++] = run.p99_ms;
    }
    nf = n_run;
    if (s != NU_OK)
        return s;
    /* hi: the lowest rate that missed the bound; lo: the highest below it that met it. */
    for (size_t i = 0; i < nf; i++)
        if (p99[i] > c->p99_ms && (hi == 0 || offered[i] < hi))
            hi = offered[i];
    for (size_t i = 0; i < nf; i++)
        if (p99[i] <= c->p99_ms && (hi == 0 || offered[i] < hi) && offered[i] > lo) {
            lo = offered[i];
            lo_p99 = p99[i];
        }
    /* The p99 bound lies between lo (met) and hi (missed): bisect. */
    /* (hi == 0: every rate met it, and lo is the highest measured.) */
    /* Rates are whole items/s: stop when no whole rate lies between. */
    for (int step = 0; step < (c->quick ? 2 : 4) && hi > 0 && hi - lo >= 2 && hi - lo > 0.02 * hi && s == NU_OK;
         step++) {
        double mid = floor(0.5 * (lo + hi));
        s = server_rate(x, e, T, mid, seed + 100 + (uint64_t)step, &run);
        if (s != NU_OK)
            break;
        if (run.p99_ms <= c->p99_ms) {
            lo = run.offered;
            lo_p99 = run.p99_ms;
        } else {
            hi = run.offered;
        }
    }
    if (s != NU_OK)
        return s;
    nu_bench_result *r = nu_bench_add(x->out, T, "%s/server_max/threads:%d", x->prefix, T);
    if (!r)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    r->real_time_ms = lo_p99;
    nu_bench_set(r, "max_rate_per_second", lo);
    nu_bench_set(r, "p99_bound_ms", c->p99_ms);
    nu_bench_set(r, "max_batch", (double)c->max_batch);
    nu_bench_set(r, "max_wait_ms", c->max_wait_ms);
    nu_bench_set(r, "p99_ms", lo_p99);
    nu_bench_set(r, "offline_items_per_second", offline_ips);
    return NU_OK;
}

/* Every scenario at every thread count for one table and generator encoding. */
static nu_status serve_encodings(serve_ctx *x, const nu_model *m, const nu_items *items,
                                 const nu_user_table *t, nu_table_dtype dtype, nu_gen_encoding gen)
{
    const nu_bench_config *c = x->c;
    char uname[32];
    nu_bench_users_name(t->rows, uname, sizeof uname);
    /* fp32 generator rows keep their names (the bench gate's baselines). */
    snprintf(x->prefix, sizeof x->prefix, "serve/%s/%s/U%s%s%s", c->shape, nu_table_dtype_name(dtype),
             uname, gen == NU_GEN_FP32 ? "" : "/gen:", gen == NU_GEN_FP32 ? "" : nu_gen_encoding_name(gen));
    size_t engine_batch = c->serve_batch > c->max_batch ? c->serve_batch : c->max_batch;
    nu_status s = NU_OK;
    for (int ti = 0; ti < c->n_threads && s == NU_OK; ti++) {
        int T = c->threads[ti];
        nu_serve_engine e;
        const nu_bench_user_model *u = c->user;
        s = u ? nu_serve_engine_init_public(&e, u->model, u->table, u->pool, dtype, gen, c->k, c->pool,
                                            T, engine_batch)
              : nu_serve_engine_init(&e, m, items, t, dtype, gen, c->k, c->pool, T, engine_batch);
        if (s != NU_OK)
            break;
        double ips = 0;
        s = offline(x, &e, T, &ips);
        if (s == NU_OK)
            s = server(x, &e, T, ips);
        nu_serve_engine_free(&e);
    }
    return s;
}

/* Every generator encoding asked for (--gen-dtypes) for one table encoding;
 * bf16 is skipped, saying so, where it would run fp32. */
static nu_status serve_dtype(serve_ctx *x, const nu_model *m, const nu_items *items, const nu_user_table *t,
                             nu_table_dtype dtype)
{
    nu_status s = NU_OK;
    for (int gi = 0; gi < x->c->n_gen_dtypes && s == NU_OK; gi++) {
        nu_gen_encoding gen = x->c->gen_dtypes[gi];
        if (!nu_bench_gen_runs(gen, "serve"))
            continue;
        s = serve_encodings(x, m, items, t, dtype, gen);
    }
    return s;
}

/* Generator FLOPs per item (its own context length) plus 2 U d of scoring,
 * averaged over the pool. */
static double flops_per_item(const nu_model *m, const nu_items *items, const nu_user_table *t)
{
    double sum = 0;
    for (size_t i = 0; i < items->count; i++)
        sum += nu_bench_infer_flops(&m->cfg, nu_items_n_users(items, i));
    return sum / (double)items->count + 2.0 * (double)t->rows * (double)m->cfg.d;
}

/* The user's model, table and items (--model). */
static nu_status serve_user(serve_ctx *x)
{
    const nu_bench_user_model *u = x->c->user;
    const nu_items *items = nu_bench_user_items_of(u);
    const nu_user_table *t = nu_bench_user_table_of(u);
    x->flops_item = flops_per_item(u->model, items, t);
    nu_status s = NU_OK;
    for (int i = 0; i < x->c->n_serve_dtypes && s == NU_OK; i++)
        s = serve_dtype(x, u->model, items, t, x->c->serve_dtypes[i]);
    return s;
}

nu_status nu_bench_serve(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out)
{
    serve_ctx x = {.c = c, .p = p, .out = out};
    if (c->user)
        return serve_user(&x);
    nu_model_config cfg;
    nu_status s = nu_bench_shape_config(c->shape, c->serve_users, &cfg);
    if (s != NU_OK)
        return s;
    nu_bench_progress("serve: building a %s model and its %zu-user table", c->shape, c->serve_users);
    int bf16 = 0, i8 = 0;
    for (int i = 0; i < c->n_serve_dtypes; i++) {
        bf16 |= c->serve_dtypes[i] == NU_TABLE_BF16;
        i8 |= c->serve_dtypes[i] == NU_TABLE_I8;
    }
    nu_model *m = NULL;
    nu_items items;
    nu_user_table t;
    int have_items = 0, have_table = 0;
    s = nu_bench_model(&cfg, c->seed, &m);
    if (s == NU_OK && (s = nu_bench_items(&cfg, SERVE_POOL, c->seed + 3, &items)) == NU_OK)
        have_items = 1;
    if (s == NU_OK && (s = nu_user_table_build(m, bf16, i8, &t)) == NU_OK)
        have_table = 1;
    if (s == NU_OK)
        x.flops_item = flops_per_item(m, &items, &t);
    for (int i = 0; i < c->n_serve_dtypes && s == NU_OK; i++)
        s = serve_dtype(&x, m, &items, &t, c->serve_dtypes[i]);
    if (have_table)
        nu_user_table_free(&t);
    if (have_items)
        nu_items_free(&items);
    nu_model_free(m);
    return s;
}
