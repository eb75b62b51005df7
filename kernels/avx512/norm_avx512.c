/* Normalisation, activations, elementwise ops and reductions, avx512 (F/DQ).
 * 16 floats a vector; tails use mask registers (masked-out lanes are neither
 * read nor written, and masked loads never fault past the end).
 * Transcendentals from SLEEF's avx512f u10 functions (1 ulp).  Reductions are
 * fp32 with several accumulators, except sigmoid_xent, which sums in double. */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"
#include "../norm_drive.h"

#define W 16

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

/* ---- layernorm ---- */

static inline float row_sum(size_t d, const float *x)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + c));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + c + W));
    }
    for (; c < d; c += W)
        s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(tail_k(d - c < W ? d - c : W), x + c));
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* Two-pass variance: the centred sum avoids sum(x^2) - mean^2 cancellation. */
static inline float row_var(size_t d, const float *x, float mean)
{
    const __m512 m = _mm512_set1_ps(mean);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        __m512 a = _mm512_sub_ps(_mm512_loadu_ps(x + c), m);
        __m512 b = _mm512_sub_ps(_mm512_loadu_ps(x + c + W), m);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
    }
    for (; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        __m512 a = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + c), m);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)d;
}

/* Mean and rstd of four rows at once: the four horizontal sums share one
 * shuffle tree and one sqrt/div, which are the cost at d = 64. */
static void ln_stats4(size_t d, const float *x, size_t ldx, float eps, float mu[4],
                      float rs[4])
{
    const float *x0 = x, *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t c = 0; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(k, x0 + c));
        s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(k, x1 + c));
        s2 = _mm512_add_ps(s2, _mm512_maskz_loadu_ps(k, x2 + c));
        s3 = _mm512_add_ps(s3, _mm512_maskz_loadu_ps(k, x3 + c));
    }
    const __m128 dv = _mm_set1_ps((float)d);
    _mm_storeu_ps(mu, _mm_div_ps(hsum4(s0, s1, s2, s3), dv));
    const __m512 m0 = _mm512_set1_ps(mu[0]), m1 = _mm512_set1_ps(mu[1]);
    const __m512 m2 = _mm512_set1_ps(mu[2]), m3 = _mm512_set1_ps(mu[3]);
    s0 = s1 = s2 = s3 = _mm512_setzero_ps();
    for (size_t c = 0; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        __m512 a0 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x0 + c), m0);
        __m512 a1 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x1 + c), m1);
        __m512 a2 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x2 + c), m2);
        __m512 a3 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x3 + c), m3);
        s0 = _mm512_fmadd_ps(a0, a0, s0);
        s1 = _mm512_fmadd_ps(a1, a1, s1);
        s2 = _mm512_fmadd_ps(a2, a2, s2);
        s3 = _mm512_fmadd_ps(a3, a3, s3);
    }
    __m128 var = _mm_div_ps(hsum4(s0, s1, s2, s3), dv);
    var = _mm_sqrt_ps(_mm_add_ps(var, _mm_set1_ps(eps)));
    _mm_storeu_ps(rs, _mm_div_ps(_mm_set1_ps(1.0f), var));
}

/* y = (x - mu) rs gamma + beta over one row (y may alias x). */
static void ln_row_out(size_t d, const float *xr, float mu, float rs, const float *gamma,
                       const float *beta, float *yr)
{
    const __m512 m = _mm512_set1_ps(mu), s = _mm512_set1_ps(rs);
    for (size_t c = 0; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + c), m), s);
        _mm512_mask_storeu_ps(yr + c, k,
                              _mm512_fmadd_ps(xh, _mm512_maskz_loadu_ps(k, gamma + c),
                                              _mm512_maskz_loadu_ps(k, beta + c)));
    }
}

static void layernorm_fwd_avx512(size_t rows, size_t d, const float *x, size_t ldx,
                                 const float *gamma, const float *beta, float eps, float *y,
                                 size_t ldy, float *mean, float *rstd)
{
    nu_layernorm_fwd_drive(rows, d, x, ldx, gamma, beta, eps, y, ldy, mean, rstd, ln_stats4,
                           ln_row_out);
}

