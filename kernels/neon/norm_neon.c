/* Normalisation, activations, elementwise ops and reductions, NEON (aarch64
 * Advanced SIMD).  4 floats a vector; tails go through a small stack buffer
 * (NEON has no masked loads), so nothing past the end is read or written.
 * Transcendentals from SLEEF's advsimd u10 functions (1 ulp).  Reductions are
 * fp32 with several accumulators, except sigmoid_xent, which sums in double. */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../kernels.h"

#define W 4

/* The first r (< 4) floats of p, other lanes `fill`. */
static inline float32x4_t load_part(const float *p, size_t r, float fill)
{
    float b[W] = {fill, fill, fill, fill};
    memcpy(b, p, r * sizeof(float));
    return vld1q_f32(b);
}

static inline void store_part(float *p, size_t r, float32x4_t v)
{
    float b[W];
    vst1q_f32(b, v);
    memcpy(p, b, r * sizeof(float));
}

/* Four horizontal sums at once: lane k of the result is the sum of a_k. */
static inline float32x4_t hsum4(float32x4_t a0, float32x4_t a1, float32x4_t a2,
                                float32x4_t a3)
{
    return vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));
}

/* ---- layernorm ---- */

static inline float row_sum(size_t d, const float *x)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        s0 = vaddq_f32(s0, vld1q_f32(x + c));
        s1 = vaddq_f32(s1, vld1q_f32(x + c + W));
    }
    for (; c + W <= d; c += W)
        s0 = vaddq_f32(s0, vld1q_f32(x + c));
    if (c < d)
        s1 = vaddq_f32(s1, load_part(x + c, d - c, 0.0f));
    return vaddvq_f32(vaddq_f32(s0, s1));
}

/* Two-pass variance: the centred sum avoids sum(x^2) - mean^2 cancellation. */
static inline float row_var(size_t d, const float *x, float mean)
{
    const float32x4_t m = vdupq_n_f32(mean);
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        float32x4_t a = vsubq_f32(vld1q_f32(x + c), m);
        float32x4_t b = vsubq_f32(vld1q_f32(x + c + W), m);
        s0 = vfmaq_f32(s0, a, a);
        s1 = vfmaq_f32(s1, b, b);
    }
    for (; c + W <= d; c += W) {
        float32x4_t a = vsubq_f32(vld1q_f32(x + c), m);
        s0 = vfmaq_f32(s0, a, a);
    }
    if (c < d) {
        /* Pad with the mean so the padding lanes add exactly 0. */
        float32x4_t a = vsubq_f32(load_part(x + c, d - c, mean), m);
        s1 = vfmaq_f32(s1, a, a);
    }
    return vaddvq_f32(vaddq_f32(s0, s1)) / (float)d;
}

static inline float32x4_t ln_out(float32x4_t xv, float32x4_t m, float32x4_t s, float32x4_t g,
                                 float32x4_t b)
{
    return vfmaq_f32(b, vmulq_f32(vsubq_f32(xv, m), s), g);
}

static void layernorm_fwd_neon(size_t rows, size_t d, const float *x, size_t ldx,
                               const float *gamma, const float *beta, float eps, float *y,
                               size_t ldy, float *mean, float *rstd)
{
    if (d == 0)
        return;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        const float mu = row_sum(d, xr) / (float)d;
        const float rs = 1.0f / sqrtf(row_var(d, xr, mu) + eps);
        const float32x4_t m = vdupq_n_f32(mu), s = vdupq_n_f32(rs);
        size_t c = 0;
        for (; c + W <= d; c += W)
            vst1q_f32(yr + c, ln_out(vld1q_f32(xr + c), m, s, vld1q_f32(gamma + c),
                                     vld1q_f32(beta + c)));
        if (c < d) {
            const size_t t = d - c;
            store_part(yr + c, t, ln_out(load_part(xr + c, t, 0), m, s,
                                         load_part(gamma + c, t, 0), load_part(beta + c, t, 0)));
        }
        if (mean)
            mean[r] = mu;
        if (rstd)
            rstd[r] = rs;
    }
}

/* The layernorm backward of one row on plain pointers of d floats; vector
 * body plus a scalar tail with the same operations. */
