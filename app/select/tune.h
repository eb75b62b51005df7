/* Learning-rate selection on validation (`nextuser tune`): trains the model
 * at each candidate rate in turn, each run choosing its own epoch and prior
 * weights on validation (select/validation.h), within a time budget, and
 * keeps the best-scoring run as the output directory. */
#ifndef NU_APP_SELECT_TUNE_H
#define NU_APP_SELECT_TUNE_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "train/trainer.h"

#define NU_TUNE_MAX_RATES 16

typedef struct nu_tune_candidate {
    double lr, score, prior_weight, feature_prior_weight, seconds;
    uint64_t step;
    int ran;         /* trained and validated at least once */
    int interrupted; /* stopped by *stop */
    char dir[4200];  /* its run's directory while tuning */
} nu_tune_candidate;

typedef struct nu_tune_options {
    nu_train_options train; /* data_dir, out_dir, epochs, batch, ... (lr is each candidate's) */
    double lrs[NU_TUNE_MAX_RATES];
    size_t n_lrs;
    double budget_seconds; /* 0: none; else no new rate once the time so far plus a run's mean would pass it */
    int no_prior;          /* both prior weights kept at 0 */
    /* Called after each rate: tried (0: skipped for the budget), with the
     * seconds spent so far and the mean run time (may be NULL). */
    void (*report)(const nu_tune_candidate *c, int tried, double spent, double mean_run,
                   double budget, void *ctx);
    void *report_ctx;
} nu_tune_options;

typedef struct nu_tune_result {
    nu_tune_candidate c[NU_TUNE_MAX_RATES];
    size_t n, ran, best;
    double seconds;
} nu_tune_result;

/* Runs the candidates and keeps the best as o->train.out_dir (checkpoint
 * included); the candidates' own directories are removed.  NU_ERR_INVALID_ARG
 * when no run finished a validation (out_dir then untouched). */
nu_status nu_tune_run(const nu_tune_options *o, nu_tune_result *r);

/* r as JSON (the candidates, the choice, the time), one line. */
void nu_tune_write_json(FILE *f, const nu_tune_result *r);

#endif
