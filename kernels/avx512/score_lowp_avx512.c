/* Scoring + top-K on compressed tables (bf16, int8), AVX-512.
 *
 * Same plan as the fp32 score_topk: at B = 1 the table streams once, 16
 * rows at a time, one accumulator per row, the 16 accumulators reduced
 * together by a transpose-and-add tree and compared with the current K-th
 * best in one go.  Blocks of 6..16 queries hold the queries in the 16
 * lanes and broadcast table elements (no reductions).  The shared driver
 * (nu_topk_drive, topk.c) walks L2-sized row blocks so the table streams
 * from memory once for all queries.
 *
 * This file holds the baseline paths (AVX-512 F/BW): bf16 rows widened to
 * fp32 by a 16-bit shift; int8 rows by the maddubs/sign trick (one query)
 * or widened to int16 and multiplied pairwise into int32 (vpmaddwd; query
 * blocks), both exact.  The AVX512_BF16 passes (vdpbf16ps, one
 * query and query blocks) and the AVX512_VNNI pass (vpdpbusd, query blocks;
 * one query streams faster through the baseline pass, see
 * score_lowp_avx512_vnni.c) live in their own files and are chosen once
 * from nu_cpu_detect() in nu_fill_score_lowp_avx512. */
#include <string.h>

#include "../cpu.h"
#include "../score_lowp_variants.h"
#include "score_lowp_avx512.h"

/* ---- scratch of the lane passes (bounded, per thread) ---- */
static _Thread_local float qt_f32[LOWP_LANES_MAX_D * 16];
static _Thread_local float rows_f32[LOWP_LANE_ROWS * LOWP_LANES_MAX_D];
static _Thread_local int32_t qt_i16x2[(LOWP_LANES_MAX_D / 2 + 1) * 16];
static _Thread_local int16_t rows_i16[LOWP_LANE_ROWS * (LOWP_LANES_MAX_D + 32)];

/* Out of line on purpose: with -fPIC the compiler would otherwise put a
 * __tls_get_addr call into the hot loops. */
__attribute__((noinline)) static void lanes_scratch(float **qt, float **rows, int32_t **qti,
                                                    int16_t **rowsi)
{
    *qt = qt_f32;
    *rows = rows_f32;
    *qti = qt_i16x2;
    *rowsi = rows_i16;
}

/* 16 bf16 -> 16 fp32 (exact: bf16 is the upper half of an fp32). */
static inline __m512 widen16(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* ==== bf16, widening ==== */

/* One query over rows [r0, r1), 16 rows at a time. */
static void bf16w_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    (void)nq;
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)15;
    const __mmask16 dm = (__mmask16)((1u << (d - dfull)) - 1);
    const float *q = (const float *)c->Q + b * c->ldq;
    const uint16_t *T = c->T;
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
            for (; k < dfull; k += 16)
                acc[j] = _mm512_fmadd_ps(widen16(_mm256_loadu_si256((const __m256i *)(p[j] + k))),
                                         _mm512_loadu_ps(q + k), acc[j]);
            if (dm)
                acc[j] = _mm512_fmadd_ps(widen16(_mm256_maskz_loadu_epi16(dm, p[j] + k)),
                                         _mm512_maskz_loadu_ps(dm, q + k), acc[j]);
        }
        __m512 s = lowp_reduce16_ps(acc);
        __mmask16 m = lowp_beats(s, thr) & (__mmask16)((1u << nr) - 1);
        thr = lowp_offer16(c, b, s, m, r, thr);
    }
}

/* Queries b0..b0+nq-1 transposed: qt[k * 16 + lane] (lanes past nq are 0). */
static void transpose_f32(const lowp_ctx *c, size_t b0, size_t nq, float *qt)
{
    const float *Q = c->Q;
    for (size_t k = 0; k < c->d; k++)
        for (size_t i = 0; i < 16; i++)
            qt[k * 16 + i] = i < nq ? Q[(b0 + i) * c->ldq + k] : 0.0f;
}

/* Queries in the lanes: rows widened once into scratch, then each element
 * broadcast into an FMA against the 16 queries (d <= LOWP_LANES_MAX_D). */
