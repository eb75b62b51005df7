/* Models with deterministic random weights, for `nextuser init` (from a
 * config file) and `nextuser synth` (any scale, for benchmarks).  The
 * caller saves them (nu_model_save) and frees them (nu_model_free). */
#ifndef NU_APP_DATA_RANDOM_MODEL_H
#define NU_APP_DATA_RANDOM_MODEL_H

#include <stdint.h>

#include "nextuser/nextuser.h"

typedef struct nu_model_config nu_model_config;

/* The four item fields of the default (synthetic) data: genres multi 20,
 * year categorical 12, tags multi 200, content dense 16. */
void nu_default_item_fields(nu_model_config *c);
/* A model of config c with weights drawn from seed. */
nu_status nu_random_model(const nu_model_config *c, uint64_t seed, nu_model **out);

/* The config file's model (docs/model-format.md; missing keys take their
 * defaults), num_users replaced by `users` when > 0, checked (errors name
 * the file); weights drawn from `seed`. */
nu_status nu_random_model_from_config(const char *config_path, uint64_t users, uint64_t seed,
                                      nu_model **out);

/* A model of `users` users of width `dim` (heads dim/16, or 1 when dim is
 * not a multiple of 16; ffn 4 dim), the rest from the config file, or when
 * config_path is NULL the defaults with four prefix fields (genres: multi
 * 20, year: categorical 12, tags: multi 200, content: dense 16); errors
 * name "synth".  Weights drawn from `seed`. */
nu_status nu_synthetic_model(const char *config_path, uint64_t users, uint64_t dim, uint64_t seed,
                             nu_model **out);

#endif
