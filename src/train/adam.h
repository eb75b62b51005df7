/* Adam for the generator: dense updates for every dense parameter, lazy
 * (sparse) updates for embedding tables — only the rows a batch touched move,
 * so a step costs O(batch), not O(users) — global-norm gradient clipping,
 * and a learning rate with linear warm-up then cosine decay. */
#ifndef NU_ADAM_H
#define NU_ADAM_H

#include <stddef.h>
#include <stdint.h>

#include "model/params.h"

typedef struct nu_adam_config {
    double lr;           /* peak learning rate [1e-3] */
    double beta1, beta2; /* [0.9, 0.999] */
    double eps;          /* [1e-8] */
    double clip_norm;    /* global gradient-norm bound; <= 0 disables [1.0] */
    uint64_t warmup_steps; /* linear warm-up from lr/warmup to lr [100] */
    uint64_t total_steps;  /* cosine decay to min_lr_ratio * lr at this step; 0: constant */
    double min_lr_ratio;   /* [0.1] */
} nu_adam_config;

void nu_adam_defaults(nu_adam_config *c);

/* Rows of one embedding table that a step updates: sorted, unique. */
typedef struct nu_rows {
    const uint32_t *rows;
    size_t count;
} nu_rows;

typedef struct nu_adam {
    nu_adam_config cfg;
    uint64_t step;  /* steps taken */
    float *m, *v;   /* first and second moments, in the parameter layout */
    size_t total;
    int threads;    /* OpenMP threads of the update (not saved; 0 or 1: one) */
} nu_adam;

nu_status nu_adam_init(nu_adam *a, const nu_param_layout *l, const nu_adam_config *c);
void nu_adam_free(nu_adam *a);

/* Learning rate at step t (0-based). */
double nu_adam_lr(const nu_adam_config *c, uint64_t t);

typedef struct nu_adam_stats {
    double grad_norm; /* before clipping */
    double lr;
    int clipped;
} nu_adam_stats;

/* One step.  grads has the parameter layout; for each embedding spec i,
 * rows[i] lists the rows with gradient (other rows of that table must be
 * zero and stay untouched, moments included: lazy Adam).  Dense parameters
 * are all updated.  Afterwards the gradient entries used are zeroed, so the
 * buffer is ready for the next step.  Deterministic: same inputs, same bits. */
nu_status nu_adam_step(nu_adam *a, const nu_param_layout *l, float *params, float *grads,
                       const nu_rows *rows, nu_adam_stats *stats);

/* nu_adam_step in two halves, for a step whose gradient is spread over
 * several processes: the sum of squares of this buffer's gradient (dense
 * parameters and the listed rows), then the update with the global norm
 * (the square root of every part's sum). */
nu_status nu_adam_grad_sq(const nu_param_layout *l, const float *grads, const nu_rows *rows,
                          double *sq);
nu_status nu_adam_apply(nu_adam *a, const nu_param_layout *l, float *params, float *grads,
                        const nu_rows *rows, double norm, nu_adam_stats *stats);

/* Sorted union of two sorted unique row lists into out (capacity a + b);
 * returns the count. */
size_t nu_rows_union(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, uint32_t *out);

#endif
