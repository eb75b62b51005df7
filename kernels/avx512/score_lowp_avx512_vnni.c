/* int8 query-block pass with AVX512_VNNI (vpdpbusd), used only when
 * nu_cpu_detect() reports avx512_vnni (see score_lowp_avx512.c).  Queries
 * sit in the 16 lanes as 4-byte groups, each 4 bytes of a row are broadcast:
 * one vpdpbusd does 64 multiply-adds with no reduction.
 *
 * (Single-query vpdpbusd passes, 512- and 256-bit, compute twice as fast
 * as the baseline pass from L2 but streamed slower from memory on Zen 4,
 * by 5-30% for 1M x 64 in interleaved runs, so one query takes the
 * baseline pass.)
 *
 * vpdpbusd multiplies u8 by s8, so the query runs as u = Q8 + 128 (in
 * [1, 255]) against the signed row: sum u*t = dot + 128 * row_sum, and
 * row_sum (given with the table) takes the offset back out.  Every partial
 * sum stays far inside int32 (d <= 4096), so the dot is exact and the score
 * ((float)dot * row_scale) * qscale matches every other ISA bit for bit. */
#include <string.h>

#include "score_lowp_avx512.h"

static _Thread_local uint32_t qtq_buf[(LOWP_LANES_MAX_D / 4 + 1) * 16];

/* Out of line: keeps __tls_get_addr out of the hot loops (-fPIC). */
__attribute__((noinline)) static uint32_t *scratch(void)
{
    return qtq_buf;
}

/* qtq[kq * 16 + lane]: bytes q[4kq .. 4kq + 3] + 128 of query b0 + lane
 * (128, i.e. q = 0, past d or past nq). */
static void transpose_quads(const lowp_ctx *c, size_t b0, size_t nq, uint32_t *qtq)
{
    const int8_t *Q = c->Q;
    const size_t d = c->d;
    for (size_t kq = 0; 4 * kq < d; kq++)
        for (size_t i = 0; i < 16; i++) {
            uint32_t v = 0;
            for (size_t e = 0; e < 4; e++) {
                size_t k = 4 * kq + e;
                int q = i < nq && k < d ? Q[(b0 + i) * c->ldq + k] : 0;
                v |= (uint32_t)(uint8_t)(q + 128) << (8 * e);
            }
            qtq[kq * 16 + i] = v;
        }
}

void nu_lowp512_vnni_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, full = d / 4;
    const int8_t *T = c->T;
    uint32_t *qtq = scratch();
    transpose_quads(c, b0, nq, qtq);
    const __m512 qsv = _mm512_maskz_loadu_ps((__mmask16)((1u << nq) - 1), c->qscale + b0);
    __mmask16 inf_lanes, gt_lanes;
    __m512 thrv = lowp_lanes_thr(c, b0, nq, &inf_lanes, &gt_lanes);
    for (size_t r = r0; r < r1; r += LOWP_LANE_ROWS) {
        size_t nr = r1 - r < LOWP_LANE_ROWS ? r1 - r : LOWP_LANE_ROWS;
        const int8_t *p[LOWP_LANE_ROWS];
        for (size_t j = 0; j < LOWP_LANE_ROWS; j++)
            p[j] = T + (r + (j < nr ? j : nr - 1)) * ldt;
        __m512i acc[LOWP_LANE_ROWS];
#pragma GCC unroll 16
        for (int j = 0; j < LOWP_LANE_ROWS; j++)
            acc[j] = _mm512_setzero_si512();
        /* The next rows into L1 meanwhile, one line per step: the
         * broadcasts walk 8 rows at once, which the hardware prefetchers
         * do not follow well (as in the fp32 kernel). */
        const char *next = (const char *)T;
        size_t lines = 0;
        if (r + 2 * LOWP_LANE_ROWS <= r1) {
            next = (const char *)(T + (r + LOWP_LANE_ROWS) * ldt);
            lines = (LOWP_LANE_ROWS * ldt + 63) / 64;
        }
        for (size_t kq = 0; kq < full; kq++) {
            if (kq < lines)
                _mm_prefetch(next + 64 * kq, _MM_HINT_T0);
            __m512i qv = _mm512_loadu_si512(qtq + kq * 16);
#pragma GCC unroll 16
            for (int j = 0; j < LOWP_LANE_ROWS; j++) {
                int32_t quad;
                memcpy(&quad, p[j] + 4 * kq, sizeof quad);
                acc[j] = _mm512_dpbusd_epi32(acc[j], qv, _mm512_set1_epi32(quad));
            }
        }
        for (size_t l = full; l < lines; l++)
            _mm_prefetch(next + 64 * l, _MM_HINT_T0);
        if (4 * full < d) { /* d % 4 last bytes, zero padded (never read past d) */
            __m512i qv = _mm512_loadu_si512(qtq + full * 16);
            for (int j = 0; j < LOWP_LANE_ROWS; j++) {
                uint32_t quad = 0;
                for (size_t k = 4 * full; k < d; k++)
                    quad |= (uint32_t)(uint8_t)p[j][k] << (8 * (k - 4 * full));
                acc[j] = _mm512_dpbusd_epi32(acc[j], qv, _mm512_set1_epi32((int)quad));
            }
        }
        int changed = 0;
        for (size_t j = 0; j < nr; j++) {
            __m512i dot = _mm512_sub_epi32(acc[j], _mm512_set1_epi32(c->row_sum[r + j] * 128));
            __m512 s = lowp_i8_lane_scores(dot, c->row_scale[r + j], qsv);
            changed |= lowp_offer_lanes(c, b0, s, lowp_lanes_beats(s, thrv, inf_lanes, gt_lanes),
                                        r + j);
        }
        if (changed)
            thrv = lowp_lanes_thr(c, b0, nq, &inf_lanes, &gt_lanes);
    }
}
