/* The model configuration: every value of docs/model-format.md. */
#ifndef NU_CONFIG_H
#define NU_CONFIG_H

#include <stddef.h>

#include "nextuser/nextuser.h"

#define NU_MAX_FIELDS 16
#define NU_FIELD_NAME_MAX 64

/* The limits nu_config_validate enforces (docs/model-format.md): a config
 * beyond them is refused before anything is allocated for it. */
#define NU_CONFIG_MAX_D 4096
#define NU_CONFIG_MAX_FFN 16384
#define NU_CONFIG_MAX_LAYERS 64        /* each of encoder and decoder */
#define NU_CONFIG_MAX_CONTEXT 100000   /* max_users */
#define NU_CONFIG_MAX_USERS 2147483647 /* num_users: 2^31 - 1 */
#define NU_CONFIG_MAX_SIZE 2147483647  /* a field's vocab or dim */
#define NU_CONFIG_MAX_PARAMS 4294967296.0 /* 2^32 floats (16 GiB) in all */
#define NU_CONFIG_MAX_BYTES (1 << 20)      /* a config file */
#define NU_CONFIG_MAX_JSON_VALUES 4096     /* values in a config's JSON */

typedef enum nu_field_kind { NU_FIELD_CATEGORICAL, NU_FIELD_MULTI, NU_FIELD_DENSE } nu_field_kind;

typedef struct nu_field_config {
    char name[NU_FIELD_NAME_MAX];
    nu_field_kind kind;
    size_t size; /* vocabulary rows (with <unk>) or dense width */
} nu_field_config;

typedef struct nu_model_config {
    size_t d, heads, enc_layers, dec_layers, ffn, max_users, num_users;
    size_t n_prefix;
    nu_field_config prefix[NU_MAX_FIELDS];
    int similarity_dot; /* 0: cosine / tau, 1: dot product */
    double tau;
    int bidirectional; /* 0: causal mask */
    int use_cls;
    double ln_eps;
    /* Serving only: score(u) = similarity + prior_weight * user_prior[u]
     * (logit units; user_prior = log(1 + the user's training positives),
     * stored with the model).  0: no prior.  Chosen on validation by
     * `nextuser train --val-every` (results/quality.md). */
    double prior_weight;
    /* Serving only: plus feature_prior_weight * the sum, over the item's
     * values that have a feature-prior column, of log(1 + the user's
     * training positives on items with that value) (model.h).  0: none.
     * Chosen on validation like prior_weight. */
    double feature_prior_weight;
} nu_model_config;

/* The defaults of docs/model-format.md, with num_users = 0 and no prefix fields. */
void nu_config_defaults(nu_model_config *c);

/* Parses a JSON config (missing keys take defaults) and validates it.
 * `origin` names the source in messages (a path, or "__metadata__"). */
nu_status nu_config_parse(const char *json, const char *origin, nu_model_config *out);
nu_status nu_config_load(const char *path, nu_model_config *out);
/* Parses without the final nu_config_validate, for callers that override
 * values (e.g. num_users) before validating. */
nu_status nu_config_load_unchecked(const char *path, nu_model_config *out);

/* Checks every value; the message names the field at fault. */
nu_status nu_config_validate(const nu_model_config *c, const char *origin);

/* Index of the prefix field called `name`, or -1. */
int nu_config_field_index(const nu_model_config *c, const char *name);

/* The config as a JSON string with every key (malloc'd; free it). */
char *nu_config_to_json(const nu_model_config *c);

#endif