static void bf16w_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)15;
    const __mmask16 dm = (__mmask16)((1u << (d - dfull)) - 1);
    const uint16_t *T = c->T;
    float *qt, *w;
    int32_t *unused_i;
    int16_t *unused_r;
    lanes_scratch(&qt, &w, &unused_i, &unused_r);
    transpose_f32(c, b0, nq, qt);
    __mmask16 inf_lanes, gt_lanes;
    __m512 thrv = lowp_lanes_thr(c, b0, nq, &inf_lanes, &gt_lanes);
    for (size_t r = r0; r < r1; r += LOWP_LANE_ROWS) {
        size_t nr = r1 - r < LOWP_LANE_ROWS ? r1 - r : LOWP_LANE_ROWS;
        for (size_t j = 0; j < LOWP_LANE_ROWS; j++) {
            const uint16_t *p = T + (r + (j < nr ? j : nr - 1)) * ldt;
            float *o = w + j * d;
            size_t k = 0;
            for (; k < dfull; k += 16)
                _mm512_storeu_ps(o + k, widen16(_mm256_loadu_si256((const __m256i *)(p + k))));
            if (dm)
                _mm512_mask_storeu_ps(o + k, dm, widen16(_mm256_maskz_loadu_epi16(dm, p + k)));
        }
        __m512 acc[LOWP_LANE_ROWS];
#pragma GCC unroll 16
        for (int j = 0; j < LOWP_LANE_ROWS; j++)
            acc[j] = _mm512_setzero_ps();
        for (size_t k = 0; k < d; k++) {
            __m512 qv = _mm512_loadu_ps(qt + k * 16);
#pragma GCC unroll 16
            for (int j = 0; j < LOWP_LANE_ROWS; j++)
                acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(w[(size_t)j * d + k]), qv, acc[j]);
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

/* ==== int8 ====
 * One query: the maddubs/sign trick at 256 bits (no widening shuffles):
 * |t| (u8, <= 128) times sign(t) q (s8, |q| <= 127) gives pair sums of at
 * most 32512, so vpmaddubsw cannot saturate and the dot is exact. */
static inline __m256i dot32_sign(__m256i t, __m256i q)
{
    __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(t), _mm256_sign_epi8(q, t));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* 8 partial sums of one row's dot product (qtail: q's d % 32 tail, zero
 * padded; the row tail is loaded under the mask dm). */
static inline __attribute__((always_inline)) __m256i
row_dot8(const int8_t *p, const int8_t *q, __m256i qtail, size_t d, __mmask32 dm)
{
    __m256i acc = _mm256_setzero_si256();
    size_t k = 0;
    for (; k + 32 <= d; k += 32)
        acc = _mm256_add_epi32(acc, dot32_sign(_mm256_loadu_si256((const __m256i *)(p + k)),
                                               _mm256_loadu_si256((const __m256i *)(q + k))));
    if (dm)
        acc = _mm256_add_epi32(acc, dot32_sign(_mm256_maskz_loadu_epi8(dm, p + k), qtail));
    return acc;
}

/* Rows ahead of the row being scored that the one-query scan asks for. */
#define I8_AHEAD_ROWS 256

/* One query over rows [r0, r1), 16 rows at a time; two rows share a zmm
 * (low / high half), which saves the first level of the reduction tree. */

static inline __attribute__((always_inline)) void
i8_rows(const lowp_ctx *c, size_t b, size_t r0, size_t r1, size_t d)
{
    const size_t ldt = c->ldt, dfull = d & ~(size_t)31;
    const __mmask32 dm = (__mmask32)((1ull << (d - dfull)) - 1);
    const int8_t *q = (const int8_t *)c->Q + b * c->ldq;
    const int8_t *T = c->T;
    const __m256i qtail = _mm256_maskz_loadu_epi8(dm, q + dfull);
    float thr = c->scores[b * c->K];
    for (size_t r = r0; r < r1; r += 16) {
        size_t nr = r1 - r < 16 ? r1 - r : 16;
        /* Rows I8_AHEAD_ROWS ahead, with their scales, asked for: as in the
         * fp32 B = 1 scan, the prefetchers alone leave bandwidth unused, and
         * one row's lines at a time between the loads read faster than a
         * burst per step (results/bench.md).  This pass never reads the
         * row sums (signed dots), so they are not fetched.  Prefetches
         * never fault, so none is kept in bounds. */
        const char *ahead = (const char *)(T + (r + I8_AHEAD_ROWS) * ldt);
        _mm_prefetch((const char *)(c->row_scale + r + I8_AHEAD_ROWS), _MM_HINT_T0);
        __m512i w[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            size_t ja = 2 * (size_t)i, jb = ja + 1;
            for (size_t off = 0; off < d; off += 64) {
                _mm_prefetch(ahead + ja * ldt + off, _MM_HINT_T0);
                _mm_prefetch(ahead + jb * ldt + off, _MM_HINT_T0);
            }
            __m256i lo = row_dot8(T + (r + (ja < nr ? ja : nr - 1)) * ldt, q, qtail, d, dm);
            __m256i hi = row_dot8(T + (r + (jb < nr ? jb : nr - 1)) * ldt, q, qtail, d, dm);
            w[i] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        }
        __m512 s = lowp_i8_scores(c, lowp_reduce16_pairs_epi32(w), b, r, nr);
        __mmask16 m = lowp_beats(s, thr) & (__mmask16)((1u << nr) - 1);
        thr = lowp_offer16(c, b, s, m, r, thr);
    }
}

