/* FLOPs per item of the generator, counted from the model config: the
 * matrix products (2 per multiply-add) and the attention scores and
 * weighted sums over exactly the keys each row's mask admits.  Layer
 * norms, GELU, softmax and embedding lookups are left out (a few percent).
 * docs/bench.md has the formulas and the base shape's figures. */
#ifndef NU_BENCH_FLOPS_H
#define NU_BENCH_FLOPS_H

#include <stddef.h>

#include "model/config.h"

/* Inference (decoder query n+1 only) of one item with n users. */
double nu_bench_infer_flops(const nu_model_config *c, size_t n);
/* The forward of training (all n+1 decoder queries) of one window of n users. */
double nu_bench_train_forward_flops(const nu_model_config *c, size_t n);
/* One training step per window of n users: forward, backward (twice the
 * forward's products: gradients of inputs and of weights) and the loss's
 * scores (1 positive + M shared + E exposed negatives per position, each a
 * d-long dot product, its input gradient and its table-row gradient). */
double nu_bench_train_flops(const nu_model_config *c, size_t n, size_t negatives, size_t exposed);

#endif
