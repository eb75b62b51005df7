/* A 16 x 16 float transpose in registers (4 shuffle stages, 64 shuffles):
 * the attention kernels turn rows of K, V or Q into columns with it. */
#ifndef NU_TRANSPOSE16_AVX512_H
#define NU_TRANSPOSE16_AVX512_H

#include <immintrin.h>

/* r[k] holds row k on entry, column k on exit. */
static inline __attribute__((always_inline)) void nu_transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int k = 0; k < 16; k += 2) {
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    /* Per 128-bit lane L, u[4g + c] = column 4L + c of rows 4g .. 4g+3. */
    for (int g = 0; g < 4; g++) {
        __m512 a = t[4 * g], b = t[4 * g + 1], c = t[4 * g + 2], d = t[4 * g + 3];
        u[4 * g] = _mm512_shuffle_ps(a, c, 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(a, c, 0xee);
        u[4 * g + 2] = _mm512_shuffle_ps(b, d, 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(b, d, 0xee);
    }
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        t[8 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xdd);
    }
}

#endif
