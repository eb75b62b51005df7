/* A model in memory: configuration, every weight in one flat buffer (the
 * layout of params.h), and the id maps of users and feature vocabularies. */
#ifndef NU_MODEL_H
#define NU_MODEL_H

#include <stdint.h>

#include "nextuser/nextuser.h" /* nu_model_load and nu_model_free are public */
#include "data/idmap.h"
#include "model/config.h"
#include "model/params.h"

/* At most this many feature-prior columns: each one widens the user table. */
#define NU_FEATURE_PRIOR_MAX 32

typedef struct nu_model {
    nu_model_config cfg;
    nu_param_layout layout;
    float *params; /* layout.total floats, 64-byte aligned */
    nu_model_view w;
    nu_idmap users;
    nu_idmap vocab[NU_MAX_FIELDS]; /* categorical and multi fields; index 0 is <unk> */
    /* num_users values log(1 + the user's training positives), the prior
     * that cfg.prior_weight weighs at serving; NULL when the model has none
     * (tensor "user_prior", optional). */
    float *user_prior;
    /* The feature prior (src/model/feature_prior.h), weighed at serving by
     * cfg.feature_prior_weight; n_feature_prior 0 when the model has none. */
    size_t n_feature_prior;
    int32_t fp_values[NU_FEATURE_PRIOR_MAX][2]; /* column c: {prefix field, value} */
    float *user_feature_prior; /* num_users x n_feature_prior */
} nu_model;

/* A model with zero weights, users u0..u{num_users-1} and vocabularies
 * <unk>, v1..v{size-1}. */
nu_status nu_model_create(const nu_model_config *c, nu_model **out);
/* Deterministic random initialisation (docs/model-format.md). */
void nu_model_init_random(nu_model *m, uint64_t seed);
/* Loads a model directory, checking the file against its own config:
 * every tensor present with its shape, no stray tensors, id files
 * consistent.  Errors name the file and tensor at fault. */
nu_status nu_model_load(const char *dir, nu_model **out);
/* Writes the directory atomically: into a temporary sibling directory, then
 * swapped in by rename, so DIR is never a mix of old and new files. */
nu_status nu_model_save(const nu_model *m, const char *dir);
void nu_model_free(nu_model *m);
/* Writes the model's files into an existing directory (no swap): for
 * callers that add files of their own before swapping the directory in. */
nu_status nu_model_write_files(const nu_model *m, const char *dir);

#endif
