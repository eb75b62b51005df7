/* Layernorm and L2 normalisation, forward and backward, NEON (aarch64
 * Advanced SIMD).  4 floats a vector; tails go through a small stack buffer
 * or a scalar loop (NEON has no masked loads), so nothing past the end is
 * read or written.  Row reductions are fp32 with several accumulators. */
#include <arm_neon.h>
#include <math.h>

#include "../kernels.h"
#include "vec_neon.h"

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

/* ---- L2 normalisation ---- */

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

void nu_fill_layernorm_neon(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_neon;
    t->layernorm_bwd = layernorm_bwd_neon;
    t->l2norm_fwd = l2norm_fwd_neon;
    t->l2norm_bwd = l2norm_bwd_neon;
}
