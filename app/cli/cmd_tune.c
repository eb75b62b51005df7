/* nextuser tune: the learning rate chosen on validation for the data at
 * hand, within a time budget.  Each candidate rate trains with selection on
 * validation (the epoch and the prior weight, as `train --val-every epoch`);
 * the best-scoring candidate becomes DIR. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "io/atomic_file.h"
#include "select/tune.h"

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

/* A list of rates in (0, 10), at most NU_TUNE_MAX_RATES. */
static int parse_rates(const char *text, double *lrs, size_t *n)
{
    char buf[512], *save = NULL;
    if (strlen(text) >= sizeof buf)
        return 0;
    strcpy(buf, text);
    *n = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == NU_TUNE_MAX_RATES)
            return 0;
        char *end;
        double v = strtod(tok, &end);
        if (*end || !(v > 0 && v < 10))
            return 0;
        lrs[(*n)++] = v;
    }
    return *n > 0;
}

static void report(const nu_tune_candidate *c, int tried, double spent, double mean_run,
                   double budget, void *ctx)
{
    (void)ctx;
    if (!tried)
        fprintf(stderr, "nextuser tune: lr %g not tried: %.0f s spent, a run takes about %.0f s, "
                        "the budget is %.0f s\n", c->lr, spent, mean_run, budget);
    else
        fprintf(stderr, "nextuser tune: lr %g: validation recall@50 %.4f (step %llu, prior_weight "
                        "%g, feature_prior_weight %g) in %.1f s%s\n", c->lr, c->score,
                (unsigned long long)c->step, c->prior_weight, c->feature_prior_weight, c->seconds,
                c->interrupted ? " (interrupted)" : "");
}

int nu_cmd_tune(int argc, char **argv)
{
    nu_tune_options t = {.lrs = {1e-3, 3e-3, 1e-2}, .n_lrs = 3, .report = report};
    nu_train_options *o = &t.train;
    nu_train_defaults(o);
    o->epochs = 60;
    o->batch = 128;
    o->patience = 5;
    const char *json = NULL, *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t *u64 = NULL, lo = 1, hi = UINT64_MAX;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(tune_help, stdout);
            return NU_EXIT_OK;
        } else if (!strcmp(a, "--data") || !strcmp(a, "--out") || !strcmp(a, "--json")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)))
                return NU_EXIT_USAGE;
            *(!strcmp(a, "--data") ? &o->data_dir : !strcmp(a, "--out") ? &o->out_dir : &json) = v;
            continue;
        } else if (!strcmp(a, "--lrs")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)))
                return NU_EXIT_USAGE;
            if (!parse_rates(v, t.lrs, &t.n_lrs))
                return nu_cli_usage_error("tune", "--lrs: \"%s\" is not a list of at most %d rates "
                                                  "in (0, 10)", v, NU_TUNE_MAX_RATES);
            continue;
        } else if (!strcmp(a, "--budget-seconds")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)) ||
                !nu_arg_double("tune", a, v, 1e-3, 1e9, &t.budget_seconds))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = nu_arg_value("tune", argc, argv, &i)) ||
                !nu_arg_int("tune", a, v, 1, 4096, &o->threads))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--no-prior")) {
            t.no_prior = 1;
            continue;
        } else if (!strcmp(a, "--epochs"))
            u64 = &o->epochs, hi = 100000;
        else if (!strcmp(a, "--batch"))
            u64 = &o->batch, hi = 1 << 20;
        else if (!strcmp(a, "--negatives"))
            u64 = &o->negatives, lo = 0, hi = 1 << 20;
        else if (!strcmp(a, "--patience"))
            u64 = &o->patience, hi = 100000;
        else if (!strcmp(a, "--seed"))
            u64 = &o->seed, lo = 0;
        else
            return nu_cli_usage_error("tune", "unknown option '%s'", a);
        if (!(v = nu_arg_value("tune", argc, argv, &i)) || !nu_arg_u64("tune", a, v, lo, hi, u64))
            return NU_EXIT_USAGE;
    }
    if (!o->data_dir || !o->out_dir)
        return nu_cli_usage_error("tune", "--data and --out are required");
    if (nu_init() != NU_OK)
        return nu_cli_fail("tune");
    o->stop = &stop_requested;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    nu_tune_result r;
    nu_status s = nu_tune_run(&t, &r);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (s != NU_OK)
        return nu_cli_fail("tune");
    const nu_tune_candidate *b = &r.c[r.best];
    fprintf(stderr, "nextuser tune: kept lr %g (validation recall@50 %.4f, prior_weight %g, "
                    "feature_prior_weight %g) in %s; %zu of %zu rates tried in %.1f s\n",
            b->lr, b->score, b->prior_weight, b->feature_prior_weight, o->out_dir, r.ran, r.n,
            r.seconds);
    if (json) {
        nu_atomic_file af = {0};
        if (nu_atomic_open(json, &af) != NU_OK)
            return nu_cli_fail("tune");
        nu_tune_write_json(af.fp, &r);
        if (nu_atomic_commit(&af) != NU_OK)
            return nu_cli_fail("tune");
    }
    return NU_EXIT_OK;
}
