#include "items.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util/grow.h"

void nu_items_init(nu_items *s, const nu_model_config *c)
{
    memset(s, 0, sizeof *s);
    s->n_fields = c->n_prefix;
    for (size_t f = 0; f < c->n_prefix; f++)
        if (c->prefix[f].kind == NU_FIELD_DENSE)
            s->dense_width += c->prefix[f].size;
}

void nu_items_free(nu_items *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->ids[i]);
    free(s->ids);
    free(s->user_off);
    free(s->users);
    free(s->feat_off);
    free(s->feat_vals);
    free(s->dense);
    free(s->hist_off);
    free(s->hist);
    memset(s, 0, sizeof *s);
}

void nu_items_reset(nu_items *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->ids[i]);
    s->count = 0;
    s->users_len = s->feat_len = s->hist_len = 0;
    s->unknown_users = s->truncated_items = s->unknown_values = 0;
}

void nu_items_pop(nu_items *s)
{
    if (s->count == 0)
        return;
    size_t i = --s->count;
    free(s->ids[i]);
    s->ids[i] = NULL;
    s->users_len = s->user_off[i];
    s->hist_len = s->hist_off[i];
    s->feat_len = s->feat_off[i * s->n_fields];
}

nu_status nu_items_append(nu_items *s, const nu_model_config *c, const nu_items *src, size_t i)
{
    size_t k = src->n_fields, counts[NU_MAX_FIELDS];
    if (k != s->n_fields || src->dense_width != s->dense_width || k > NU_MAX_FIELDS)
        return nu_error(NU_ERR_INVALID_ARG, "items of another model cannot be appended");
    for (size_t f = 0; f < k; f++)
        counts[f] = src->feat_off[i * k + f + 1] - src->feat_off[i * k + f];
    size_t tr = s->truncated_items;
    /* The full history: push keeps its most recent max_users as the
     * generator's users, as the parser did for src. */
    nu_status st = nu_items_push(s, c, src->ids[i], src->hist + src->hist_off[i],
                                 nu_items_n_hist(src, i), src->feat_vals + src->feat_off[i * k],
                                 counts, src->dense_width ? src->dense + i * src->dense_width : NULL);
    s->truncated_items = tr;
    return st;
}

nu_status nu_items_push(nu_items *s, const nu_model_config *c, const char *id,
                        const uint32_t *users, size_t n_users, const uint32_t *feat_vals,
                        const size_t *feat_counts, const float *dense)
{
    size_t k = s->n_fields, nvals = 0;
    for (size_t f = 0; f < k; f++)
        nvals += feat_counts[f];
    size_t keep = n_users > c->max_users ? c->max_users : n_users;
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        char **ids = realloc(s->ids, cap * sizeof *ids);
        if (ids)
            s->ids = ids;
        size_t *uo = realloc(s->user_off, (cap + 1) * sizeof *uo);
        if (uo)
            s->user_off = uo;
        size_t *fo = realloc(s->feat_off, (cap * k + 1) * sizeof *fo);
        if (fo)
            s->feat_off = fo;
        float *dn = s->dense_width ? realloc(s->dense, cap * s->dense_width * sizeof *dn) : s->dense;
        if (dn)
            s->dense = dn;
        size_t *ho = realloc(s->hist_off, (cap + 1) * sizeof *ho);
        if (ho)
            s->hist_off = ho;
        if (!ids || !uo || !fo || !ho || (s->dense_width && !dn))
            return nu_error(NU_ERR_NOMEM, "out of memory for %zu items", cap);
        if (s->cap == 0) {
            s->user_off[0] = 0;
            s->feat_off[0] = 0;
            s->hist_off[0] = 0;
        }
        s->cap = cap;
    }
    if (!nu_grow((void **)&s->users, &s->users_cap, s->users_len + keep, sizeof(uint32_t)) ||
        !nu_grow((void **)&s->feat_vals, &s->feat_cap, s->feat_len + nvals, sizeof(uint32_t)) ||
        !nu_grow((void **)&s->hist, &s->hist_cap, s->hist_len + n_users, sizeof(uint32_t)))
        return nu_error(NU_ERR_NOMEM, "out of memory for item users and features");
    char *copy = NULL;
    if (id && !(copy = strdup(id)))
        return nu_error(NU_ERR_NOMEM, "out of memory for item ids");
    size_t i = s->count;
    s->ids[i] = copy;
    /* Keep the most recent users: the tail of the time-ordered list. */
    if (keep)
        memcpy(s->users + s->users_len, users + (n_users - keep), keep * sizeof(uint32_t));
    s->users_len += keep;
    s->user_off[i + 1] = s->users_len;
    if (n_users)
        memcpy(s->hist + s->hist_len, users, n_users * sizeof(uint32_t));
    s->hist_len += n_users;
    s->hist_off[i + 1] = s->hist_len;
    if (keep < n_users)
        s->truncated_items++;
    size_t pos = 0;
    for (size_t f = 0; f < k; f++) {
        if (feat_counts[f])
            memcpy(s->feat_vals + s->feat_len, feat_vals + pos, feat_counts[f] * sizeof(uint32_t));
        s->feat_len += feat_counts[f];
        pos += feat_counts[f];
        s->feat_off[i * k + f + 1] = s->feat_len;
    }
    if (s->dense_width) {
        float *dst = s->dense + i * s->dense_width;
        if (dense)
            memcpy(dst, dense, s->dense_width * sizeof(float));
        else
            memset(dst, 0, s->dense_width * sizeof(float));
    }
    s->count++;
    return NU_OK;
}
