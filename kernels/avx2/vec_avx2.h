/* Static inline helpers shared by the avx2 layernorm, activation, vector
 * and loss kernels: the vector width W, tail masks, horizontal sums and a
 * row dot product.  Private to kernels/avx2/. */
#ifndef NU_SIMD_AVX2_VEC_H
#define NU_SIMD_AVX2_VEC_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define W 8 /* floats a vector */

/* Lanes [0, r) on, r in [0, 8]. */
static inline __m256i tail_mask(size_t r)
{
    /* Eight lanes on, then eight off: the mask is an 8-lane window into it. */
    static const int32_t mask_table[2 * W] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                              0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256((const __m256i *)(mask_table + W - r));
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four horizontal sums at once: lane k of the result is the sum of a_k. */
static inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* a . b over d floats: fp32, two accumulators. */
static inline float row_dot(size_t d, const float *a, const float *b)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c + W), _mm256_loadu_ps(b + c + W), s1);
    }
    for (; c + W <= d; c += W)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
    if (c < d) {
        __m256i k = tail_mask(d - c);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + c, k), _mm256_maskload_ps(b + c, k), s1);
    }
    return hsum(_mm256_add_ps(s0, s1));
}

#endif
