/* Fused dot-product scoring + top-K, NEON (AArch64 Advanced SIMD).
 *
 * B = 1 streams the table 8 rows at a time, one q-register accumulator per
 * row (rows read in address order for the prefetchers), reduced 4 rows at
 * once by two levels of pairwise adds (vpaddq); one compare per 4 rows
 * against the current K-th best finds the rare rows that need the heap.
 * For B >= 4, a tile of 4 queries x 4 rows (16 accumulators of the 32
 * registers) reuses each row chunk 4 times, over L2-sized row blocks.
 * d % 4 tail elements go through a zero-padded copy.  Heaps live in the
 * outputs (see topk.h). */
#include <arm_neon.h>
#include <math.h>

#include "../kernels.h"
#include "../topk.h"


typedef struct score_ctx {
    size_t d;
    const float *T;
    size_t ldt;
    uint32_t row_base;
    size_t K;
    const nu_id_list *exclude;
    uint32_t *ids;
    float *scores;
    const float *Q; /* the queries, for the driver's passes */
    size_t ldq;
} score_ctx;

/* The last n < 4 floats at p, zero padded (never reads past them). */
static inline float32x4_t load_tail(const float *p, size_t n)
{
    float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (size_t i = 0; i < n; i++)
        b[i] = p[i];
    return vld1q_f32(b);
}

/* Lane i of the result is the full sum of v[i]. */
static inline float32x4_t reduce4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t e)
{
    return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, e));
}

/* Candidate lanes as bits: s > thr, or any non-NaN s while thr is -inf. */
static inline unsigned beats(float32x4_t s, float thr)
{
    static const uint32_t lane_bit[4] = {1, 2, 4, 8};
    uint32x4_t m = thr == -INFINITY ? vceqq_f32(s, s) : vcgtq_f32(s, vdupq_n_f32(thr));
    return vaddvq_u32(vandq_u32(m, vld1q_u32(lane_bit)));
}

/* One row's dot product accumulated into a vector (tail included). */
static inline float32x4_t row_dot(const float *p, const float *q, size_t d)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    size_t k = 0;
    for (; k + 8 <= d; k += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(p + k), vld1q_f32(q + k));
        a1 = vfmaq_f32(a1, vld1q_f32(p + k + 4), vld1q_f32(q + k + 4));
    }
    if (k + 4 <= d) {
        a0 = vfmaq_f32(a0, vld1q_f32(p + k), vld1q_f32(q + k));
        k += 4;
    }
    if (k < d)
        a1 = vfmaq_f32(a1, load_tail(p + k, d - k), load_tail(q + k, d - k));
    return vaddq_f32(a0, a1);
}

/* Scores 8 rows (rows past nr repeat the last one and are masked out) for
 * one query and offers the candidates; returns the updated threshold. */
static inline float block8(const score_ctx *c, const float *q, size_t r, size_t nr,
                           float *hs, uint32_t *hi, const nu_id_list *ex, float thr)
{
    float32x4_t acc[8];
    for (size_t j = 0; j < 8; j++)
        acc[j] = row_dot(c->T + (r + (j < nr ? j : nr - 1)) * c->ldt, q, c->d);
    float32x4_t s0 = reduce4(acc[0], acc[1], acc[2], acc[3]);
    float32x4_t s1 = reduce4(acc[4], acc[5], acc[6], acc[7]);
    unsigned m = (beats(s0, thr) | beats(s1, thr) << 4) & ((1u << nr) - 1);
    if (m) {
        float sc[8];
        vst1q_f32(sc, s0);
        vst1q_f32(sc + 4, s1);
        while (m) {
            unsigned j = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            nu_topk_consider(hs, hi, c->K, ex, sc[j], c->row_base + (uint32_t)(r + j));
        }
        thr = hs[0];
    }
    return thr;
}

