/* GELU forward and backward, avx2 + fma.  8 floats a vector; tails use
 * maskload/maskstore (masked-out lanes are neither read nor written, so no
 * access past the end).  exp from SLEEF's avx2 u10 function (1 ulp), erf
 * from the rational approximation below. */
#include <immintrin.h>
#include <sleef.h>

#include "../kernels.h"
#include "vec_avx2.h"

/* erf for the GELU: Hastings' rational approximation (Abramowitz & Stegun
 * 7.1.26), |error| <= 1.5e-7 absolute, several times cheaper than SLEEF's
 * erff.  GELU adds erf to 1, so an absolute bound is what matters; the
 * result stays within the tests' tolerance of the exact erf.  e = exp(-z*z)
 * is passed in so the backward reuses it for the normal density. */
static inline __m256 erf_hastings8(__m256 z, __m256 e)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 az = _mm256_andnot_ps(sign, z);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), one));
    __m256 poly = _mm256_fmadd_ps(t, _mm256_set1_ps(1.061405429f), _mm256_set1_ps(-1.453152027f));
    poly = _mm256_fmadd_ps(t, poly, _mm256_set1_ps(1.421413741f));
    poly = _mm256_fmadd_ps(t, poly, _mm256_set1_ps(-0.284496736f));
    poly = _mm256_fmadd_ps(t, poly, _mm256_set1_ps(0.254829592f));
    __m256 r = _mm256_fnmadd_ps(_mm256_mul_ps(poly, t), e, one);
    return _mm256_or_ps(r, _mm256_and_ps(z, sign)); /* odd function */
}

/* z = x / sqrt(2) and exp(-z^2) = exp(-x^2 / 2), shared by the erf and the density. */
static inline __m256 gauss8(__m256 x, __m256 *z)
{
    *z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    return Sleef_expf8_u10avx2(_mm256_mul_ps(_mm256_mul_ps(x, x), _mm256_set1_ps(-0.5f)));
}

static inline __m256 gelu8(__m256 x)
{
    const __m256 h = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
    __m256 z, g = gauss8(x, &z);
    return _mm256_fmadd_ps(h, erf_hastings8(z, g), h);
}

static void gelu_fwd_avx2(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(y + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, k, gelu8(_mm256_maskload_ps(x + i, k)));
    }
}

/* dy * (Phi(x) + x phi(x)). */
static inline __m256 gelu_grad8(__m256 x, __m256 dy)
{
    const __m256 half = _mm256_set1_ps(0.5f);
    __m256 z, g = gauss8(x, &z);
    __m256 cdf = _mm256_fmadd_ps(half, erf_hastings8(z, g), half);
    __m256 pdf = _mm256_mul_ps(g, _mm256_set1_ps(0.39894228040143268f));
    return _mm256_mul_ps(dy, _mm256_fmadd_ps(x, pdf, cdf));
}

static void gelu_bwd_avx2(size_t n, const float *x, const float *dy, float *dx)
{
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(dx + i, gelu_grad8(_mm256_loadu_ps(x + i), _mm256_loadu_ps(dy + i)));
    if (i < n) {
        __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(dx + i, k, gelu_grad8(_mm256_maskload_ps(x + i, k),
                                                  _mm256_maskload_ps(dy + i, k)));
    }
}

void nu_fill_activation_avx2(nu_kernel_table *t)
{
    t->gelu_fwd = gelu_fwd_avx2;
    t->gelu_bwd = gelu_bwd_avx2;
}
