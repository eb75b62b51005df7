/* Fused dot-product scoring + top-K, AVX2.
 *
 * Same plan as the AVX-512 kernel, at 8 lanes: B = 1 streams the table 8
 * rows at a time (one ymm accumulator per row, rows read in address order
 * so the hardware prefetchers keep streaming), reduces the 8 accumulators
 * together with hadd + a 128-bit swap, and compares the 8 scores with the
 * current K-th best in one go.  Blocks of 8..16 queries hold the queries
 * in lanes and broadcast table elements (no reductions); 4..7 leftover
 * queries use a tile of 4 queries x 2 rows (8 accumulators) that reuses
 * each row chunk 4 times.  Rows are walked in L2-sized blocks so the table
 * streams from memory once for all queries.  Heaps live in the outputs
 * (see topk.h). */
#include <immintrin.h>
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
    float *qt;      /* lanes: a block of queries transposed */
} score_ctx;

/* Lane i of the result is the full sum of v[i]. */
static inline __attribute__((always_inline)) __m256 reduce8(const __m256 v[8])
{
    __m256 a = _mm256_hadd_ps(v[0], v[1]), b = _mm256_hadd_ps(v[2], v[3]);
    __m256 c = _mm256_hadd_ps(v[4], v[5]), e = _mm256_hadd_ps(v[6], v[7]);
    __m256 lo = _mm256_hadd_ps(a, b), hi = _mm256_hadd_ps(c, e); /* halves of rows 0-3, 4-7 */
    return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20),
                         _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* Load mask for the last d % 8 elements. */
static inline __m256i tail_mask(size_t rem)
{
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + 8 - rem));
}

/* Candidate lanes: s > thr, or any non-NaN s while thr is -inf (see topk.h). */
static inline unsigned beats(__m256 s, float thr)
{
    __m256 m = thr == -INFINITY ? _mm256_cmp_ps(s, s, _CMP_ORD_Q)
                                : _mm256_cmp_ps(s, _mm256_set1_ps(thr), _CMP_GT_OQ);
    return (unsigned)_mm256_movemask_ps(m);
}

/* Scores 8 rows (rows past nr repeat the last one and are masked out) for
 * one query and offers the candidates; returns the updated threshold. */
