/* The feature-popular baseline (docs/evaluation.md, "Feature popularity"):
 * the context is not used, so every stage ranks the same way (only the
 * context users are left out).
 *   score(u) = sum over u's positive entries on TRAIN items i of
 *              |values(i) ∩ values(new item)|,
 * counting distinct values of each categorical and multi prefix field
 * (a value matches only the same value of the same field; index 0, <unk>,
 * never matches; dense fields are ignored).  Users rank by score, most
 * first, ties in Popular order (train positives, most first, then lower
 * row), so users with score 0, and everyone for an item with no shared
 * value, follow in Popular order. */
#ifndef NU_FEATURE_POPULAR_H
#define NU_FEATURE_POPULAR_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "kernels.h"

typedef struct nu_feature_popular {
    const nu_dataset *ds;
    const uint32_t *pop; /* Popular order (num_users rows), the caller's */
    size_t value_base[NU_MAX_FIELDS], n_values; /* field f's value v is value_base[f] + v */
    size_t *post_off;    /* n_values + 1: train items (with positives) holding each value */
    uint32_t *post_item;
    /* scratch of one ranking at a time */
    uint32_t *weight, *touched; /* per item: shared values with the new item */
    uint64_t *score;            /* per user */
    uint32_t *seen;             /* per value: the ranking that last marked it */
    uint32_t stamp;
    uint8_t *in_ctx;
} nu_feature_popular;

/* ds and pop must outlive f. */
nu_status nu_feature_popular_build(const nu_dataset *ds, const uint32_t *pop,
                                   nu_feature_popular *f);
void nu_feature_popular_free(nu_feature_popular *f);

/* The first k users (NU_TOPK_NONE past the eligible ones) for dataset item
 * `item`, leaving out ctx.  Not thread safe (uses f's scratch). */
nu_status nu_feature_popular_rank(nu_feature_popular *f, size_t item, const nu_id_list *ctx,
                                  size_t k, uint32_t *out);

#endif
