/* The public API's items batch: a handle over nu_items, filled from JSON
 * lines (the items parser) or from strings. */
#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "data/items_jsonl.h"
#include "error.h"

nu_status nu_batch_create(const nu_model *m, nu_batch **out)
{
    if (!m || !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_create: model and out are required");
    nu_batch *b = calloc(1, sizeof *b);
    if (!b)
        return nu_error(NU_ERR_NOMEM, "out of memory for a batch");
    b->model = m;
    nu_items_init(&b->items, &m->cfg);
    *out = b;
    return NU_OK;
}

void nu_batch_free(nu_batch *b)
{
    if (!b)
        return;
    nu_items_free(&b->items);
    free(b);
}

void nu_batch_clear(nu_batch *b)
{
    if (!b)
        return;
    nu_items_reset(&b->items);
}

nu_status nu_batch_append(nu_batch *dst, const nu_batch *src, size_t first, size_t n)
{
    if (!dst || !src)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_append: dst and src are required");
    if (dst->model != src->model)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_append: the batches belong to different "
                        "models");
    if (first > src->items.count || n > src->items.count - first)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_append: items [%zu, %zu) outside the %zu "
                        "items", first, first + n, src->items.count);
    if (dst == src)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_append: a batch cannot append to itself");
    size_t count = dst->items.count;
    for (size_t i = 0; i < n; i++) {
        nu_status st = nu_items_append(&dst->items, &dst->model->cfg, &src->items, first + i);
        if (st != NU_OK) {
            /* All or nothing: drop what this call added. */
            while (dst->items.count > count)
                nu_items_pop(&dst->items);
            return st;
        }
    }
    return NU_OK;
}

size_t nu_batch_count(const nu_batch *b)
{
    return b ? b->items.count : 0;
}

const char *nu_batch_item_id(const nu_batch *b, size_t i)
{
    return b && i < b->items.count ? b->items.ids[i] : NULL;
}

void nu_batch_input_counts(const nu_batch *b, size_t *unknown_users, size_t *unknown_values,
                           size_t *truncated_items)
{
    if (unknown_users)
        *unknown_users = b ? b->items.unknown_users : 0;
    if (unknown_values)
        *unknown_values = b ? b->items.unknown_values : 0;
    if (truncated_items)
        *truncated_items = b ? b->items.truncated_items : 0;
}

nu_status nu_batch_add_json(nu_batch *b, const char *line, size_t len)
{
    if (!b || !line)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_add_json: batch and line are required");
    /* A blank line carries no item, as in an items file. */
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
        i++;
    if (i == len)
        return NU_OK;
    /* A refused line changes nothing, its counts included. */
    size_t uu = b->items.unknown_users, uv = b->items.unknown_values, tr = b->items.truncated_items;
    nu_status s = nu_items_parse_line(line, len, b->model, &b->items);
    if (s != NU_OK) {
        b->items.unknown_users = uu;
        b->items.unknown_values = uv;
        b->items.truncated_items = tr;
    }
    return s;
}

/* Each value's index in its field's vocabulary (0: <unk>, counted), the
 * values grouped by field in field order. */
static nu_status gather_values(nu_batch *b, const char *const *fields, const char *const *values,
                               size_t n, uint32_t *vals, size_t *counts)
{
    const nu_model *m = b->model;
    const nu_model_config *c = &m->cfg;
    size_t at = 0;
    for (size_t f = 0; f < c->n_prefix; f++) {
        counts[f] = 0;
        for (size_t i = 0; i < n; i++) {
            int fi = nu_config_field_index(c, fields[i]);
            if (fi < 0)
                return nu_error(NU_ERR_INVALID_ARG, "feature \"%s\" is not a field of this model",
                                fields[i]);
            if (c->prefix[fi].kind == NU_FIELD_DENSE)
                return nu_error(NU_ERR_INVALID_ARG, "feature \"%s\" is dense: give it through "
                                "nu_batch_add_json", fields[i]);
            if ((size_t)fi != f)
                continue;
            if (c->prefix[f].kind == NU_FIELD_CATEGORICAL && counts[f] == 1)
                return nu_error(NU_ERR_INVALID_ARG, "feature \"%s\" is categorical: one value",
                                fields[i]);
            uint32_t v = nu_idmap_find(&m->vocab[f], values[i], strlen(values[i]));
            if (v == NU_ID_NONE) {
                b->items.unknown_values++;
                v = 0;
            }
            vals[at++] = v;
            counts[f]++;
        }
    }
    return NU_OK;
}

nu_status nu_batch_add(nu_batch *b, const char *id, const char *const *users, size_t n_users,
                       const char *const *fields, const char *const *values, size_t n_values)
{
    if (!b || !id || (n_users && !users) || (n_values && (!fields || !values)))
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_add: batch, id, and the lists their counts "
                        "announce are required");
    const nu_model *m = b->model;
    size_t uu = b->items.unknown_users, uv = b->items.unknown_values;
    uint32_t *rows = malloc((n_users + 1) * sizeof *rows);
    uint32_t *vals = malloc((n_values + 1) * sizeof *vals);
    size_t counts[NU_MAX_FIELDS];
    nu_status s = rows && vals ? NU_OK : nu_error(NU_ERR_NOMEM, "out of memory adding an item");
    size_t known = 0;
    for (size_t i = 0; s == NU_OK && i < n_users; i++) {
        uint32_t r = users[i] ? nu_idmap_find(&m->users, users[i], strlen(users[i])) : NU_ID_NONE;
        if (r == NU_ID_NONE)
            b->items.unknown_users++;
        else
            rows[known++] = r;
    }
    if (s == NU_OK)
        s = gather_values(b, fields, values, n_values, vals, counts);
    /* Dense fields (none given here) read as zeros. */
    if (s == NU_OK)
        s = nu_items_push(&b->items, &m->cfg, id, rows, known, vals, counts, NULL);
    free(rows);
    free(vals);
    if (s != NU_OK) { /* a refused item changes nothing, its counts included */
        b->items.unknown_users = uu;
        b->items.unknown_values = uv;
    }
    return s;
}

nu_status nu_batch_read_jsonl(nu_batch *b, const char *path)
{
    if (!b || !path)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_read_jsonl: batch and path are required");
    return nu_items_read_jsonl(path, b->model, &b->items);
}

size_t nu_batch_item_users(const nu_batch *b, size_t i)
{
    return b && i < b->items.count ? nu_items_n_users(&b->items, i) : 0;
}

nu_status nu_batch_item_history(const nu_batch *b, size_t i, const uint32_t **rows, size_t *n)
{
    if (rows)
        *rows = NULL;
    if (n)
        *n = 0;
    if (!b || !rows || !n)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_item_history: batch, rows and n are required");
    if (i >= b->items.count)
        return nu_error(NU_ERR_INVALID_ARG, "nu_batch_item_history: item %zu of %zu", i,
                        b->items.count);
    *rows = b->items.hist + b->items.hist_off[i];
    *n = nu_items_n_hist(&b->items, i);
    return NU_OK;
}
