/* Roofline reference loops, NEON: independent FMA chains and a
 * multi-accumulator streaming read. */
#include <arm_neon.h>

#include "../kernels.h"

#define CHAINS 12

static float peak_fma_neon(size_t iters)
{
    float32x4_t acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = vdupq_n_f32((float)c * 0.001f);
    const float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-7f);
    for (size_t i = 0; i < iters; i++) {
        for (int c = 0; c < CHAINS; c++)
            acc[c] = vfmaq_f32(b, acc[c], a);
    }
    float32x4_t s = acc[0];
    for (int c = 1; c < CHAINS; c++)
        s = vaddq_f32(s, acc[c]);
    return vaddvq_f32(s);
}

static float stream_sum_neon(size_t n, const float *x)
{
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vaddq_f32(s0, vld1q_f32(x + i));
        s1 = vaddq_f32(s1, vld1q_f32(x + i + 4));
        s2 = vaddq_f32(s2, vld1q_f32(x + i + 8));
        s3 = vaddq_f32(s3, vld1q_f32(x + i + 12));
    }
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++)
        r += x[i];
    return r;
}

void nu_fill_peak_neon(nu_kernel_table *t)
{
    t->peak_fma = peak_fma_neon;
    t->peak_fma_flops_per_iter = 2 * CHAINS * 4;
    t->stream_sum = stream_sum_neon;
}
