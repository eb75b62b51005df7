/* Scoring + top-K on compressed tables (bf16, int8), AVX2.
 *
 * Same plan as the AVX-512 kernels at 8 lanes: one query streams the table
 * 8 rows at a time (one accumulator per row, reduced together by hadd + a
 * 128-bit swap, one compare against the current K-th best); blocks of 8
 * queries hold the queries in the lanes and broadcast row elements (no
 * reductions).  The shared driver (nu_topk_drive, topk.c) walks L2-sized
 * row blocks so the table streams from memory once for all queries.
 *
 * bf16 rows widen to fp32 by a 16-bit shift.  int8 rows use the
 * maddubs/sign trick: |t| (u8, <= 128) times sign(t) * q (s8, |q| <= 127)
 * gives pairs of products whose sum is at most 2 * 128 * 127 = 32512, so
 * vpmaddubsw never saturates and the dot is exact in int32. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../kernels.h"
#include "../topk.h"

#define LANES_MAX_D 512
#define LANE_ROWS 8

typedef struct lowp_ctx {
    size_t d;
    const void *Q;
    size_t ldq;
    const float *qscale;
    const void *T;
    size_t ldt;
    const float *row_scale;
    uint32_t row_base;
    size_t K;
    const nu_id_list *exclude;
    uint32_t *ids;
    float *scores;
} lowp_ctx;

static _Thread_local float qt_f32[LANES_MAX_D * 8];
static _Thread_local float rows_f32[LANE_ROWS * LANES_MAX_D];
static _Thread_local int32_t qt_i16x2[(LANES_MAX_D / 2 + 1) * 8];
static _Thread_local int16_t rows_i16[LANE_ROWS * (LANES_MAX_D + 16)];

/* Out of line: keeps __tls_get_addr out of the hot loops (-fPIC). */
__attribute__((noinline)) static void lanes_scratch(float **qt, float **rows, int32_t **qti,
                                                    int16_t **rowsi)
{
    *qt = qt_f32;
    *rows = rows_f32;
    *qti = qt_i16x2;
    *rowsi = rows_i16;
}

/* Lane i of the result is the full sum of v[i]. */
static inline __attribute__((always_inline)) __m256 reduce8_ps(const __m256 v[8])
{
    __m256 a = _mm256_hadd_ps(v[0], v[1]), b = _mm256_hadd_ps(v[2], v[3]);
    __m256 c = _mm256_hadd_ps(v[4], v[5]), e = _mm256_hadd_ps(v[6], v[7]);
    __m256 lo = _mm256_hadd_ps(a, b), hi = _mm256_hadd_ps(c, e);
    return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20),
                         _mm256_permute2f128_ps(lo, hi, 0x31));
}

static inline __attribute__((always_inline)) __m256i reduce8_epi32(const __m256i v[8])
{
    __m256i a = _mm256_hadd_epi32(v[0], v[1]), b = _mm256_hadd_epi32(v[2], v[3]);
    __m256i c = _mm256_hadd_epi32(v[4], v[5]), e = _mm256_hadd_epi32(v[6], v[7]);
    __m256i lo = _mm256_hadd_epi32(a, b), hi = _mm256_hadd_epi32(c, e);
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20),
                            _mm256_permute2x128_si256(lo, hi, 0x31));
}

/* Load mask for the first rem (< 8) floats. */
static inline __m256i tail_mask(size_t rem)
{
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(bits + 8 - rem));
}

/* Candidate lanes: s > thr, or any non-NaN s while thr is -inf (topk.h). */
static inline unsigned beats(__m256 s, float thr)
{
    __m256 m = thr == -INFINITY ? _mm256_cmp_ps(s, s, _CMP_ORD_Q)
                                : _mm256_cmp_ps(s, _mm256_set1_ps(thr), _CMP_GT_OQ);
    return (unsigned)_mm256_movemask_ps(m);
}