static void layernorm_bwd_row(size_t d, const float *xr, const float *gamma, float mu, float rs,
                              const float *dyr, float *dxr, float *dgamma, float *dbeta)
{
    const float32x4_t m = vdupq_n_f32(mu), s = vdupq_n_f32(rs);
    float32x4_t sg = vdupq_n_f32(0), sgx = sg;
    const size_t dv = d - d % W;
    for (size_t c = 0; c < dv; c += W) {
        float32x4_t dyv = vld1q_f32(dyr + c);
        float32x4_t xh = vmulq_f32(vsubq_f32(vld1q_f32(xr + c), m), s);
        float32x4_t g = vmulq_f32(dyv, vld1q_f32(gamma + c));
        sg = vaddq_f32(sg, g);
        sgx = vfmaq_f32(sgx, g, xh);
        vst1q_f32(dgamma + c, vfmaq_f32(vld1q_f32(dgamma + c), dyv, xh));
        vst1q_f32(dbeta + c, vaddq_f32(vld1q_f32(dbeta + c), dyv));
    }
    float tg = vaddvq_f32(sg), tgx = vaddvq_f32(sgx);
    for (size_t c = dv; c < d; c++) {
        const float xh = (xr[c] - mu) * rs, g = dyr[c] * gamma[c];
        tg += g;
        tgx += g * xh;
        dgamma[c] += dyr[c] * xh;
        dbeta[c] += dyr[c];
    }
    const float mg = tg / (float)d, mgx = tgx / (float)d;
    const float32x4_t mgv = vdupq_n_f32(mg), mgxv = vdupq_n_f32(mgx);
    for (size_t c = 0; c < dv; c += W) {
        float32x4_t xh = vmulq_f32(vsubq_f32(vld1q_f32(xr + c), m), s);
        float32x4_t u = vsubq_f32(vmulq_f32(vld1q_f32(dyr + c), vld1q_f32(gamma + c)), mgv);
        u = vfmsq_f32(u, xh, mgxv);
        vst1q_f32(dxr + c, vfmaq_f32(vld1q_f32(dxr + c), s, u));
    }
    for (size_t c = dv; c < d; c++) {
        const float xh = (xr[c] - mu) * rs, g = dyr[c] * gamma[c];
        dxr[c] += rs * (g - mg - xh * mgx);
    }
}

static void layernorm_bwd_neon(size_t rows, size_t d, const float *x, size_t ldx,
                               const float *gamma, const float *mean, const float *rstd,
                               const float *dy, size_t lddy, float *dx, size_t lddx,
                               float *dgamma, float *dbeta)
{
    if (d == 0)
        return;
    for (size_t r = 0; r < rows; r++)
        layernorm_bwd_row(d, x + r * ldx, gamma, mean[r], rstd[r], dy + r * lddy,
                          dx + r * lddx, dgamma, dbeta);
}

/* ---- GELU ---- */

/* erf for the GELU: Hastings' rational approximation (Abramowitz & Stegun
 * 7.1.26), |error| <= 1.5e-7 absolute, several times cheaper than SLEEF's
 * erff.  GELU adds erf to 1, so an absolute bound is what matters; the
 * result stays within the tests' tolerance of the exact erf.  e = exp(-z*z)
 * is passed in so the backward reuses it for the normal density. */
static inline float32x4_t erf_hastings4(float32x4_t z, float32x4_t e)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t t = vdivq_f32(one, vfmaq_n_f32(one, vabsq_f32(z), 0.3275911f));
    float32x4_t poly = vfmaq_n_f32(vdupq_n_f32(-1.453152027f), t, 1.061405429f);
    poly = vfmaq_f32(vdupq_n_f32(1.421413741f), t, poly);
    poly = vfmaq_f32(vdupq_n_f32(-0.284496736f), t, poly);
    poly = vfmaq_f32(vdupq_n_f32(0.254829592f), t, poly);
    float32x4_t r = vfmsq_f32(one, vmulq_f32(poly, t), e);
    /* odd function: take the sign of z */
    uint32x4_t sign = vdupq_n_u32(0x80000000u);
    return vbslq_f32(sign, z, r);
}

/* z = x / sqrt(2) and exp(-z^2) = exp(-x^2 / 2), shared by the erf and the density. */
static inline float32x4_t gauss4(float32x4_t x, float32x4_t *z)
{
    *z = vmulq_n_f32(x, 0.70710678118654752f);
    return Sleef_expf4_u10advsimd(vmulq_n_f32(vmulq_f32(x, x), -0.5f));
}

static inline float32x4_t gelu4(float32x4_t x)
{
    const float32x4_t h = vmulq_n_f32(x, 0.5f);
    float32x4_t z, g = gauss4(x, &z);
    return vfmaq_f32(h, h, erf_hastings4(z, g));
}

static void gelu_fwd_neon(size_t n, const float *x, float *y)
{
    size_t i = 0;
    for (; i + W <= n; i += W)
        vst1q_f32(y + i, gelu4(vld1q_f32(x + i)));
    if (i < n)
        store_part(y + i, n - i, gelu4(load_part(x + i, n - i, 0)));
}

