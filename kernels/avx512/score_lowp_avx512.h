/* Internal to the AVX-512 score_lowp files: the shared context, the
 * reduction trees and the threshold compares (inlined into each file with
 * that file's own flags), and the passes the extension files provide. */
#ifndef NU_SIMD_AVX512_SCORE_LOWP_H
#define NU_SIMD_AVX512_SCORE_LOWP_H

#include <immintrin.h>
#include <math.h>

#include "../kernels.h"
#include "reduce16_avx512.h"
#include "../topk.h"

/* Longest query the bf16 dot-product pass converts into its scratch
 * (longer ones take the widening pass). */
#define LOWP_MAX_D 4096
/* Longest query of the lane (query-block) passes (bounds their scratch;
 * longer ones go query by query). */
#define LOWP_LANES_MAX_D 512
/* Most queries of one vpdpbusd / vdpbf16ps lane pass (4 vectors of 16). */
#define NU_LOWP512_VNNI_LANES 64
#define NU_LOWP512_BF16_LANES 64
/* Rows per lane step: 8 accumulators cover the FMA latency. */
#define LOWP_LANE_ROWS 8
/* Most rows per step of the 1-4 vector lane passes (V x R accumulators;
 * one vector takes 12 rows: vdpbf16ps and vpdpbusd have a longer latency
 * than an FMA, and 12 were 3-15% faster than 8 at 16 queries). */
#define LOWP_WIDE_ROWS 16

/* Everything a pass needs; Q/T typed per kernel (bf16: float / uint16_t,
 * int8: int8_t / int8_t). */
typedef struct lowp_ctx {
    size_t d;
    const void *Q;
    size_t ldq;
    const float *qscale;
    const void *T;
    size_t ldt;
    const float *row_scale;
    const int32_t *row_sum;
    uint32_t row_base;
    size_t K;
    const nu_id_list *exclude;
    uint32_t *ids;
    float *scores;
} lowp_ctx;


/* Lane j is the full sum of v[j] (fp32). */
static inline __attribute__((always_inline)) __m512 lowp_reduce16_ps(const __m512 v[16])
{
    const __m512i natural =
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(natural, nu_reduce16_raw(v));
}

#define LOWP_SHUF_I32(a, b, imm)                                                      \
    _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b), \
                                          (imm)))

/* Lane j is the full sum of row j's partial sums, given as w[i] = row 2i's
 * 8 partial sums (low half) and row 2i + 1's (high half); int32, exact. */
static inline __attribute__((always_inline)) __m512i lowp_reduce16_pairs_epi32(const __m512i w[8])
{
    __m512i x[4], y[2];
    for (int i = 0; i < 4; i++)
        x[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(w[2 * i], w[2 * i + 1], 0x88),
                                _mm512_shuffle_i32x4(w[2 * i], w[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; i++)
        y[i] = _mm512_add_epi32(LOWP_SHUF_I32(x[2 * i], x[2 * i + 1], 0x44),
                                LOWP_SHUF_I32(x[2 * i], x[2 * i + 1], 0xEE));
    __m512i z = _mm512_add_epi32(LOWP_SHUF_I32(y[0], y[1], 0x88),
                                 LOWP_SHUF_I32(y[0], y[1], 0xDD));
    const __m512i natural =
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(natural, z);
}

/* Lane j is the full sum of v[j] (int32, exact in any order). */
static inline __attribute__((always_inline)) __m512i lowp_reduce16_epi32(const __m512i v[16])
{
    __m512i w[8];
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(v[2 * i], v[2 * i + 1], 0x44),
                                _mm512_shuffle_i32x4(v[2 * i], v[2 * i + 1], 0xEE));
    return lowp_reduce16_pairs_epi32(w);
}

/* Candidates: s > thr, or any non-NaN s while thr is -inf (see topk.h). */
static inline __mmask16 lowp_beats(__m512 s, float thr)
{
    if (thr == -INFINITY)
        return _mm512_cmp_ps_mask(s, s, _CMP_ORD_Q);
    return _mm512_cmp_ps_mask(s, _mm512_set1_ps(thr), _CMP_GT_OQ);
}

/* The int8 score of the contract from 16 exact dots of rows r..r+15
 * (lanes past nr are don't-care). */
static inline __m512 lowp_i8_scores(const lowp_ctx *c, __m512i dot, size_t b, size_t r,
                                    size_t nr)
{
    __mmask16 rm = (__mmask16)((1u << nr) - 1);
    __m512 rs = _mm512_maskz_loadu_ps(rm, c->row_scale + r);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), rs),
                         _mm512_set1_ps(c->qscale[b]));
}

/* Scores of one row for the queries in lanes: ((float)dot * rs) * qs. */
static inline __m512 lowp_i8_lane_scores(__m512i dot, float rs, __m512 qsv)
{
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(rs)), qsv);
}

/* Offers the candidate lanes of 16 scores for query b; returns the new
 * threshold. */