static inline float offer8(const lowp_ctx *c, size_t b, __m256 s, unsigned m, size_t r,
                           float thr)
{
    if (!m)
        return thr;
    float sc[8];
    _mm256_storeu_ps(sc, s);
    return nu_topk_consider_mask(c->scores + b * c->K, c->ids + b * c->K, c->K,
                                 nu_topk_list(c->exclude, b), sc, m,
                                 c->row_base + (uint32_t)r);
}

/* Lane thresholds of queries b0..b0+nq-1 (lane passes): a lane whose
 * threshold is -inf takes any non-NaN score. */
typedef struct lane_thr {
    __m256 thr, inf, gt;
} lane_thr;

static inline lane_thr lanes_thr(const lowp_ctx *c, size_t b0, size_t nq)
{
    float t[8];
    int32_t inf[8], gt[8];
    for (size_t i = 0; i < 8; i++) {
        t[i] = i < nq ? c->scores[(b0 + i) * c->K] : INFINITY;
        inf[i] = i < nq && t[i] == -INFINITY ? -1 : 0;
        gt[i] = i < nq && t[i] != -INFINITY ? -1 : 0;
    }
    lane_thr l = {_mm256_loadu_ps(t), _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)inf)),
                  _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)gt))};
    return l;
}

static inline unsigned lanes_beats(__m256 s, const lane_thr *l)
{
    __m256 m = _mm256_or_ps(_mm256_and_ps(l->inf, _mm256_cmp_ps(s, s, _CMP_ORD_Q)),
                            _mm256_and_ps(l->gt, _mm256_cmp_ps(s, l->thr, _CMP_GT_OQ)));
    return (unsigned)_mm256_movemask_ps(m);
}

/* Offers one row's candidates for the queries in lanes; 1 when any. */
static inline int offer_lanes(const lowp_ctx *c, size_t b0, __m256 s, unsigned m, size_t r)
{
    if (!m)
        return 0;
    float sc[8];
    _mm256_storeu_ps(sc, s);
    nu_topk_consider_lanes(c->scores, c->ids, c->K, c->exclude, b0, sc, m,
                           c->row_base + (uint32_t)r);
    return 1;
}

/* ==== bf16 ==== */

static inline __m256 widen8(__m128i h)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* The last n < 8 bf16 at p, widened, zero padded (never reads past them). */
static inline __m256 widen_tail(const uint16_t *p, size_t n)
{
    uint16_t b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(b, p, n * sizeof(uint16_t));
    return widen8(_mm_loadu_si128((const __m128i *)b));
}

static void bf16_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    (void)nq;
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)7;
    const __m256i dm = tail_mask(d - dfull);
    const float *q = (const float *)c->Q + b * c->ldq;
    const uint16_t *T = c->T;
    float thr = c->scores[b * c->K];
    for (size_t r = r0; r < r1; r += 8) {
        size_t nr = r1 - r < 8 ? r1 - r : 8;
        const uint16_t *p[8];
        for (size_t j = 0; j < 8; j++)
            p[j] = T + (r + (j < nr ? j : nr - 1)) * ldt;
        __m256 acc[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            acc[j] = _mm256_setzero_ps();
            size_t k = 0;
            for (; k < dfull; k += 8)
                acc[j] = _mm256_fmadd_ps(widen8(_mm_loadu_si128((const __m128i *)(p[j] + k))),
                                         _mm256_loadu_ps(q + k), acc[j]);
            if (k < d)
                acc[j] = _mm256_fmadd_ps(widen_tail(p[j] + k, d - k), _mm256_maskload_ps(q + k, dm),
                                         acc[j]);
        }
        __m256 s = reduce8_ps(acc);
        thr = offer8(c, b, s, beats(s, thr) & ((1u << nr) - 1), r, thr);
    }
}

