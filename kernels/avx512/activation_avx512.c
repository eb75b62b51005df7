/* GELU forward and backward, avx512 (F/DQ).  16 floats a vector; tails use
 * mask registers (masked-out lanes are neither read nor written, and masked
 * loads never fault past the end).  The backward: exp inline
 * (exp_avx512.h, ~1 ulp) and erf from Hastings' rational approximation;
 * the forward (the generator's hot path): Phi from A&S 7.1.28 (gelu_avx512.h). */
#include <immintrin.h>

#include "../kernels.h"
#include "exp_avx512.h"
#include "gelu_avx512.h"
#include "vec_avx512.h"

/* erf for the GELU: Hastings' rational approximation (Abramowitz & Stegun
 * 7.1.26), |error| <= 1.5e-7 absolute, several times cheaper than SLEEF's
 * erff.  GELU adds erf to 1, so an absolute bound is what matters; the
 * result stays within the tests' tolerance of the exact erf.  e = exp(-z*z)
 * is passed in so the backward reuses it for the normal density. */
static inline __m512 erf_hastings16(__m512 z, __m512 e)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_abs_ps(z), _mm512_set1_ps(0.3275911f), one));
    __m512 poly = _mm512_fmadd_ps(t, _mm512_set1_ps(1.061405429f), _mm512_set1_ps(-1.453152027f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(1.421413741f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(-0.284496736f));
    poly = _mm512_fmadd_ps(t, poly, _mm512_set1_ps(0.254829592f));
    __m512 r = _mm512_fnmadd_ps(_mm512_mul_ps(poly, t), e, one);
    return _mm512_or_ps(r, _mm512_and_ps(z, _mm512_set1_ps(-0.0f))); /* odd function */
}

/* z = x / sqrt(2) and exp(-z^2) = exp(-x^2 / 2), shared by the erf and the density. */
static inline __m512 gauss16(__m512 x, __m512 *z)
{
    *z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    return nu_exp16(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-0.5f)));
}

static void gelu_fwd_avx512(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm512_storeu_ps(y + i, nu_gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = tail_k(n - i);
        _mm512_mask_storeu_ps(y + i, k, nu_gelu16(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

/* dy * (Phi(x) + x phi(x)). */
static inline __m512 gelu_grad16(__m512 x, __m512 dy)
{
    const __m512 half = _mm512_set1_ps(0.5f);
    __m512 z, g = gauss16(x, &z);
    __m512 cdf = _mm512_fmadd_ps(half, erf_hastings16(z, g), half);
    __m512 pdf = _mm512_mul_ps(g, _mm512_set1_ps(0.39894228040143268f));
    return _mm512_mul_ps(dy, _mm512_fmadd_ps(x, pdf, cdf));
}

static void gelu_bwd_avx512(size_t n, const float *x, const float *dy, float *dx)
{
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm512_storeu_ps(dx + i, gelu_grad16(_mm512_loadu_ps(x + i), _mm512_loadu_ps(dy + i)));
    if (i < n) {
        __mmask16 k = tail_k(n - i);
        _mm512_mask_storeu_ps(dx + i, k, gelu_grad16(_mm512_maskz_loadu_ps(k, x + i),
                                                     _mm512_maskz_loadu_ps(k, dy + i)));
    }
}

void nu_fill_activation_avx512(nu_kernel_table *t)
{
    t->gelu_fwd = gelu_fwd_avx512;
    t->gelu_bwd = gelu_bwd_avx512;
}
