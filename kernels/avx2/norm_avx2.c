/* Normalisation, activations, elementwise ops and reductions, avx2 + fma.
 * 8 floats a vector; tails use maskload/maskstore (masked-out lanes are
 * neither read nor written, so no access past the end).  Transcendentals
 * from SLEEF's avx2 u10 functions (1 ulp).  Reductions are fp32 with several
 * accumulators, except sigmoid_xent, which sums in double (kernels.h). */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>
#include <stdint.h>

#include "../kernels.h"
#include "../norm_drive.h"

#define W 8

static const int32_t mask_table[2 * W] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                          0,  0,  0,  0,  0,  0,  0,  0};

/* Lanes [0, r) on, r in [0, 8]. */
static inline __m256i tail_mask(size_t r)
{
    return _mm256_loadu_si256((const __m256i *)(mask_table + W - r));
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Four horizontal sums at once: lane k of the result is the sum of a_k. */
static inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* ---- layernorm ---- */

static inline float row_mean(size_t d, const float *x)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + c));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + c + W));
    }
    for (; c + W <= d; c += W)
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + c));
    if (c < d)
        s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x + c, tail_mask(d - c)));
    return hsum(_mm256_add_ps(s0, s1)) / (float)d;
}

/* Two-pass variance: the centred sum avoids sum(x^2) - mean^2 cancellation. */
static inline float row_var(size_t d, const float *x, float mean)
{
    const __m256 m = _mm256_set1_ps(mean);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        __m256 a = _mm256_sub_ps(_mm256_loadu_ps(x + c), m);
        __m256 b = _mm256_sub_ps(_mm256_loadu_ps(x + c + W), m);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    for (; c + W <= d; c += W) {
        __m256 a = _mm256_sub_ps(_mm256_loadu_ps(x + c), m);
        s0 = _mm256_fmadd_ps(a, a, s0);
    }
    if (c < d) {
        __m256i k = tail_mask(d - c);
        __m256 a = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + c, k), m),
                                 _mm256_castsi256_ps(k));
        s1 = _mm256_fmadd_ps(a, a, s1);
    }
    return hsum(_mm256_add_ps(s0, s1)) / (float)d;
}

/* Mean and rstd of four rows at once: the four horizontal sums share one
 * shuffle tree and one sqrt/div, which are the cost at d = 64. */
static void ln_stats4(size_t d, const float *x, size_t ldx, float eps, float mu[4],
                      float rs[4])
{
    const float *x0 = x, *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    const size_t dv = d - d % W;
    const __m256i kt = tail_mask(d % W);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t c = 0;
    for (; c < dv; c += W) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x0 + c));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x1 + c));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x2 + c));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x3 + c));
    }
    if (c < d) {
        s0 = _mm256_add_ps(s0, _mm256_maskload_ps(x0 + c, kt));
        s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x1 + c, kt));
        s2 = _mm256_add_ps(s2, _mm256_maskload_ps(x2 + c, kt));
        s3 = _mm256_add_ps(s3, _mm256_maskload_ps(x3 + c, kt));
    }
    const __m128 dd = _mm_set1_ps((float)d);
    _mm_storeu_ps(mu, _mm_div_ps(hsum4(s0, s1, s2, s3), dd));
    const __m256 m0 = _mm256_set1_ps(mu[0]), m1 = _mm256_set1_ps(mu[1]);
    const __m256 m2 = _mm256_set1_ps(mu[2]), m3 = _mm256_set1_ps(mu[3]);
    s0 = s1 = s2 = s3 = _mm256_setzero_ps();
    for (c = 0; c < dv; c += W) {
        __m256 a0 = _mm256_sub_ps(_mm256_loadu_ps(x0 + c), m0);
        __m256 a1 = _mm256_sub_ps(_mm256_loadu_ps(x1 + c), m1);
        __m256 a2 = _mm256_sub_ps(_mm256_loadu_ps(x2 + c), m2);
        __m256 a3 = _mm256_sub_ps(_mm256_loadu_ps(x3 + c), m3);
        s0 = _mm256_fmadd_ps(a0, a0, s0);
        s1 = _mm256_fmadd_ps(a1, a1, s1);
        s2 = _mm256_fmadd_ps(a2, a2, s2);
        s3 = _mm256_fmadd_ps(a3, a3, s3);
    }
    if (c < d) {
        /* Tail lanes load 0 and are masked back to 0 after the shift. */
        const __m256 k = _mm256_castsi256_ps(kt);
        __m256 a0 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x0 + c, kt), m0), k);
        __m256 a1 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x1 + c, kt), m1), k);
        __m256 a2 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x2 + c, kt), m2), k);
        __m256 a3 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x3 + c, kt), m3), k);
        s0 = _mm256_fmadd_ps(a0, a0, s0);
        s1 = _mm256_fmadd_ps(a1, a1, s1);
        s2 = _mm256_fmadd_ps(a2, a2, s2);
        s3 = _mm256_fmadd_ps(a3, a3, s3);
    }
    __m128 var = _mm_div_ps(hsum4(s0, s1, s2, s3), dd);
    var = _mm_sqrt_ps(_mm_add_ps(var, _mm_set1_ps(eps)));
    _mm_storeu_ps(rs, _mm_div_ps(_mm_set1_ps(1.0f), var));
}

