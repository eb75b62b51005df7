/* Sixteen horizontal sums at once with one shuffle tree: the score kernels
 * reduce a block of 16 rows' accumulators together instead of one by one. */
#ifndef NU_REDUCE16_AVX512_H
#define NU_REDUCE16_AVX512_H

#include <immintrin.h>

/* Lane 4L + j of the result is the full sum of v[4j + L]. */
static inline __attribute__((always_inline)) __m512 nu_reduce16_raw(const __m512 v[16])
{
    __m512 w[8], x[4], y[2];
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++)
        x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++)
        y[i] = _mm512_add_ps(_mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(x[2 * i], x[2 * i + 1], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88),
                         _mm512_shuffle_ps(y[0], y[1], 0xDD));
}

#endif
