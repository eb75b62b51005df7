/* Internal to kernels/avx512: the AVX512_BF16 matmul (matmul_bf16_avx512_bf16.c,
 * compiled with -mavx512bf16), called only when nu_cpu_detect() reports it. */
#ifndef NU_SIMD_MATMUL_BF16_AVX512_H
#define NU_SIMD_MATMUL_BF16_AVX512_H

#include <stddef.h>
#include <stdint.h>

void nu_matmul_bf16_avx512dp(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const uint16_t *Bp, const float *bias, float *C, size_t ldc,
                             int accumulate);
void nu_matmul_bf16_gelu_avx512dp(size_t M, size_t N, size_t K, const float *A, size_t lda,
                                  const uint16_t *Bp, const float *bias, float *C, size_t ldc);

#endif
