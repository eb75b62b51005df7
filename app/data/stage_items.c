#include "data/stage_items.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "io/atomic_file.h"

/* A float32 as the shortest decimal that reads back to the same float, so a
 * value written as 1.4471 comes out as 1.4471 again. */
static cJSON *float_number(float v)
{
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    return cJSON_CreateRaw(buf);
}

/* The item's prefix values as the items file spells them: vocabulary names
 * for categorical and multi fields, numbers for dense ones.  A field with no
 * value is left out (read back as <unk>, as it was). */
static cJSON *features_of(const nu_dataset *ds, size_t item)
{
    const nu_items *f = &ds->feats;
    const nu_model_config *c = &ds->cfg;
    cJSON *obj = cJSON_CreateObject();
    size_t dense_pos = 0;
    for (size_t k = 0; obj && k < c->n_prefix; k++) {
        const nu_field_config *fc = &c->prefix[k];
        if (fc->kind == NU_FIELD_DENSE) {
            cJSON *arr = cJSON_AddArrayToObject(obj, fc->name);
            for (size_t j = 0; arr && j < fc->size; j++)
                cJSON_AddItemToArray(arr, float_number(f->dense[item * f->dense_width + dense_pos + j]));
            dense_pos += fc->size;
            continue;
        }
        size_t lo = f->feat_off[item * c->n_prefix + k], hi = f->feat_off[item * c->n_prefix + k + 1];
        const nu_idmap *vocab = &ds->vocab[k];
        if (fc->kind == NU_FIELD_CATEGORICAL) {
            if (hi > lo)
                cJSON_AddStringToObject(obj, fc->name, vocab->names[f->feat_vals[lo]]);
            continue;
        }
        if (hi == lo)
            continue; /* no value: read back as <unk>, the same row as [] */
        cJSON *arr = cJSON_AddArrayToObject(obj, fc->name);
        for (size_t v = lo; arr && v < hi; v++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(vocab->names[f->feat_vals[v]]));
    }
    return obj;
}

static cJSON *request_of(const nu_dataset *ds, size_t item, size_t s, int with_features)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj || !cJSON_AddStringToObject(obj, "id", ds->items.names[item]))
        goto fail;
    if (with_features) {
        cJSON *feats = features_of(ds, item);
        if (!feats)
            goto fail;
        cJSON_AddItemToObject(obj, "features", feats);
    }
    cJSON *users = cJSON_AddArrayToObject(obj, "users");
    const uint32_t *ctx = ds->pos.user + ds->pos.off[item]; /* positives in time order */
    for (size_t u = 0; users && u < s; u++)
        cJSON_AddItemToArray(users, cJSON_CreateString(ds->users.names[ctx[u]]));
    if (!users)
        goto fail;
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

nu_status nu_write_stage_items(const nu_dataset *ds, nu_split split, size_t s, int with_features,
                               const char *path, size_t *written)
{
    *written = 0;
    nu_atomic_file af;
    nu_status st = nu_atomic_open(path, &af);
    if (st != NU_OK)
        return st;
    size_t n = 0;
    for (size_t item = 0; st == NU_OK && item < ds->num_items; item++) {
        /* The items the evaluation scores at stage s: a context of s and at
         * least one later positive. */
        if (ds->split[item] != split || nu_dataset_n_pos(ds, item) <= s)
            continue;
        cJSON *obj = request_of(ds, item, s, with_features);
        char *line = obj ? cJSON_PrintUnformatted(obj) : NULL;
        cJSON_Delete(obj);
        if (!line)
            st = nu_error(NU_ERR_NOMEM, "out of memory writing %s", path);
        else if (fputs(line, af.fp) < 0 || fputc('\n', af.fp) == EOF)
            st = nu_error(NU_ERR_IO, "%s: write failed", path);
        cJSON_free(line);
        n++;
    }
    st = nu_atomic_finish(&af, st);
    if (st == NU_OK)
        *written = n;
    return st;
}

nu_status nu_write_stage_items_from_dir(const char *dir, nu_split split, size_t s,
                                        int with_features, const char *path, size_t *written)
{
    nu_dataset ds;
    nu_status st = nu_dataset_load(dir, &ds);
    if (st != NU_OK)
        return st;
    st = nu_write_stage_items(&ds, split, s, with_features, path, written);
    nu_dataset_free(&ds);
    return st;
}
