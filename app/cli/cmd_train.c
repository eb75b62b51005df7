/* nextuser train: train the generator on a data directory. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "progress.h"
#include "select/validation_open.h"

static volatile sig_atomic_t stop_requested;

/* SIGINT (Ctrl-C) and SIGTERM (what systemd, Kubernetes and batch
 * schedulers send): the loop checkpoints after the current step and the
 * command exits cleanly. */
static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct train_view {
    nu_progress bar;
} train_view;

static void show(const nu_training_progress *p, void *ctx)
{
    train_view *v = ctx;
    if (p->validated) {
        /* Every validation gets a line of its own, bar or not. */
        fprintf(stderr, "%strain step %llu epoch %llu: validation recall@50 %.4f (best %.4f at step %llu)\n",
                v->bar.drawn ? "\n" : "", (unsigned long long)p->step,
                (unsigned long long)p->epoch + 1, p->val_score, p->best_score,
                (unsigned long long)p->best_step);
        v->bar.drawn = 0;
    }
    double now = nu_now_seconds();
    if (!v->bar.enabled || (now - v->bar.last < 0.5 && p->step < p->total_steps))
        return;
    v->bar.last = now;
    fprintf(stderr, "\rtrain step %llu/%llu epoch %llu  loss %.4f (con %.4f ce %.4f aux %.4f)  %.0f examples/s ",
            (unsigned long long)p->step, (unsigned long long)p->total_steps,
            (unsigned long long)p->epoch + 1, p->total, p->con, p->ce, p->aux, p->examples_per_s);
    fflush(stderr);
    v->bar.drawn = 1;
}

static const char *const train_help =
    "usage: nextuser train --data DIR --out DIR [--config C.json] [--epochs N] [--batch B]\n"
    "                      [--threads T] [--resume DIR] [--seed S] [--negatives M]\n"
    "                      [--checkpoint-every N] [--lr X] [--lambdas A,B,C] [--max-steps N]\n"
    "                      [--windows disjoint|all] [--val-every N|epoch] [--patience P]\n"
    "                      [--no-prior]\n"
    "                      [--max-users N] [--no-prefix] [--no-cls] [--bidirectional]\n\n"
    "Trains the Next-User generator on a data directory (docs/data-format.md,\n"
    "from 'nextuser synth-data' or 'nextuser prepare') with the three-term loss\n"
    "(contrastive with M shared random negatives, cross-entropy on exposed\n"
    "negatives, stop-gradient auxiliary MSE) and Adam (lazy rows for the user and\n"
    "feature tables).  DIR (--out) receives the trained model and its\n"
    "checkpoint (optimiser moments, loop state), written atomically every\n"
    "--checkpoint-every steps, at the end, and on Ctrl-C or SIGTERM (an existing DIR only if\n"
    "nextuser wrote it or it is empty: checked before training starts).\n"
    "--resume continues a checkpoint exactly: the final weights equal those of\n"
    "an uninterrupted run with the same seed and thread count.\n\n"
    "  --config C      model config (d, heads, layers, ...); users and prefix\n"
    "                  fields come from the data.  Default: the base shape.\n"
    "  --epochs N [1]  --batch B [256]  --negatives M [1024]  --lr X [1e-3]\n"
    "  --threads T     (default: one per core)   --seed S [1]\n"
    "  --lambdas A,B,C weights of the contrastive, cross-entropy and auxiliary\n"
    "                  terms [1,0.5,0.1] (tau and cosine/dot come from the config)\n"
    "  --max-steps N   stop (with a checkpoint) after N steps in total\n"
    "  --windows W     which windows of each item's positives are examples:\n"
    "                  disjoint [default] (every positive a target once, so an\n"
    "                  item weighs by its positives) or all (every start: popular\n"
    "                  items weigh by the square of theirs; results/quality.md)\n"
    "Selection on validation (the data's val items):\n"
    "  --val-every N   score the model every N steps (or 'epoch': at the end of\n"
    "                  every epoch) and at the end: validation Recall@50 at\n"
    "                  stages 0, 1, 5, 10, 20 (mean over stages with items).\n"
    "                  DIR then always holds the best-scoring model and its\n"
    "                  checkpoint (no --checkpoint-every); --epochs is the most.\n"
    "  --patience P    stop after P validations without improvement [3]\n"
    "                  Each validation also picks the weights of two priors for\n"
    "                  serving: score = cosine / tau + w * log(1 + the user's\n"
    "                  training positives) + fw * the sum, over the item's feature\n"
    "                  values, of log(1 + the user's training positives on items\n"
    "                  with that value) (the 32 values with most positives), each\n"
    "                  weight in 0, 0.25, 0.5, 1, 2, 4; the best are kept as the\n"
    "                  model's prior_weight and feature_prior_weight\n"
    "                  (docs/model-format.md)\n"
    "  --no-prior      keep both prior weights 0 (cosine alone)\n"
    "Model variants (override the config; used for the ablations of\n"
    "docs/evaluation.md):\n"
    "  --max-users N   context users the encoder reads [config: 50]\n"
    "  --no-prefix     no item-feature prefix tokens (the model ignores features)\n"
    "  --no-cls        no [CLS] token\n"
    "  --bidirectional bidirectional encoder instead of causal\n"
    "Several processes (built with NU_MPI): 'mpirun -np R nextuser train ...' splits\n"
    "each batch over the R ranks and the user and feature tables (with their Adam\n"
    "moments) by rows; R ranks of 1 thread give one process of R threads bit for\n"
    "bit.  Each checkpoint also writes DIR.shards (every rank its rows): --resume\n"
    "DIR.shards continues it on any number of ranks (docs/mpi.md, \"Training\").\n";

