/* The feature prior: a popularity prior conditioned on the new item's
 * features.  Column c of a model's feature prior stands for one value of one
 * categorical or multi prefix field; user_feature_prior[u][c] = log(1 + u's
 * positives on training items holding that value).  At serving an item
 * scores each user by
 *   similarity + prior_weight * user_prior[u]
 *              + feature_prior_weight * sum of user_feature_prior[u][c]
 *                over the columns c whose value the item holds,
 * a linear term, so the user table carries the columns and each query a
 * 0/1 indicator per column (results/quality.md, section 9). */
#ifndef NU_FEATURE_PRIOR_H
#define NU_FEATURE_PRIOR_H

#include <stddef.h>

#include "data/items.h"
#include "io/safetensors.h"
#include "model/model.h"

/* Whether `name` is one of the feature prior's tensors. */
int nu_feature_prior_owns_tensor(const char *name);
/* Reads the optional tensors into m (checked against its config). */
nu_status nu_feature_prior_load(nu_model *m, const nu_st_file *st, const char *path);
/* Fills out[0..2) with the tensors to save; returns how many (0 when none).
 * values_buf (2 * NU_FEATURE_PRIOR_MAX floats) holds the column values
 * until they are written. */
size_t nu_feature_prior_tensors(const nu_model *m, nu_st_out_tensor *out, float *values_buf);

/* The columns a search weighs: n_feature_prior when feature_prior_weight > 0,
 * else 0. */
size_t nu_feature_prior_columns(const nu_model *m);
/* The width of a search query for the model: d, then one indicator per
 * weighed feature-prior column. */
size_t nu_model_query_width(const nu_model *m);
/* Queries [0, n) of items (from item `first` on) were written with stride
 * d; widens them in place to stride nu_model_query_width(m) and fills each
 * tail with the item's indicators.  Q holds n * that width floats. */
void nu_model_query_tails(const nu_model *m, const nu_items *items, size_t first, float *Q,
                          size_t n);

#endif
