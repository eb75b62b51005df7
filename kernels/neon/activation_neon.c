/* GELU forward and backward, NEON (aarch64 Advanced SIMD).  4 floats a
 * vector; tails go through a small stack buffer (NEON has no masked loads),
 * so nothing past the end is read or written.  exp from SLEEF's advsimd u10
 * function (1 ulp), erf from the rational approximation below. */
#include <arm_neon.h>
#include <sleef.h>

#include "../kernels.h"
#include "vec_neon.h"

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

void nu_fill_activation_neon(nu_kernel_table *t)
{
    t->gelu_fwd = gelu_fwd_neon;
    t->gelu_bwd = gelu_bwd_neon;
}
