/* GELU forward for 16 floats, inline: gelu_fwd_avx512 and the GELU
 * epilogue of matmul_f32p_gelu share it, so the fused product has the bits
 * of the product followed by gelu_fwd. */
#ifndef NU_SIMD_AVX512_GELU_H
#define NU_SIMD_AVX512_GELU_H

#include <immintrin.h>

/* The forward's Phi without exp or division: Abramowitz & Stegun 7.1.28,
 * erfc(a) = (1 + c1 a + ... + c6 a^6)^-16 for a >= 0, |error| <= 3e-7
 * absolute, so Phi(-|x|) = erfc(|x| / sqrt 2) / 2 directly (no cancelling
 * 1 + erf for x << 0) and Phi(|x|) = 1 - that.  The reciprocal is rcp14
 * plus one Newton step (~2^-27 relative).  a is clamped to 10, where erfc
 * is 2e-45 and the polynomial's 16th power (7e17) stays finite.  About half
 * the instructions of erf_hastings16 with its exp and division; measured
 * against GELU in double over [-12, 12]: within a quarter of the tests'
 * tolerance (atol 2e-6, rtol 1e-5; the old form: an eighth). */
static inline __m512 nu_gelu16(__m512 x)
{
    const __m512 a = _mm512_min_ps(
        _mm512_abs_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f))),
        _mm512_set1_ps(10.0f));
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.0000430638f), a, _mm512_set1_ps(0.0002765672f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0001520143f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0092705272f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0422820123f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(0.0705230784f));
    p = _mm512_fmadd_ps(p, a, _mm512_set1_ps(1.0f));
    p = _mm512_mul_ps(p, p);
    p = _mm512_mul_ps(p, p);
    p = _mm512_mul_ps(p, p);
    p = _mm512_mul_ps(p, p); /* p^16 */
    __m512 r = _mm512_rcp14_ps(p);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(p, r, _mm512_set1_ps(2.0f)));
    const __m512 tail = _mm512_mul_ps(r, _mm512_set1_ps(0.5f)); /* Phi(-|x|) */
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 phi = _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), tail), tail);
    return _mm512_mul_ps(x, phi);
}

#endif
