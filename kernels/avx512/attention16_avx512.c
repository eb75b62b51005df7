/* Attention forward for head size 16, 16 queries at a time in the lanes of
 * a vector.  Why: with dh = 16 a query row is one vector, so the usual
 * layout (keys in lanes) needs a horizontal max and sum per query row and a
 * broadcast of every P element for P V.  Transposing the block's 16 query
 * rows once instead (Qt[c] = element c of the 16 queries) makes every step
 * lane-wise:
 *   s_j  = scale * sum_c Qt[c] * K[j][c]   (K elements broadcast from memory)
 *   m    = max_j s_j,  p_j = exp(s_j - m),  l = sum_j p_j
 *   Ot[c] = sum_j p_j * V[j][c] / l        (V elements broadcast)
 * with no reduction across lanes; only Ot is transposed back to rows.  The
 * scores of a block (one vector per key) wait in a per-thread buffer
 * between the max pass and the exp pass.  Keys outside a lane's range get
 * -inf, so their p is 0; a lane with an empty range keeps m = -inf, is
 * shifted by 0 instead and ends with l = 0, O = 0.  Lanes past Tq hold a
 * zero query: computed, never stored. */
#include "attention16_avx512.h"

#include <immintrin.h>
#include <math.h>

#include "exp_avx512.h"
#include "transpose16_avx512.h"

/* Keys a block can hold scores for (32 KiB a thread). */
#define KEYS_MAX 512
/* Keys whose scores are computed together: 8 independent FMA chains cover
 * the FMA latency (16 deep each). */
#define KEY_GROUP 8
/* Keys whose exps are computed together in the P V pass. */
#define EXP_GROUP 4

static _Thread_local _Alignas(64) float s_tls[KEYS_MAX * 16];

/* Out of line: in PIC code a thread-local address is a call, which the
 * loops must not repeat. */
static __attribute__((noinline)) float *score_buffer(void)
{
    return s_tls;
}

typedef struct block {
    size_t lo, hi;   /* union of the live ranges (lo >= hi: all empty) */
    size_t flo, fhi; /* keys every live lane sees (flo >= fhi: none) */
    __m512i kb, ke;  /* each lane's range; dead lanes [0, 0) */
} block;

/* The lanes' key ranges, clamped as attention_fwd's contract says (end to
 * Tk, begin to end); the same for every head, so made once a block. */
static block block_ranges(size_t i0, size_t rows, size_t Tk, const uint32_t *kb,
                          const uint32_t *ke)
{
    const __mmask16 live = (__mmask16)((1u << rows) - 1u);
    const __m512i tk = _mm512_set1_epi32((int)Tk);
    __m512i e = ke ? _mm512_maskz_loadu_epi32(live, ke + i0) : _mm512_maskz_mov_epi32(live, tk);
    e = _mm512_min_epu32(e, tk);
    __m512i b = kb ? _mm512_maskz_loadu_epi32(live, kb + i0) : _mm512_setzero_si512();
    b = _mm512_min_epu32(b, e);
    const __mmask16 some = _mm512_mask_cmplt_epu32_mask(live, b, e);
    block k = {Tk, 0, 0, 0, b, e};
    if (some) {
        k.lo = _mm512_mask_reduce_min_epu32(some, b);
        k.hi = _mm512_mask_reduce_max_epu32(some, e);
    }
    if (some == live) { /* an empty lane leaves no key every lane sees */
        k.flo = _mm512_mask_reduce_max_epu32(live, b);
        k.fhi = _mm512_mask_reduce_min_epu32(live, e);
    }
    return k;
}

/* scale * acc where key j lies in the lane's range, -inf elsewhere. */
static inline __attribute__((always_inline)) __m512 masked_score(__m512 acc, const block *k,
                                                                 size_t j, __m512 scale)
{
    const __m512i jv = _mm512_set1_epi32((int)j);
    const __mmask16 in = _mm512_mask_cmplt_epu32_mask(_mm512_cmpge_epu32_mask(jv, k->kb), jv,
                                                      k->ke);
    return _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), in, acc, scale);
}

/* Scores of keys [lo, hi) into s (one vector a key); returns their max.
 * Indices stay plain locals: kept in the block struct, GCC moved them
 * through the stack as a vector pair, and the reload of an 8-byte store by
 * a 16-byte load cannot forward (~3x slower loops). */
static inline __attribute__((always_inline)) __m512 scores(const __m512 qt[16], const block *k,
                                                           size_t lo, size_t hi,
                                                           const float *K, size_t ldk,
                                                           __m512 scale, float *s)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    size_t j = lo;
    for (; j + KEY_GROUP <= hi; j += KEY_GROUP, s += KEY_GROUP * 16) {
        const float *kj = K + j * ldk;
        __m512 acc[KEY_GROUP];
        for (int u = 0; u < KEY_GROUP; u++)
            acc[u] = _mm512_mul_ps(qt[0], _mm512_set1_ps(kj[u * ldk]));
        for (int c = 1; c < 16; c++)
            for (int u = 0; u < KEY_GROUP; u++)
                acc[u] = _mm512_fmadd_ps(qt[c], _mm512_set1_ps(kj[u * ldk + c]), acc[u]);
        /* keys every live lane sees need no mask (idle lanes past Tq then
         * hold finite scores of a zero query, never stored) */
        const int all = j >= k->flo && j + KEY_GROUP <= k->fhi;
        for (int u = 0; u < KEY_GROUP; u++) {
            const __m512 v = all ? _mm512_mul_ps(acc[u], scale)
                                 : masked_score(acc[u], k, j + (size_t)u, scale);
            _mm512_store_ps(s + u * 16, v);
            mx = _mm512_max_ps(mx, v);
        }
    }
    for (; j < hi; j++, s += 16) { /* fewer than a group left: two half chains */
        const float *kj = K + j * ldk;
        __m512 a = _mm512_mul_ps(qt[0], _mm512_set1_ps(kj[0]));
        __m512 b = _mm512_mul_ps(qt[8], _mm512_set1_ps(kj[8]));
        for (int c = 1; c < 8; c++) {
            a = _mm512_fmadd_ps(qt[c], _mm512_set1_ps(kj[c]), a);
            b = _mm512_fmadd_ps(qt[8 + c], _mm512_set1_ps(kj[8 + c]), b);
        }
        const __m512 v = masked_score(_mm512_add_ps(a, b), k, j, scale);
        _mm512_store_ps(s, v);
        mx = _mm512_max_ps(mx, v);
    }
    return mx;
}