static void i8_single(const void *ctx, size_t b, size_t nq, size_t r0, size_t r1)
{
    (void)nq;
    const lowp_ctx *c = ctx;
    if (c->d == 64) /* the common width: constant trip counts */
        i8_rows(c, b, r0, r1, 64);
    else
        i8_rows(c, b, r0, r1, c->d);
}

/* Queries in lanes as int16 pairs: qt[kp * 16 + lane] holds q[2kp] (low
 * half) and q[2kp + 1] (high half; 0 past d). */
static void transpose_i16x2(const lowp_ctx *c, size_t b0, size_t nq, int32_t *qt)
{
    const int8_t *Q = c->Q;
    const size_t d = c->d;
    for (size_t kp = 0; 2 * kp < d; kp++)
        for (size_t i = 0; i < 16; i++) {
            const int8_t *q = Q + (b0 + i) * c->ldq;
            int16_t lo = 0, hi = 0;
            if (i < nq) {
                lo = q[2 * kp];
                hi = 2 * kp + 1 < d ? q[2 * kp + 1] : 0;
            }
            qt[kp * 16 + i] = (int32_t)((uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16));
        }
}

static void i8w_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1)
{
    const lowp_ctx *c = ctx;
    const size_t d = c->d, ldt = c->ldt, dfull = d & ~(size_t)31;
    const size_t dp = (d + 31) & ~(size_t)31, npairs = (d + 1) / 2;
    const __mmask32 dm = (__mmask32)((1ull << (d - dfull)) - 1);
    const int8_t *T = c->T;
    float *unused_q, *unused_w;
    int32_t *qt;
    int16_t *w;
    lanes_scratch(&unused_q, &unused_w, &qt, &w);
    transpose_i16x2(c, b0, nq, qt);
    const __m512 qsv = _mm512_maskz_loadu_ps((__mmask16)((1u << nq) - 1), c->qscale + b0);
    __mmask16 inf_lanes, gt_lanes;
    __m512 thrv = lowp_lanes_thr(c, b0, nq, &inf_lanes, &gt_lanes);
    for (size_t r = r0; r < r1; r += LOWP_LANE_ROWS) {
        size_t nr = r1 - r < LOWP_LANE_ROWS ? r1 - r : LOWP_LANE_ROWS;
        /* Rows widened once (zero padded to dp), then read as int16 pairs. */
        for (size_t j = 0; j < LOWP_LANE_ROWS; j++) {
            const int8_t *p = T + (r + (j < nr ? j : nr - 1)) * ldt;
            int16_t *o = w + j * dp;
            size_t k = 0;
            for (; k < dfull; k += 32)
                _mm512_storeu_si512(o + k, _mm512_cvtepi8_epi16(
                                               _mm256_loadu_si256((const __m256i *)(p + k))));
            if (dm)
                _mm512_storeu_si512(o + k, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(dm, p + k)));
        }
        __m512i acc[LOWP_LANE_ROWS];
#pragma GCC unroll 16
        for (int j = 0; j < LOWP_LANE_ROWS; j++)
            acc[j] = _mm512_setzero_si512();
        for (size_t kp = 0; kp < npairs; kp++) {
            __m512i qv = _mm512_loadu_si512(qt + kp * 16);
#pragma GCC unroll 16
            for (int j = 0; j < LOWP_LANE_ROWS; j++) {
                int32_t pair;
                memcpy(&pair, w + (size_t)j * dp + 2 * kp, sizeof pair);
                acc[j] = _mm512_add_epi32(acc[j], _mm512_madd_epi16(_mm512_set1_epi32(pair), qv));
            }
        }
        int changed = 0;
        for (size_t j = 0; j < nr; j++) {
            __m512 s = lowp_i8_lane_scores(acc[j], c->row_scale[r + j], qsv);
            changed |= lowp_offer_lanes(c, b0, s, lowp_lanes_beats(s, thrv, inf_lanes, gt_lanes),
                                        r + j);
        }
        if (changed)
            thrv = lowp_lanes_thr(c, b0, nq, &inf_lanes, &gt_lanes);
    }
}

