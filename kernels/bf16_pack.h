/* The bf16 pre-packed weight layout of matmul_bf16 (kernels.h), shared by
 * every ISA so that one packing serves the scalar reference and the
 * dot-product kernels alike.
 *
 * B (K x N fp32) becomes ceil(N / 16) panels of 16 columns.  A panel holds
 * K2 = ceil(K / 2) k-pairs; pair kp of column j is two adjacent bf16, k = 2kp
 * in the low half and k = 2kp + 1 in the high half of one 32-bit word, so
 * one 64-byte row of a panel is exactly the second operand of a vdpbf16ps
 * (16 lanes x 2 products):
 *   packed[(p * K2 + kp) * 32 + 2 * j + h] = bf16(B[2 kp + h][16 p + j]),
 * zero past K and past N. */
#ifndef NU_SIMD_BF16_PACK_H
#define NU_SIMD_BF16_PACK_H

#include <stddef.h>
#include <stdint.h>

#define NU_BF16_PANEL 16 /* columns per panel */

/* fp32 -> bf16 rounded to nearest even; NaN stays a (quiet) NaN and
 * denormals become a zero of their sign, as vcvtne2ps2bf16 does. */
uint16_t nu_bf16_round(float x);
/* The fp32 value of a bf16 (exact). */
float nu_bf16_widen(uint16_t h);

/* uint16 elements of the packed form of a K x N matrix. */
size_t nu_bf16_packed_elems(size_t K, size_t N);
/* Packs B (K x N, row stride ldb) into `out` (nu_bf16_packed_elems). */
void nu_bf16_pack_b(size_t K, size_t N, const float *B, size_t ldb, uint16_t *out);

#endif
