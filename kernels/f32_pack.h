/* The fp32 pre-packed weight layout of matmul_f32p (kernels.h), shared by
 * every ISA so that one packing serves the reference and the vector
 * kernels alike (as bf16_pack.h does for bf16).
 *
 * B (K x N) becomes ceil(N / 16) panels of 16 columns, each holding all K
 * rows, so a micro-kernel reads one panel row (64 bytes, one zmm) per k
 * with no stride and no edge masks:
 *   packed[(p * K + k) * 16 + j] = B[k][16 p + j], zero past N.
 * Packed once per engine: the forward never packs a weight per call. */
#ifndef NU_SIMD_F32_PACK_H
#define NU_SIMD_F32_PACK_H

#include <stddef.h>

#define NU_F32_PANEL 16 /* columns per panel */

/* Floats of the packed form of a K x N matrix. */
size_t nu_f32_packed_elems(size_t K, size_t N);
/* Packs B (K x N, row stride ldb) into `out` (nu_f32_packed_elems floats). */
void nu_f32_pack_b(size_t K, size_t N, const float *B, size_t ldb, float *out);
/* Packs B = Bt^T (Bt: N x K, row stride ldbt) the same way, so that
 * matmul_f32p gives the product matmul_nt would with Bt. */
void nu_f32_pack_bt(size_t K, size_t N, const float *Bt, size_t ldbt, float *out);

#endif
