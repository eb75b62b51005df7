/* The generator's weights re-packed once for inference: each encoder and
 * decoder linear layer gets a copy in the layout a faster kernel reads
 * (fp32 panels for matmul_f32p, bf16 pairs for matmul_bf16), made when a
 * plan or an engine is made
 * and pointed to from the layer's view (nu_linear_view.packed), so the
 * forward never packs a weight per call.  A training step packs its fp32
 * weights both ways (w for the forward, w^T for the backward) into its own
 * scratch after each update (nu_packed_weights_fill_train). */
#ifndef NU_PACKED_WEIGHTS_H
#define NU_PACKED_WEIGHTS_H

#include <stddef.h>

#include "model/params.h"

/* How the generator's weights are encoded for inference. */
typedef enum nu_gen_encoding {
    NU_GEN_FP32 = 0, /* fp32 weights, packed in fp32 panels where the CPU has the kernel */
    NU_GEN_BF16 = 1  /* weights packed in bf16, activations rounded to bf16 at each matmul */
} nu_gen_encoding;

/* The layout of one packed weight (the dtype tag): which kernel reads it. */
typedef enum nu_packed_format {
    NU_PACKED_BF16 = 1, /* kernels/bf16_pack.h, read by matmul_bf16 */
    NU_PACKED_F32 = 2   /* kernels/f32_pack.h, read by matmul_f32p: matmul_nn's bits */
} nu_packed_format;

struct nu_packed_linear {
    nu_packed_format format;
    size_t in, out;   /* the weight is in x out (K x N) */
    const void *data; /* in `format`'s layout */
};

/* "fp32" / "bf16". */
const char *nu_gen_encoding_name(nu_gen_encoding e);
/* The encoding that runs when `want` is asked for with the active kernel
 * table: bf16 needs bf16 dot-product kernels (AVX512_BF16) and falls back to
 * fp32 elsewhere, since emulating bf16 would be slower than fp32. */
nu_gen_encoding nu_gen_encoding_effective(nu_gen_encoding want);

/* Bytes nu_packed_weights_fill needs for encoding `e` with the active
 * kernel table (0: nothing to pack, fp32 where matmul_f32p is not native). */
size_t nu_packed_weights_bytes(const nu_model_config *c, nu_gen_encoding e);
/* Packs every encoder and decoder linear of v into mem (64-byte aligned,
 * nu_packed_weights_bytes long) and sets their `packed` pointers; the
 * prefix projections (one row per item) stay unpacked. */
void nu_packed_weights_fill(const nu_model_config *c, nu_gen_encoding e, void *mem,
                            nu_model_view *v);
/* Training: bytes for every encoder and decoder linear packed in fp32 as w
 * and as w^T (0 where matmul_f32p is not native: then the step reads the
 * weights in place), and the packing itself, setting `packed` and
 * `packed_t` of v.  matmul_f32p on them has matmul_nn's bits on w, and
 * matmul_nt's on w from 3 rows up, so the step's results do not change. */
size_t nu_packed_weights_train_bytes(const nu_model_config *c);
void nu_packed_weights_fill_train(const nu_model_config *c, void *mem, nu_model_view *v);

#endif
