/* bf16 scoring passes with AVX512_BF16 dot products (vdpbf16ps), used only
 * when nu_cpu_detect() reports avx512_bf16 (see score_lowp_avx512.c).
 *
 * The query is rounded to bf16 once per pass (round to nearest even, as the
 * contract allows); each vdpbf16ps then does 32 multiply-adds of a row
 * against it with no widening.  Single query: one accumulator per row,
 * reduced 16 rows at a time.  Query block: the queries transposed into
 * bf16 pairs per lane, the row's pairs broadcast (one 32-bit broadcast per
 * two elements, no reductions). */
#include <string.h>

#include "score_lowp_avx512.h"

static _Thread_local uint16_t qb_buf[LOWP_MAX_D + 32];
static _Thread_local uint32_t qtp_buf[(LOWP_LANES_MAX_D / 2 + 1) * 16];

/* Out of line: keeps __tls_get_addr out of the hot loops (-fPIC). */
__attribute__((noinline)) static void scratch(uint16_t **qb, uint32_t **qtp)
{
    *qb = qb_buf;
    *qtp = qtp_buf;
}

static inline __m512bh as_bh(__m512i x)
{
    return (__m512bh)x;
}

void nu_lowp512_bf16dp_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    (void)nq;
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)31;
    const __mmask32 dm = (__mmask32)((1ull << (d - dfull)) - 1);
    const float *q = (const float *)c->Q + b * c->ldq;
    const uint16_t *T = c->T;
    uint16_t *qb;
    uint32_t *unused;
    scratch(&qb, &unused);
    /* The query in bf16, zero padded to a multiple of 32. */
    for (size_t k = 0; k < d; k += 32) {
        size_t n = d - k;
        __mmask16 lo = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
        __mmask16 hi = (__mmask16)(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, q + k + 16),
                                         _mm512_maskz_loadu_ps(lo, q + k));
        _mm512_storeu_si512(qb + k, (__m512i)v);
    }
    float thr = c->scores[b * c->K];
    for (size_t r = r0; r < r1; r += 16) {
        size_t nr = r1 - r < 16 ? r1 - r : 16;
        const uint16_t *p[16];
        for (size_t j = 0; j < 16; j++)
            p[j] = T + (r + (j < nr ? j : nr - 1)) * ldt;
        __m512 acc[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++) {
            acc[j] = _mm512_setzero_ps();
            size_t k = 0;
            for (; k < dfull; k += 32)
                acc[j] = _mm512_dpbf16_ps(acc[j], as_bh(_mm512_loadu_si512(p[j] + k)),
                                          as_bh(_mm512_loadu_si512(qb + k)));
            if (dm)
                acc[j] = _mm512_dpbf16_ps(acc[j], as_bh(_mm512_maskz_loadu_epi16(dm, p[j] + k)),
                                          as_bh(_mm512_loadu_si512(qb + k)));
        }
        __m512 s = lowp_reduce16_ps(acc);
        __mmask16 m = lowp_beats(s, thr) & (__mmask16)((1u << nr) - 1);
        thr = lowp_offer16(c, b, s, m, r, thr);
    }
}

/* qtp[kp * 16 + lane]: bf16 of q[2kp] (low half) and q[2kp + 1] (high half,
 * 0 past d) of query b0 + lane (0 past nq). */
static void transpose_pairs(const lowp_ctx *c, size_t b0, size_t nq, uint32_t *qtp)
{
    const float *Q = c->Q;
    const size_t d = c->d;
    /* Element 2i <- lane i of the low vector, 2i + 1 <- lane i of the high. */
    uint16_t idx[32];
    for (int i = 0; i < 16; i++) {
        idx[2 * i] = (uint16_t)i;
        idx[2 * i + 1] = (uint16_t)(16 + i);
    }
    const __m512i interleave = _mm512_loadu_si512(idx);
    for (size_t kp = 0; 2 * kp < d; kp++) {
        float lo[16], hi[16];
        for (size_t i = 0; i < 16; i++) {
            const float *q = Q + (b0 + i) * c->ldq;
            lo[i] = i < nq ? q[2 * kp] : 0.0f;
            hi[i] = i < nq && 2 * kp + 1 < d ? q[2 * kp + 1] : 0.0f;
        }
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(hi), _mm512_loadu_ps(lo));
        _mm512_storeu_si512(qtp + kp * 16, _mm512_permutexvar_epi16(interleave, (__m512i)v));
    }
}

void nu_lowp512_bf16dp_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, full = d / 2, npairs = (d + 1) / 2;
    const uint16_t *T = c->T;
    uint16_t *unused;
    uint32_t *qtp;
    scratch(&unused, &qtp);
    transpose_pairs(c, b0, nq, qtp);
    __mmask16 inf_lanes, gt_lanes;
    __m512 thrv = lowp_lanes_thr(c, b0, nq, &inf_lanes, &gt_lanes);
    for (size_t r = r0; r < r1; r += LOWP_LANE_ROWS) {
        size_t nr = r1 - r < LOWP_LANE_ROWS ? r1 - r : LOWP_LANE_ROWS;
        const uint16_t *p[LOWP_LANE_ROWS];
        for (size_t j = 0; j < LOWP_LANE_ROWS; j++)
            p[j] = T + (r + (j < nr ? j : nr - 1)) * ldt;
        __m512 acc[LOWP_LANE_ROWS];
#pragma GCC unroll 16
        for (int j = 0; j < LOWP_LANE_ROWS; j++)
            acc[j] = _mm512_setzero_ps();
        for (size_t kp = 0; kp < full; kp++) {
            __m512bh qv = as_bh(_mm512_loadu_si512(qtp + kp * 16));
#pragma GCC unroll 16
            for (int j = 0; j < LOWP_LANE_ROWS; j++) {
                uint32_t pair;
                memcpy(&pair, p[j] + 2 * kp, sizeof pair);
                acc[j] = _mm512_dpbf16_ps(acc[j], as_bh(_mm512_set1_epi32((int)pair)), qv);
            }
        }
        if (npairs > full) { /* odd d: the last element alone (never reads past it) */
            __m512bh qv = as_bh(_mm512_loadu_si512(qtp + full * 16));
            for (int j = 0; j < LOWP_LANE_ROWS; j++)
                acc[j] = _mm512_dpbf16_ps(acc[j], as_bh(_mm512_set1_epi32(p[j][d - 1])), qv);
        }
        int changed = 0;
        for (size_t j = 0; j < nr; j++)
            changed |= lowp_offer_lanes(c, b0, acc[j],
                                        lowp_lanes_beats(acc[j], thrv, inf_lanes, gt_lanes),
                                        r + j);
        if (changed)
            thrv = lowp_lanes_thr(c, b0, nq, &inf_lanes, &gt_lanes);
    }
}
