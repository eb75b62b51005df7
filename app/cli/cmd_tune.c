/* nextuser tune: the learning rate chosen on validation for the data at
 * hand, within a time budget.  Each candidate rate trains with selection on
 * validation (the epoch and the prior weight, as `train --val-every epoch`);
 * the best-scoring candidate becomes DIR. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"
#include "io/atomic_file.h"
#include "io/owned_dir.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "train_validation.h"

#define MAX_RATES 16

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char *const tune_help =
    "usage: nextuser tune --data DIR --out DIR [--lrs 1e-3,3e-3,1e-2] [--budget-seconds S]\n"
    "                     [--epochs N] [--batch B] [--negatives M] [--patience P]\n"
    "                     [--threads T] [--seed S] [--no-prior] [--json FILE]\n\n"
    "Picks the learning rate on the data's validation items: trains the model at\n"
    "each rate of --lrs in turn, each run choosing its own epoch and popularity-\n"
    "prior weight on validation (as 'nextuser train --val-every epoch'), and keeps\n"
    "the best-scoring run as DIR (model and checkpoint; an existing DIR only if\n"
    "nextuser wrote it or it is empty).  The score is validation Recall@50 at\n"
    "stages 0, 1, 5, 10 and 20, averaged over the stages with items.\n\n"
    "  --lrs LIST          learning rates to try, in order [1e-3,3e-3,1e-2]\n"
    "  --budget-seconds S  do not start another rate when the time so far plus the\n"
    "                      mean time of a run would pass S (the first always runs)\n"
    "                      [no limit]\n"
    "  --epochs N [60] (the most; runs stop when validation stops improving)\n"
    "  --batch B [128]  --negatives M [1024]  --patience P [5]  --seed S [1]\n"
    "  --threads T     (default: one per core)\n"
    "  --no-prior      keep both prior weights 0\n"
    "  --json FILE     the candidates (rate, score, step, prior weights, seconds) and\n"
    "                  the choice, written atomically\n"
    "Ctrl-C stops the run in progress and keeps the best of what has run.\n";

typedef struct candidate {
    double lr, score, prior_weight, feature_prior_weight, seconds;
    uint64_t step;
    int ran;
    char dir[4200];
} candidate;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_rates(const char *text, double *lrs, size_t *n)
{
    char buf[512], *save = NULL;
    if (strlen(text) >= sizeof buf)
        return 0;
    strcpy(buf, text);
    *n = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_RATES)
            return 0;
        char *end;
        double v = strtod(tok, &end);
        if (*end || !(v > 0 && v < 10))
            return 0;
        lrs[(*n)++] = v;
    }
    return *n > 0;
}

static void write_json(FILE *f, const candidate *c, size_t n, size_t best, double seconds)
{
    fputs("{\"candidates\": [", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s{\"lr\": %.17g, \"ran\": %s, \"score\": %.6f, \"step\": %llu, "
                   "\"prior_weight\": %g, \"feature_prior_weight\": %g, \"seconds\": %.3f}",
                i ? ", " : "", c[i].lr, c[i].ran ? "true" : "false", c[i].ran ? c[i].score : 0.0,
                (unsigned long long)c[i].step, c[i].prior_weight, c[i].feature_prior_weight,
                c[i].seconds);
    fprintf(f, "], \"chosen_lr\": %.17g, \"seconds\": %.3f}\n", c[best].lr, seconds);
}

/* The best run's checkpoint into DIR (atomically, by the rules of every
 * output directory), then the candidates' directories go. */
static nu_status keep_best(const candidate *c, size_t n, size_t best, const char *out)
{
    nu_model *m = NULL;
    nu_adam a;
    nu_train_state st;
    nu_status s = nu_checkpoint_load(c[best].dir, &m, &a, &st);
    if (s == NU_OK) {
        s = nu_checkpoint_save(out, m, &a, &st);
        nu_adam_free(&a);
        nu_model_free(m);
    }
    for (size_t i = 0; s == NU_OK && i < n; i++)
        if (c[i].ran)
            nu_owned_dir_remove(c[i].dir, 0);
    return s;
}