/* y = (x - mu) rs gamma + beta over one row (y may alias x). */
static void ln_row_out(size_t d, const float *xr, float mu, float rs, const float *gamma,
                       const float *beta, float *yr)
{
    const __m256 m = _mm256_set1_ps(mu), s = _mm256_set1_ps(rs);
    size_t c = 0;
    for (; c + W <= d; c += W) {
        __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), m), s);
        _mm256_storeu_ps(yr + c, _mm256_fmadd_ps(xh, _mm256_loadu_ps(gamma + c),
                                                 _mm256_loadu_ps(beta + c)));
    }
    if (c < d) {
        __m256i k = tail_mask(d - c);
        __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + c, k), m), s);
        _mm256_maskstore_ps(yr + c, k,
                            _mm256_fmadd_ps(xh, _mm256_maskload_ps(gamma + c, k),
                                            _mm256_maskload_ps(beta + c, k)));
    }
}

static void layernorm_fwd_avx2(size_t rows, size_t d, const float *x, size_t ldx,
                               const float *gamma, const float *beta, float eps, float *y,
                               size_t ldy, float *mean, float *rstd)
{
    nu_layernorm_fwd_drive(rows, d, x, ldx, gamma, beta, eps, y, ldy, mean, rstd, ln_stats4,
                           ln_row_out);
}

/* One layernorm_bwd step over 8 lanes of pass 1: row sums and dgamma/dbeta. */
static inline void lnb_pass1(__m256 xv, __m256 dyv, __m256 gv, __m256 m, __m256 s,
                             __m256 *sg, __m256 *sgx, __m256 *dgv, __m256 *dbv)
{
    __m256 xh = _mm256_mul_ps(_mm256_sub_ps(xv, m), s);
    __m256 g = _mm256_mul_ps(dyv, gv);
    *sg = _mm256_add_ps(*sg, g);
    *sgx = _mm256_fmadd_ps(g, xh, *sgx);
    *dgv = _mm256_fmadd_ps(dyv, xh, *dgv);
    *dbv = _mm256_add_ps(*dbv, dyv);
}