static inline float lowp_offer16(const lowp_ctx *c, size_t b, __m512 s, __mmask16 m,
                                 size_t r, float thr)
{
    if (!m)
        return thr;
    float sc[16];
    _mm512_storeu_ps(sc, s);
    return nu_topk_consider_mask(c->scores + b * c->K, c->ids + b * c->K, c->K,
                                 nu_topk_list(c->exclude, b), sc, m,
                                 c->row_base + (uint32_t)r);
}

/* Per-lane thresholds of queries b0..b0+nq-1 for the lane passes:
 * inf_lanes / gt_lanes select which compare decides a lane. */
static inline __m512 lowp_lanes_thr(const lowp_ctx *c, size_t b0, size_t nq,
                                    __mmask16 *inf_lanes, __mmask16 *gt_lanes)
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

/* Offers the candidates of one row for the queries in the lanes of s;
 * returns 1 when a threshold changed. */
static inline int lowp_offer_lanes(const lowp_ctx *c, size_t b0, __m512 s, __mmask16 m,
                                   size_t r)
{
    if (!m)
        return 0;
    float sc[16];
    _mm512_storeu_ps(sc, s);
    return nu_topk_consider_lanes(c->scores, c->ids, c->K, c->exclude, b0, sc, m,
                                  c->row_base + (uint32_t)r);
}

/* Offers the candidates of one lane step: s[v * R + j] holds the scores of
 * row r + j for queries b0 + 16 v .., m[v * R + j] their candidate lanes,
 * bit v * R + j of `which` is set where that mask is.  A loop over the set
 * bits: tested one by one, vector by vector, the masks mispredicted about
 * one branch in five where steps offer a few candidates each (queries in 4
 * vectors, 400-candidate pools).  Returns bit v set when a threshold of
 * vector v rose. */
static inline unsigned lowp_offer_step(const lowp_ctx *c, size_t b0, int R, float (*s)[16],
                                       const __mmask16 *m, uint64_t which, size_t r)
{
    unsigned changed = 0;
    while (which) {
        unsigned idx = (unsigned)__builtin_ctzll(which);
        which &= which - 1;
        unsigned v = idx / (unsigned)R, j = idx % (unsigned)R;
        changed |= (unsigned)nu_topk_consider_lanes(c->scores, c->ids, c->K, c->exclude,
                                                    b0 + (size_t)v * 16, s[idx], m[idx],
                                                    c->row_base + (uint32_t)(r + j))
                   << v;
    }
    return changed;
}

/* The end of one lane step of the wide passes (R rows, V vectors of 16
 * queries; both constants at every call): the candidates of scores
 * s[v][j] in lanes m[v][j] are offered, and the thresholds of every vector
 * whose threshold rose are re-read into thr, inf, gt. */
static inline __attribute__((always_inline)) void
lowp_offer_wide(const lowp_ctx *c, size_t b0, size_t nq, size_t r, const int R, const int V,
                __m512 (*s)[LOWP_WIDE_ROWS], __mmask16 (*m)[LOWP_WIDE_ROWS], __m512 *thr,
                __mmask16 *inf, __mmask16 *gt)
{
    float sv[4 * LOWP_WIDE_ROWS][16];
    __mmask16 mv[4 * LOWP_WIDE_ROWS];
    uint64_t which = 0;
#pragma GCC unroll 16
    for (int j = 0; j < R; j++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            _mm512_storeu_ps(sv[v * R + j], s[v][j]);
            mv[v * R + j] = m[v][j];
            which |= (uint64_t)(m[v][j] != 0) << (v * R + j);
        }
    unsigned changed = lowp_offer_step(c, b0, R, sv, mv, which, r); /* bit v: vector v */
    for (int v = 0; v < V; v++)
        if (changed >> v & 1) {
            size_t lo = (size_t)v * 16, n = nq - lo < 16 ? nq - lo : 16;
            thr[v] = lowp_lanes_thr(c, b0 + lo, n, &inf[v], &gt[v]);
        }
}

/* Candidate lanes of one row's scores s (queries in lanes). */
static inline __mmask16 lowp_lanes_beats(__m512 s, __m512 thrv, __mmask16 inf_lanes,
                                         __mmask16 gt_lanes)
{
    return _mm512_mask_cmp_ps_mask(inf_lanes, s, s, _CMP_ORD_Q) |
           _mm512_mask_cmp_ps_mask(gt_lanes, s, thrv, _CMP_GT_OQ);
}

/* Passes in score_lowp_avx512_bf16.c (AVX512_BF16) and
 * score_lowp_avx512_vnni.c (AVX512_VNNI); ctx is a lowp_ctx.  The single
 * pass needs d <= LOWP_MAX_D, the lane passes d <= LOWP_LANES_MAX_D; the
 * vpdpbusd and vdpbf16ps lane passes take up to NU_LOWP512_VNNI_LANES and
 * NU_LOWP512_BF16_LANES queries, the widening ones 16. */
void nu_lowp512_bf16dp_single(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1);
void nu_lowp512_bf16dp_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1);
void nu_lowp512_vnni_lanes(const void *ctx, size_t b0, size_t nq, size_t r0, size_t r1);

#endif
