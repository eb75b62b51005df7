/* exp for 16 floats, inline: the softmax of attention, GELU's Gaussian and
 * exp_shift.  SLEEF's expf16_u10 is an out-of-line call, and a call in a
 * vector loop clobbers every zmm register (all caller-saved), so the loops
 * around it reload their constants and spill their accumulators; this one
 * inlines in ~14 instructions, and _mm512_scalef_ps does the 2^n scaling
 * including overflow to inf and underflow through denormals to 0.
 *
 * exp(x) = 2^n e^r, n = round(x log2 e), r = x - n ln 2 in two steps
 * (Cody-Waite: n * LN2_HI is exact for |n| < 2^8), |r| <= ln 2 / 2;
 * e^r = 1 + r + r^2 p(r), p a degree-4 fit to (e^r - 1 - r) / r^2 in
 * relative error of e^r (3e-9 before rounding).  Measured against double
 * exp on 3.2e8 random arguments in [-110, 90]: at most 1.02 ulp (SLEEF u10:
 * 0.99).  x is clamped to [-104, 89] first (exp(-104) underflows to 0,
 * exp(89) overflows to inf), which keeps -inf from becoming a NaN in r;
 * the clamps keep a NaN (max/min return their second operand on NaN).
 * The scalar reference is libm's expf (tests/test_kernel_norm.c compares
 * exp_shift, which runs this, over the whole range). */
#ifndef NU_SIMD_AVX512_EXP_H
#define NU_SIMD_AVX512_EXP_H

#include <immintrin.h>

static inline __m512 nu_exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.381461276e-03f), r, _mm512_set1_ps(8.368710056e-03f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166838899e-02f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666652113e-01f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999999404e-01f));
    const __m512 u = _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r);
    return _mm512_scalef_ps(_mm512_add_ps(u, _mm512_set1_ps(1.0f)), n);
}

#endif
