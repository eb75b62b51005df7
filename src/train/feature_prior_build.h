/* Builds a new model's feature prior (model/feature_prior.h) from the
 * training items of a data set. */
#ifndef NU_FEATURE_PRIOR_BUILD_H
#define NU_FEATURE_PRIOR_BUILD_H

#include "data/dataset.h"
#include "model/model.h"

/* The columns are the values (of the model's categorical and multi prefix
 * fields; <unk> never) with the most positives on training items, at most
 * NU_FEATURE_PRIOR_MAX, most first, ties by field then value; none when the
 * model has no such field.  Each user's entry is log(1 + its positives on
 * training items holding the value). */
nu_status nu_feature_prior_build(nu_model *m, const nu_dataset *ds);

#endif