static void layernorm_bwd_avx512(size_t rows, size_t d, const float *x, size_t ldx,
                                 const float *gamma, const float *mean, const float *rstd,
                                 const float *dy, size_t lddy, float *dx, size_t lddx,
                                 float *dgamma, float *dbeta)
{
    if (d == 0)
        return;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const __m512 m = _mm512_set1_ps(mean[r]), s = _mm512_set1_ps(rstd[r]);
        __m512 sg = _mm512_setzero_ps(), sgx = sg;
        /* Pass 1: row sums of g and g xhat; dgamma, dbeta.  Masked-out lanes
         * load dy = 0, so they add nothing. */
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 dyv = _mm512_maskz_loadu_ps(k, dyr + c);
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + c), m), s);
            __m512 g = _mm512_mul_ps(dyv, _mm512_maskz_loadu_ps(k, gamma + c));
            sg = _mm512_add_ps(sg, g);
            sgx = _mm512_fmadd_ps(g, xh, sgx);
            _mm512_mask_storeu_ps(dgamma + c, k,
                                  _mm512_fmadd_ps(dyv, xh, _mm512_maskz_loadu_ps(k, dgamma + c)));
            _mm512_mask_storeu_ps(dbeta + c, k,
                                  _mm512_add_ps(dyv, _mm512_maskz_loadu_ps(k, dbeta + c)));
        }
        const __m512 mg = _mm512_set1_ps(_mm512_reduce_add_ps(sg) / (float)d);
        const __m512 mgx = _mm512_set1_ps(_mm512_reduce_add_ps(sgx) / (float)d);
        /* Pass 2: dx += rstd (g - mean(g) - xhat mean(g xhat)). */
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + c), m), s);
            __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dyr + c),
                                     _mm512_maskz_loadu_ps(k, gamma + c));
            __m512 u = _mm512_fnmadd_ps(xh, mgx, _mm512_sub_ps(g, mg));
            _mm512_mask_storeu_ps(dxr + c, k,
                                  _mm512_fmadd_ps(s, u, _mm512_maskz_loadu_ps(k, dxr + c)));
        }
    }
}

/* ---- GELU ---- */

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
    return Sleef_expf16_u10avx512f(_mm512_mul_ps(_mm512_mul_ps(x, x), _mm512_set1_ps(-0.5f)));
}

static inline __m512 gelu16(__m512 x)
{
    const __m512 h = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    __m512 z, g = gauss16(x, &z);
    return _mm512_fmadd_ps(h, erf_hastings16(z, g), h);
}

static void gelu_fwd_avx512(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm512_storeu_ps(y + i, gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = tail_k(n - i);
        _mm512_mask_storeu_ps(y + i, k, gelu16(_mm512_maskz_loadu_ps(k, x + i)));
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

/* ---- elementwise and column sums ---- */

static void axpy_avx512(size_t n, float alpha, const float *x, float *y)
{
    const __m512 a = _mm512_set1_ps(alpha);
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        __m512 y0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
        __m512 y1 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i + W), _mm512_loadu_ps(y + i + W));
        __m512 y2 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i + 2 * W),
                                    _mm512_loadu_ps(y + i + 2 * W));
        __m512 y3 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i + 3 * W),
                                    _mm512_loadu_ps(y + i + 3 * W));
        _mm512_storeu_ps(y + i, y0);
        _mm512_storeu_ps(y + i + W, y1);
        _mm512_storeu_ps(y + i + 2 * W, y2);
        _mm512_storeu_ps(y + i + 3 * W, y3);
    }
    for (; i < n; i += W) {
        __mmask16 k = tail_k(n - i < W ? n - i : W);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k, x + i),
                                                        _mm512_maskz_loadu_ps(k, y + i)));
    }
}

static void add_bias_rows_avx512(size_t rows, size_t n, float *x, size_t ldx,
                                 const float *bias)
{
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        for (size_t c = 0; c < n; c += W) {
            __mmask16 k = tail_k(n - c < W ? n - c : W);
            _mm512_mask_storeu_ps(xr + c, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, xr + c),
                                                           _mm512_maskz_loadu_ps(k, bias + c)));
        }
    }
}