static void layernorm_bwd_avx2(size_t rows, size_t d, const float *x, size_t ldx,
                               const float *gamma, const float *mean, const float *rstd,
                               const float *dy, size_t lddy, float *dx, size_t lddx,
                               float *dgamma, float *dbeta)
{
    if (d == 0)
        return;
    const __m256i kt = tail_mask(d % W);
    const size_t dv = d - d % W;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const __m256 m = _mm256_set1_ps(mean[r]), s = _mm256_set1_ps(rstd[r]);
        __m256 sg = _mm256_setzero_ps(), sgx = sg;
        size_t c = 0;
        for (; c < dv; c += W) {
            __m256 dgv = _mm256_loadu_ps(dgamma + c), dbv = _mm256_loadu_ps(dbeta + c);
            lnb_pass1(_mm256_loadu_ps(xr + c), _mm256_loadu_ps(dyr + c),
                      _mm256_loadu_ps(gamma + c), m, s, &sg, &sgx, &dgv, &dbv);
            _mm256_storeu_ps(dgamma + c, dgv);
            _mm256_storeu_ps(dbeta + c, dbv);
        }
        if (c < d) {
            /* Masked-out lanes load dy = 0, so they add nothing to the sums. */
            __m256 dgv = _mm256_maskload_ps(dgamma + c, kt);
            __m256 dbv = _mm256_maskload_ps(dbeta + c, kt);
            lnb_pass1(_mm256_maskload_ps(xr + c, kt), _mm256_maskload_ps(dyr + c, kt),
                      _mm256_maskload_ps(gamma + c, kt), m, s, &sg, &sgx, &dgv, &dbv);
            _mm256_maskstore_ps(dgamma + c, kt, dgv);
            _mm256_maskstore_ps(dbeta + c, kt, dbv);
        }
        const __m256 mg = _mm256_set1_ps(hsum(sg) / (float)d);
        const __m256 mgx = _mm256_set1_ps(hsum(sgx) / (float)d);
        for (c = 0; c < d; c += W) {
            const int tail = c >= dv;
            __m256 xv = tail ? _mm256_maskload_ps(xr + c, kt) : _mm256_loadu_ps(xr + c);
            __m256 dyv = tail ? _mm256_maskload_ps(dyr + c, kt) : _mm256_loadu_ps(dyr + c);
            __m256 gv = tail ? _mm256_maskload_ps(gamma + c, kt) : _mm256_loadu_ps(gamma + c);
            __m256 dxv = tail ? _mm256_maskload_ps(dxr + c, kt) : _mm256_loadu_ps(dxr + c);
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(xv, m), s);
            __m256 u = _mm256_sub_ps(_mm256_mul_ps(dyv, gv), mg);
            u = _mm256_fnmadd_ps(xh, mgx, u);
            dxv = _mm256_fmadd_ps(s, u, dxv);
            if (tail)
                _mm256_maskstore_ps(dxr + c, kt, dxv);
            else
                _mm256_storeu_ps(dxr + c, dxv);
        }
    }
}

/* ---- GELU ---- */

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

/* ---- elementwise and column sums ---- */

static void axpy_avx2(size_t n, float alpha, const float *x, float *y)
{
    const __m256 a = _mm256_set1_ps(alpha);
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        __m256 y0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        __m256 y1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i + W), _mm256_loadu_ps(y + i + W));
        __m256 y2 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i + 2 * W),
                                    _mm256_loadu_ps(y + i + 2 * W));
        __m256 y3 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i + 3 * W),
                                    _mm256_loadu_ps(y + i + 3 * W));
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + W, y1);
        _mm256_storeu_ps(y + i + 2 * W, y2);
        _mm256_storeu_ps(y + i + 3 * W, y3);
    }
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, k, _mm256_fmadd_ps(a, _mm256_maskload_ps(x + i, k),
                                                      _mm256_maskload_ps(y + i, k)));
    }
}

static void add_bias_rows_avx2(size_t rows, size_t n, float *x, size_t ldx, const float *bias)
{
    const __m256i kt = tail_mask(n % W);
    const size_t nv = n - n % W;
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        size_t c = 0;
        for (; c < nv; c += W)
            _mm256_storeu_ps(xr + c, _mm256_add_ps(_mm256_loadu_ps(xr + c),
                                                   _mm256_loadu_ps(bias + c)));
        if (c < n)
            _mm256_maskstore_ps(xr + c, kt, _mm256_add_ps(_mm256_maskload_ps(xr + c, kt),
                                                          _mm256_maskload_ps(bias + c, kt)));
    }
}

/* Column blocks of 32 held in registers over all rows; rows are added in
 * order starting from dbias, the same order as the scalar reference. */
static void sum_rows_avx2(size_t rows, size_t n, const float *dy, size_t lddy, float *dbias)
{
    if (rows == 0)
        return;
    size_t c = 0;
    for (; c + 4 * W <= n; c += 4 * W) {
        __m256 a0 = _mm256_loadu_ps(dbias + c), a1 = _mm256_loadu_ps(dbias + c + W);
        __m256 a2 = _mm256_loadu_ps(dbias + c + 2 * W), a3 = _mm256_loadu_ps(dbias + c + 3 * W);
        for (size_t r = 0; r < rows; r++) {
            const float *p = dy + r * lddy + c;
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + W));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + 2 * W));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + 3 * W));
        }
        _mm256_storeu_ps(dbias + c, a0);
        _mm256_storeu_ps(dbias + c + W, a1);
        _mm256_storeu_ps(dbias + c + 2 * W, a2);
        _mm256_storeu_ps(dbias + c + 3 * W, a3);
    }
    for (; c < n; c += W) {
        __m256i k = tail_mask(n - c < W ? n - c : W);
        __m256 a = _mm256_maskload_ps(dbias + c, k);
        for (size_t r = 0; r < rows; r++)
            a = _mm256_add_ps(a, _mm256_maskload_ps(dy + r * lddy + c, k));
        _mm256_maskstore_ps(dbias + c, k, a);
    }
}