/* dy * (Phi(x) + x phi(x)). */
static inline float32x4_t gelu_grad4(float32x4_t x, float32x4_t dy)
{
    const float32x4_t half = vdupq_n_f32(0.5f);
    float32x4_t z, g = gauss4(x, &z);
    float32x4_t cdf = vfmaq_f32(half, half, erf_hastings4(z, g));
    float32x4_t pdf = vmulq_n_f32(g, 0.39894228040143268f);
    return vmulq_f32(dy, vfmaq_f32(cdf, x, pdf));
}

static void gelu_bwd_neon(size_t n, const float *x, const float *dy, float *dx)
{
    size_t i = 0;
    for (; i + W <= n; i += W)
        vst1q_f32(dx + i, gelu_grad4(vld1q_f32(x + i), vld1q_f32(dy + i)));
    if (i < n)
        store_part(dx + i, n - i,
                   gelu_grad4(load_part(x + i, n - i, 0), load_part(dy + i, n - i, 0)));
}

/* ---- elementwise and column sums ---- */

static void axpy_neon(size_t n, float alpha, const float *x, float *y)
{
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        float32x4_t y0 = vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha);
        float32x4_t y1 = vfmaq_n_f32(vld1q_f32(y + i + W), vld1q_f32(x + i + W), alpha);
        float32x4_t y2 = vfmaq_n_f32(vld1q_f32(y + i + 2 * W), vld1q_f32(x + i + 2 * W), alpha);
        float32x4_t y3 = vfmaq_n_f32(vld1q_f32(y + i + 3 * W), vld1q_f32(x + i + 3 * W), alpha);
        vst1q_f32(y + i, y0);
        vst1q_f32(y + i + W, y1);
        vst1q_f32(y + i + 2 * W, y2);
        vst1q_f32(y + i + 3 * W, y3);
    }
    for (; i + W <= n; i += W)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha));
    for (; i < n; i++)
        y[i] = fmaf(alpha, x[i], y[i]);
}

static void add_bias_rows_neon(size_t rows, size_t n, float *x, size_t ldx, const float *bias)
{
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        size_t c = 0;
        for (; c + W <= n; c += W)
            vst1q_f32(xr + c, vaddq_f32(vld1q_f32(xr + c), vld1q_f32(bias + c)));
        for (; c < n; c++)
            xr[c] += bias[c];
    }
}

/* Column blocks of 16 held in registers over all rows; rows are added in
 * order starting from dbias, the same order as the scalar reference. */
static void sum_rows_neon(size_t rows, size_t n, const float *dy, size_t lddy, float *dbias)
{
    if (rows == 0)
        return;
    size_t c = 0;
    for (; c + 4 * W <= n; c += 4 * W) {
        float32x4_t a0 = vld1q_f32(dbias + c), a1 = vld1q_f32(dbias + c + W);
        float32x4_t a2 = vld1q_f32(dbias + c + 2 * W), a3 = vld1q_f32(dbias + c + 3 * W);
        for (size_t r = 0; r < rows; r++) {
            const float *p = dy + r * lddy + c;
            a0 = vaddq_f32(a0, vld1q_f32(p));
            a1 = vaddq_f32(a1, vld1q_f32(p + W));
            a2 = vaddq_f32(a2, vld1q_f32(p + 2 * W));
            a3 = vaddq_f32(a3, vld1q_f32(p + 3 * W));
        }
        vst1q_f32(dbias + c, a0);
        vst1q_f32(dbias + c + W, a1);
        vst1q_f32(dbias + c + 2 * W, a2);
        vst1q_f32(dbias + c + 3 * W, a3);
    }
    for (; c + W <= n; c += W) {
        float32x4_t a = vld1q_f32(dbias + c);
        for (size_t r = 0; r < rows; r++)
            a = vaddq_f32(a, vld1q_f32(dy + r * lddy + c));
        vst1q_f32(dbias + c, a);
    }
    for (; c < n; c++)
        for (size_t r = 0; r < rows; r++)
            dbias[c] += dy[r * lddy + c];
}

/* ---- L2 normalisation ---- */

static inline float row_dot(size_t d, const float *a, const float *b)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    size_t c = 0;
    for (; c + 2 * W <= d; c += 2 * W) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + c), vld1q_f32(b + c));
        s1 = vfmaq_f32(s1, vld1q_f32(a + c + W), vld1q_f32(b + c + W));
    }
    for (; c + W <= d; c += W)
        s0 = vfmaq_f32(s0, vld1q_f32(a + c), vld1q_f32(b + c));
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; c < d; c++)
        s = fmaf(a[c], b[c], s);
    return s;
}

