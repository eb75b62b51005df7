/* Scoring + top-K on compressed tables (bf16, int8), NEON.
 *
 * One query at a time over L2-sized row blocks (the shared driver
 * nu_topk_drive, topk.c, keeps each block in cache for every query),
 * 4 rows at a time: one accumulator per row, the 4 reduced together by two
 * levels of pairwise adds, one compare against the current K-th best.
 * bf16 rows widen to fp32 by a 16-bit shift (vshll).  int8 rows: vmull_s8
 * (|t q| <= 2^14 fits int16) then pairwise accumulate into int32 (vpadal),
 * exact; with asimd_dotprod, SDOT (score_lowp_neon_dotprod.c) instead.
 * d % 8 (bf16) and d % 16 (int8) tails go through zero-padded copies. */
#include "../cpu.h"
#include "../score_lowp_variants.h"
#include "score_lowp_neon.h"

static inline float32x4_t reduce4_f32(float32x4_t a, float32x4_t b, float32x4_t c,
                                      float32x4_t e)
{
    return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, e));
}

/* ==== bf16 ==== */

static inline float32x4_t bf16_row_dot(const uint16_t *p, const float *q, size_t d)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    size_t k = 0;
    for (; k + 8 <= d; k += 8) {
        uint16x8_t h = vld1q_u16(p + k);
        a0 = vfmaq_f32(a0, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)),
                       vld1q_f32(q + k));
        a1 = vfmaq_f32(a1, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)), vld1q_f32(q + k + 4));
    }
    if (k < d) {
        uint16_t hb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        float qb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(hb, p + k, (d - k) * sizeof(uint16_t));
        memcpy(qb, q + k, (d - k) * sizeof(float));
        uint16x8_t h = vld1q_u16(hb);
        a0 = vfmaq_f32(a0, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)), vld1q_f32(qb));
        a1 = vfmaq_f32(a1, vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)), vld1q_f32(qb + 4));
    }
    return vaddq_f32(a0, a1);
}

static void bf16_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    (void)nq;
    const lowp_ctx *c = ctx;
    const float *q = (const float *)c->Q + b * c->ldq;
    const uint16_t *T = c->T;
    float thr = c->scores[b * c->K];
    for (size_t r = r0; r < r1; r += 4) {
        size_t nr = r1 - r < 4 ? r1 - r : 4;
        float32x4_t acc[4];
        for (size_t j = 0; j < 4; j++)
            acc[j] = bf16_row_dot(T + (r + (j < nr ? j : nr - 1)) * c->ldt, q, c->d);
        float32x4_t s = reduce4_f32(acc[0], acc[1], acc[2], acc[3]);
        thr = lowp_offer4(c, b, s, r, nr, thr);
    }
}

/* ==== int8, widening ==== */

static inline int32x4_t i8_row_dot(const int8_t *p, const int8_t *q, size_t d)
{
    int32x4_t a = vdupq_n_s32(0);
    size_t k = 0;
    for (; k + 16 <= d; k += 16) {
        int8x16_t t = vld1q_s8(p + k), qq = vld1q_s8(q + k);
        a = vpadalq_s16(a, vmull_s8(vget_low_s8(t), vget_low_s8(qq)));
        a = vpadalq_s16(a, vmull_high_s8(t, qq));
    }
    if (k < d) {
        int8_t tb[16], qb[16];
        memset(tb, 0, sizeof tb);
        memset(qb, 0, sizeof qb);
        memcpy(tb, p + k, d - k);
        memcpy(qb, q + k, d - k);
        int8x16_t t = vld1q_s8(tb), qq = vld1q_s8(qb);
        a = vpadalq_s16(a, vmull_s8(vget_low_s8(t), vget_low_s8(qq)));
        a = vpadalq_s16(a, vmull_high_s8(t, qq));
    }
    return a;
}

static void i8_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    (void)nq;
    const lowp_ctx *c = ctx;
    const int8_t *q = (const int8_t *)c->Q + b * c->ldq;
    const int8_t *T = c->T;
    float thr = c->scores[b * c->K];
    for (size_t r = r0; r < r1; r += 4) {
        size_t nr = r1 - r < 4 ? r1 - r : 4;
        int32x4_t acc[4];
        for (size_t j = 0; j < 4; j++)
            acc[j] = i8_row_dot(T + (r + (j < nr ? j : nr - 1)) * c->ldt, q, c->d);
        int32x4_t dot = vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]));
        thr = lowp_offer4(c, b, lowp_i8_scores(c, dot, b, r, nr), r, nr, thr);
    }
}

/* ==== entry points: the int8 path is chosen once, at fill time ==== */

static void score_topk_bf16_neon(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                                 const uint16_t *T, size_t ldt, uint32_t row_base, size_t K,
                                 const nu_id_list *exclude, uint32_t *top_ids,
                                 float *top_scores)
{
    const lowp_ctx c = {d, Q, ldq, NULL, T, ldt, NULL, row_base, K, exclude, top_ids,
                        top_scores};
    nu_topk_drive(B, N, K, ldt * sizeof(uint16_t), top_ids, top_scores, &c, bf16_single, NULL,
                  0, 0);
}

static void i8_run(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                   const float *qscale, const int8_t *T, size_t ldt, const float *row_scale,
                   uint32_t row_base, size_t K, const nu_id_list *exclude, uint32_t *top_ids,
                   float *top_scores, nu_topk_pass_fn single)
{
    const lowp_ctx c = {d, Q8, ldq, qscale, T, ldt, row_scale, row_base, K, exclude, top_ids,
                        top_scores};
    nu_topk_drive(B, N, K, ldt, top_ids, top_scores, &c, single, NULL, 0, 0);
}

static void score_topk_i8_neon(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                               const float *qscale, const int8_t *T, size_t ldt,
                               const float *row_scale, const int32_t *row_sum,
                               uint32_t row_base, size_t K, const nu_id_list *exclude,
                               uint32_t *top_ids, float *top_scores)
{
    (void)row_sum; /* signed x signed: no offset to correct */
    i8_run(B, N, d, Q8, ldq, qscale, T, ldt, row_scale, row_base, K, exclude, top_ids,
           top_scores, i8_single);
}

static void score_topk_i8_sdot(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                               const float *qscale, const int8_t *T, size_t ldt,
                               const float *row_scale, const int32_t *row_sum,
                               uint32_t row_base, size_t K, const nu_id_list *exclude,
                               uint32_t *top_ids, float *top_scores)
{
    (void)row_sum;
    i8_run(B, N, d, Q8, ldq, qscale, T, ldt, row_scale, row_base, K, exclude, top_ids,
           top_scores, nu_lowp_neon_sdot_single);
}

void nu_fill_score_lowp_neon_variant(nu_kernel_table *t, int use_dotprod)
{
    t->score_topk_bf16 = score_topk_bf16_neon;
    t->score_topk_i8 =
        use_dotprod && nu_cpu_detect()->asimd_dotprod ? score_topk_i8_sdot : score_topk_i8_neon;
}

void nu_fill_score_lowp_neon(nu_kernel_table *t)
{
    nu_fill_score_lowp_neon_variant(t, 1);
}