/* One block of queries [i0, i0 + rows) of head h (columns c0 .. c0 + 15). */
static void block_fwd(const block *kp, size_t i0, size_t rows, size_t heads, size_t h,
                      const float *Q, size_t ldq, const float *K, size_t ldk, const float *V,
                      size_t ldv, float scale, float *O, size_t ldo, float *lse, float *s)
{
    const size_t c0 = h * 16;
    const block k = *kp;
    const size_t lo = k.lo, n = k.hi > k.lo ? k.hi - k.lo : 0;
    __m512 t[16];
    for (size_t r = 0; r < 16; r++)
        t[r] = r < rows ? _mm512_loadu_ps(Q + (i0 + r) * ldq + c0) : _mm512_setzero_ps();
    nu_transpose16(t);
    const __m512 mx = scores(t, &k, lo, lo + n, K + c0, ldk, _mm512_set1_ps(scale), s);
    /* an all -inf lane (empty range) is shifted by 0: its p are all 0 */
    const __m512 sh = _mm512_mask_mov_ps(
        mx, _mm512_cmp_ps_mask(mx, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ), _mm512_setzero_ps());
    __m512 l = _mm512_setzero_ps();
    for (int c = 0; c < 16; c++)
        t[c] = _mm512_setzero_ps();
    const float *v = V + lo * ldv + c0, *sp = s;
    size_t j = 0;
    /* EXP_GROUP keys' exps side by side: one exp is a chain of ~14
     * dependent steps, too long for the core to overlap on its own. */
    for (; j + EXP_GROUP <= n; j += EXP_GROUP, sp += EXP_GROUP * 16, v += EXP_GROUP * ldv) {
        __m512 p[EXP_GROUP];
        for (int u = 0; u < EXP_GROUP; u++) {
            p[u] = nu_exp16(_mm512_sub_ps(_mm512_load_ps(sp + u * 16), sh));
            l = _mm512_add_ps(l, p[u]);
        }
        for (int u = 0; u < EXP_GROUP; u++)
            for (int c = 0; c < 16; c++)
                t[c] = _mm512_fmadd_ps(p[u], _mm512_set1_ps(v[u * ldv + c]), t[c]);
    }
    for (; j < n; j++, sp += 16, v += ldv) {
        const __m512 p = nu_exp16(_mm512_sub_ps(_mm512_load_ps(sp), sh));
        l = _mm512_add_ps(l, p);
        for (int c = 0; c < 16; c++)
            t[c] = _mm512_fmadd_ps(p, _mm512_set1_ps(v[c]), t[c]);
    }
    const __m512 inv = _mm512_maskz_div_ps(
        _mm512_cmp_ps_mask(l, _mm512_setzero_ps(), _CMP_GT_OQ), _mm512_set1_ps(1.0f), l);
    for (int c = 0; c < 16; c++)
        t[c] = _mm512_mul_ps(t[c], inv);
    nu_transpose16(t);
    for (size_t r = 0; r < rows; r++)
        _mm512_storeu_ps(O + (i0 + r) * ldo + c0, t[r]);
    if (lse) {
        float m[16], sum[16];
        _mm512_storeu_ps(m, sh);
        _mm512_storeu_ps(sum, l);
        for (size_t r = 0; r < rows; r++)
            lse[(i0 + r) * heads + h] = sum[r] > 0.0f ? m[r] + logf(sum[r]) : -INFINITY;
    }
}

int nu_attention_fwd16_avx512(size_t Tq, size_t Tk, size_t heads, const float *Q, size_t ldq,
                              const float *K, size_t ldk, const float *V, size_t ldv,
                              const uint32_t *key_begin, const uint32_t *key_end, float scale,
                              float *O, size_t ldo, float *lse)
{
    if (Tk > KEYS_MAX)
        return 0;
    float *s = score_buffer();
    /* The partial block first: under a causal mask the first queries see
     * the fewest keys, so its idle lanes cost the least there (T = 55:
     * 124 key steps a head instead of 151). */
    const size_t part = Tq % 16;
    for (size_t i0 = 0; i0 < Tq; i0 = i0 ? i0 + 16 : (part ? part : 16)) {
        const size_t rows = i0 == 0 && part ? part : 16;
        const block k = block_ranges(i0, rows, Tk, key_begin, key_end);
        for (size_t h = 0; h < heads; h++)
            block_fwd(&k, i0, rows, heads, h, Q, ldq, K, ldk, V, ldv, scale, O, ldo, lse, s);
    }
    return 1;
}
