/* Synthetic interaction data with planted structure, written as a training
 * data directory (docs/data-format.md), deterministic from a seed.
 *
 * Users and items fall into G latent groups (balanced, randomly assigned).
 * An item of group g has features drawn mostly from g's share of each
 * vocabulary (genres, tags, a preferred year bucket, a dense "content"
 * vector around g's centroid).  Its positives are distinct users in time
 * order: at relative time x in [0, 1) of the item's lifetime a positive
 * comes from g with probability in_group - drift * x, from the neighbouring
 * group (g + 1) % G with probability drift * x, otherwise from any user, so
 * the engagers' group mix shifts toward the neighbour over time.  Exposed
 * negatives are users of other groups at times near the item's positives.
 * Positives per item are heavy-tailed (5% of items have none; a lognormal
 * for the rest, so some have 1 or a few and some more than max_users).
 * Items are split train/val/test by exact fractions of a seeded permutation.
 * DIR/truth.json records every user's and item's group. */
#ifndef NU_SYNTHETIC_H
#define NU_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

#include "nextuser/nextuser.h"

typedef struct nu_synth_params {
    size_t users, items, groups; /* groups [8] */
    double pos_mean;             /* mean positives of an item with any [20] */
    size_t neg_mean;             /* mean exposed negatives per item [10] */
    size_t max_users;            /* context length; the tail goes past it [50] */
    double train_frac, val_frac; /* [0.7, 0.1]; test gets the rest */
    double in_group, drift;      /* [0.9, 0.2]: see above */
    /* User activity skew [0]: a positive's user is drawn as the
     * floor(n * x^(1 + skew))-th of the candidates (x uniform), so with
     * skew > 0 a few users take most positives, as on real platforms;
     * 0 draws uniformly (and gives the same files as before). */
    double activity_skew;
    uint64_t seed;               /* [1] */
} nu_synth_params;

typedef struct nu_synth_summary {
    size_t positives, negatives;
    size_t split_items[3];  /* train, val, test */
    size_t empty_items;     /* items with no positives */
    size_t long_items;      /* items with more than max_users positives */
} nu_synth_summary;

/* Defaults above, users = items = 0 (the caller sets them). */
void nu_synth_defaults(nu_synth_params *p);
/* Checks every parameter; the message names the one at fault. */
nu_status nu_synth_check(const nu_synth_params *p);
/* Generates and writes the directory atomically (a temporary sibling
 * directory renamed into place; an existing DIR is replaced whole).
 * `sum` may be NULL. */
nu_status nu_synth_write(const nu_synth_params *p, const char *dir, nu_synth_summary *sum);

#endif
