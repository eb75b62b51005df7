/* The one parser of the "features" object of both items formats (a data
 * directory's items.jsonl and the items given to embed/retrieve;
 * docs/model-format.md, "Items file"): per prefix field, in field order,
 * its value indices (categorical: one string; multi: a list of strings;
 * unknown values read as 0, <unk>, and are counted) and the dense values
 * (a list of `dim` finite numbers).  Absent, or null, the object or a field
 * means missing: no values (<unk> embedded), dense zeros. */
#ifndef NU_FEATURES_JSON_H
#define NU_FEATURES_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "data/idmap.h"
#include "model/config.h"

typedef struct nu_feature_bufs {
    uint32_t *vals; /* the values of every field, field by field */
    size_t vals_cap;
    float *dense;   /* the dense fields' values, field by field (caller-sized) */
} nu_feature_bufs;

/* vocab[f]: field f's vocabulary (categorical and multi fields).  `owner`
 * names what the fields belong to in the message for an unknown field
 * ("this model", "data.json's prefix fields").  counts[f]: field f's number
 * of values. */
nu_status nu_features_parse(const cJSON *feats, const nu_model_config *c, const nu_idmap *vocab,
                            const char *owner, size_t *unknown_values, nu_feature_bufs *b,
                            size_t *counts);

#endif
