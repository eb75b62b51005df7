/* Masked multi-head attention, AVX-512 (16 floats per zmm; dh = 16 is one):
 * the vector primitives of the shared driver (kernels/attention_drive.h has
 * the plan).  Keys are transposed in 16 x 16 register blocks; a score block
 * is up to 4 key vectors per query (4 queries x 4 = 16 accumulators of 32
 * zmm registers).  Tails use masked loads/stores, which never touch memory
 * outside the mask. */
#include <immintrin.h>
#include <math.h>

#include "../kernels.h"
#include "attention16_avx512.h"
#include "exp_avx512.h"
#include "transpose16_avx512.h"

#define NU_ATT_ISA avx512
#define NU_ATT_W 16
#define NU_ATT_NB_MAX 4
#define NU_ATT_MASKED 1
#define NU_ATT_REG_TRANSPOSE 1

typedef __m512 att_v;
typedef __mmask16 att_m;

static inline att_v att_zero(void) { return _mm512_setzero_ps(); }
static inline att_v att_set1(float s) { return _mm512_set1_ps(s); }
static inline att_v att_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void att_store(float *p, att_v v) { _mm512_storeu_ps(p, v); }
static inline att_v att_add(att_v a, att_v b) { return _mm512_add_ps(a, b); }
static inline att_v att_sub(att_v a, att_v b) { return _mm512_sub_ps(a, b); }
static inline att_v att_mul(att_v a, att_v b) { return _mm512_mul_ps(a, b); }
static inline att_v att_max(att_v a, att_v b) { return _mm512_max_ps(a, b); }
static inline att_v att_mul_n(att_v v, float s) { return _mm512_mul_ps(_mm512_set1_ps(s), v); }
static inline att_v att_fma(att_v acc, att_v a, att_v b) { return _mm512_fmadd_ps(a, b, acc); }

static inline att_v att_fma_n(att_v acc, att_v v, float s)
{
    return _mm512_fmadd_ps(_mm512_set1_ps(s), v, acc);
}

static inline float att_hsum(att_v v) { return _mm512_reduce_add_ps(v); }
static inline float att_hmax(att_v v) { return _mm512_reduce_max_ps(v); }
static inline att_v att_exp(att_v v) { return nu_exp16(v); } /* inline, ~1 ulp */

/* Lanes [0, rem) set (all when rem >= 16). */
static inline att_m att_tail(size_t rem)
{
    return rem >= NU_ATT_W ? 0xffff : (__mmask16)((1u << rem) - 1);
}

static inline att_v att_loadm(const float *p, att_m m) { return _mm512_maskz_loadu_ps(m, p); }
static inline void att_storem(float *p, att_m m, att_v v) { _mm512_mask_storeu_ps(p, m, v); }
static inline att_v att_keep(att_m m, att_v v) { return _mm512_maskz_mov_ps(m, v); }

static inline att_v att_loadm_ninf(const float *p, att_m m)
{
    return _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m, p);
}

/* scale * acc in the lanes of the 16 keys from j whose index lies in [lo, hi). */
static inline att_v att_score_range(att_v acc, float scale, size_t lo, size_t hi, size_t j)
{
    __mmask16 below_hi = hi > j ? att_tail(hi - j) : 0;
    __mmask16 below_lo = lo > j ? att_tail(lo - j) : 0;
    return _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), (__mmask16)(below_hi & ~below_lo),
                              _mm512_set1_ps(scale), acc);
}

static inline float att_dot16(const att_v *q, const float *x)
{
    return _mm512_reduce_add_ps(_mm512_mul_ps(q[0], _mm512_loadu_ps(x)));
}

/* Rows in, columns out (transpose16_avx512.h). */
static inline void att_transpose(att_v r[16]) { nu_transpose16(r); }

#include "../attention_drive.h"

/* Fewer queries than this leave most lanes of the queries-in-lanes path
 * idle: the tiles above do better. */
#define ATT16_MIN_QUERIES 8

static void attention_fwd16_avx512(size_t Tq, size_t Tk, size_t heads, size_t dh,
                                   const float *Q, size_t ldq, const float *K, size_t ldk,
                                   const float *V, size_t ldv, const uint32_t *key_begin,
                                   const uint32_t *key_end, float scale, float *O, size_t ldo,
                                   float *lse, float *scratch)
{
    if (dh == 16 && Tq >= ATT16_MIN_QUERIES &&
        nu_attention_fwd16_avx512(Tq, Tk, heads, Q, ldq, K, ldk, V, ldv, key_begin, key_end,
                                  scale, O, ldo, lse))
        return;
    attention_fwd_avx512(Tq, Tk, heads, dh, Q, ldq, K, ldk, V, ldv, key_begin, key_end, scale, O,
                         ldo, lse, scratch);
}

void nu_fill_attention_avx512(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_avx512;
    t->attention_fwd16 = attention_fwd16_avx512;
    t->attention_bwd = attention_bwd_avx512;
}