/* One query over rows [r0, r1) (a pass of nu_topk_drive_passes). */
static void single_rows(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    const score_ctx *c = ctx;
    const float *q = c->Q + b * c->ldq;
    (void)nq; /* always 1 */
    float *hs = c->scores + b * c->K;
    uint32_t *hi = c->ids + b * c->K;
    const nu_id_list *ex = nu_topk_list(c->exclude, b);
    float thr = hs[0];
    size_t r = r0;
    for (; r + 8 <= r1; r += 8)
        thr = block8(c, q, r, 8, hs, hi, ex, thr);
    if (r < r1)
        block8(c, q, r, r1 - r, hs, hi, ex, thr);
}

/* acc[4 i + j] += q[i] * t[j] over one 4-float chunk. */
static inline void tile_fma(float32x4_t acc[16], const float32x4_t t[4], const float32x4_t qv[4])
{
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            acc[4 * i + j] = vfmaq_f32(acc[4 * i + j], t[j], qv[i]);
}

/* Queries b0..b0+3 over rows [r0, r1), 4 rows at a time. */
static void tile_rows(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const score_ctx *c = ctx;
    const float *Q = c->Q;
    const size_t ldq = c->ldq;
    (void)nq; /* always 4 */
    const size_t d = c->d, K = c->K;
    const float *q[4];
    for (int i = 0; i < 4; i++)
        q[i] = Q + (b0 + (size_t)i) * ldq;
    for (size_t r = r0; r < r1; r += 4) {
        size_t nr = r1 - r < 4 ? r1 - r : 4;
        const float *p[4];
        for (size_t j = 0; j < 4; j++)
            p[j] = c->T + (r + (j < nr ? j : nr - 1)) * c->ldt;
        float32x4_t acc[16], t[4], qv[4];
        for (int j = 0; j < 16; j++)
            acc[j] = vdupq_n_f32(0.0f);
        size_t k = 0;
        for (; k + 4 <= d; k += 4) {
            for (int j = 0; j < 4; j++) {
                t[j] = vld1q_f32(p[j] + k);
                qv[j] = vld1q_f32(q[j] + k);
            }
            tile_fma(acc, t, qv);
        }
        if (k < d) {
            for (int j = 0; j < 4; j++) {
                t[j] = load_tail(p[j] + k, d - k);
                qv[j] = load_tail(q[j] + k, d - k);
            }
            tile_fma(acc, t, qv);
        }
        float32x4_t s[4];
        unsigned m = 0;
        for (int i = 0; i < 4; i++) {
            s[i] = reduce4(acc[4 * i], acc[4 * i + 1], acc[4 * i + 2], acc[4 * i + 3]);
            m |= beats(s[i], c->scores[(b0 + (size_t)i) * K]) << (4 * i);
        }
        /* Bit 4 i + j: query i, row j; rows past nr do not exist. */
        m &= ((1u << nr) - 1) * 0x1111u;
        if (!m)
            continue;
        float sc[16];
        for (int i = 0; i < 4; i++)
            vst1q_f32(sc + 4 * i, s[i]);
        while (m) {
            unsigned l = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            size_t b = b0 + (l >> 2);
            nu_topk_consider(c->scores + b * K, c->ids + b * K, K,
                             nu_topk_list(c->exclude, b), sc[l],
                             c->row_base + (uint32_t)(r + (l & 3)));
        }
    }
}

static void score_topk_neon(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                            const float *T, size_t ldt, uint32_t row_base, size_t K,
                            const nu_id_list *exclude, uint32_t *top_ids, float *top_scores)
{
    const score_ctx c = {d, T, ldt, row_base, K, exclude, top_ids, top_scores, Q, ldq};
    const nu_topk_passes p = {NULL, 0, 0, tile_rows, 4, single_rows};
    nu_topk_drive_passes(B, N, K, ldt * sizeof(float), top_ids, top_scores, &c, &p);
}

void nu_fill_score_neon(nu_kernel_table *t)
{
    t->score_topk = score_topk_neon;
}