static void bf16_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)7;
    const float *Q = c->Q;
    const uint16_t *T = c->T;
    float *qt, *w;
    int32_t *unused_i;
    int16_t *unused_r;
    lanes_scratch(&qt, &w, &unused_i, &unused_r);
    for (size_t k = 0; k < d; k++)
        for (size_t i = 0; i < 8; i++)
            qt[k * 8 + i] = i < nq ? Q[(b0 + i) * c->ldq + k] : 0.0f;
    lane_thr lt = lanes_thr(c, b0, nq);
    for (size_t r = r0; r < r1; r += LANE_ROWS) {
        size_t nr = r1 - r < LANE_ROWS ? r1 - r : LANE_ROWS;
        /* Rows widened once, then each element broadcast into an FMA. */
        for (size_t j = 0; j < LANE_ROWS; j++) {
            const uint16_t *p = T + (r + (j < nr ? j : nr - 1)) * ldt;
            float *o = w + j * d;
            size_t k = 0;
            for (; k < dfull; k += 8)
                _mm256_storeu_ps(o + k, widen8(_mm_loadu_si128((const __m128i *)(p + k))));
            for (; k < d; k++) {
                uint32_t u = (uint32_t)p[k] << 16;
                memcpy(o + k, &u, sizeof u);
            }
        }
        __m256 acc[LANE_ROWS];
#pragma GCC unroll 8
        for (int j = 0; j < LANE_ROWS; j++)
            acc[j] = _mm256_setzero_ps();
        for (size_t k = 0; k < d; k++) {
            __m256 qv = _mm256_loadu_ps(qt + k * 8);
#pragma GCC unroll 8
            for (int j = 0; j < LANE_ROWS; j++)
                acc[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + (size_t)j * d + k), qv, acc[j]);
        }
        int changed = 0;
        for (size_t j = 0; j < nr; j++)
            changed |= offer_lanes(c, b0, acc[j], lanes_beats(acc[j], &lt), r + j);
        if (changed)
            lt = lanes_thr(c, b0, nq);
    }
}

/* ==== int8 ==== */

/* 32 int8 products of t and q summed into 8 int32 lanes (exact,
 * see the header). */
static inline __m256i dot32(__m256i acc, __m256i t, __m256i q)
{
    __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(t), _mm256_sign_epi8(q, t));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

static inline __m256i load_tail32(const int8_t *p, size_t n)
{
    int8_t b[32];
    memset(b, 0, sizeof b);
    memcpy(b, p, n);
    return _mm256_loadu_si256((const __m256i *)b);
}

/* The contract's score of 8 rows from their exact dots (lanes >= nr: 0). */
static inline __m256 i8_scores(const lowp_ctx *c, __m256i dot, size_t b, size_t r, size_t nr)
{
    float rs[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(rs, c->row_scale + r, nr * sizeof(float));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_loadu_ps(rs)),
                         _mm256_set1_ps(c->qscale[b]));
}

static void i8_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    (void)nq;
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)31;
    const int8_t *q = (const int8_t *)c->Q + b * c->ldq;
    const int8_t *T = c->T;
    const __m256i qtail = load_tail32(q + dfull, d - dfull);
    float thr = c->scores[b * c->K];
    for (size_t r = r0; r < r1; r += 8) {
        size_t nr = r1 - r < 8 ? r1 - r : 8;
        const int8_t *p[8];
        for (size_t j = 0; j < 8; j++)
            p[j] = T + (r + (j < nr ? j : nr - 1)) * ldt;
        __m256i acc[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            acc[j] = _mm256_setzero_si256();
            size_t k = 0;
            for (; k < dfull; k += 32)
                acc[j] = dot32(acc[j], _mm256_loadu_si256((const __m256i *)(p[j] + k)),
                               _mm256_loadu_si256((const __m256i *)(q + k)));
            if (k < d)
                acc[j] = dot32(acc[j], load_tail32(p[j] + k, d - k), qtail);
        }
        __m256 s = i8_scores(c, reduce8_epi32(acc), b, r, nr);
        thr = offer8(c, b, s, beats(s, thr) & ((1u << nr) - 1), r, thr);
    }
}