static void l2norm_fwd_neon(size_t rows, size_t d, const float *x, size_t ldx, float eps,
                            float *y, size_t ldy, float *norm)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        const float nr = sqrtf(row_dot(d, xr, xr));
        const float inv = 1.0f / (nr > eps ? nr : eps);
        size_t c = 0;
        for (; c + W <= d; c += W)
            vst1q_f32(yr + c, vmulq_n_f32(vld1q_f32(xr + c), inv));
        for (; c < d; c++)
            yr[c] = xr[c] * inv;
        if (norm)
            norm[r] = nr;
    }
}

static void l2norm_bwd_neon(size_t rows, size_t d, const float *y, size_t ldy,
                            const float *norm, float eps, const float *dy, size_t lddy,
                            float *dx, size_t lddx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const int live = norm[r] > eps;
        /* Clamped rows: y = x / eps is linear, so dx += dy / eps (yd = 0). */
        const float yd = live ? row_dot(d, yr, dyr) : 0.0f;
        const float inv = 1.0f / (live ? norm[r] : eps);
        const float32x4_t ydv = vdupq_n_f32(yd);
        size_t c = 0;
        for (; c + W <= d; c += W) {
            float32x4_t u = vfmsq_f32(vld1q_f32(dyr + c), vld1q_f32(yr + c), ydv);
            vst1q_f32(dxr + c, vfmaq_n_f32(vld1q_f32(dxr + c), u, inv));
        }
        for (; c < d; c++)
            dxr[c] = fmaf(fmaf(-yr[c], yd, dyr[c]), inv, dxr[c]);
    }
}

/* ---- softmax pieces ---- */

static float logsumexp_neon(size_t n, const float *x)
{
    const float32x4_t ninf = vdupq_n_f32(-INFINITY);
    /* FMAX propagates NaN, so a NaN input shows up in the max. */
    float32x4_t m0 = ninf, m1 = ninf;
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        m0 = vmaxq_f32(m0, vld1q_f32(x + i));
        m1 = vmaxq_f32(m1, vld1q_f32(x + i + W));
    }
    for (; i < n; i += W)
        m0 = vmaxq_f32(m0, n - i < W ? load_part(x + i, n - i, -INFINITY) : vld1q_f32(x + i));
    const float m = vmaxvq_f32(vmaxq_f32(m0, m1));
    if (isnan(m))
        return NAN;
    if (isinf(m)) /* n == 0 or all -inf: -inf; any +inf: +inf */
        return m;
    const float32x4_t mv = vdupq_n_f32(m);
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
    for (i = 0; i + 2 * W <= n; i += 2 * W) {
        s0 = vaddq_f32(s0, Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(x + i), mv)));
        s1 = vaddq_f32(s1, Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(x + i + W), mv)));
    }
    for (; i < n; i += W) {
        float32x4_t a = n - i < W ? load_part(x + i, n - i, -INFINITY) : vld1q_f32(x + i);
        s0 = vaddq_f32(s0, Sleef_expf4_u10advsimd(vsubq_f32(a, mv)));
    }
    return m + logf(vaddvq_f32(vaddq_f32(s0, s1)));
}

static void exp_shift_neon(size_t n, const float *x, float shift, float *y)
{
    const float32x4_t s = vdupq_n_f32(shift);
    size_t i = 0;
    for (; i + W <= n; i += W)
        vst1q_f32(y + i, Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(x + i), s)));
    if (i < n)
        store_part(y + i, n - i,
                   Sleef_expf4_u10advsimd(vsubq_f32(load_part(x + i, n - i, 0), s)));
}

/* One block of 4 (the first `live` lanes count): adds the loss terms to acc
 * (two double vectors) and returns sigmoid(x) - l. */
static inline float32x4_t xent4(float32x4_t x, float32x4_t l, uint32x4_t live,
                                float64x2_t acc[2])
{
    const float32x4_t zero = vdupq_n_f32(0), one = vdupq_n_f32(1.0f);
    const float32x4_t e = Sleef_expf4_u10advsimd(vnegq_f32(vabsq_f32(x))); /* (0, 1] */
    float32x4_t term = vfmsq_f32(vmaxq_f32(x, zero), x, l);
    term = vaddq_f32(term, Sleef_log1pf4_u10advsimd(e));
    term = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(term), live));
    acc[0] = vaddq_f64(acc[0], vcvt_f64_f32(vget_low_f32(term)));
    acc[1] = vaddq_f64(acc[1], vcvt_high_f64_f32(term));
    float32x4_t num = vbslq_f32(vcgeq_f32(x, zero), one, e);
    return vsubq_f32(vdivq_f32(num, vaddq_f32(one, e)), l);
}

