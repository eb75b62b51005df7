/* The generator's forward pass over a token-packed batch of items: the
 * tokens of all items stacked into one matrix for the dense layers,
 * attention per item over its own tokens, no padding. */
#ifndef NU_FORWARD_H
#define NU_FORWARD_H

#include <stdint.h>

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

/* ---- training forward: what the backward pass needs ----
 * Row counts: T = encoder tokens of the batch (items' tokens stacked),
 * R = decoder queries (n+1 per item, in output order).  Every pointer is
 * into the arena given to nu_forward_train and stays valid until the
 * caller resets that arena (so run the backward before resetting it).
 * LN outputs are kept too (the products' inputs for the weight gradients):
 * recomputing them cost the backward a pass over each.  The GELU output is
 * not: the backward recomputes it from ffn_pre, which it reads for GELU's
 * derivative anyway, one block of rows at a time in L2 -- cheaper than
 * writing the F-wide rows to memory and reading them back. */
typedef struct nu_enc_saved {
    float *x_in;          /* T x d: block input (residual stream) */
    float *mean1, *rstd1; /* T each: LN1 statistics */
    float *ln1;           /* T x d: LN1 output (QKV input) */
    float *qkv;           /* T x 3d: Q | K | V */
    float *att;           /* T x d: attention output (before wo) */
    float *lse;           /* T x heads: attention logsumexp */
    float *x_mid;         /* T x d: after the attention residual (LN2 input) */
    float *mean2, *rstd2; /* T each: LN2 statistics */
    float *ln2;           /* T x d: LN2 output (FFN input) */
    float *ffn_pre;       /* T x ffn: FFN pre-activation (GELU input) */
} nu_enc_saved;

typedef struct nu_dec_saved {
    float *q_in;          /* R x d: block input */
    float *mean1, *rstd1; /* R each */
    float *ln1;           /* R x d: LN1 output (query projection input) */
    float *qd;            /* R x d: queries */
    float *kv;            /* T x 2d: K | V of the encoder output for this layer */
    float *att;           /* R x d: attention output (before wo) */
    float *lse;           /* R x heads */
    float *q_mid;         /* R x d: after the attention residual */
    float *mean2, *rstd2; /* R each */
    float *ln2;           /* R x d */
    float *ffn_pre;       /* R x ffn */
} nu_dec_saved;

typedef struct nu_train_cache {
    size_t first, count; /* the batch: items [first, first + count) */
    size_t tokens, queries, max_tokens;
    nu_enc_saved enc[NU_MAX_LAYERS];
    float *enc_x, *enc_mean, *enc_rstd; /* final encoder LN: input and statistics */
    float *enc_out;                     /* T x d: encoder output (decoder K/V input) */
    nu_dec_saved dec[NU_MAX_LAYERS];
    float *dec_x, *dec_mean, *dec_rstd; /* final decoder LN (produces û) */
    float *ffn_act; /* one FFN block's GELU output (scratch, not saved) */
} nu_train_cache;

/* Arena bytes nu_forward_train needs for at most max_items items
 * (forward scratch + the saved activations). */
size_t nu_forward_train_bytes(const nu_model_config *c, size_t max_items);

/* The TRAIN-mode forward (same output rows as nu_forward_batch with
 * NU_FORWARD_TRAIN) that also fills *cache for nu_backward_batch. */
nu_status nu_forward_train(const nu_model_config *c, const nu_model_view *w,
                           const nu_items *items, size_t first, size_t count,
                           nu_arena *arena, float *out, nu_train_cache *cache);

/* Training runs each block over groups of whole items so that what one
 * step hands the next stays in L2 (every step is row by row or item by
 * item, so the bits are those of one pass over the batch).  The group that
 * starts at item i0 of [i0, end): items until it has at least `tokens`
 * tokens and 3 queries, plus the rest when the rest would have fewer than
 * 3 tokens or queries (matmul_nt's rows depend on the others' below 3
 * rows).  Returns its end; *T and *R get its tokens and queries. */
size_t nu_train_group_end(const nu_model_config *c, const nu_items *s, size_t i0, size_t end,
                          size_t tokens, size_t *T, size_t *R);

/* Attention masks as key ranges [kb[r], ke[r]) (shared with the backward).
 * Encoder rows of an item with n users (nu_item_tokens rows); decoder
 * queries j = j_first .. j_first + nq - 1 (1-based). */
void nu_encoder_mask(const nu_model_config *c, size_t n, uint32_t *kb, uint32_t *ke);
void nu_decoder_mask(const nu_model_config *c, size_t n, size_t j_first, size_t nq,
                     uint32_t *kb, uint32_t *ke);

#endif
