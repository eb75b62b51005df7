/* Fused dot-product scoring + top-K, AVX-512.
 *
 * B = 1 is bandwidth-bound: the table streams once, 16 rows at a time; each
 * row's dot product is a zmm accumulator, the 16 accumulators are reduced
 * together by a transpose-and-add tree (15 shuffle pairs for 16 rows), and
 * one compare against the current K-th best finds the rare rows that need
 * the heap.  Blocks of 6..16 queries hold the queries in the 16 lanes and
 * broadcast table elements into the FMAs (no reductions); 4..5 leftover
 * queries use a tile of 4 queries x 4 rows that reuses every loaded row
 * chunk 4 times.  Rows are walked in L2-sized blocks so the table streams
 * from memory once for all queries.  Heaps live in the outputs (see
 * topk.h), so nothing is allocated. */
#include <immintrin.h>
#include <math.h>

#include "../kernels.h"
#include "reduce16_avx512.h"
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
    float *qt;      /* lanes: a block of queries transposed */
} score_ctx;


/* Candidates: s > thr, or any non-NaN s while thr is -inf (the root may be
 * a sentinel, which a -inf row beats).  See topk.h. */
static inline __mmask16 beats(__m512 s, float thr)
{
    if (thr == -INFINITY)
        return _mm512_cmp_ps_mask(s, s, _CMP_ORD_Q);
    return _mm512_cmp_ps_mask(s, _mm512_set1_ps(thr), _CMP_GT_OQ);
}

/* Bytes ahead of the row being scored that the B = 1 scan asks for. */
#define SINGLE_AHEAD 8192

/* Scores 16 rows (rows past nr repeat the last one and are masked out) for
 * one query, offers the candidates; returns the updated threshold.  With
 * `ahead`, each row first asks for the lines SINGLE_AHEAD bytes past it. */
