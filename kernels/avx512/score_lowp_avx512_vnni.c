/* int8 query-block pass with AVX512_VNNI (vpdpbusd), used only when
 * nu_cpu_detect() reports avx512_vnni (see score_lowp_avx512.c).  Queries
 * sit in 1-4 vectors of 16 lanes (up to NU_LOWP512_VNNI_LANES) as 4-byte
 * groups, each 4 bytes of a row are broadcast: one vpdpbusd does 64
 * multiply-adds with no reduction.
 *
 * (Single-query vpdpbusd passes, 512- and 256-bit, compute twice as fast
 * as the baseline pass from L2 but streamed slower from memory on Zen 4,
 * by 5-30% for 1M x 64 in interleaved runs, so one query takes the
 * baseline pass.  Again on Zen 5: a pass with the row as u8 t ^ 0x80
 * against the signed query, needing no row sums, was faster from L3 and
 * slower than the baseline pass at 10M rows; results/bench.md.)
 *
 * vpdpbusd multiplies u8 by s8, so the query runs as u = Q8 + 128 (in
 * [1, 255]) against the signed row: sum u*t = dot + 128 * row_sum, and
 * row_sum (given with the table) takes the offset back out.  Every partial
 * sum stays far inside int32 (d <= 4096), so the dot is exact and the score
 * ((float)dot * row_scale) * qscale matches every other ISA bit for bit. */
#include <string.h>

#include "score_lowp_avx512.h"

static _Thread_local uint32_t qtq_buf[(LOWP_LANES_MAX_D / 4 + 1) * NU_LOWP512_VNNI_LANES];

/* Out of line: keeps __tls_get_addr out of the hot loops (-fPIC). */
__attribute__((noinline)) static uint32_t *scratch(void)
{
    return qtq_buf;
}

/* qtq[kq * W + lane]: bytes q[4kq .. 4kq + 3] + 128 of query b0 + lane
 * (128, i.e. q = 0, past d or past nq). */
static void transpose_quads(const lowp_ctx *c, size_t b0, size_t nq, size_t W, uint32_t *qtq)
{
    const int8_t *Q = c->Q;
    const size_t d = c->d;
    for (size_t kq = 0; 4 * kq < d; kq++)
        for (size_t i = 0; i < W; i++) {
            uint32_t v = 0;
            for (size_t e = 0; e < 4; e++) {
                size_t k = 4 * kq + e;
                int q = i < nq && k < d ? Q[(b0 + i) * c->ldq + k] : 0;
                v |= (uint32_t)(uint8_t)(q + 128) << (8 * e);
            }
            qtq[kq * W + i] = v;
        }
}

/* V vectors of 16 lanes (V * 16 queries) against R rows per step: each
 * broadcast row quad feeds V vpdpbusd (with 16 lanes the broadcast loads,
 * not the dot products, bound the step), and the step's candidates are
 * looked for with every mask in registers and one test, since almost
 * every step has none. */
static inline __attribute__((always_inline)) void
vnni_wide(const lowp_ctx *c, size_t b0, size_t nq, size_t r0, size_t r1, const int V,
          const int R)
{
    const size_t W = (size_t)V * 16, d = c->d, ldt = c->ldt, full = d / 4;
    const int8_t *T = c->T;
    uint32_t *qtq = scratch();
    transpose_quads(c, b0, nq, W, qtq);
    __m512 qsv[4], thr[4];
    __mmask16 inf[4], gt[4];
    for (int v = 0; v < V; v++) {
        size_t lo = (size_t)v * 16, n = nq - lo < 16 ? nq - lo : 16;
        qsv[v] = _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), c->qscale + b0 + lo);
        thr[v] = lowp_lanes_thr(c, b0 + lo, n, &inf[v], &gt[v]);
    }
    for (size_t r = r0; r < r1; r += (size_t)R) {
        size_t nr = r1 - r < (size_t)R ? r1 - r : (size_t)R;
        const int8_t *p[LOWP_WIDE_ROWS];
        size_t row[LOWP_WIDE_ROWS]; /* rows past nr repeat the last one */
        for (int j = 0; j < R; j++) {
            row[j] = r + ((size_t)j < nr ? (size_t)j : nr - 1);
            p[j] = T + row[j] * ldt;
        }
        __m512i acc[4][LOWP_WIDE_ROWS];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
#pragma GCC unroll 16
            for (int j = 0; j < R; j++)
                acc[v][j] = _mm512_setzero_si512();
        /* The next rows into L1 meanwhile, one line per step: the
         * broadcasts walk R rows at once, which the hardware prefetchers
         * do not follow well (as in the fp32 kernel). */
        const char *next = (const char *)T;
        size_t lines = 0;
        if (r + 2 * (size_t)R <= r1) {
            next = (const char *)(T + (r + (size_t)R) * ldt);
            lines = ((size_t)R * ldt + 63) / 64;
        }
        for (size_t kq = 0; kq < full; kq++) {
            if (kq < lines)
                _mm_prefetch(next + 64 * kq, _MM_HINT_T0);
            __m512i qv[4];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                qv[v] = _mm512_loadu_si512(qtq + kq * W + (size_t)v * 16);
#pragma GCC unroll 16
            for (int j = 0; j < R; j++) {
                int32_t quad;
                memcpy(&quad, p[j] + 4 * kq, sizeof quad);
                __m512i t = _mm512_set1_epi32(quad);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    acc[v][j] = _mm512_dpbusd_epi32(acc[v][j], qv[v], t);
            }
        }
        for (size_t l = full; l < lines; l++)
            _mm_prefetch(next + 64 * l, _MM_HINT_T0);
        if (4 * full < d) { /* d % 4 last bytes, zero padded (never read past d) */
            __m512i qv[4];
            for (int v = 0; v < V; v++)
                qv[v] = _mm512_loadu_si512(qtq + full * W + (size_t)v * 16);
            for (int j = 0; j < R; j++) {
                uint32_t quad = 0;
                for (size_t k = 4 * full; k < d; k++)
                    quad |= (uint32_t)(uint8_t)p[j][k] << (8 * (k - 4 * full));
                for (int v = 0; v < V; v++)
                    acc[v][j] = _mm512_dpbusd_epi32(acc[v][j], qv[v], _mm512_set1_epi32((int)quad));
            }
        }
        __m512 s[4][LOWP_WIDE_ROWS];
        __mmask16 m[4][LOWP_WIDE_ROWS];
        unsigned any = 0;
#pragma GCC unroll 16
        for (int j = 0; j < R; j++) {
            const __m512i off = _mm512_set1_epi32(c->row_sum[row[j]] * 128);
            const float rs = c->row_scale[row[j]];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) {
                s[v][j] = lowp_i8_lane_scores(_mm512_sub_epi32(acc[v][j], off), rs, qsv[v]);
                m[v][j] = lowp_lanes_beats(s[v][j], thr[v], inf[v], gt[v]);
                m[v][j] = (size_t)j < nr ? m[v][j] : 0;
                any |= m[v][j];
            }
        }
        if (!any)
            continue;
        lowp_offer_wide(c, b0, nq, r, R, V, s, m, thr, inf, gt);
    }
}

void nu_lowp512_vnni_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    if (nq > 48)
        vnni_wide(c, b0, nq, r0, r1, 4, 6);
    else if (nq > 32)
        vnni_wide(c, b0, nq, r0, r1, 3, 8);
    else if (nq > 16)
        vnni_wide(c, b0, nq, r0, r1, 2, 8);
    else
        vnni_wide(c, b0, nq, r0, r1, 1, 12);
}