/* Column blocks of 64 held in registers over all rows; rows are added in
 * order starting from dbias, the same order as the scalar reference. */
static void sum_rows_avx512(size_t rows, size_t n, const float *dy, size_t lddy,
                            float *dbias)
{
    if (rows == 0)
        return;
    size_t c = 0;
    for (; c + 4 * W <= n; c += 4 * W) {
        __m512 a0 = _mm512_loadu_ps(dbias + c), a1 = _mm512_loadu_ps(dbias + c + W);
        __m512 a2 = _mm512_loadu_ps(dbias + c + 2 * W), a3 = _mm512_loadu_ps(dbias + c + 3 * W);
        for (size_t r = 0; r < rows; r++) {
            const float *p = dy + r * lddy + c;
            a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p));
            a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + W));
            a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + 2 * W));
            a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + 3 * W));
        }
        _mm512_storeu_ps(dbias + c, a0);
        _mm512_storeu_ps(dbias + c + W, a1);
        _mm512_storeu_ps(dbias + c + 2 * W, a2);
        _mm512_storeu_ps(dbias + c + 3 * W, a3);
    }
    for (; c < n; c += W) {
        __mmask16 k = tail_k(n - c < W ? n - c : W);
        __m512 a = _mm512_maskz_loadu_ps(k, dbias + c);
        for (size_t r = 0; r < rows; r++)
            a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(k, dy + r * lddy + c));
        _mm512_mask_storeu_ps(dbias + c, k, a);
    }
}

/* ---- L2 normalisation ---- */

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

static void l2norm_fwd_avx512(size_t rows, size_t d, const float *x, size_t ldx, float eps,
                              float *y, size_t ldy, float *norm)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        const float nr = sqrtf(row_dot(d, xr, xr));
        const __m512 inv = _mm512_set1_ps(1.0f / (nr > eps ? nr : eps));
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            _mm512_mask_storeu_ps(yr + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, xr + c), inv));
        }
        if (norm)
            norm[r] = nr;
    }
}

static void l2norm_bwd_avx512(size_t rows, size_t d, const float *y, size_t ldy,
                              const float *norm, float eps, const float *dy, size_t lddy,
                              float *dx, size_t lddx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const int live = norm[r] > eps;
        /* Clamped rows: y = x / eps is linear, so dx += dy / eps (yd = 0). */
        const __m512 yd = _mm512_set1_ps(live ? row_dot(d, yr, dyr) : 0.0f);
        const __m512 inv = _mm512_set1_ps(1.0f / (live ? norm[r] : eps));
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 u = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(k, yr + c), yd,
                                        _mm512_maskz_loadu_ps(k, dyr + c));
            _mm512_mask_storeu_ps(dxr + c, k,
                                  _mm512_fmadd_ps(u, inv, _mm512_maskz_loadu_ps(k, dxr + c)));
        }
    }
}

/* ---- softmax pieces ---- */

static float logsumexp_avx512(size_t n, const float *x)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf;
    __mmask16 nan = 0;
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + W);
        /* max drops NaN, so NaNs are tracked on the side. */
        nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
        m0 = _mm512_max_ps(m0, a);
        m1 = _mm512_max_ps(m1, b);
    }
    for (; i < n; i += W) {
        __m512 a = _mm512_mask_loadu_ps(ninf, tail_k(n - i < W ? n - i : W), x + i);
        nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        m0 = _mm512_max_ps(m0, a);
    }
    if (nan)
        return NAN;
    const float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    if (isinf(m)) /* n == 0 or all -inf: -inf; any +inf: +inf */
        return m;
    const __m512 mv = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    for (i = 0; i + 2 * W <= n; i += 2 * W) {
        s0 = _mm512_add_ps(s0,
                           Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv)));
        s1 = _mm512_add_ps(
            s1, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i + W), mv)));
    }
    for (; i < n; i += W) {
        __m512 a = _mm512_mask_loadu_ps(ninf, tail_k(n - i < W ? n - i : W), x + i);
        s0 = _mm512_add_ps(s0, Sleef_expf16_u10avx512f(_mm512_sub_ps(a, mv)));
    }
    return m + logf(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
}

