/* The lookalike-mf baseline: what a production lookalike system does.
 * User embeddings are the user factors of implicit ALS (eval/als.h, its
 * documented defaults) fitted on the TRAIN-split positives only; a new item's
 * query is the mean of its context users' unit embeddings, and every other
 * user is ranked by cosine similarity to it (ties by lower row), then the
 * users without an embedding (no train positives) in row order, which is
 * their Popular order.  A context with no embedded user has no query: the
 * ranking is Popular.  Stage 0 (no context) is Popular, in eval.c. */
#ifndef NU_LOOKALIKE_MF_H
#define NU_LOOKALIKE_MF_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "eval/als.h"
#include "kernels.h"
#include "retrieval/user_table.h"

typedef struct nu_lookalike_mf {
    size_t num_users, dim, n_embedded;
    float *emb;          /* n_embedded x dim: unit rows of the users with train positives */
    uint32_t *user_of;   /* embedded index -> user row (increasing) */
    uint32_t *index_of;  /* user row -> embedded index, or NU_TOPK_NONE */
    nu_user_table table; /* a view of emb, searched like the model's table */
} nu_lookalike_mf;

/* Fits ALS with `p` on ds's train positives (users x train items). */
nu_status nu_lookalike_mf_build(const nu_dataset *ds, const nu_als_params *p, nu_lookalike_mf *m);
void nu_lookalike_mf_free(nu_lookalike_mf *m);

/* Ranked lists (cnt x k, NU_TOPK_NONE past the eligible users) for cnt
 * contexts ctx[q] (user rows, left out of the ranking); pop is the Popular
 * order (num_users rows). */
nu_status nu_lookalike_mf_rank(const nu_lookalike_mf *m, const nu_id_list *ctx, size_t cnt,
                               size_t k, int threads, const uint32_t *pop, uint32_t *out);

#endif