static inline __attribute__((always_inline)) float
block16(const score_ctx *c, const float *q, size_t r, size_t nr, float *hs,
        uint32_t *hi, const nu_id_list *ex, float thr, int ahead)
{
    const size_t d = c->d;
    const float *p[16];
    for (size_t j = 0; j < 16; j++)
        p[j] = c->T + (r + (j < nr ? j : nr - 1)) * c->ldt;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
        acc[j] = _mm512_setzero_ps();
    /* Row by row: each row's lines are read in address order, which keeps
     * the hardware prefetchers streaming. */
    const size_t dfull = d & ~(size_t)15;
    const __mmask16 dm = (__mmask16)((1u << (d - dfull)) - 1);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
        size_t k = 0;
        if (ahead)
            for (size_t off = 0; off < d * sizeof(float); off += 64)
                _mm_prefetch((const char *)p[j] + SINGLE_AHEAD + off, _MM_HINT_NTA);
        for (; k < dfull; k += 16)
            acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(p[j] + k), _mm512_loadu_ps(q + k), acc[j]);
        if (dm)
            acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(dm, p[j] + k),
                                     _mm512_maskz_loadu_ps(dm, q + k), acc[j]);
    }
    const __m512i natural =
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512 s = _mm512_permutexvar_ps(natural, nu_reduce16_raw(acc));
    __mmask16 m = beats(s, thr) & (__mmask16)((1u << nr) - 1);
    if (m) {
        float sc[16];
        _mm512_storeu_ps(sc, s);
        while (m) {
            unsigned j = (unsigned)__builtin_ctz(m);
            m &= (__mmask16)(m - 1);
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
    /* The hardware prefetchers alone kept too few misses in flight (B = 1
     * at 1M rows: 0.60-0.80 of the streaming probe).  The prefetches go
     * row by row between the loads: asked for as one burst of a 4 KiB step
     * they read at about half the probe whenever the table starts on a page
     * boundary, as every table does (results/bench.md).  Non-temporal: the
     * rows are read once, and keeping them out of L2's replacement measured
     * a little faster than T0.  Past the block's end they fetch the next
     * block's rows; a prefetch never faults. */
    for (; r + 16 <= r1; r += 16)
        thr = block16(c, q, r, 16, hs, hi, ex, thr, 1);
    if (r < r1)
        block16(c, q, r, r1 - r, hs, hi, ex, thr, 0);
}

/* Threshold lanes for the 4x4 tile: lane l belongs to query l & 3. */
static inline __m512 tile_thr(const float thr[4], __mmask16 *inf_lanes)
{
    __m512 t = _mm512_broadcast_f32x4(_mm_loadu_ps(thr));
    *inf_lanes = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return t;
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
    float thr[4];
    for (int i = 0; i < 4; i++) {
        q[i] = Q + (b0 + (size_t)i) * ldq;
        thr[i] = c->scores[(b0 + (size_t)i) * K];
    }
    __mmask16 inf_lanes;
    __m512 thrv = tile_thr(thr, &inf_lanes);
    for (size_t r = r0; r < r1; r += 4) {
        size_t nr = r1 - r < 4 ? r1 - r : 4;
        const float *p[4];
        for (size_t j = 0; j < 4; j++)
            p[j] = c->T + (r + (j < nr ? j : nr - 1)) * c->ldt;
        __m512 acc[16]; /* acc[4 * query + row] */
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            acc[j] = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 16 <= d; k += 16) {
            __m512 t0 = _mm512_loadu_ps(p[0] + k), t1 = _mm512_loadu_ps(p[1] + k);
            __m512 t2 = _mm512_loadu_ps(p[2] + k), t3 = _mm512_loadu_ps(p[3] + k);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512 qv = _mm512_loadu_ps(q[i] + k);
                acc[4 * i + 0] = _mm512_fmadd_ps(t0, qv, acc[4 * i + 0]);
                acc[4 * i + 1] = _mm512_fmadd_ps(t1, qv, acc[4 * i + 1]);
                acc[4 * i + 2] = _mm512_fmadd_ps(t2, qv, acc[4 * i + 2]);
                acc[4 * i + 3] = _mm512_fmadd_ps(t3, qv, acc[4 * i + 3]);
            }
        }
        if (k < d) {
            __mmask16 dm = (__mmask16)((1u << (d - k)) - 1);
            __m512 t0 = _mm512_maskz_loadu_ps(dm, p[0] + k);
            __m512 t1 = _mm512_maskz_loadu_ps(dm, p[1] + k);
            __m512 t2 = _mm512_maskz_loadu_ps(dm, p[2] + k);
            __m512 t3 = _mm512_maskz_loadu_ps(dm, p[3] + k);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512 qv = _mm512_maskz_loadu_ps(dm, q[i] + k);
                acc[4 * i + 0] = _mm512_fmadd_ps(t0, qv, acc[4 * i + 0]);
                acc[4 * i + 1] = _mm512_fmadd_ps(t1, qv, acc[4 * i + 1]);
                acc[4 * i + 2] = _mm512_fmadd_ps(t2, qv, acc[4 * i + 2]);
                acc[4 * i + 3] = _mm512_fmadd_ps(t3, qv, acc[4 * i + 3]);
            }
        }
        /* Lane l: query l & 3, row l >> 2. */
        __m512 s = nu_reduce16_raw(acc);
        __mmask16 m = _mm512_mask_cmp_ps_mask(inf_lanes, s, s, _CMP_ORD_Q) |
                      _mm512_mask_cmp_ps_mask((__mmask16)~inf_lanes, s, thrv, _CMP_GT_OQ);
        m &= (__mmask16)((1u << (4 * nr)) - 1);
        if (!m)
            continue;
        float sc[16];
        _mm512_storeu_ps(sc, s);
        while (m) {
            unsigned l = (unsigned)__builtin_ctz(m);
            m &= (__mmask16)(m - 1);
            size_t b = b0 + (l & 3);
            nu_topk_consider(c->scores + b * K, c->ids + b * K, K,
                             nu_topk_list(c->exclude, b), sc[l],
                             c->row_base + (uint32_t)(r + (l >> 2)));
        }
        for (int i = 0; i < 4; i++)
            thr[i] = c->scores[(b0 + (size_t)i) * K];
        thrv = tile_thr(thr, &inf_lanes);
    }
}

/* ---- many queries: queries in the 16 lanes, table rows broadcast ----
 * The 16 queries of a block are transposed once (qt[k * 16 + lane]); each
 * table element is then broadcast straight from memory into an FMA, so a
 * step of rows x 16 queries needs no horizontal reduction at all: per k,
 * one load and one FMA with an embedded broadcast per row. */
#define LANES_MAX_D 1024
/* Rows per step: 8 accumulators already cover the FMA latency, and 8 row
 * pointers stay in registers (measured: 8-16 rows perform alike). */
#define LANE_ROWS 8
/* 16 lanes of LANES_MAX_D, or more lanes of fewer dimensions (lanes_wide). */
static _Thread_local float qt_buf[LANES_MAX_D * 16];

/* Out of line on purpose: with -fPIC the compiler would otherwise fold the
 * TLS address into the hot loop as a __tls_get_addr call per step. */
