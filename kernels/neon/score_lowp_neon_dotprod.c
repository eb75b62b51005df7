/* int8 single-query pass with SDOT (signed x signed, 4 products per lane),
 * used only when nu_cpu_detect() reports asimd_dotprod.  Exact in int32,
 * so the scores equal every other ISA's bit for bit. */
#include "score_lowp_neon.h"

static inline int32x4_t row_dot(const int8_t *p, const int8_t *q, size_t d)
{
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0;
    size_t k = 0;
    for (; k + 32 <= d; k += 32) {
        a0 = vdotq_s32(a0, vld1q_s8(p + k), vld1q_s8(q + k));
        a1 = vdotq_s32(a1, vld1q_s8(p + k + 16), vld1q_s8(q + k + 16));
    }
    if (k + 16 <= d) {
        a0 = vdotq_s32(a0, vld1q_s8(p + k), vld1q_s8(q + k));
        k += 16;
    }
    if (k < d) {
        int8_t tb[16], qb[16];
        memset(tb, 0, sizeof tb);
        memset(qb, 0, sizeof qb);
        memcpy(tb, p + k, d - k);
        memcpy(qb, q + k, d - k);
        a1 = vdotq_s32(a1, vld1q_s8(tb), vld1q_s8(qb));
    }
    return vaddq_s32(a0, a1);
}

void nu_lowp_neon_sdot_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
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
            acc[j] = row_dot(T + (r + (j < nr ? j : nr - 1)) * c->ldt, q, c->d);
        int32x4_t dot = vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]));
        thr = lowp_offer4(c, b, lowp_i8_scores(c, dot, b, r, nr), r, nr, thr);
    }
}