/* ==== entry points: the paths are chosen once, when the table is filled ==== */

/* 6..16 queries fill the lanes well enough; fewer go one by one. */
#define LANES_MIN 6

static void bf16_run(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                     const uint16_t *T, size_t ldt, uint32_t row_base, size_t K,
                     const nu_id_list *exclude, uint32_t *top_ids, float *top_scores,
                     int use_dp)
{
    const lowp_ctx c = {d, Q, ldq, NULL, T, ldt, NULL, NULL, row_base, K, exclude,
                        top_ids, top_scores};
    nu_topk_pass_fn single = bf16w_single, lanes = NULL;
    if (use_dp && d <= LOWP_MAX_D)
        single = nu_lowp512_bf16dp_single;
    if (d <= LOWP_LANES_MAX_D)
        lanes = use_dp ? nu_lowp512_bf16dp_lanes : bf16w_lanes;
    nu_topk_drive(B, N, K, ldt * sizeof(uint16_t), top_ids, top_scores, &c, single, lanes,
                  LANES_MIN, use_dp ? NU_LOWP512_BF16_LANES : 16);
}

static void score_topk_bf16_widen(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                                  const uint16_t *T, size_t ldt, uint32_t row_base, size_t K,
                                  const nu_id_list *exclude, uint32_t *top_ids,
                                  float *top_scores)
{
    bf16_run(B, N, d, Q, ldq, T, ldt, row_base, K, exclude, top_ids, top_scores, 0);
}

static void score_topk_bf16_dp(size_t B, size_t N, size_t d, const float *Q, size_t ldq,
                               const uint16_t *T, size_t ldt, uint32_t row_base, size_t K,
                               const nu_id_list *exclude, uint32_t *top_ids, float *top_scores)
{
    bf16_run(B, N, d, Q, ldq, T, ldt, row_base, K, exclude, top_ids, top_scores, 1);
}

static void i8_run(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                   const float *qscale, const int8_t *T, size_t ldt, const float *row_scale,
                   const int32_t *row_sum, uint32_t row_base, size_t K,
                   const nu_id_list *exclude, uint32_t *top_ids, float *top_scores, int use_vnni)
{
    const lowp_ctx c = {d, Q8, ldq, qscale, T, ldt, row_scale, row_sum, row_base, K, exclude,
                        top_ids, top_scores};
    /* One query: the baseline pass also with VNNI (faster when streaming,
     * see score_lowp_avx512_vnni.c). */
    nu_topk_pass_fn lanes = NULL;
    if (d <= LOWP_LANES_MAX_D)
        lanes = use_vnni ? nu_lowp512_vnni_lanes : i8w_lanes;
    nu_topk_drive(B, N, K, ldt, top_ids, top_scores, &c, i8_single, lanes, LANES_MIN,
                  use_vnni ? NU_LOWP512_VNNI_LANES : 16);
}

static void score_topk_i8_widen(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                                const float *qscale, const int8_t *T, size_t ldt,
                                const float *row_scale, const int32_t *row_sum,
                                uint32_t row_base, size_t K, const nu_id_list *exclude,
                                uint32_t *top_ids, float *top_scores)
{
    i8_run(B, N, d, Q8, ldq, qscale, T, ldt, row_scale, row_sum, row_base, K, exclude, top_ids,
           top_scores, 0);
}

static void score_topk_i8_vnni(size_t B, size_t N, size_t d, const int8_t *Q8, size_t ldq,
                               const float *qscale, const int8_t *T, size_t ldt,
                               const float *row_scale, const int32_t *row_sum,
                               uint32_t row_base, size_t K, const nu_id_list *exclude,
                               uint32_t *top_ids, float *top_scores)
{
    i8_run(B, N, d, Q8, ldq, qscale, T, ldt, row_scale, row_sum, row_base, K, exclude, top_ids,
           top_scores, 1);
}

void nu_fill_score_lowp_avx512_variant(nu_kernel_table *t, int use_bf16_dp, int use_vnni)
{
    const nu_cpu_features *f = nu_cpu_detect();
    t->score_topk_bf16 =
        use_bf16_dp && f->avx512_bf16 ? score_topk_bf16_dp : score_topk_bf16_widen;
    t->score_topk_i8 = use_vnni && f->avx512_vnni ? score_topk_i8_vnni : score_topk_i8_widen;
}

void nu_fill_score_lowp_avx512(nu_kernel_table *t)
{
    nu_fill_score_lowp_avx512_variant(t, 1, 1);
}