/* ---- L2 normalisation ---- */

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

/* y = x * s over one row (y may alias x). */
static inline void row_scale(size_t d, const float *x, float s, float *y)
{
    const __m256 sv = _mm256_set1_ps(s);
    size_t c = 0;
    for (; c + W <= d; c += W)
        _mm256_storeu_ps(y + c, _mm256_mul_ps(_mm256_loadu_ps(x + c), sv));
    if (c < d) {
        __m256i k = tail_mask(d - c);
        _mm256_maskstore_ps(y + c, k, _mm256_mul_ps(_mm256_maskload_ps(x + c, k), sv));
    }
}

static void l2norm_fwd_avx2(size_t rows, size_t d, const float *x, size_t ldx, float eps,
                            float *y, size_t ldy, float *norm)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        const float nr = sqrtf(row_dot(d, xr, xr));
        row_scale(d, xr, 1.0f / (nr > eps ? nr : eps), y + r * ldy);
        if (norm)
            norm[r] = nr;
    }
}

static void l2norm_bwd_avx2(size_t rows, size_t d, const float *y, size_t ldy,
                            const float *norm, float eps, const float *dy, size_t lddy,
                            float *dx, size_t lddx)
{
    const __m256i kt = tail_mask(d % W);
    const size_t dv = d - d % W;
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const int live = norm[r] > eps;
        /* Clamped rows: y = x / eps is linear, so dx += dy / eps (yd = 0). */
        const __m256 yd = _mm256_set1_ps(live ? row_dot(d, yr, dyr) : 0.0f);
        const __m256 inv = _mm256_set1_ps(1.0f / (live ? norm[r] : eps));
        for (size_t c = 0; c < d; c += W) {
            const int tail = c >= dv;
            __m256 yv = tail ? _mm256_maskload_ps(yr + c, kt) : _mm256_loadu_ps(yr + c);
            __m256 dyv = tail ? _mm256_maskload_ps(dyr + c, kt) : _mm256_loadu_ps(dyr + c);
            __m256 dxv = tail ? _mm256_maskload_ps(dxr + c, kt) : _mm256_loadu_ps(dxr + c);
            dxv = _mm256_fmadd_ps(_mm256_fnmadd_ps(yv, yd, dyv), inv, dxv);
            if (tail)
                _mm256_maskstore_ps(dxr + c, kt, dxv);
            else
                _mm256_storeu_ps(dxr + c, dxv);
        }
    }
}

/* ---- softmax pieces ---- */

static float logsumexp_avx2(size_t n, const float *x)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m0 = ninf, m1 = ninf, nan = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + W);
        /* maxps drops NaN, so NaNs are tracked on the side. */
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
        m0 = _mm256_max_ps(m0, a);
        m1 = _mm256_max_ps(m1, b);
    }
    for (; i < n; i += W) {
        __m256i k = tail_mask(n - i < W ? n - i : W);
        __m256 a = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, k), _mm256_castsi256_ps(k));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        m0 = _mm256_max_ps(m0, a);
    }
    if (_mm256_movemask_ps(nan))
        return NAN;
    const float m = hmax(_mm256_max_ps(m0, m1));
    if (isinf(m)) /* n == 0 or all -inf: -inf; any +inf: +inf */
        return m;
    const __m256 mv = _mm256_set1_ps(m);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (i = 0; i + 2 * W <= n; i += 2 * W) {
        s0 = _mm256_add_ps(s0, Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)));
        s1 = _mm256_add_ps(s1,
                           Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + W), mv)));
    }
    for (; i < n; i += W) {
        __m256i k = tail_mask(n - i < W ? n - i : W);
        __m256 a = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, k), _mm256_castsi256_ps(k));
        s0 = _mm256_add_ps(s0, Sleef_expf8_u10avx2(_mm256_sub_ps(a, mv)));
    }
    return m + logf(hsum(_mm256_add_ps(s0, s1)));
}

static void exp_shift_avx2(size_t n, const float *x, float shift, float *y)
{
    const __m256 s = _mm256_set1_ps(shift);
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(y + i, Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
    if (i < n) {
        __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, k,
                            Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), s)));
    }
}

