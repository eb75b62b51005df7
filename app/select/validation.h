/* The selection score of `train --val-every` and `tune`: validation
 * Recall@50 at stages 0, 1, 5, 10 and 20 (docs/evaluation.md), averaged over
 * the stages that have items, at the best weights of the popularity prior
 * and the feature prior on a fixed grid, which it leaves in the model
 * (cfg.prior_weight, cfg.feature_prior_weight; the grid is the same for
 * every data set). */
#ifndef NU_APP_SELECT_VALIDATION_H
#define NU_APP_SELECT_VALIDATION_H

#include "data/dataset.h"
#include "model/model.h"

typedef struct nu_validation {
    nu_dataset ds; /* the data directory, loaded by the caller */
    int threads;
    int no_prior;  /* keep both prior weights 0 */
} nu_validation;

/* A nu_train_validate_fn; ctx is a nu_validation. */
nu_status nu_validate(nu_model *m, double *score, void *ctx);

#endif