static double sigmoid_xent_neon(size_t n, const float *logits, const float *labels,
                                float *dlogits)
{
    float64x2_t acc[2] = {vdupq_n_f64(0), vdupq_n_f64(0)};
    const uint32x4_t all = vdupq_n_u32(~0u);
    size_t i = 0;
    for (; i + W <= n; i += W) {
        float32x4_t g = xent4(vld1q_f32(logits + i), vld1q_f32(labels + i), all, acc);
        if (dlogits)
            vst1q_f32(dlogits + i, g);
    }
    if (i < n) {
        const size_t t = n - i;
        const uint32x4_t lane = {0, 1, 2, 3};
        uint32x4_t live = vcltq_u32(lane, vdupq_n_u32((uint32_t)t));
        float32x4_t g = xent4(load_part(logits + i, t, 0), load_part(labels + i, t, 0), live, acc);
        if (dlogits)
            store_part(dlogits + i, t, g);
    }
    return vaddvq_f64(vaddq_f64(acc[0], acc[1]));
}

/* ---- dot products of one vector with many rows ---- */

/* Four rows at once: x is loaded once per 4 rows and the 4 horizontal sums
 * share one pairwise-add tree.  Two accumulators per row cover the FMA
 * latency; a scalar tail finishes each row. */
static void dot_rows_neon(size_t rows, size_t d, const float *x, const float *T, size_t ldt,
                          float *out)
{
    const size_t dv = d - d % W;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *t0 = T + r * ldt, *t1 = t0 + ldt, *t2 = t1 + ldt, *t3 = t2 + ldt;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        size_t c = 0;
        for (; c + 2 * W <= dv; c += 2 * W) {
            float32x4_t xa = vld1q_f32(x + c), xb = vld1q_f32(x + c + W);
            a0 = vfmaq_f32(a0, xa, vld1q_f32(t0 + c));
            a1 = vfmaq_f32(a1, xa, vld1q_f32(t1 + c));
            a2 = vfmaq_f32(a2, xa, vld1q_f32(t2 + c));
            a3 = vfmaq_f32(a3, xa, vld1q_f32(t3 + c));
            b0 = vfmaq_f32(b0, xb, vld1q_f32(t0 + c + W));
            b1 = vfmaq_f32(b1, xb, vld1q_f32(t1 + c + W));
            b2 = vfmaq_f32(b2, xb, vld1q_f32(t2 + c + W));
            b3 = vfmaq_f32(b3, xb, vld1q_f32(t3 + c + W));
        }
        if (c < dv) {
            float32x4_t xa = vld1q_f32(x + c);
            a0 = vfmaq_f32(a0, xa, vld1q_f32(t0 + c));
            a1 = vfmaq_f32(a1, xa, vld1q_f32(t1 + c));
            a2 = vfmaq_f32(a2, xa, vld1q_f32(t2 + c));
            a3 = vfmaq_f32(a3, xa, vld1q_f32(t3 + c));
        }
        float32x4_t s = hsum4(vaddq_f32(a0, b0), vaddq_f32(a1, b1), vaddq_f32(a2, b2),
                              vaddq_f32(a3, b3));
        if (dv < d) {
            float32x4_t tail = vdupq_n_f32(0);
            for (c = dv; c < d; c++) {
                const float tv[W] = {t0[c], t1[c], t2[c], t3[c]};
                tail = vfmaq_n_f32(tail, vld1q_f32(tv), x[c]);
            }
            s = vaddq_f32(s, tail);
        }
        vst1q_f32(out + r, s);
    }
    for (; r < rows; r++)
        out[r] = row_dot(d, x, T + r * ldt);
}

void nu_fill_norm_neon(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_neon;
    t->layernorm_bwd = layernorm_bwd_neon;
    t->gelu_fwd = gelu_fwd_neon;
    t->gelu_bwd = gelu_bwd_neon;
    t->axpy = axpy_neon;
    t->add_bias_rows = add_bias_rows_neon;
    t->sum_rows = sum_rows_neon;
    t->l2norm_fwd = l2norm_fwd_neon;
    t->l2norm_bwd = l2norm_bwd_neon;
    t->logsumexp = logsumexp_neon;
    t->exp_shift = exp_shift_neon;
    t->sigmoid_xent = sigmoid_xent_neon;
    t->dot_rows = dot_rows_neon;
}
