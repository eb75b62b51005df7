/* Static inline helpers shared by the avx512 layernorm, activation, vector
 * and loss kernels: the vector width W, tail masks, horizontal sums and a
 * row dot product.  Private to kernels/avx512/. */
#ifndef NU_SIMD_AVX512_VEC_H
#define NU_SIMD_AVX512_VEC_H

#include <immintrin.h>
#include <stddef.h>

#define W 16 /* floats a vector */

/* Lanes [0, r) on, r in [0, 16]. */
static inline __mmask16 tail_k(size_t r)
{
    return (__mmask16)((1u << r) - 1u);
}

static inline __m256 half_sum(__m512 v)
{
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
}

/* Four horizontal sums at once: lane k of the result is the sum of a_k. */
static inline __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(half_sum(a0), half_sum(a1)),
                              _mm256_hadd_ps(half_sum(a2), half_sum(a3)));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* a . b over d floats: fp32, two accumulators. */
static inline float row_dot(size_t d, const float *a, const float *b)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), _mm512_loadu_ps(b + c), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + c + W), _mm512_loadu_ps(b + c + W), s1);
    }
    for (; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + c), _mm512_maskz_loadu_ps(k, b + c), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

#endif
