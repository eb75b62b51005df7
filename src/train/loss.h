/* The three-term training loss of docs/model.md ("Training loss") and its
 * gradients, for one batch of decoder positions:
 *
 *   L = λ1 L_con + λ2 L_CE + λ3 L_aux, each term a mean,
 *   f(u, û) = cos(u, û) / τ  (similarity "cosine")  or  u . û  ("dot").
 *
 * L_con (InfoNCE), mean over the positions with a target t_i:
 *   -log( e^{f(u_t, û_i)} / (e^{f(u_t, û_i)} + Σ_{j ∈ N} e^{f(u_j, û_i)}) )
 *   N: the M shared negative rows, minus those equal to t_i (accidental
 *   hits: by row id, so every copy of t_i in N is left out).
 * L_CE, mean over every pair: binary cross-entropy with f as the logit,
 *   (u_t, û_i) label 1 and (u_e, û_i) label 0 for each exposed negative e
 *   of position i.  An exposed negative equal to t_i is left out too (the
 *   same pair cannot be labelled 1 and 0).
 * L_aux, mean over the positions with a target: ||sg(u_t) - û_i||² (sum
 *   over dims, raw vectors in both similarity modes); gradient to û only.
 *
 * A position whose target is NU_LOSS_NO_TARGET trains nothing (no term, no
 * pair, zero dL/dû): e.g. the positions j <= n of a bidirectional model,
 * which may only be trained on n + 1 (docs/model.md, leakage rule).
 * Normalisation (cosine) is x / max(||x||, NU_LOSS_NORM_EPS), like
 * PyTorch's F.normalize. */
#ifndef NU_TRAIN_LOSS_H
#define NU_TRAIN_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "model/backward.h" /* nu_row_list */
#include "model/config.h"
#include "util/arena.h"

#define NU_LOSS_NO_TARGET UINT32_MAX
#define NU_LOSS_NORM_EPS 1e-12f

typedef struct nu_loss_config {
    double lambda_con, lambda_ce, lambda_aux; /* [1, 0.5, 0.1] */
    int similarity_dot;                       /* 0: cos / tau, 1: dot product */
    double tau;                               /* > 0; unused for dot */
} nu_loss_config;

/* λ = (1, 0.5, 0.1) and the similarity and τ of the model config. */
void nu_loss_config_defaults(const nu_model_config *c, nu_loss_config *out);

/* One batch: R decoder positions.  Row ids index the user table. */
typedef struct nu_loss_batch {
    size_t R;
    const float *uhat;       /* R rows of d floats, stride ld_uhat (>= d) */
    size_t ld_uhat;
    const uint32_t *target;  /* R rows (or NU_LOSS_NO_TARGET) */
    const uint32_t *neg_off; /* R + 1 offsets into neg_rows (CSR); NULL: no exposed negatives */
    const uint32_t *neg_rows;
    size_t M;                /* shared negatives, the same for every position */
    const uint32_t *shared;  /* M rows (duplicates allowed: each copy is a negative) */
} nu_loss_batch;

typedef struct nu_loss_value {
    double con, ce, aux; /* the three means (0 when their count is 0) */
    double total;        /* λ1 con + λ2 ce + λ3 aux */
    size_t positions;    /* positions with a target: denominator of con and aux */
    size_t pairs;        /* CE pairs: denominator of ce */
} nu_loss_value;

/* The denominators nu_loss_compute will use: positions with a target, and
 * CE pairs (one per such position plus its exposed negatives that are not
 * its target).  For a caller that splits a batch and weights each part's
 * λ by its share (part count / batch count) so the parts sum to the mean. */
void nu_loss_count_terms(const nu_loss_batch *b, size_t *positions, size_t *pairs);

/* Arena bytes nu_loss_compute needs for a batch of at most R positions,
 * M shared negatives and n_exposed exposed-negative entries in all. */
size_t nu_loss_scratch_bytes(size_t d, size_t R, size_t M, size_t n_exposed);

/* Computes the loss of batch *b against the user table (num_users rows of d
 * floats, contiguous).  *out gets every term's value, also for a λ of 0
 * (monitoring); gradients are taken only for the terms with λ != 0.
 * dhat (R x d, stride d; may be NULL) is WRITTEN with dL/dû (zero rows for
 * positions without a target).  dtable (table-shaped; may be NULL)
 * ACCUMULATES (+=) dL/du at the rows listed in *touched (may be NULL):
 * the targets, shared and exposed negatives of the terms with λ != 0
 * (L_aux touches none), sorted and unique; every other row gets nothing.
 * The list lives in the arena: on return arena->used is just past it (the
 * rest of the scratch is given back).  Row ids out of range are
 * NU_ERR_INVALID_ARG, an arena smaller than nu_loss_scratch_bytes
 * NU_ERR_NOMEM; nothing is allocated.  Single-threaded, using the active
 * kernel table (nu_kernels()). */
nu_status nu_loss_compute(const nu_loss_config *cfg, const nu_loss_batch *b, const float *table,
                          size_t num_users, size_t d, nu_arena *arena, float *dhat,
                          float *dtable, nu_row_list *touched, nu_loss_value *out);

#endif
