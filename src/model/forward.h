/* The generator's forward pass over a token-packed batch of items: the
 * tokens of all items stacked into one matrix for the dense layers,
 * attention per item over its own tokens, no padding. */
#ifndef NU_FORWARD_H
#define NU_FORWARD_H

#include "data/items.h"
#include "model/model.h"
#include "util/arena.h"

typedef enum nu_forward_mode {
    NU_FORWARD_INFER, /* only decoder query n+1: û_next per item */
    NU_FORWARD_TRAIN  /* all decoder queries 1..n+1 (teacher forcing) */
} nu_forward_mode;

/* Tokens of item i in the encoder: prefix fields + users + CLS. */
static inline size_t nu_item_tokens(const nu_model_config *c, size_t n_users)
{
    return c->n_prefix + n_users + (c->use_cls ? 1 : 0);
}

/* Scratch bytes for one batch of at most max_items items. */
size_t nu_forward_scratch_bytes(const nu_model_config *c, size_t max_items, nu_forward_mode mode);

/* Runs items [first, first + count) with the weights `w` (the model's own,
 * or a per-NUMA-node copy bound to the same layout).  Output rows:
 * INFER: count rows of d floats; TRAIN: for each item its n+1 rows, items
 * in order.  Takes all scratch from `arena` (reset by the caller).  The
 * result for an item does not depend on which other items share the batch. */
nu_status nu_forward_batch(const nu_model_config *c, const nu_model_view *w,
                           const nu_items *items, size_t first, size_t count,
                           nu_forward_mode mode, nu_arena *arena, float *out);

#endif
