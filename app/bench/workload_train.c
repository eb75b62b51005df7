/* train/<shape>/B<b>/threads:<t>: optimisation steps of the full
 * three-term loss with lazy Adam, through nu_train_run itself, on synthetic
 * data written to a scratch directory (as the PyTorch peer's data:
 * `synth-data --users 20000 --items 400 --pos-mean 150 --seed 5`).  Every
 * window start is an example (--windows all: ~25k windows, nearly all a
 * full 50 context users + the next, which the FLOP count assumes; the
 * disjoint default gives only ~900, 3.5 batches, some short).  A step's
 * time is the interval between two consecutive progress callbacks (called
 * right after each step's Adam update; checkpoints only at the end, after
 * the last callback), so loading and checkpointing are not counted.  The
 * first steps are a warm-up; an epoch's last, partial batch is not timed. */
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "bench/flops.h"
#include "bench/shapes.h"
#include "bench/stats.h"
#include "bench/tmpdir.h"
#include "data/synthetic.h"
#include "error.h"
#include "train/trainer.h"
#include "util/path.h"

#define TRAIN_WARMUP 2
#define TRAIN_EXPOSED 4 /* exposed negatives per position (the trainer's default) */

typedef struct step_clock {
    double *at;
    size_t n, cap;
    int last_partial; /* the last recorded step ended the epoch */
} step_clock;

static void on_step(const nu_train_progress *pr, void *ctx)
{
    step_clock *k = ctx;
    if (k->n < k->cap) {
        k->at[k->n++] = nu_bench_now();
        k->last_partial = pr->step == pr->total_steps;
    }
}

static nu_status one_case(const nu_bench_config *c, const nu_bench_peaks *p, const char *data,
                          const char *outdir, int T, nu_bench_results *out)
{
    nu_bench_progress("train/%s/B%zu/threads:%d", c->shape, c->train_batch, T);
    nu_model_config cfg;
    nu_status s = nu_bench_shape_config(c->shape, 1, &cfg); /* the data's users and fields replace these */
    if (s != NU_OK)
        return s;
    size_t steps = TRAIN_WARMUP + c->train_steps;
    step_clock k = {malloc(steps * sizeof(double)), 0, steps, 0};
    if (!k.at)
        return nu_error(NU_ERR_NOMEM, "out of memory");
    nu_train_options o;
    nu_train_defaults(&o);
    o.data_dir = data;
    o.out_dir = outdir;
    o.model_cfg = &cfg;
    o.batch = c->train_batch;
    o.negatives = c->train_negatives;
    o.neg_per_pos = TRAIN_EXPOSED;
    o.windows = NU_WINDOWS_ALL;
    o.max_steps = steps;
    o.checkpoint_every = 0;
    o.threads = T;
    o.seed = 3;
    o.progress = on_step;
    o.progress_ctx = &k;
    nu_train_summary sum;
    s = nu_train_run(&o, &sum);
    if (k.last_partial) /* its batch may be short: not a step of B items */
        k.n--;
    if (s == NU_OK && k.n < TRAIN_WARMUP + 2)
        s = nu_error(NU_ERR_INTERNAL, "training ran only %zu steps", k.n);
    if (s == NU_OK) {
        size_t n = k.n - TRAIN_WARMUP; /* intervals after the warm-up steps */
        double *dt = malloc(n * sizeof *dt);
        if (!dt) {
            free(k.at);
            return nu_error(NU_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            dt[i] = k.at[TRAIN_WARMUP + i] - k.at[TRAIN_WARMUP + i - 1];
        double med = nu_bench_median(dt, n);
        nu_bench_sort(dt, n);
        double flops = nu_bench_train_flops(&cfg, cfg.max_users, c->train_negatives, TRAIN_EXPOSED);
        double ips = (double)c->train_batch / med, gflops = ips * flops * 1e-9;
        double peak = nu_bench_peak_fma(p, T);
        nu_bench_result *e = nu_bench_add(out, T, "train/%s/B%zu/threads:%d", c->shape, c->train_batch, T);
        if (!e)
            s = nu_error(NU_ERR_NOMEM, "out of memory");
        else {
            nu_bench_set(e, "items_per_second", ips);
            nu_bench_set_latency(e, (int)n, dt, n);
            nu_bench_set(e, "gflops", gflops);
            nu_bench_set(e, "frac_peak", peak > 0 ? gflops / peak : 0);
            nu_bench_set(e, "mflop_per_item", flops * 1e-6);
            nu_bench_set(e, "negatives", (double)c->train_negatives);
        }
        free(dt);
    }
    free(k.at);
    return s;
}

nu_status nu_bench_train(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out)
{
    char tmp[512], data[600], outdir[600];
    nu_status s = nu_bench_tmpdir(tmp, sizeof tmp);
    if (s != NU_OK)
        return s;
    s = nu_path_join(data, sizeof data, tmp, "data");
    if (s == NU_OK)
        s = nu_path_join(outdir, sizeof outdir, tmp, "out");
    nu_synth_params sp;
    nu_synth_defaults(&sp);
    sp.users = 20000;
    sp.items = 400;
    sp.pos_mean = 150;
    sp.seed = 5;
    if (s == NU_OK) {
        nu_bench_progress("train: writing synthetic data (20000 users, 400 items)");
        s = nu_synth_write(&sp, data, NULL);
    }
    for (int ti = 0; ti < c->n_threads && s == NU_OK; ti++)
        s = one_case(c, p, data, outdir, c->threads[ti], out);
    nu_bench_rmtree(tmp);
    return s;
}