/* One block of 8: adds the loss terms of the lanes in k to acc (two double
 * vectors) and returns sigmoid(x) - l.  Full blocks skip the masked memory
 * ops (a masked store is slow on AMD). */
static inline __m256 xent8(__m256 x, __m256 l, __m256 k, __m256d acc[2])
{
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 e = Sleef_expf8_u10avx2(_mm256_sub_ps(zero, ax)); /* (0, 1] */
    __m256 term = _mm256_fnmadd_ps(x, l, _mm256_max_ps(x, zero));
    term = _mm256_add_ps(term, Sleef_log1pf8_u10avx2(e));
    term = _mm256_and_ps(term, k); /* off lanes add 0 */
    acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(term)));
    acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(term, 1)));
    __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
    return _mm256_sub_ps(_mm256_div_ps(num, _mm256_add_ps(one, e)), l);
}

static double sigmoid_xent_avx2(size_t n, const float *logits, const float *labels,
                                float *dlogits)
{
    __m256d acc[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    const __m256 all = _mm256_castsi256_ps(tail_mask(W));
    size_t i = 0;
    for (; i + W <= n; i += W) {
        __m256 g = xent8(_mm256_loadu_ps(logits + i), _mm256_loadu_ps(labels + i), all, acc);
        if (dlogits)
            _mm256_storeu_ps(dlogits + i, g);
    }
    if (i < n) {
        __m256i k = tail_mask(n - i);
        __m256 g = xent8(_mm256_maskload_ps(logits + i, k), _mm256_maskload_ps(labels + i, k),
                         _mm256_castsi256_ps(k), acc);
        if (dlogits)
            _mm256_maskstore_ps(dlogits + i, k, g);
    }
    __m256d s = _mm256_add_pd(acc[0], acc[1]);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

/* ---- dot products of one vector with many rows ---- */

/* Four rows at once: x is loaded once per 4 rows and the 4 horizontal sums
 * share one shuffle tree.  Two accumulators per row cover the FMA latency. */
static void dot_rows_avx2(size_t rows, size_t d, const float *x, const float *T, size_t ldt,
                          float *out)
{
    const __m256i kt = tail_mask(d % W);
    const size_t dv = d - d % W;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *t0 = T + r * ldt, *t1 = t0 + ldt, *t2 = t1 + ldt, *t3 = t2 + ldt;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        size_t c = 0;
        for (; c + 2 * W <= dv; c += 2 * W) {
            __m256 xa = _mm256_loadu_ps(x + c), xb = _mm256_loadu_ps(x + c + W);
            a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t0 + c), a0);
            a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t1 + c), a1);
            a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t2 + c), a2);
            a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t3 + c), a3);
            b0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t0 + c + W), b0);
            b1 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t1 + c + W), b1);
            b2 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t2 + c + W), b2);
            b3 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t3 + c + W), b3);
        }
        if (c < dv) {
            __m256 xa = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t0 + c), a0);
            a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t1 + c), a1);
            a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t2 + c), a2);
            a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t3 + c), a3);
            c += W;
        }
        if (c < d) {
            __m256 xa = _mm256_maskload_ps(x + c, kt);
            b0 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t0 + c, kt), b0);
            b1 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t1 + c, kt), b1);
            b2 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t2 + c, kt), b2);
            b3 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t3 + c, kt), b3);
        }
        _mm_storeu_ps(out + r, hsum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1),
                                     _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3)));
    }
    for (; r < rows; r++)
        out[r] = row_dot(d, x, T + r * ldt);
}

void nu_fill_norm_avx2(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_avx2;
    t->layernorm_bwd = layernorm_bwd_avx2;
    t->gelu_fwd = gelu_fwd_avx2;
    t->gelu_bwd = gelu_bwd_avx2;
    t->axpy = axpy_avx2;
    t->add_bias_rows = add_bias_rows_avx2;
    t->sum_rows = sum_rows_avx2;
    t->l2norm_fwd = l2norm_fwd_avx2;
    t->l2norm_bwd = l2norm_bwd_avx2;
    t->logsumexp = logsumexp_avx2;
    t->exp_shift = exp_shift_avx2;
    t->sigmoid_xent = sigmoid_xent_avx2;
    t->dot_rows = dot_rows_avx2;
}
