/* A set of items to run through the model: per item its context users
 * (model rows, oldest first, at most max_users) and its prefix feature
 * values, packed in flat arrays so any contiguous range is a batch. */
#ifndef NU_ITEMS_H
#define NU_ITEMS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct nu_items {
    size_t count, cap;
    size_t n_fields;    /* prefix fields of the model */
    size_t dense_width; /* sum of the dense fields' widths */
    char **ids;         /* external item ids (may be NULL entries) */
    size_t *user_off;   /* count + 1 offsets into users */
    uint32_t *users;
    size_t users_len, users_cap;
    size_t *feat_off;   /* count * n_fields + 1 offsets into feat_vals */
    uint32_t *feat_vals;
    size_t feat_len, feat_cap;
    float *dense;       /* count * dense_width */
    /* Every known user of each item, before the max_users cut: the users a
     * recommendation must leave out. */
    size_t *hist_off;   /* count + 1 offsets into hist */
    uint32_t *hist;
    size_t hist_len, hist_cap;
    /* What parsing did with imperfect input (documented in docs/items.md). */
    size_t unknown_users, truncated_items, unknown_values;
} nu_items;

void nu_items_init(nu_items *s, const nu_model_config *c);
void nu_items_free(nu_items *s);
/* Empties s but keeps its buffers, so a batch refilled per call stops
 * allocating once it has seen its largest size. */
void nu_items_reset(nu_items *s);
/* Removes the last item (its id, users, features); counts stay. */
void nu_items_pop(nu_items *s);
/* Appends item i of src (read by the same model) with its full history, its
 * features and dense values; the input counts of s do not change. */
nu_status nu_items_append(nu_items *s, const nu_model_config *c, const nu_items *src, size_t i);

/* Appends one item.  users: model rows oldest first (the most recent
 * max_users are kept).  feat_vals/feat_counts: per field, its value
 * indices (categorical: at most one; dense fields: count 0).  dense: the
 * dense fields' values concatenated in field order, or NULL for zeros. */
nu_status nu_items_push(nu_items *s, const nu_model_config *c, const char *id,
                        const uint32_t *users, size_t n_users, const uint32_t *feat_vals,
                        const size_t *feat_counts, const float *dense);

static inline size_t nu_items_n_hist(const nu_items *s, size_t i)
{
    return s->hist_off[i + 1] - s->hist_off[i];
}

static inline size_t nu_items_n_users(const nu_items *s, size_t i)
{
    return s->user_off[i + 1] - s->user_off[i];
}

#endif
