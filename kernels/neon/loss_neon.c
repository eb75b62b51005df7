/* logsumexp, exp_shift and sigmoid_xent, NEON (aarch64 Advanced SIMD).
 * 4 floats a vector; tails go through a small stack buffer (NEON has no
 * masked loads), so nothing past the end is read or written.
 * Transcendentals from SLEEF's advsimd u10 functions (1 ulp).  logsumexp
 * sums in fp32 with two accumulators; sigmoid_xent sums in double. */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"
#include "vec_neon.h"

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

void nu_fill_loss_neon(nu_kernel_table *t)
{
    t->logsumexp = logsumexp_neon;
    t->exp_shift = exp_shift_neon;
    t->sigmoid_xent = sigmoid_xent_neon;
}
