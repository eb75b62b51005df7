/* Masked multi-head attention, NEON (4 floats per q register; dh = 16 is
 * four): the vector primitives of the shared driver
 * (kernels/attention_drive.h has the plan).  A score block is up to 4 key
 * vectors per query (4 queries x 4 = 16 accumulators of 32 registers).  NEON
 * has no masked memory ops: partial vectors of a score row go through a
 * small stack array, dh tails through the driver's scalar loops, and keys
 * are transposed element by element. */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../kernels.h"

#define NU_ATT_ISA neon
#define NU_ATT_W 4
#define NU_ATT_NB_MAX 4
#define NU_ATT_MASKED 0
#define NU_ATT_REG_TRANSPOSE 0

typedef float32x4_t att_v;
typedef size_t att_m; /* the number of lanes, < 4 */

static inline att_v att_zero(void) { return vdupq_n_f32(0.0f); }
static inline att_v att_set1(float s) { return vdupq_n_f32(s); }
static inline att_v att_load(const float *p) { return vld1q_f32(p); }
static inline void att_store(float *p, att_v v) { vst1q_f32(p, v); }
static inline att_v att_add(att_v a, att_v b) { return vaddq_f32(a, b); }
static inline att_v att_sub(att_v a, att_v b) { return vsubq_f32(a, b); }
static inline att_v att_mul(att_v a, att_v b) { return vmulq_f32(a, b); }
static inline att_v att_max(att_v a, att_v b) { return vmaxq_f32(a, b); }
static inline att_v att_mul_n(att_v v, float s) { return vmulq_n_f32(v, s); }
static inline att_v att_fma(att_v acc, att_v a, att_v b) { return vfmaq_f32(acc, a, b); }
static inline att_v att_fma_n(att_v acc, att_v v, float s) { return vfmaq_n_f32(acc, v, s); }
static inline float att_hsum(att_v v) { return vaddvq_f32(v); }
static inline float att_hmax(att_v v) { return vmaxvq_f32(v); }
static inline att_v att_exp(att_v v) { return Sleef_expf4_u10advsimd(v); }
static inline att_m att_tail(size_t rem) { return rem; }

/* rem floats from p, the other lanes `fill`. */
static inline att_v load_tail(const float *p, size_t rem, float fill)
{
    float t[NU_ATT_W] = {fill, fill, fill, fill};
    memcpy(t, p, rem * sizeof(float));
    return vld1q_f32(t);
}

static inline att_v att_loadm(const float *p, att_m rem) { return load_tail(p, rem, 0.0f); }
static inline att_v att_loadm_ninf(const float *p, att_m rem)
{
    return load_tail(p, rem, -INFINITY);
}

static inline void att_storem(float *p, att_m rem, att_v v)
{
    float t[NU_ATT_W];
    vst1q_f32(t, v);
    memcpy(p, t, rem * sizeof(float));
}

/* scale * acc in the lanes of the 4 keys from j whose index lies in [lo, hi). */
static inline att_v att_score_range(att_v acc, float scale, size_t lo, size_t hi, size_t j)
{
    static const uint32_t lane[NU_ATT_W] = {0, 1, 2, 3};
    uint32x4_t idx = vaddq_u32(vdupq_n_u32((uint32_t)j), vld1q_u32(lane));
    uint32x4_t in = vandq_u32(vcgeq_u32(idx, vdupq_n_u32((uint32_t)lo)),
                              vcltq_u32(idx, vdupq_n_u32((uint32_t)hi)));
    return vbslq_f32(in, vmulq_n_f32(acc, scale), vdupq_n_f32(-INFINITY));
}

/* Two chains of two products each, summed once. */
static inline float att_dot16(const att_v *q, const float *x)
{
    float32x4_t p0 = vmulq_f32(q[0], vld1q_f32(x)), p1 = vmulq_f32(q[1], vld1q_f32(x + 4));
    p0 = vfmaq_f32(p0, q[2], vld1q_f32(x + 8));
    p1 = vfmaq_f32(p1, q[3], vld1q_f32(x + 12));
    return vaddvq_f32(vaddq_f32(p0, p1));
}

#include "../attention_drive.h"

void nu_fill_attention_neon(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_neon;
    t->attention_fwd16 = attention_fwd_neon; /* no dh = 16 path of its own */
    t->attention_bwd = attention_bwd_neon;
}