/* Queries in lanes as int16 pairs: lane value = q[2kp] | q[2kp + 1] << 16. */
static void i8_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)15;
    const size_t dp = (d + 15) & ~(size_t)15, npairs = (d + 1) / 2;
    const int8_t *Q = c->Q, *T = c->T;
    float *unused_q, *unused_w;
    int32_t *qt;
    int16_t *w;
    lanes_scratch(&unused_q, &unused_w, &qt, &w);
    for (size_t kp = 0; kp < npairs; kp++)
        for (size_t i = 0; i < 8; i++) {
            int16_t lo = 0, hi = 0;
            if (i < nq) {
                lo = Q[(b0 + i) * c->ldq + 2 * kp];
                hi = 2 * kp + 1 < d ? Q[(b0 + i) * c->ldq + 2 * kp + 1] : 0;
            }
            qt[kp * 8 + i] = (int32_t)((uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16));
        }
    float qs[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(qs, c->qscale + b0, nq * sizeof(float));
    const __m256 qsv = _mm256_loadu_ps(qs);
    lane_thr lt = lanes_thr(c, b0, nq);
    for (size_t r = r0; r < r1; r += LANE_ROWS) {
        size_t nr = r1 - r < LANE_ROWS ? r1 - r : LANE_ROWS;
        for (size_t j = 0; j < LANE_ROWS; j++) {
            const int8_t *p = T + (r + (j < nr ? j : nr - 1)) * ldt;
            int16_t *o = w + j * dp;
            size_t k = 0;
            for (; k < dfull; k += 16)
                _mm256_storeu_si256((__m256i *)(o + k),
                                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + k))));
            if (k < d) {
                int8_t b[16];
                memset(b, 0, sizeof b);
                memcpy(b, p + k, d - k);
                _mm256_storeu_si256((__m256i *)(o + k),
                                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b)));
            }
        }
        __m256i acc[LANE_ROWS];
#pragma GCC unroll 8
        for (int j = 0; j < LANE_ROWS; j++)
            acc[j] = _mm256_setzero_si256();
        for (size_t kp = 0; kp < npairs; kp++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(qt + kp * 8));
#pragma GCC unroll 8
            for (int j = 0; j < LANE_ROWS; j++) {
                int32_t pair;
                memcpy(&pair, w + (size_t)j * dp + 2 * kp, sizeof pair);
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_set1_epi32(pair), qv));
            }
        }
        int changed = 0;
        for (size_t j = 0; j < nr; j++) {
            __m256 s = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc[j]),
                                                   _mm256_set1_ps(c->row_scale[r + j])),
                                     qsv);
            changed |= offer_lanes(c, b0, s, lanes_beats(s, &lt), r + j);
        }
        if (changed)
            lt = lanes_thr(c, b0, nq);
    }
}

/* ==== entry points ==== */

static void score_topk_bf16_avx2(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                                 const uint16_t *T, size_t ldt, uint32_t row_base, size_t K,
                                 const nu_id_list *exclude, uint32_t *top_ids,
                                 float *top_scores)
{
    const lowp_ctx c = {d, Q, ldq, NULL, T, ldt, NULL, row_base, K, exclude, top_ids,
                        top_scores};
    nu_topk_drive(B, N, K, ldt * sizeof(uint16_t), top_ids, top_scores, &c, bf16_single,
                  d <= LANES_MAX_D ? bf16_lanes : NULL, 4, 8);
}

static void score_topk_i8_avx2(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                               const float *qscale, const int8_t *T, size_t ldt,
                               const float *row_scale, const int32_t *row_sum,
                               uint32_t row_base, size_t K, const nu_id_list *exclude,
                               uint32_t *top_ids, float *top_scores)
{
    (void)row_sum; /* the sign trick needs no offset correction */
    const lowp_ctx c = {d, Q8, ldq, qscale, T, ldt, row_scale, row_base, K, exclude, top_ids,
                        top_scores};
    nu_topk_drive(B, N, K, ldt, top_ids, top_scores, &c, i8_single,
                  d <= LANES_MAX_D ? i8_lanes : NULL, 4, 8);
}

void nu_fill_score_lowp_avx2(nu_kernel_table *t)
{
    t->score_topk_bf16 = score_topk_bf16_avx2;
    t->score_topk_i8 = score_topk_i8_avx2;
}
