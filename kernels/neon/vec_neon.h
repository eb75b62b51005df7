/* Static inline helpers shared by the NEON layernorm, activation, vector
 * and loss kernels: the vector width W, partial loads and stores for tails
 * (NEON has no masked loads) and a row dot product.  Private to
 * kernels/neon/. */
#ifndef NU_SIMD_NEON_VEC_H
#define NU_SIMD_NEON_VEC_H

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#define W 4 /* floats a vector */

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

/* a . b over d floats: fp32, two accumulators and a scalar tail. */
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

#endif
