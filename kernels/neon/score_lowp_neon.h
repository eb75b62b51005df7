/* Internal to the NEON score_lowp files: the shared context, the 4-row
 * reduction and the candidate test (inlined with each file's flags). */
#ifndef NU_SIMD_NEON_SCORE_LOWP_H
#define NU_SIMD_NEON_SCORE_LOWP_H

#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "../kernels.h"
#include "../topk.h"

typedef struct lowp_ctx {
    size_t d;
    const void *Q;
    size_t ldq;
    const float *qscale;
    const void *T;
    size_t ldt;
    const float *row_scale;
    uint32_t row_base;
    size_t K;
    const nu_id_list *exclude;
    uint32_t *ids;
    float *scores;
} lowp_ctx;

/* Candidate lanes as bits: s > thr, or any non-NaN s while thr is -inf. */
static inline unsigned lowp_beats(float32x4_t s, float thr)
{
    static const uint32_t lane_bit[4] = {1, 2, 4, 8};
    uint32x4_t m = thr == -INFINITY ? vceqq_f32(s, s) : vcgtq_f32(s, vdupq_n_f32(thr));
    return vaddvq_u32(vandq_u32(m, vld1q_u32(lane_bit)));
}

/* The contract's int8 score of rows r..r+3 from their exact dots (lanes
 * past nr are don't-care). */
static inline float32x4_t lowp_i8_scores(const lowp_ctx *c, int32x4_t dot, size_t b, size_t r,
                                         size_t nr)
{
    float rs[4] = {0, 0, 0, 0};
    memcpy(rs, c->row_scale + r, nr * sizeof(float));
    return vmulq_n_f32(vmulq_f32(vcvtq_f32_s32(dot), vld1q_f32(rs)), c->qscale[b]);
}

/* Offers the candidates among 4 scores of rows r..r+nr-1 for query b;
 * returns the new threshold. */
static inline float lowp_offer4(const lowp_ctx *c, size_t b, float32x4_t s, size_t r,
                                size_t nr, float thr)
{
    unsigned m = lowp_beats(s, thr) & ((1u << nr) - 1);
    if (!m)
        return thr;
    float sc[4];
    vst1q_f32(sc, s);
    return nu_topk_consider_mask(c->scores + b * c->K, c->ids + b * c->K, c->K,
                                 nu_topk_list(c->exclude, b), sc, m,
                                 c->row_base + (uint32_t)r);
}

/* In score_lowp_neon_dotprod.c: int8 single-query pass with SDOT (run only
 * after the asimd_dotprod check); ctx is a lowp_ctx. */
void nu_lowp_neon_sdot_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1);

#endif
