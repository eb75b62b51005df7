/* Selection on validation for a caller of the public training API: the
 * validation score (select/validation.h) as nu_train's validate hook, its
 * data directory loaded once (`nextuser train --val-every`). */
#ifndef NU_APP_SELECT_VALIDATION_OPEN_H
#define NU_APP_SELECT_VALIDATION_OPEN_H

#include "nextuser/nextuser.h"

struct nu_validation;

/* Loads data_dir's validation items; threads as training's, no_prior 1
 * keeps both prior weights 0. */
nu_status nu_validation_open(const char *data_dir, int threads, int no_prior,
                             struct nu_validation **out);
void nu_validation_close(struct nu_validation *v);

/* A nu_validate_fn; ctx is an opened nu_validation. */
nu_status nu_validation_score(nu_model *m, double *score, void *ctx);

#endif