int nu_cmd_train(int argc, char **argv)
{
    return nu_cmd_train_with(argc, argv, NULL, NULL);
}

int nu_cmd_train_with(int argc, char **argv, const nu_collectives *collectives,
                      nu_training_result *result)
{
    nu_training_options o;
    nu_training_options_init(&o);
    const char *data_dir = NULL, *out_dir = NULL, *v;
    uint64_t max_users = 0;
    int val_on = 0, no_prior = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t *u64 = NULL, lo = 1, hi = UINT64_MAX;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(train_help, stdout);
            return NU_EXIT_OK;
        } else if (!strcmp(a, "--data")) {
            if (!(data_dir = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--out")) {
            if (!(out_dir = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--resume")) {
            if (!(o.resume_dir = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--config")) {
            if (!(o.config_path = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = nu_arg_value("train", argc, argv, &i)) || !nu_arg_int("train", a, v, 1, 4096, &o.threads))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--windows")) {
            if (!(v = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            if (!strcmp(v, "disjoint"))
                o.all_windows = 0;
            else if (!strcmp(v, "all"))
                o.all_windows = 1;
            else
                return nu_cli_usage_error("train", "--windows: \"%s\" is not disjoint or all", v);
            continue;
        } else if (!strcmp(a, "--val-every")) {
            if (!(v = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            val_on = 1;
            if (!strcmp(v, "epoch"))
                o.val_every = 0;
            else if (!nu_arg_u64("train", a, v, 1, UINT64_MAX, &o.val_every))
                return NU_EXIT_USAGE;
            continue;
        } else if (!strcmp(a, "--no-prior")) {
            no_prior = 1;
            continue;
        } else if (!strcmp(a, "--no-prefix")) {
            o.no_prefix = 1;
            continue;
        } else if (!strcmp(a, "--no-cls")) {
            o.no_cls = 1;
            continue;
        } else if (!strcmp(a, "--bidirectional")) {
            o.bidirectional = 1;
            continue;
        } else if (!strcmp(a, "--lr")) {
            char *end;
            if (!(v = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            o.lr = strtod(v, &end);
            if (*end || !(o.lr > 0 && o.lr < 10)) {
                fprintf(stderr, "nextuser train: --lr: \"%s\" is not a learning rate in (0, 10)\n", v);
                return NU_EXIT_USAGE;
            }
            continue;
        } else if (!strcmp(a, "--lambdas")) {
            char *end;
            if (!(v = nu_arg_value("train", argc, argv, &i)))
                return NU_EXIT_USAGE;
            double l[3];
            const char *q = v;
            int ok = 1;
            for (int k = 0; k < 3 && ok; k++) {
                l[k] = strtod(q, &end);
                ok = end != q && l[k] >= 0 && l[k] < 1e6 && (k == 2 ? *end == 0 : *end == ',');
                q = end + 1;
            }
            if (!ok || l[0] + l[1] + l[2] <= 0) {
                fprintf(stderr, "nextuser train: --lambdas: \"%s\" is not three weights >= 0 like 1,0.5,0.1\n", v);
                return NU_EXIT_USAGE;
            }
            o.lambda_con = l[0];
            o.lambda_ce = l[1];
            o.lambda_aux = l[2];
            continue;
        } else if (!strcmp(a, "--epochs"))
            u64 = &o.epochs, hi = 100000;
        else if (!strcmp(a, "--batch"))
            u64 = &o.batch, hi = 1 << 20;
        else if (!strcmp(a, "--seed"))
            u64 = &o.seed, lo = 0;
        else if (!strcmp(a, "--negatives"))
            u64 = &o.negatives, lo = 0, hi = 1 << 20;
        else if (!strcmp(a, "--checkpoint-every"))
            u64 = &o.checkpoint_every, lo = 0;
        else if (!strcmp(a, "--max-steps"))
            u64 = &o.max_steps, lo = 0;
        else if (!strcmp(a, "--max-users"))
            u64 = &max_users, hi = 100000;
        else if (!strcmp(a, "--patience"))
            u64 = &o.patience, hi = 100000;
        else
            return nu_cli_usage_error("train", "unknown option '%s'", a);
        if (!(v = nu_arg_value("train", argc, argv, &i)) || !nu_arg_u64("train", a, v, lo, hi, u64))
            return NU_EXIT_USAGE;
    }
    if (!data_dir || !out_dir)
        return nu_cli_usage_error("train", "--data and --out are required");
    if (val_on && o.checkpoint_every)
        return nu_cli_usage_error("train", "--checkpoint-every does not go with --val-every: the "
                                           "checkpoint is then the best model");
    struct nu_validation *val = NULL;
    if (val_on) {
        if (nu_validation_open(data_dir, o.threads, no_prior, &val) != NU_OK)
            return nu_cli_fail("train");
        o.validate = nu_validation_score;
        o.validate_ctx = val;
    }
    o.max_users = (size_t)max_users;
    train_view view;
    nu_progress_start(&view.bar, "train", "steps");
    o.progress = show;
    o.progress_ctx = &view;
    o.stop = &stop_requested;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    o.collectives = collectives;
    nu_training_result sum = {.size = sizeof sum};
    nu_status s = nu_train(data_dir, out_dir, &o, &sum);
    if (result)
        *result = sum;
    nu_progress_finish(&view.bar);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    nu_validation_close(val);
    if (s != NU_OK)
        return nu_cli_fail("train");
    fprintf(stderr, "nextuser train: %llu steps (%s) in %.3f s, loss %.4f -> %.4f; model and checkpoint in %s\n",
            (unsigned long long)sum.steps,
            sum.stopped         ? "stopped early, resume with --resume"
            : sum.early_stopped ? "stopped: validation no longer improves"
                                : "done",
            sum.seconds, sum.first_loss, sum.last_loss, out_dir);
    if (val_on && sum.best_score >= 0)
        fprintf(stderr, "nextuser train: kept the model of step %llu (validation recall@50 %.4f, "
                        "prior_weight %g, feature_prior_weight %g)\n",
                (unsigned long long)sum.best_step, sum.best_score, sum.best_prior_weight,
                sum.best_feature_prior_weight);
    return NU_EXIT_OK;
}
