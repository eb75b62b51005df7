/* Masked multi-head attention, AVX-512 (16 floats per zmm; dh = 16 is one):
 * the vector primitives of the shared driver (kernels/attention_drive.h has
 * the plan).  Keys are transposed in 16 x 16 register blocks; a score block
 * is up to 4 key vectors per query (4 queries x 4 = 16 accumulators of 32
 * zmm registers).  Tails use masked loads/stores, which never touch memory
 * outside the mask. */
#include <immintrin.h>
#include <math.h>

#include "../kernels.h"
#include "exp_avx512.h"

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

/* Transposes a 16 x 16 block in registers (4 shuffle stages): r[k] holds
 * row k on entry, column k on exit. */
static inline void att_transpose(att_v r[16])
{
    __m512 t[16], u[16];
    for (int k = 0; k < 16; k += 2) {
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    /* Per 128-bit lane L, u[4g + c] = column 4L + c of rows 4g .. 4g+3. */
    for (int g = 0; g < 4; g++) {
        __m512 a = t[4 * g], b = t[4 * g + 1], c = t[4 * g + 2], d = t[4 * g + 3];
        u[4 * g] = _mm512_shuffle_ps(a, c, 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(a, c, 0xee);
        u[4 * g + 2] = _mm512_shuffle_ps(b, d, 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(b, d, 0xee);
    }
    for (int c = 0; c < 4; c++) {
        t[c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        t[8 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xdd);
        r[4 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(t[4 + c], t[12 + c], 0xdd);
    }
}

#include "../attention_drive.h"

void nu_fill_attention_avx512(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_avx512;
    t->attention_bwd = attention_bwd_avx512;
}
