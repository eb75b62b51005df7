/* Learning-rate selection (tune.h). */
#include "select/tune.h"

#include <stdio.h>
#include <string.h>

#include "data/dataset.h"
#include "error.h"
#include "io/owned_dir.h"
#include "select/validation.h"
#include "train/checkpoint.h"
#include "util/clock.h"


/* The best run's checkpoint into DIR (atomically, by the rules of every
 * output directory), then the candidates' directories go. */
static nu_status keep_best(const nu_tune_result *r, const char *out)
{
    nu_model *m = NULL;
    nu_adam a;
    nu_train_state st;
    nu_status s = nu_checkpoint_load(r->c[r->best].dir, &m, &a, &st);
    if (s == NU_OK) {
        s = nu_checkpoint_save(out, m, &a, &st);
        nu_adam_free(&a);
        nu_model_free(m);
    }
    return s;
}

static void remove_runs(const nu_tune_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->c[i].ran)
            nu_owned_dir_remove(r->c[i].dir, 0);
}

nu_status nu_tune_run(const nu_tune_options *o, nu_tune_result *r)
{
    memset(r, 0, sizeof *r);
    if (o->n_lrs == 0 || o->n_lrs > NU_TUNE_MAX_RATES)
        return nu_error(NU_ERR_INVALID_ARG, "1 to %d learning rates, not %zu", NU_TUNE_MAX_RATES,
                        o->n_lrs);
    /* Refused before any training: an output directory that is not nextuser's. */
    nu_status s = nu_owned_dir_check(o->train.out_dir);
    nu_validation val = {.threads = o->train.threads, .no_prior = o->no_prior};
    if (s == NU_OK)
        s = nu_dataset_load(o->train.data_dir, &val.ds);
    if (s != NU_OK)
        return s;
    nu_train_options base = o->train;
    base.validate = nu_validate;
    base.validate_ctx = &val;
    base.val_every = 0; /* every epoch */
    double t0 = nu_now_seconds(), spent = 0;
    r->n = o->n_lrs;
    for (size_t i = 0; i < o->n_lrs && s == NU_OK && !(o->train.stop && *o->train.stop); i++) {
        nu_tune_candidate *c = &r->c[i];
        c->lr = o->lrs[i];
        double elapsed = nu_now_seconds() - t0, mean = r->ran ? spent / (double)r->ran : 0;
        if (o->budget_seconds > 0 && r->ran > 0 && elapsed + mean > o->budget_seconds) {
            if (o->report)
                o->report(c, 0, elapsed, mean, o->budget_seconds, o->report_ctx);
            continue;
        }
        snprintf(c->dir, sizeof c->dir, "%s.tune-%zu", o->train.out_dir, i);
        nu_train_options run = base;
        run.out_dir = c->dir;
        run.adam.lr = o->lrs[i];
        nu_train_summary sum;
        double r0 = nu_now_seconds();
        s = nu_train_run(&run, &sum);
        c->seconds = nu_now_seconds() - r0;
        if (s != NU_OK)
            break;
        c->ran = 1;
        c->score = sum.best_score;
        c->step = sum.best_step;
        c->prior_weight = sum.best_prior_weight;
        c->feature_prior_weight = sum.best_feature_prior_weight;
        c->interrupted = sum.stopped;
        spent += c->seconds;
        if (c->score < 0) { /* stopped before its first validation: nothing to compare */
            c->ran = 0;
            nu_owned_dir_remove(c->dir, 0);
            continue;
        }
        if (o->report)
            o->report(c, 1, nu_now_seconds() - t0, spent / (double)(r->ran + 1), o->budget_seconds,
                      o->report_ctx);
        if (!r->ran || c->score > r->c[r->best].score)
            r->best = i;
        r->ran++;
    }
    nu_dataset_free(&val.ds);
    if (s == NU_OK && r->ran == 0)
        s = nu_error(NU_ERR_INVALID_ARG, "no run finished a validation; %s not written",
                     o->train.out_dir);
    if (s == NU_OK)
        s = keep_best(r, o->train.out_dir);
    remove_runs(r);
    r->seconds = nu_now_seconds() - t0;
    return s;
}

void nu_tune_write_json(FILE *f, const nu_tune_result *r)
{
    fputs("{\"candidates\": [", f);
    for (size_t i = 0; i < r->n; i++) {
        const nu_tune_candidate *c = &r->c[i];
        fprintf(f, "%s{\"lr\": %.17g, \"ran\": %s, \"score\": %.6f, \"step\": %llu, "
                   "\"prior_weight\": %g, \"feature_prior_weight\": %g, \"seconds\": %.3f}",
                i ? ", " : "", c->lr, c->ran ? "true" : "false", c->ran ? c->score : 0.0,
                (unsigned long long)c->step, c->prior_weight, c->feature_prior_weight, c->seconds);
    }
    fprintf(f, "], \"chosen_lr\": %.17g, \"seconds\": %.3f}\n", r->c[r->best].lr, r->seconds);
}