static void exp_shift_avx512(size_t n, const float *x, float shift, float *y)
{
    const __m512 s = _mm512_set1_ps(shift);
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm512_storeu_ps(y + i, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i), s)));
    if (i < n) {
        __mmask16 k = tail_k(n - i);
        _mm512_mask_storeu_ps(
            y + i, k, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
    }
}

/* One block of 16 (lanes in k): adds the loss terms to acc (two double
 * vectors) and returns sigmoid(x) - l. */
static inline __m512 xent16(__m512 x, __m512 l, __mmask16 k, __m512d acc[2])
{
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    const __m512 e = Sleef_expf16_u10avx512f(_mm512_sub_ps(zero, _mm512_abs_ps(x))); /* (0,1] */
    __m512 term = _mm512_fnmadd_ps(x, l, _mm512_max_ps(x, zero));
    term = _mm512_maskz_add_ps(k, term, Sleef_log1pf16_u10avx512f(e)); /* off lanes add 0 */
    acc[0] = _mm512_add_pd(acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(term)));
    acc[1] = _mm512_add_pd(acc[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(term, 1)));
    __mmask16 pos = _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ);
    __m512 num = _mm512_mask_blend_ps(pos, e, one);
    return _mm512_sub_ps(_mm512_div_ps(num, _mm512_add_ps(one, e)), l);
}

static double sigmoid_xent_avx512(size_t n, const float *logits, const float *labels,
                                  float *dlogits)
{
    __m512d acc[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    for (size_t i = 0; i < n; i += W) {
        __mmask16 k = tail_k(n - i < W ? n - i : W);
        __m512 g = xent16(_mm512_maskz_loadu_ps(k, logits + i),
                          _mm512_maskz_loadu_ps(k, labels + i), k, acc);
        if (dlogits)
            _mm512_mask_storeu_ps(dlogits + i, k, g);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc[0], acc[1]));
}

/* ---- dot products of one vector with many rows ---- */

/* Four rows at once: x is loaded once per 4 rows and the 4 horizontal sums
 * share one shuffle tree.  Two accumulators per row cover the FMA latency. */
static void dot_rows_avx512(size_t rows, size_t d, const float *x, const float *T,
                            size_t ldt, float *out)
{
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *t0 = T + r * ldt, *t1 = t0 + ldt, *t2 = t1 + ldt, *t3 = t2 + ldt;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        size_t c = 0;
        for (; c + 2 * W <= d; c += 2 * W) {
            __m512 xa = _mm512_loadu_ps(x + c), xb = _mm512_loadu_ps(x + c + W);
            a0 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t0 + c), a0);
            a1 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t1 + c), a1);
            a2 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t2 + c), a2);
            a3 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t3 + c), a3);
            b0 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t0 + c + W), b0);
            b1 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t1 + c + W), b1);
            b2 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t2 + c + W), b2);
            b3 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t3 + c + W), b3);
        }
        for (; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 xa = _mm512_maskz_loadu_ps(k, x + c);
            a0 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t0 + c), a0);
            a1 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t1 + c), a1);
            a2 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t2 + c), a2);
            a3 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t3 + c), a3);
        }
        _mm_storeu_ps(out + r, hsum4(_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1),
                                     _mm512_add_ps(a2, b2), _mm512_add_ps(a3, b3)));
    }
    for (; r < rows; r++)
        out[r] = row_dot(d, x, T + r * ldt);
}

void nu_fill_norm_avx512(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_avx512;
    t->layernorm_bwd = layernorm_bwd_avx512;
    t->gelu_fwd = gelu_fwd_avx512;
    t->gelu_bwd = gelu_bwd_avx512;
    t->axpy = axpy_avx512;
    t->add_bias_rows = add_bias_rows_avx512;
    t->sum_rows = sum_rows_avx512;
    t->l2norm_fwd = l2norm_fwd_avx512;
    t->l2norm_bwd = l2norm_bwd_avx512;
    t->logsumexp = logsumexp_avx512;
    t->exp_shift = exp_shift_avx512;
    t->sigmoid_xent = sigmoid_xent_avx512;
    t->dot_rows = dot_rows_avx512;
}