static inline __attribute__((always_inline)) float
block8(const score_ctx *c, const float *q, size_t r, size_t nr, float *hs, uint32_t *hi,
       const nu_id_list *ex, float thr)
{
    const size_t d = c->d, dfull = d & ~(size_t)7;
    const __m256i dm = tail_mask(d - dfull);
    const float *p[8];
    for (size_t j = 0; j < 8; j++)
        p[j] = c->T + (r + (j < nr ? j : nr - 1)) * c->ldt;
    __m256 acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        acc[j] = _mm256_setzero_ps();
        size_t k = 0;
        for (; k < dfull; k += 8)
            acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(p[j] + k), _mm256_loadu_ps(q + k), acc[j]);
        if (k < d)
            acc[j] = _mm256_fmadd_ps(_mm256_maskload_ps(p[j] + k, dm),
                                     _mm256_maskload_ps(q + k, dm), acc[j]);
    }
    __m256 s = reduce8(acc);
    unsigned m = beats(s, thr) & ((1u << nr) - 1);
    if (m) {
        float sc[8];
        _mm256_storeu_ps(sc, s);
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

/* Threshold lanes for the 4x2 tile: lane l belongs to query l >> 1; the
 * second vector flags the lanes whose threshold is -inf. */
static inline __m256 tile_thr(const float thr[4], __m256 *inf_lanes)
{
    __m256 t = _mm256_setr_ps(thr[0], thr[0], thr[1], thr[1], thr[2], thr[2], thr[3], thr[3]);
    *inf_lanes = _mm256_cmp_ps(t, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
    return t;
}

#define FMA_TILE(t0, t1, LOADQ)                                   \
    do {                                                          \
        for (int i = 0; i < 4; i++) {                             \
            __m256 qv = LOADQ(q[i] + k);                          \
            acc[2 * i] = _mm256_fmadd_ps(t0, qv, acc[2 * i]);     \
            acc[2 * i + 1] = _mm256_fmadd_ps(t1, qv, acc[2 * i + 1]); \
        }                                                         \
    } while (0)

/* Queries b0..b0+3 over rows [r0, r1), 2 rows at a time. */
static void tile_rows(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const score_ctx *c = ctx;
    const float *Q = c->Q;
    const size_t ldq = c->ldq;
    (void)nq; /* always 4 */
    const size_t d = c->d, K = c->K, dfull = d & ~(size_t)7;
    const __m256i dm = tail_mask(d - dfull);
    const float *q[4];
    float thr[4];
    for (int i = 0; i < 4; i++) {
        q[i] = Q + (b0 + (size_t)i) * ldq;
        thr[i] = c->scores[(b0 + (size_t)i) * K];
    }
    __m256 inf_lanes;
    __m256 thrv = tile_thr(thr, &inf_lanes);
    for (size_t r = r0; r < r1; r += 2) {
        const float *p0 = c->T + r * c->ldt;
        const float *p1 = r + 1 < r1 ? p0 + c->ldt : p0;
        __m256 acc[8]; /* acc[2 * query + row] */
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            acc[j] = _mm256_setzero_ps();
        size_t k = 0;
        for (; k < dfull; k += 8) {
            __m256 t0 = _mm256_loadu_ps(p0 + k), t1 = _mm256_loadu_ps(p1 + k);
#define LOADQ(ptr) _mm256_loadu_ps(ptr)
            FMA_TILE(t0, t1, LOADQ);
#undef LOADQ
        }
        if (k < d) {
            __m256 t0 = _mm256_maskload_ps(p0 + k, dm), t1 = _mm256_maskload_ps(p1 + k, dm);
#define LOADQ(ptr) _mm256_maskload_ps(ptr, dm)
            FMA_TILE(t0, t1, LOADQ);
#undef LOADQ
        }
        /* Lane l: query l >> 1, row l & 1. */
        __m256 s = reduce8(acc);
        __m256 ge = _mm256_and_ps(inf_lanes, _mm256_cmp_ps(s, s, _CMP_ORD_Q));
        __m256 gt = _mm256_andnot_ps(inf_lanes, _mm256_cmp_ps(s, thrv, _CMP_GT_OQ));
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_or_ps(ge, gt));
        if (r + 1 >= r1)
            m &= 0x55; /* only row 0 of the tile exists */
        if (!m)
            continue;
        float sc[8];
        _mm256_storeu_ps(sc, s);
        while (m) {
            unsigned l = (unsigned)__builtin_ctz(m);
            m &= m - 1;
            size_t b = b0 + (l >> 1);
            nu_topk_consider(c->scores + b * K, c->ids + b * K, K,
                             nu_topk_list(c->exclude, b), sc[l],
                             c->row_base + (uint32_t)(r + (l & 1)));
        }
        for (int i = 0; i < 4; i++)
            thr[i] = c->scores[(b0 + (size_t)i) * K];
        thrv = tile_thr(thr, &inf_lanes);
    }
}

/* ---- many queries: queries in lanes, table rows broadcast ----
 * Up to 16 queries are transposed once (qt[k * 16 + lane]); per k, two
 * query vectors meet 6 broadcast table elements in 12 FMAs, with no
 * horizontal reduction (8 loads per 12 FMAs fits Zen 4's load ports). */
#define LANES_MAX_D 1024
#define LANE_ROWS 6
static _Thread_local float qt_buf[LANES_MAX_D * 16];

/* Out of line on purpose: with -fPIC the compiler would otherwise fold the
 * TLS address into the hot loop as a __tls_get_addr call per step. */
__attribute__((noinline)) static float *qt_scratch(void)
{
    return qt_buf;
}

static void lanes_transpose(const float *Q, size_t ldq, size_t b0, size_t nq, size_t d,
                            float *qt)
{
    for (size_t k = 0; k < d; k++)
        for (size_t i = 0; i < 16; i++)
            qt[k * 16 + i] = i < nq ? Q[(b0 + i) * ldq + k] : 0.0f;
}

/* Thresholds of the 16 lanes (inactive lanes +inf: never candidates) and
 * the lanes whose threshold is -inf. */
static inline void lanes_thr(const score_ctx *c, size_t b0, size_t nq, __m256 thr[2],
                             __m256 inf[2])
{
    float t[16];
    for (size_t i = 0; i < 16; i++)
        t[i] = i < nq ? c->scores[(b0 + i) * c->K] : INFINITY;
    for (int h = 0; h < 2; h++) {
        thr[h] = _mm256_loadu_ps(t + 8 * h);
        inf[h] = _mm256_cmp_ps(thr[h], _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
    }
}

static inline unsigned lanes_beats(__m256 s, __m256 thr, __m256 inf)
{
    __m256 ge = _mm256_and_ps(inf, _mm256_cmp_ps(s, s, _CMP_ORD_Q));
    __m256 gt = _mm256_andnot_ps(inf, _mm256_cmp_ps(s, thr, _CMP_GT_OQ));
    return (unsigned)_mm256_movemask_ps(_mm256_or_ps(ge, gt));
}

/* Queries b0..b0+nq-1 (nq <= 16, transposed into qt first) over rows [r0, r1). */
static void lanes_rows(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const score_ctx *c = ctx;
    lanes_transpose(c->Q, c->ldq, b0, nq, c->d, c->qt);
    const float *qt = c->qt;
    const size_t d = c->d, K = c->K, ldt = c->ldt;
    __m256 thr[2], inf[2];
    lanes_thr(c, b0, nq, thr, inf);
    for (size_t r = r0; r < r1; r += LANE_ROWS) {
        size_t nr = r1 - r < LANE_ROWS ? r1 - r : LANE_ROWS;
        const float *p[LANE_ROWS];
        for (size_t j = 0; j < LANE_ROWS; j++)
            p[j] = c->T + (r + (j < nr ? j : nr - 1)) * ldt;
        /* The next rows into L1 while these are computed, one line per k
         * step: the broadcasts walk several rows at once, which the
         * hardware prefetchers do not follow well. */
        const char *next = (const char *)c->T;
        size_t lines = 0;
        if (r + LANE_ROWS < r1) {
            size_t rows = r1 - r - LANE_ROWS < LANE_ROWS ? r1 - r - LANE_ROWS : LANE_ROWS;
            next = (const char *)(c->T + (r + LANE_ROWS) * ldt);
            lines = (rows * ldt * sizeof(float) + 63) / 64;
        }
        __m256 acc[2 * LANE_ROWS]; /* acc[2 * row + half] */
#pragma GCC unroll 12
        for (int j = 0; j < 2 * LANE_ROWS; j++)
            acc[j] = _mm256_setzero_ps();
        for (size_t k = 0; k < d; k++) {
            if (k < lines)
                _mm_prefetch(next + 64 * k, _MM_HINT_T0);
            __m256 q0 = _mm256_loadu_ps(qt + k * 16), q1 = _mm256_loadu_ps(qt + k * 16 + 8);
#pragma GCC unroll 6
            for (int j = 0; j < LANE_ROWS; j++) {
                __m256 t = _mm256_broadcast_ss(p[j] + k);
                acc[2 * j] = _mm256_fmadd_ps(t, q0, acc[2 * j]);
                acc[2 * j + 1] = _mm256_fmadd_ps(t, q1, acc[2 * j + 1]);
            }
        }
        for (size_t l = d; l < lines; l++)
            _mm_prefetch(next + 64 * l, _MM_HINT_T0);
        /* Unrolled with constant indices so acc stays in registers. */
        unsigned m[LANE_ROWS], any = 0;
#pragma GCC unroll 6
        for (int j = 0; j < LANE_ROWS; j++) {
            m[j] = lanes_beats(acc[2 * j], thr[0], inf[0]) |
                   lanes_beats(acc[2 * j + 1], thr[1], inf[1]) << 8;
            any |= (size_t)j < nr ? m[j] : 0;
        }
        if (!any)
            continue;
        float sc[LANE_ROWS][16];
#pragma GCC unroll 6
        for (int j = 0; j < LANE_ROWS; j++) {
            _mm256_storeu_ps(sc[j], acc[2 * j]);
            _mm256_storeu_ps(sc[j] + 8, acc[2 * j + 1]);
        }
        for (size_t j = 0; j < nr; j++) {
            unsigned mm = m[j];
            while (mm) {
                unsigned l = (unsigned)__builtin_ctz(mm);
                mm &= mm - 1;
                size_t b = b0 + l;
                nu_topk_consider(c->scores + b * K, c->ids + b * K, K,
                                 nu_topk_list(c->exclude, b), sc[j][l],
                                 c->row_base + (uint32_t)(r + j));
            }
        }
        lanes_thr(c, b0, nq, thr, inf);
    }
}

static void score_topk_avx2(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                            const float *T, size_t ldt, uint32_t row_base, size_t K,
                            const nu_id_list *exclude, uint32_t *top_ids, float *top_scores)
{
    const score_ctx c = {d, T, ldt, row_base, K, exclude, top_ids, top_scores, Q, ldq, qt_scratch()};
    /* 8..16 queries fill the lanes well enough; fewer go by 4-query tiles. */
    const nu_topk_passes p = {d <= LANES_MAX_D ? lanes_rows : NULL, 8, 16, tile_rows, 4, single_rows};
    nu_topk_drive_passes(B, N, K, ldt * sizeof(float), top_ids, top_scores, &c, &p);
}

void nu_fill_score_avx2(nu_kernel_table *t)
{
    t->score_topk = score_topk_avx2;
}
