/* Scoring + top-K on compressed tables, scalar reference: one query at a
 * time, one row at a time, offered to the shared bounded heap (topk.h).
 *
 * bf16: each element widened exactly to fp32 (upper 16 bits), then a plain
 * left-to-right fp32 dot product with the fp32 query.
 * int8: the dot product is exact in int32 (|sum| <= 127 * 128 * 4096 <
 * 2^31), then the contract's score ((float)dot * row_scale) * qscale, which
 * every ISA reproduces bit for bit. */
#include <string.h>

#include "../kernels.h"
#include "../topk.h"

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float dot_bf16(size_t d, const float *q, const uint16_t *t)
{
    float s = 0.0f;
    for (size_t k = 0; k < d; k++)
        s += q[k] * bf16_to_f32(t[k]);
    return s;
}

static int32_t dot_i8(size_t d, const int8_t *q, const int8_t *t)
{
    int32_t s = 0;
    for (size_t k = 0; k < d; k++)
        s += (int32_t)q[k] * (int32_t)t[k];
    return s;
}

static void score_topk_bf16_scalar(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                                   const uint16_t *T, size_t ldt, uint32_t row_base, size_t K,
                                   const nu_id_list *exclude, uint32_t *top_ids,
                                   float *top_scores)
{
    if (K == 0)
        return;
    for (size_t b = 0; b < B; b++) {
        float *hs = top_scores + b * K;
        uint32_t *hi = top_ids + b * K;
        const nu_id_list *ex = nu_topk_list(exclude, b);
        nu_topk_init(hs, hi, K);
        for (size_t r = 0; r < N; r++) {
            float s = dot_bf16(d, Q + b * ldq, T + r * ldt);
            nu_topk_consider(hs, hi, K, ex, s, row_base + (uint32_t)r);
        }
        nu_topk_finish(hs, hi, K);
    }
}

static void score_topk_i8_scalar(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                                 const float *qscale, const int8_t *T, size_t ldt,
                                 const float *row_scale, const int32_t *row_sum,
                                 uint32_t row_base, size_t K, const nu_id_list *exclude,
                                 uint32_t *top_ids, float *top_scores)
{
    (void)row_sum; /* only the u8 x s8 paths need it */
    if (K == 0)
        return;
    for (size_t b = 0; b < B; b++) {
        float *hs = top_scores + b * K;
        uint32_t *hi = top_ids + b * K;
        const nu_id_list *ex = nu_topk_list(exclude, b);
        nu_topk_init(hs, hi, K);
        for (size_t r = 0; r < N; r++) {
            int32_t dot = dot_i8(d, Q8 + b * ldq, T + r * ldt);
            float s = ((float)dot * row_scale[r]) * qscale[b];
            nu_topk_consider(hs, hi, K, ex, s, row_base + (uint32_t)r);
        }
        nu_topk_finish(hs, hi, K);
    }
}

void nu_fill_score_lowp_scalar(nu_kernel_table *t)
{
    t->score_topk_bf16 = score_topk_bf16_scalar;
    t->score_topk_i8 = score_topk_i8_scalar;
}