__attribute__((noinline)) static float *qt_scratch(void)
{
    return qt_buf;
}

/* r[i] = row i of a 16 x 16 block -> r[j] = its column j. */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) { /* lane l: a[4l], b[4l], a[4l+1], b[4l+1] (hi: +2) */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* r[4g + e], lane l: rows 4g..4g+3 of column 4l + e */
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int e = 0; e < 4; e++) { /* the four 128-bit lanes of each group gathered */
        __m512 u0 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x88);
        __m512 u1 = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xDD);
        __m512 u2 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x88);
        __m512 u3 = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xDD);
        t[e] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[8 + e] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        t[4 + e] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[12 + e] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

/* qt[k * width + lane] = query b0 + lane's element k (0 past nq), by 16 x 16
 * blocks in registers: it runs for every row block and query group, and
 * element by element it was ~5% of B = 256 at d = 64. */
static void lanes_transpose(const float *Q, size_t ldq, size_t b0, size_t nq, size_t d,
                            size_t width, float *qt)
{
    for (size_t v = 0; v < width; v += 16)
        for (size_t k0 = 0; k0 < d; k0 += 16) {
            size_t kn = d - k0 < 16 ? d - k0 : 16;
            __mmask16 km = (__mmask16)((1u << kn) - 1);
            __m512 r[16];
            for (size_t i = 0; i < 16; i++)
                r[i] = v + i < nq ? _mm512_maskz_loadu_ps(km, Q + (b0 + v + i) * ldq + k0)
                                  : _mm512_setzero_ps();
            transpose16(r);
            for (size_t k = 0; k < kn; k++)
                _mm512_storeu_ps(qt + (k0 + k) * width + v, r[k]);
        }
}

/* The next step's R rows into L1 while this step's are computed, one line
 * per k step: the broadcasts walk many rows at once, which the hardware
 * prefetchers do not follow well.  Returns the lines to fetch from *next. */
static inline size_t lanes_next(const score_ctx *c, size_t r, size_t r1, size_t R,
                                const char **next)
{
    *next = (const char *)c->T;
    if (r + R >= r1)
        return 0;
    size_t rows = r1 - r - R < R ? r1 - r - R : R;
    *next = (const char *)(c->T + (r + R) * c->ldt);
    return (rows * c->ldt * sizeof(float) + 63) / 64;
}

/* Offers the lanes set in m (lane l: query b0 + l, score sc[l]) of row `row`. */
static inline void lanes_offer(const score_ctx *c, size_t b0, __m512 s, unsigned m, uint32_t row)
{
    float sc[16];
    _mm512_storeu_ps(sc, s);
    nu_topk_consider_lanes(c->scores, c->ids, c->K, c->exclude, b0, sc, m, row);
}

/* Per-lane thresholds of queries b0..b0+nq-1; inf_lanes / gt_lanes select
 * which compare decides a lane (see beats()). */
static inline __m512 lanes_thr(const score_ctx *c, size_t b0, size_t nq, __mmask16 *inf_lanes,
                               __mmask16 *gt_lanes)
{
    float thr[16];
    for (size_t i = 0; i < 16; i++)
        thr[i] = i < nq ? c->scores[(b0 + i) * c->K] : INFINITY;
    __m512 t = _mm512_loadu_ps(thr);
    const __mmask16 active = (__mmask16)((1u << nq) - 1);
    *inf_lanes = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ) & active;
    *gt_lanes = (__mmask16)(~*inf_lanes & active);
    return t;
}

/* V vectors of 16 lanes per k step (V = 1 up to 16 queries, 2-4 up to 64),
 * so each broadcast table element feeds V FMAs (16 lanes take one broadcast
 * load per FMA, which the load ports, not the FMA units, bound).  R rows per step keep V x R
 * accumulators in registers.  Each lane sums its products in the same order
 * as in 16 lanes: the same scores. */
