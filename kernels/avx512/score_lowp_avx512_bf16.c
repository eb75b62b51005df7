/* bf16 scoring passes with AVX512_BF16 dot products (vdpbf16ps), used only
 * when nu_cpu_detect() reports avx512_bf16 (see score_lowp_avx512.c).
 *
 * The query is rounded to bf16 once per pass (round to nearest even, as the
 * contract allows); each vdpbf16ps then does 32 multiply-adds of a row
 * against it with no widening.  Single query: one accumulator per row,
 * reduced 16 rows at a time.  Query block (1-4 vectors of 16, up to
 * NU_LOWP512_BF16_LANES queries): the queries transposed into bf16 pairs
 * per lane, the row's pairs broadcast (one 32-bit broadcast per two
 * elements, no reductions). */
#include <string.h>

#include "score_lowp_avx512.h"

static _Thread_local uint16_t qb_buf[LOWP_MAX_D + 32];
static _Thread_local uint32_t qtp_buf[(LOWP_LANES_MAX_D / 2 + 1) * NU_LOWP512_BF16_LANES];

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

/* Bytes ahead of the row being scored that the one-query pass asks for. */
#define BF16_AHEAD 16384

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
            /* Each row's lines BF16_AHEAD bytes ahead, asked for between the
             * loads as the fp32 and int8 one-query scans do (the
             * prefetchers alone leave bandwidth unused; results/bench.md).
             * A prefetch never faults. */
            for (size_t off = 0; off < d * sizeof(uint16_t); off += 64)
                _mm_prefetch((const char *)p[j] + BF16_AHEAD + off, _MM_HINT_T0);
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

/* qtp[kp * W + lane]: bf16 of q[2kp] (low half) and q[2kp + 1] (high half,
 * 0 past d) of query b0 + lane (0 past nq); W is a multiple of 16. */
static void transpose_pairs(const lowp_ctx *c, size_t b0, size_t nq, size_t W, uint32_t *qtp)
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
    for (size_t kp = 0; 2 * kp < d; kp++)
        for (size_t v = 0; v < W; v += 16) {
            float lo[16], hi[16];
            for (size_t i = 0; i < 16; i++) {
                const float *q = Q + (b0 + v + i) * c->ldq;
                lo[i] = v + i < nq ? q[2 * kp] : 0.0f;
                hi[i] = v + i < nq && 2 * kp + 1 < d ? q[2 * kp + 1] : 0.0f;
            }
            __m512bh x = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(hi), _mm512_loadu_ps(lo));
            _mm512_storeu_si512(qtp + kp * W + v, _mm512_permutexvar_epi16(interleave, (__m512i)x));
        }
}

/* V vectors of 16 lanes (V * 16 queries) against R rows per step: each
 * broadcast pair of row elements feeds V vdpbf16ps (with 16 lanes the
 * broadcast loads bound the step), and the step's candidates are looked
 * for with every mask in registers and one test (most steps have none). */
static inline __attribute__((always_inline)) void
bf16dp_wide(const lowp_ctx *c, size_t b0, size_t nq, size_t r0, size_t r1, const int V,
            const int R)
{
    const size_t W = (size_t)V * 16, d = c->d, ldt = c->ldt, full = d / 2;
    const uint16_t *T = c->T;
    uint16_t *unused;
    uint32_t *qtp;
    scratch(&unused, &qtp);
    transpose_pairs(c, b0, nq, W, qtp);
    __m512 thr[4];
    __mmask16 inf[4], gt[4];
    for (int v = 0; v < V; v++) {
        size_t lo = (size_t)v * 16, n = nq - lo < 16 ? nq - lo : 16;
        thr[v] = lowp_lanes_thr(c, b0 + lo, n, &inf[v], &gt[v]);
    }
    for (size_t r = r0; r < r1; r += (size_t)R) {
        size_t nr = r1 - r < (size_t)R ? r1 - r : (size_t)R;
        const uint16_t *p[LOWP_WIDE_ROWS];
        for (int j = 0; j < R; j++) /* rows past nr repeat the last one */
            p[j] = T + (r + ((size_t)j < nr ? (size_t)j : nr - 1)) * ldt;
        __m512 acc[4][LOWP_WIDE_ROWS];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
#pragma GCC unroll 16
            for (int j = 0; j < R; j++)
                acc[v][j] = _mm512_setzero_ps();
        /* The next rows into L1 meanwhile, one line per step (as in the
         * fp32 and int8 lane passes). */
        const char *next = (const char *)T;
        size_t lines = 0;
        if (r + 2 * (size_t)R <= r1) {
            next = (const char *)(T + (r + (size_t)R) * ldt);
            lines = ((size_t)R * ldt * sizeof(uint16_t) + 63) / 64;
        }
        for (size_t kp = 0; kp < full; kp++) {
            if (kp < lines)
                _mm_prefetch(next + 64 * kp, _MM_HINT_T0);
            __m512bh qv[4];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                qv[v] = as_bh(_mm512_loadu_si512(qtp + kp * W + (size_t)v * 16));
#pragma GCC unroll 16
            for (int j = 0; j < R; j++) {
                uint32_t pair;
                memcpy(&pair, p[j] + 2 * kp, sizeof pair);
                __m512bh t = as_bh(_mm512_set1_epi32((int)pair));
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    acc[v][j] = _mm512_dpbf16_ps(acc[v][j], t, qv[v]);
            }
        }
        for (size_t l = full; l < lines; l++)
            _mm_prefetch(next + 64 * l, _MM_HINT_T0);
        if (2 * full < d) { /* odd d: the last element alone (never reads past it) */
            for (int v = 0; v < V; v++) {
                __m512bh qv = as_bh(_mm512_loadu_si512(qtp + full * W + (size_t)v * 16));
                for (int j = 0; j < R; j++)
                    acc[v][j] = _mm512_dpbf16_ps(acc[v][j], as_bh(_mm512_set1_epi32(p[j][d - 1])),
                                                 qv);
            }
        }
        __mmask16 m[4][LOWP_WIDE_ROWS];
        unsigned any = 0;
#pragma GCC unroll 16
        for (int j = 0; j < R; j++)
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) {
                m[v][j] = lowp_lanes_beats(acc[v][j], thr[v], inf[v], gt[v]);
                m[v][j] = (size_t)j < nr ? m[v][j] : 0;
                any |= m[v][j];
            }
        if (!any)
            continue;
        lowp_offer_wide(c, b0, nq, r, R, V, acc, m, thr, inf, gt);
    }
}

void nu_lowp512_bf16dp_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    if (nq > 48)
        bf16dp_wide(c, b0, nq, r0, r1, 4, 6);
    else if (nq > 32)
        bf16dp_wide(c, b0, nq, r0, r1, 3, 8);
    else if (nq > 16)
        bf16dp_wide(c, b0, nq, r0, r1, 2, 8);
    else
        bf16dp_wide(c, b0, nq, r0, r1, 1, 12);
}
