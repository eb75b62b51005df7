/* Masked multi-head attention, AVX2 + FMA (8 floats per ymm; dh = 16 is two):
 * the vector primitives of the shared driver (kernels/attention_drive.h has
 * the plan).  Keys are transposed in 8 x 8 register blocks; a score block
 * is at most 2 key vectors per query (4 queries x 2 = 8 accumulators of 16
 * ymm registers).  Tails use vmaskmov loads/stores (never touching memory
 * outside the mask), but only for partial vectors: vmaskmov stores are slow
 * on AMD cores. */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"

#define NU_ATT_ISA avx2
#define NU_ATT_W 8
#define NU_ATT_NB_MAX 2
#define NU_ATT_MASKED 1
#define NU_ATT_REG_TRANSPOSE 1

typedef __m256 att_v;
typedef __m256i att_m;

static inline att_v att_zero(void) { return _mm256_setzero_ps(); }
static inline att_v att_set1(float s) { return _mm256_set1_ps(s); }
static inline att_v att_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void att_store(float *p, att_v v) { _mm256_storeu_ps(p, v); }
static inline att_v att_add(att_v a, att_v b) { return _mm256_add_ps(a, b); }
static inline att_v att_sub(att_v a, att_v b) { return _mm256_sub_ps(a, b); }
static inline att_v att_mul(att_v a, att_v b) { return _mm256_mul_ps(a, b); }
static inline att_v att_max(att_v a, att_v b) { return _mm256_max_ps(a, b); }
static inline att_v att_mul_n(att_v v, float s) { return _mm256_mul_ps(_mm256_set1_ps(s), v); }
static inline att_v att_fma(att_v acc, att_v a, att_v b) { return _mm256_fmadd_ps(a, b, acc); }

static inline att_v att_fma_n(att_v acc, att_v v, float s)
{
    return _mm256_fmadd_ps(_mm256_set1_ps(s), v, acc);
}

static inline float att_hsum(att_v v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float att_hmax(att_v v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline att_v att_exp(att_v v) { return Sleef_expf8_u10avx2(v); }

/* Lanes [0, rem) set (all when rem >= 8). */
static inline att_m att_tail(size_t rem)
{
    int r = rem >= NU_ATT_W ? NU_ATT_W : (int)rem;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline att_v att_loadm(const float *p, att_m m) { return _mm256_maskload_ps(p, m); }
static inline void att_storem(float *p, att_m m, att_v v) { _mm256_maskstore_ps(p, m, v); }
static inline att_v att_keep(att_m m, att_v v) { return _mm256_and_ps(v, _mm256_castsi256_ps(m)); }

static inline att_v att_loadm_ninf(const float *p, att_m m)
{
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, m),
                            _mm256_castsi256_ps(m));
}

/* scale * acc in the lanes of the 8 keys from j whose index lies in [lo, hi). */
static inline att_v att_score_range(att_v acc, float scale, size_t lo, size_t hi, size_t j)
{
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)j),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i ge_lo = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)lo - 1));
    __m256i lt_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx);
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_mul_ps(_mm256_set1_ps(scale), acc),
                            _mm256_castsi256_ps(_mm256_and_si256(ge_lo, lt_hi)));
}

static inline float att_dot16(const att_v *q, const float *x)
{
    return att_hsum(_mm256_fmadd_ps(q[1], _mm256_loadu_ps(x + 8),
                                    _mm256_mul_ps(q[0], _mm256_loadu_ps(x))));
}

/* Transposes an 8 x 8 block in registers: r[k] holds row k on entry,
 * column k on exit. */
static inline void att_transpose(att_v r[8])
{
    __m256 t[8], u[8];
    for (int k = 0; k < 8; k += 2) {
        t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    /* Per 128-bit lane L, u[4g + c] = column 4L + c of rows 4g .. 4g+3. */
    for (int g = 0; g < 2; g++) {
        __m256 a = t[4 * g], b = t[4 * g + 1], c = t[4 * g + 2], d = t[4 * g + 3];
        u[4 * g] = _mm256_shuffle_ps(a, c, 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(a, c, 0xee);
        u[4 * g + 2] = _mm256_shuffle_ps(b, d, 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(b, d, 0xee);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

#include "../attention_drive.h"

void nu_fill_attention_avx2(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_avx2;
    t->attention_fwd16 = attention_fwd_avx2; /* no dh = 16 path of its own */
    t->attention_bwd = attention_bwd_avx2;
}