int nu_cmd_tune(int argc, char **argv)
{
    nu_train_options o;
    nu_train_defaults(&o);
    o.epochs = 60;
    o.batch = 128;
    o.patience = 5;
    double lrs[MAX_RATES] = {1e-3, 3e-3, 1e-2}, budget = 0;
    size_t n_lrs = 3;
    const char *json = NULL, *v;
    int no_prior = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t *u64 = NULL, lo = 1, hi = UINT64_MAX;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(tune_help, stdout);
            return NU_EXIT_OK;
        } else if (!strcmp(a, "--data") || !strcmp(a, "--out") || !strcmp(a, "--json")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)))
                return NU_EXIT_USAGE;
            *(!strcmp(a, "--data") ? &o.data_dir : !strcmp(a, "--out") ? &o.out_dir : &json) = v;
            continue;
        } else if (!strcmp(a, "--lrs")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)))
                return NU_EXIT_USAGE;
            if (!parse_rates(v, lrs, &n_lrs))
                return nu_cli_usage_error("tune", "--lrs: \"%s\" is not a list of at most %d rates "
                                                  "in (0, 10)", v, MAX_RATES);
            continue;
        } else if (!strcmp(a, "--budget-seconds")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)) ||
                !nu_arg_double("tune", a, v, 1e-3, 1e9, &budget))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)) || !nu_arg_int("tune", a, v, 1, 4096, &o.threads))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--no-prior")) {
            no_prior = 1;
            continue;
        } else if (!strcmp(a, "--epochs"))
            u64 = &o.epochs, hi = 100000;
        else if (!strcmp(a, "--batch"))
            u64 = &o.batch, hi = 1 << 20;
        else if (!strcmp(a, "--negatives"))
            u64 = &o.negatives, lo = 0, hi = 1 << 20;
        else if (!strcmp(a, "--patience"))
            u64 = &o.patience, hi = 100000;
        else if (!strcmp(a, "--seed"))
            u64 = &o.seed, lo = 0;
        else
            return nu_cli_usage_error("tune", "unknown option '%s'", a);
        if (!(v = nu_arg_value("tune", argc, argv, &i)) || !nu_arg_u64("tune", a, v, lo, hi, u64))
            return NU_EXIT_USAGE;
    }
    if (!o.data_dir || !o.out_dir)
        return nu_cli_usage_error("tune", "--data and --out are required");
    if (nu_init() != NU_OK)
        return nu_cli_fail("tune");
    /* Refused before any training: an --out that is not nextuser's. */
    if (nu_owned_dir_check(o.out_dir) != NU_OK)
        return nu_cli_fail("tune");
    nu_cli_validation val = {.threads = o.threads, .no_prior = no_prior};
    if (nu_dataset_load(o.data_dir, &val.ds) != NU_OK)
        return nu_cli_fail("tune");
    o.validate = nu_cli_validate;
    o.validate_ctx = &val;
    o.val_every = 0; /* every epoch */
    o.stop = &stop_requested;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    candidate c[MAX_RATES];
    memset(c, 0, sizeof c);
    double t0 = now_s(), spent = 0;
    size_t ran = 0, best = 0;
    nu_status s = NU_OK;
    for (size_t i = 0; i < n_lrs && s == NU_OK && !stop_requested; i++) {
        c[i].lr = lrs[i];
        double elapsed = now_s() - t0;
        if (budget > 0 && ran > 0 && elapsed + spent / (double)ran > budget) {
            fprintf(stderr, "nextuser tune: lr %g not tried: %.0f s spent, a run takes about %.0f s, "
                            "the budget is %.0f s\n", lrs[i], elapsed, spent / (double)ran, budget);
            continue;
        }
        snprintf(c[i].dir, sizeof c[i].dir, "%s.tune-%zu", o.out_dir, i);
        nu_train_options run = o;
        run.out_dir = c[i].dir;
        run.adam.lr = lrs[i];
        nu_train_summary sum;
        double r0 = now_s();
        s = nu_train_run(&run, &sum);
        c[i].seconds = now_s() - r0;
        if (s != NU_OK)
            break;
        c[i].ran = 1;
        c[i].score = sum.best_score;
        c[i].step = sum.best_step;
        c[i].prior_weight = sum.best_prior_weight;
        c[i].feature_prior_weight = sum.best_feature_prior_weight;
        spent += c[i].seconds;
        if (c[i].score < 0) { /* stopped before its first validation: nothing to compare */
            c[i].ran = 0;
            nu_owned_dir_remove(c[i].dir, 0);
            continue;
        }
        fprintf(stderr, "nextuser tune: lr %g: validation recall@50 %.4f (step %llu, prior_weight %g, "
                        "feature_prior_weight %g) in %.1f s%s\n", lrs[i], c[i].score,
                (unsigned long long)c[i].step, c[i].prior_weight, c[i].feature_prior_weight,
                c[i].seconds, sum.stopped ? " (interrupted)" : "");
        if (!ran || c[i].score > c[best].score)
            best = i;
        ran++;
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    nu_dataset_free(&val.ds);
    if (s != NU_OK) {
        for (size_t i = 0; i < n_lrs; i++)
            if (c[i].ran)
                nu_owned_dir_remove(c[i].dir, 0);
        return nu_cli_fail("tune");
    }
    if (ran == 0) {
        fprintf(stderr, "nextuser tune: no run finished a validation; %s not written\n", o.out_dir);
        return NU_EXIT_FAIL;
    }
    if (keep_best(c, n_lrs, best, o.out_dir) != NU_OK)
        return nu_cli_fail("tune");
    double total = now_s() - t0;
    fprintf(stderr, "nextuser tune: kept lr %g (validation recall@50 %.4f, prior_weight %g, "
                    "feature_prior_weight %g) in %s; %zu of %zu rates tried in %.1f s\n",
            c[best].lr, c[best].score, c[best].prior_weight, c[best].feature_prior_weight,
            o.out_dir, ran, n_lrs, total);
    if (json) {
        nu_atomic_file af = {0};
        if (nu_atomic_open(json, &af) != NU_OK)
            return nu_cli_fail("tune");
        write_json(af.fp, c, n_lrs, best, total);
        if (nu_atomic_commit(&af) != NU_OK)
            return nu_cli_fail("tune");
    }
    return NU_EXIT_OK;
}
