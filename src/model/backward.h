/* The generator's backward pass: from dL/dû of every decoder position of a
 * training batch to the gradient of every parameter, through the
 * activations nu_forward_train kept (forward.h). */
#ifndef NU_BACKWARD_H
#define NU_BACKWARD_H

#include <stdint.h>

#include "data/items.h"
#include "model/forward.h"
#include "model/model.h"
#include "util/arena.h"

/* Rows of one embedding table that received gradient: sorted, unique. */
typedef struct nu_row_list {
    uint32_t *rows;
    size_t count;
} nu_row_list;

/* The embedding rows a batch touched, so a sparse optimiser updates only
 * them (every other row of those tables has an exactly zero gradient).
 * The lists live in the arena given to nu_backward_batch. */
typedef struct nu_touched_rows {
    nu_row_list users;                 /* rows of user_emb (context users) */
    nu_row_list prefix[NU_MAX_FIELDS]; /* rows of prefix.<f>.emb; dense fields: empty */
} nu_touched_rows;

/* Arena bytes nu_backward_batch needs for a batch of at most max_items
 * items (on top of what nu_forward_train took). */
size_t nu_backward_scratch_bytes(const nu_model_config *c, size_t max_items);

/* Given the cache of nu_forward_train for a batch (same items, same weights
 * `w`) and dout = dL/dû (one row of d floats per decoder position, in the
 * forward's output order), ACCUMULATES (+=) dL/dparameter into the buffer
 * that `grad` is bound to (nu_model_view_bind on a buffer with the model's
 * layout; zero it first for a fresh gradient).  Embedding tables receive
 * gradient only in the rows listed in *touched (may be NULL).  Scratch
 * comes from `arena`, which must still hold the cache (do not reset it
 * between the forward and the backward). */
nu_status nu_backward_batch(const nu_model_config *c, const nu_model_view *w,
                            const nu_items *items, const nu_train_cache *cache,
                            const float *dout, const nu_model_view *grad, nu_arena *arena,
                            nu_touched_rows *touched);

#endif