static inline __attribute__((always_inline)) void
lanes_wide(const score_ctx *c, size_t b0, size_t nq, size_t r0, size_t r1, const int V,
           const int R)
{
    const size_t W = (size_t)V * 16;
    lanes_transpose(c->Q, c->ldq, b0, nq, c->d, W, c->qt);
    const float *qt = c->qt;
    const size_t d = c->d, ldt = c->ldt;
    __mmask16 inf[4], gt[4];
    __m512 thr[4];
    for (int v = 0; v < V; v++) {
        size_t lo = (size_t)v * 16, n = nq - lo < 16 ? nq - lo : 16;
        thr[v] = lanes_thr(c, b0 + lo, n, &inf[v], &gt[v]);
    }
    for (size_t r = r0; r < r1; r += (size_t)R) {
        size_t nr = r1 - r < (size_t)R ? r1 - r : (size_t)R;
        const float *p[LANE_ROWS];
        for (int j = 0; j < R; j++)
            p[j] = c->T + (r + ((size_t)j < nr ? (size_t)j : nr - 1)) * ldt;
        const char *next;
        size_t lines = lanes_next(c, r, r1, (size_t)R, &next);
        __m512 a[4][LANE_ROWS];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
#pragma GCC unroll 8
            for (int j = 0; j < R; j++)
                a[v][j] = _mm512_setzero_ps();
        for (size_t k = 0; k < d; k++) {
            if (k < lines)
                _mm_prefetch(next + 64 * k, _MM_HINT_T0);
            __m512 q[4];
#pragma GCC unroll 4
            for (int v = 0; v < V; v++)
                q[v] = _mm512_loadu_ps(qt + k * W + (size_t)v * 16);
#pragma GCC unroll 8
            for (int j = 0; j < R; j++) {
                __m512 t = _mm512_set1_ps(p[j][k]);
#pragma GCC unroll 4
                for (int v = 0; v < V; v++)
                    a[v][j] = _mm512_fmadd_ps(t, q[v], a[v][j]);
            }
        }
        for (size_t l = d; l < lines; l++)
            _mm_prefetch(next + 64 * l, _MM_HINT_T0);
        __mmask16 m[4][LANE_ROWS];
        unsigned any = 0;
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
#pragma GCC unroll 8
            for (int j = 0; j < R; j++) {
                m[v][j] = _mm512_mask_cmp_ps_mask(inf[v], a[v][j], a[v][j], _CMP_ORD_Q) |
                          _mm512_mask_cmp_ps_mask(gt[v], a[v][j], thr[v], _CMP_GT_OQ);
                any |= (size_t)j < nr ? (unsigned)m[v][j] : 0u;
            }
        if (!any)
            continue;
        for (size_t j = 0; j < nr; j++)
            for (int v = 0; v < V; v++)
                if (m[v][j])
                    lanes_offer(c, b0 + (size_t)v * 16, a[v][j], m[v][j],
                                c->row_base + (uint32_t)(r + j));
        for (int v = 0; v < V; v++) {
            size_t lo = (size_t)v * 16, n = nq - lo < 16 ? nq - lo : 16;
            thr[v] = lanes_thr(c, b0 + lo, n, &inf[v], &gt[v]);
        }
    }
}

/* Queries b0..b0+nq-1 (nq <= 64) over rows [r0, r1): as many lanes as the
 * queries need and the transposed queries' buffer holds. */
static void lanes_rows(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const score_ctx *c = ctx;
    size_t fit = LANES_MAX_D * 16 / (c->d ? c->d : 1); /* lanes the buffer holds */
    if (nq > 48 && fit >= 64)
        lanes_wide(c, b0, nq, r0, r1, 4, 6);
    else if (nq > 32 && nq <= 48 && fit >= 48)
        lanes_wide(c, b0, nq, r0, r1, 3, 8);
    else if (nq > 16 && nq <= 32 && fit >= 32)
        lanes_wide(c, b0, nq, r0, r1, 2, 8);
    else
        for (size_t b = b0; b < b0 + nq; b += 16)
            lanes_wide(c, b, b0 + nq - b < 16 ? b0 + nq - b : 16, r0, r1, 1, LANE_ROWS);
}

static void score_topk_avx512(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                              const float *T, size_t ldt, uint32_t row_base, size_t K,
                              const nu_id_list *exclude, uint32_t *top_ids,
                              float *top_scores)
{
    const score_ctx c = {d, T, ldt, row_base, K, exclude, top_ids, top_scores, Q, ldq, qt_scratch()};
    /* 6..64 queries fill the lanes well enough (measured: 7 queries
     * in lanes beat a 4x4 tile + 3 single passes); fewer go by 4-query tiles. */
    const nu_topk_passes p = {d <= LANES_MAX_D ? lanes_rows : NULL, 6, 64, tile_rows, 4, single_rows};
    nu_topk_drive_passes(B, N, K, ldt * sizeof(float), top_ids, top_scores, &c, &p);
}

void nu_fill_score_avx512(nu_kernel_table *t)
{
    t->score_topk = score_topk_avx512;
}
