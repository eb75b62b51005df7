/* The "features" object (features_json.h). */
#include "data/features_json.h"

#include <math.h>
#include <string.h>

#include "error.h"
#include "util/grow.h"

static nu_status push_value(nu_feature_bufs *b, size_t *n, const nu_idmap *vocab, const char *v,
                            size_t *unknown)
{
    if (!nu_grow((void **)&b->vals, &b->vals_cap, *n + 1, sizeof(uint32_t)))
        return nu_error(NU_ERR_NOMEM, "out of memory");
    uint32_t idx = nu_idmap_find(vocab, v, strlen(v));
    if (idx == NU_ID_NONE) {
        (*unknown)++;
        idx = 0; /* <unk> */
    }
    b->vals[(*n)++] = idx;
    return NU_OK;
}

static nu_status parse_dense(const cJSON *v, const nu_field_config *fc, float *dst)
{
    memset(dst, 0, fc->size * sizeof(float));
    if (!v || cJSON_IsNull(v))
        return NU_OK;
    if (!cJSON_IsArray(v) || (size_t)cJSON_GetArraySize(v) != fc->size)
        return nu_error(NU_ERR_FORMAT, "feature \"%s\" must be a list of %zu numbers", fc->name,
                        fc->size);
    size_t j = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, v)
    {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return nu_error(NU_ERR_FORMAT, "feature \"%s\"[%zu] is not a finite number", fc->name,
                            j);
        dst[j++] = (float)x->valuedouble;
    }
    return NU_OK;
}

nu_status nu_features_parse(const cJSON *feats, const nu_model_config *c, const nu_idmap *vocab,
                            const char *owner, size_t *unknown_values, nu_feature_bufs *b,
                            size_t *counts)
{
    const cJSON *by_field[NU_MAX_FIELDS] = {0}, *kv;
    if (feats && !cJSON_IsNull(feats) && !cJSON_IsObject(feats))
        return nu_error(NU_ERR_FORMAT, "\"features\" must be an object");
    if (cJSON_IsObject(feats))
        cJSON_ArrayForEach(kv, feats)
        {
            int f = nu_config_field_index(c, kv->string);
            if (f < 0)
                return nu_error(NU_ERR_FORMAT, "feature \"%s\" is not a field of %s", kv->string,
                                owner);
            by_field[f] = kv;
        }
    size_t nvals = 0, dense_pos = 0;
    nu_status s = NU_OK;
    for (size_t f = 0; s == NU_OK && f < c->n_prefix; f++) {
        const nu_field_config *fc = &c->prefix[f];
        const cJSON *v = by_field[f], *x;
        size_t before = nvals;
        if (fc->kind == NU_FIELD_DENSE) {
            s = parse_dense(v, fc, b->dense + dense_pos);
            dense_pos += fc->size;
        } else if (!v || cJSON_IsNull(v)) {
            /* missing: the model embeds <unk> */
        } else if (fc->kind == NU_FIELD_CATEGORICAL) {
            s = cJSON_IsString(v) ? push_value(b, &nvals, &vocab[f], v->valuestring, unknown_values)
                                  : nu_error(NU_ERR_FORMAT, "feature \"%s\" must be a string",
                                             fc->name);
        } else if (!cJSON_IsArray(v)) {
            s = nu_error(NU_ERR_FORMAT, "feature \"%s\" must be a list of strings", fc->name);
        } else {
            cJSON_ArrayForEach(x, v)
            {
                if (!cJSON_IsString(x))
                    return nu_error(NU_ERR_FORMAT, "feature \"%s\" must be a list of strings",
                                    fc->name);
                if ((s = push_value(b, &nvals, &vocab[f], x->valuestring, unknown_values)) != NU_OK)
                    return s;
            }
        }
        counts[f] = nvals - before;
    }
    return s;
}
