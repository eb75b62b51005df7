/* The edges every AVX-512 matmul shares (matmul_avx512.c, matmul_f32p,
 * matmul_bf16): column masks, the start value of an output slice, and the
 * K = 0 products (bias only, then GELU for the fused entries). */
#ifndef NU_MATMUL_EDGES_AVX512_H
#define NU_MATMUL_EDGES_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "gelu_avx512.h"

/* The first n (<= 16) of 16 lanes. */
static inline __mmask16 mask16(size_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* Start value of one 16-column slice of an output row: C_old + bias, C_old
 * (later K blocks and accumulate), bias, or zero. */
static inline __m512 start16(const float *c, const float *bias, __mmask16 m, int load_c)
{
    if (load_c) {
        const __m512 v = _mm512_maskz_loadu_ps(m, c);
        return bias ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias)) : v;
    }
    return bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
}

/* K = 0: C (+)= bias (or 0). */
static inline void fill_bias(size_t M, size_t N, const float *bias, float *C, size_t ldc,
                             int accumulate)
{
    for (size_t i = 0; i < M; i++, C += ldc)
        for (size_t j = 0; j < N; j++) {
            const float v = bias ? bias[j] : 0.0f;
            C[j] = accumulate ? C[j] + v : v;
        }
}

/* K = 0 of a fused entry: C = GELU(bias), as the unfused pair gives. */
static inline void fill_bias_gelu(size_t M, size_t N, const float *bias, float *C, size_t ldc)
{
    fill_bias(M, N, bias, C, ldc, 0);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j += 16) {
            const __mmask16 m = mask16(N - j);
            float *c = C + i * ldc + j;
            _mm512_mask_storeu_ps(c, m, nu_gelu16(_mm512_maskz_loadu_ps(m, c)));
        }
}

#endif
