/* Masked multi-head attention, AVX-512 (16 floats per zmm; dh = 16 is one zmm).
 *
 * Per head, when several queries share the keys (Tq >= 4), K (and V for the
 * backward) is transposed (16 x 16 register blocks) into a bounded
 * thread-local buffer, so the scores of 16 keys are one FMA chain over dh
 * with broadcast query elements (no horizontal sums).  Queries then go in
 * tiles of 4 that share every key and value load (fwd_tile, bwd_tile); in the
 * backward each dK/dV row is updated once per tile.  With few queries
 * (inference cross-attention, Tq = 1) the transpose would cost more than it
 * saves: each score is then a dot product over dh with one reduction.  The
 * softmax runs over rows of scores with SLEEF's exp.  Tails (keys and dh not
 * multiples of 16) use masked loads/stores, which never touch memory outside
 * the mask; rows in thread-local buffers are written as whole vectors so
 * that the next full-vector load forwards from the store. */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"

#define W 16
/* Floats per transposed buffer (32 KiB): dh = 16 fits Tk up to ~480 keys;
 * larger items take the path without the transpose. */
#define T_CAP (1u << 13)
/* Fewer queries than this share too little of the transpose's cost. */
#define T_MIN_QUERIES 4

static _Thread_local float kt_tls[T_CAP], vt_tls[T_CAP];

/* Address of a thread-local buffer, taken once per call: the empty asm hides
 * where it came from, so the compiler cannot recompute it inside loops (in
 * PIC code that is a __tls_get_addr call clobbering every vector register). */
static float *tls_addr(float *p)
{
    __asm__("" : "+r"(p));
    return p;
}

static void key_range(size_t i, size_t Tk, const uint32_t *kb, const uint32_t *ke,
                      size_t *b, size_t *e)
{
    size_t lo = kb ? kb[i] : 0, hi = ke ? ke[i] : Tk;
    if (hi > Tk)
        hi = Tk;
    if (lo > hi)
        lo = hi;
    *b = lo;
    *e = hi;
}

static __mmask16 tail_mask(size_t rem)
{
    return rem >= W ? 0xffff : (__mmask16)((1u << rem) - 1);
}

/* Row stride of a transposed buffer: a 16-wide load starting at any key
 * below Tk stays inside the row. */
static size_t t_stride(size_t Tk) { return (Tk + 2 * W - 2) / W * W; }

static int use_transpose(size_t Tq, size_t Tk, size_t dh)
{
    return Tq >= T_MIN_QUERIES && t_stride(Tk) * dh <= T_CAP;
}

/* Transposes a 16 x 16 block in registers (4 shuffle stages): r[k] holds
 * row k on entry, column k on exit. */
static void transpose16(__m512 r[16])
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

/* xt[d * st + j] = X[j][d] in 16 x 16 register blocks; rows past Tk come in
 * as zeros (st leaves room for them), columns past dh are masked off. */
static void transpose(size_t Tk, size_t dh, const float *X, size_t ldx, float *xt, size_t st)
{
    __m512 r[16];
    for (size_t j0 = 0; j0 < Tk; j0 += W) {
        size_t rows = Tk - j0 < W ? Tk - j0 : W;
        for (size_t d0 = 0; d0 < dh; d0 += W) {
            __mmask16 m = tail_mask(dh - d0);
            size_t cols = dh - d0 < W ? dh - d0 : W;
            for (size_t k = 0; k < W; k++)
                r[k] = k < rows ? _mm512_maskz_loadu_ps(m, X + (j0 + k) * ldx + d0)
                                : _mm512_setzero_ps();
            transpose16(r);
            for (size_t c = 0; c < cols; c++)
                _mm512_storeu_ps(xt + (d0 + c) * st + j0, r[c]);
        }
    }
}

static float dot(size_t dh, const float *a, const float *b)
{
    __m512 acc = _mm512_setzero_ps();
    for (size_t d = 0; d < dh; d += W) {
        __mmask16 m = tail_mask(dh - d);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + d), _mm512_maskz_loadu_ps(m, b + d),
                              acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* Same without the transpose: one reduced dot product per key. */
static void dots_direct(size_t dh, const float *q, const float *X, size_t ldx, size_t b,
                        size_t n, float scale, float *s)
{
    if (dh == W) {
        const __m512 qv = _mm512_loadu_ps(q);
        for (size_t j = 0; j < n; j++) {
            __m512 p = _mm512_mul_ps(qv, _mm512_loadu_ps(X + (b + j) * ldx));
            s[j] = scale * _mm512_reduce_add_ps(p);
        }
        return;
    }
    for (size_t j = 0; j < n; j++)
        s[j] = scale * dot(dh, q, X + (b + j) * ldx);
}

static float row_max(size_t n, const float *s)
{
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (size_t j = 0; j < n; j += W)
        m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - j),
                                                  s + j));
    return _mm512_reduce_max_ps(m);
}

/* s[j] = exp(s[j] - shift); returns the sum. */
static float exp_row(size_t n, float *s, float shift)
{
    const __m512 sh = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (size_t j = 0; j < n; j += W) {
        __mmask16 m = tail_mask(n - j);
        __m512 p = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + j), sh));
        p = _mm512_maskz_mov_ps(m, p);
        _mm512_mask_storeu_ps(s + j, m, p);
        sum = _mm512_add_ps(sum, p);
    }
    return _mm512_reduce_add_ps(sum);
}

/* out[0..dh) (= or +=) alpha * sum_j w[j] X[b + j]: four accumulators break
 * the FMA dependency chain over keys. */
static void weighted_rows(size_t n, const float *w, const float *X, size_t ldx, size_t dh,
                          float alpha, float *out, int accumulate)
{
    const __m512 al = _mm512_set1_ps(alpha);
    for (size_t c = 0; c < dh; c += W) {
        __mmask16 m = tail_mask(dh - c);
        const float *x = X + c;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[j]), _mm512_maskz_loadu_ps(m, x + j * ldx), a0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(w[j + 1]),
                                 _mm512_maskz_loadu_ps(m, x + (j + 1) * ldx), a1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(w[j + 2]),
                                 _mm512_maskz_loadu_ps(m, x + (j + 2) * ldx), a2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(w[j + 3]),
                                 _mm512_maskz_loadu_ps(m, x + (j + 3) * ldx), a3);
        }
        for (; j < n; j++)
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(w[j]), _mm512_maskz_loadu_ps(m, x + j * ldx), a0);
        __m512 r = _mm512_mul_ps(al, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        if (accumulate)
            r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, out + c));
        _mm512_mask_storeu_ps(out + c, m, r);
    }
}

/* Y[j] += alpha * w[j] * y for j < n (rank-1 update of key/value gradients). */
static void rank1_rows(size_t n, const float *w, const float *y, size_t dh, float alpha,
                       float *Y, size_t ldy)
{
    for (size_t c = 0; c < dh; c += W) {
        __mmask16 m = tail_mask(dh - c);
        const __m512 yv = _mm512_mul_ps(_mm512_set1_ps(alpha), _mm512_maskz_loadu_ps(m, y + c));
        float *o = Y + c;
        for (size_t j = 0; j < n; j++) {
            __m512 v = _mm512_maskz_loadu_ps(m, o + j * ldy);
            _mm512_mask_storeu_ps(o + j * ldy, m, _mm512_fmadd_ps(_mm512_set1_ps(w[j]), yv, v));
        }
    }
}

static void zero_row(size_t dh, float *o)
{
    for (size_t c = 0; c < dh; c += W)
        _mm512_mask_storeu_ps(o + c, tail_mask(dh - c), _mm512_setzero_ps());
}

/* ---- forward over a tile of up to R_MAX queries ----
 * The queries of a tile share every load of the transposed keys and of V:
 * scores and P.V run over the union of their key ranges, with each row's
 * scores outside its own range set to -inf (so its P is 0 there).  The
 * independent rows also give the out-of-order core several softmax chains to
 * overlap, which a single short row (~30 keys) cannot. */
#define R_MAX 4
/* Score row capacity of a tile (Tk up to ~1000). */
#define S_CAP 1024
/* Rows 0..R_MAX-1: scores / P; rows R_MAX..2*R_MAX-1: dP / dS (backward). */
static _Thread_local float s_tls[2 * R_MAX * S_CAP];

static int use_tile(size_t Tq, size_t Tk, size_t dh)
{
    return use_transpose(Tq, Tk, dh) && t_stride(Tk) <= S_CAP;
}

/* Lanes of the 16 keys from j whose index lies in [lo, hi). */
static __mmask16 range_mask(size_t lo, size_t hi, size_t j)
{
    __mmask16 below_hi = hi > j ? tail_mask(hi - j) : 0;
    __mmask16 below_lo = lo > j ? tail_mask(lo - j) : 0;
    return (__mmask16)(below_hi & ~below_lo);
}

/* NB blocks of 16 keys for R queries: R * NB independent FMA chains, each
 * loaded key vector used R times.  Row r's scores outside its own range
 * [lo[r], hi[r]) become -inf in registers, whole vectors are stored (so the
 * softmax's full-vector loads forward from these stores), and the row
 * maxima are folded into mx[r]. */
static inline __attribute__((always_inline)) void
tile_blocks(int R, int NB, size_t dh, const float *const *q, const float *xt, size_t st,
            float scale, const size_t *lo, const size_t *hi, size_t j0, float *s,
            __m512 *mx)
{
    __m512 acc[R_MAX][4];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++)
            acc[r][u] = _mm512_setzero_ps();
    for (size_t d = 0; d < dh; d++) {
        const float *row = xt + d * st + j0;
        __m512 k[4];
        for (int u = 0; u < NB; u++)
            k[u] = _mm512_loadu_ps(row + u * W);
        for (int r = 0; r < R; r++) {
            const __m512 qd = _mm512_set1_ps(q[r][d]);
            for (int u = 0; u < NB; u++)
                acc[r][u] = _mm512_fmadd_ps(qd, k[u], acc[r][u]);
        }
    }
    const __m512 sc = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++) {
            size_t j = (size_t)u * W + j0;
            __m512 v = _mm512_mask_mul_ps(ninf, range_mask(lo[r], hi[r], j), sc, acc[r][u]);
            _mm512_storeu_ps(s + (size_t)r * S_CAP + j, v);
            mx[r] = _mm512_max_ps(mx[r], v);
        }
}

/* s[r * S_CAP + j] = scale * q[r] . X[b + j] for j < n (rounded up to whole
 * vectors, -inf outside each row's range); mx[r] gets the row maxima. */
static inline __attribute__((always_inline)) void
tile_scores(int R, size_t dh, const float *const *q, const float *xt, size_t st, size_t b,
            size_t n, float scale, const size_t *lo, const size_t *hi, float *s, __m512 *mx)
{
    const float *x0 = xt + b;
    for (int r = 0; r < R; r++)
        mx[r] = _mm512_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + 3 * W < n; j += 4 * W)
        tile_blocks(R, 4, dh, q, x0, st, scale, lo, hi, j, s, mx);
    size_t left = (n - j + W - 1) / W;
    if (left == 3)
        tile_blocks(R, 3, dh, q, x0, st, scale, lo, hi, j, s, mx);
    else if (left == 2)
        tile_blocks(R, 2, dh, q, x0, st, scale, lo, hi, j, s, mx);
    else if (left == 1)
        tile_blocks(R, 1, dh, q, x0, st, scale, lo, hi, j, s, mx);
}

/* out[r] (= or +=) inv[r] * sum_j P[r][j] X[j] for the rows r in `live`,
 * sharing each X load; two accumulators per row (even/odd j) shorten the
 * chains. */
static inline __attribute__((always_inline)) void
tile_pv(int R, size_t n, const float *P, const float *X, size_t ldx, size_t dh,
        const float *inv, float *const *out, int accumulate, unsigned live)
{
    for (size_t c = 0; c < dh; c += W) {
        const __mmask16 m = tail_mask(dh - c);
        const float *x = X + c;
        __m512 a[R_MAX], b[R_MAX];
        for (int r = 0; r < R; r++)
            a[r] = b[r] = _mm512_setzero_ps();
        size_t j = 0;
        for (; j + 2 <= n; j += 2) {
            const __m512 x0 = _mm512_maskz_loadu_ps(m, x + j * ldx);
            const __m512 x1 = _mm512_maskz_loadu_ps(m, x + (j + 1) * ldx);
            for (int r = 0; r < R; r++) {
                const float *p = P + (size_t)r * S_CAP + j;
                a[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[0]), x0, a[r]);
                b[r] = _mm512_fmadd_ps(_mm512_set1_ps(p[1]), x1, b[r]);
            }
        }
        if (j < n) {
            const __m512 x0 = _mm512_maskz_loadu_ps(m, x + j * ldx);
            for (int r = 0; r < R; r++)
                a[r] = _mm512_fmadd_ps(_mm512_set1_ps(P[(size_t)r * S_CAP + j]), x0, a[r]);
        }
        for (int r = 0; r < R; r++) {
            /* Rows outside `live` (empty ranges) are not written at all. */
            const __mmask16 mr = (live >> r) & 1 ? m : 0;
            __m512 v = _mm512_mul_ps(_mm512_set1_ps(inv[r]), _mm512_add_ps(a[r], b[r]));
            if (accumulate)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mr, out[r] + c));
            _mm512_mask_storeu_ps(out[r] + c, mr, v);
        }
    }
}

/* P = exp(s - max) over whole vectors of each tile row (the -inf lanes give
 * 0).  An empty row is all -inf: shifted by 0 instead, its P is all 0. */
static void tile_softmax(size_t R, size_t n, float *s, const __m512 *mx, float *m, float *sum,
                         float *inv)
{
    for (size_t r = 0; r < R; r++) {
        float *sr = s + r * S_CAP;
        m[r] = _mm512_reduce_max_ps(mx[r]);
        const __m512 sh = _mm512_set1_ps(m[r] == -INFINITY ? 0.0f : m[r]);
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < n; j += W) {
            __m512 p = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(sr + j), sh));
            _mm512_storeu_ps(sr + j, p);
            acc = _mm512_add_ps(acc, p);
        }
        sum[r] = _mm512_reduce_add_ps(acc);
        inv[r] = sum[r] > 0.0f ? 1.0f / sum[r] : 0.0f;
    }
}

/* One tile of R queries starting at i0 for head column offset c. */
static inline __attribute__((always_inline)) void
fwd_tile(int R, size_t i0, size_t Tk, size_t heads, size_t h, size_t dh, const float *Q,
         size_t ldq, const float *V, size_t ldv, const uint32_t *kb, const uint32_t *ke,
         float scale, float *O, size_t ldo, float *lse, const float *kt, size_t st, float *sb)
{
    const size_t c = h * dh;
    size_t b[R_MAX], e[R_MAX], bu = Tk, eu = 0;
    const float *q[R_MAX];
    float *o[R_MAX];
    for (int r = 0; r < R; r++) {
        key_range(i0 + r, Tk, kb, ke, &b[r], &e[r]);
        if (b[r] < e[r]) {
            bu = b[r] < bu ? b[r] : bu;
            eu = e[r] > eu ? e[r] : eu;
        }
        q[r] = Q + (i0 + r) * ldq + c;
        o[r] = O + (i0 + r) * ldo + c;
    }
    if (bu < eu) {
        size_t n = eu - bu, lo[R_MAX], hi[R_MAX];
        float m[R_MAX] = {0}, sum[R_MAX] = {0}, inv[R_MAX] = {0};
        for (int r = 0; r < R; r++) {
            lo[r] = b[r] < e[r] ? b[r] - bu : 0;
            hi[r] = b[r] < e[r] ? e[r] - bu : 0;
        }
        __m512 mx[R_MAX];
        tile_scores(R, dh, q, kt, st, bu, n, scale, lo, hi, sb, mx);
        tile_softmax((size_t)R, n, sb, mx, m, sum, inv);
        tile_pv(R, n, sb, V + bu * ldv + c, ldv, dh, inv, o, 0, (1u << R) - 1);
        for (int r = 0; r < R; r++)
            if (lse && lo[r] < hi[r])
                lse[(i0 + r) * heads + h] = m[r] + logf(sum[r]);
    }
    for (int r = 0; r < R; r++)
        if (b[r] == e[r]) {
            zero_row(dh, o[r]);
            if (lse)
                lse[(i0 + r) * heads + h] = -INFINITY;
        }
}

static void attention_fwd_avx512(size_t Tq, size_t Tk, size_t heads, size_t dh,
                                 const float *Q, size_t ldq, const float *K, size_t ldk,
                                 const float *V, size_t ldv, const uint32_t *key_begin,
                                 const uint32_t *key_end, float scale, float *O,
                                 size_t ldo, float *lse, float *scratch)
{
    const size_t st = t_stride(Tk);
    if (use_tile(Tq, Tk, dh)) {
        float *kt = tls_addr(kt_tls), *sb = tls_addr(s_tls);
        for (size_t h = 0; h < heads; h++) {
            transpose(Tk, dh, K + h * dh, ldk, kt, st);
            size_t i = 0;
            for (; i + R_MAX <= Tq; i += R_MAX)
                fwd_tile(R_MAX, i, Tk, heads, h, dh, Q, ldq, V, ldv, key_begin, key_end,
                         scale, O, ldo, lse, kt, st, sb);
            for (; i < Tq; i++) /* the last < R_MAX queries */
                fwd_tile(1, i, Tk, heads, h, dh, Q, ldq, V, ldv, key_begin, key_end, scale,
                         O, ldo, lse, kt, st, sb);
        }
        return;
    }
    /* Few queries (or huge Tk * dh): one row at a time, no transpose. */
    for (size_t h = 0; h < heads; h++) {
        const size_t c = h * dh;
        for (size_t i = 0; i < Tq; i++) {
            size_t b, e;
            key_range(i, Tk, key_begin, key_end, &b, &e);
            float *o = O + i * ldo + c;
            if (b == e) {
                zero_row(dh, o);
                if (lse)
                    lse[i * heads + h] = -INFINITY;
                continue;
            }
            const size_t n = e - b;
            float *s = scratch;
            dots_direct(dh, Q + i * ldq + c, K + c, ldk, b, n, scale, s);
            const float m = row_max(n, s);
            const float sum = exp_row(n, s, m);
            weighted_rows(n, s, V + b * ldv + c, ldv, dh, 1.0f / sum, o, 0);
            if (lse)
                lse[i * heads + h] = m + logf(sum);
        }
    }
}

/* p[j] = exp(p[j] - L) and ds[j] = p[j] * (ds[j] - D), written back; FULL
 * rows (room for whole vectors) use plain loads and stores. */
static void softmax_grad_row(size_t n, float *p, float *ds, float L, float D, int full)
{
    const __m512 lv = _mm512_set1_ps(L), dv = _mm512_set1_ps(D);
    for (size_t j = 0; j < n; j += W) {
        __mmask16 m = full ? 0xffff : tail_mask(n - j);
        __m512 pv = Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + j), lv));
        __m512 g = _mm512_mul_ps(pv, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, ds + j), dv));
        _mm512_mask_storeu_ps(p + j, m, pv);
        _mm512_mask_storeu_ps(ds + j, m, g);
    }
}

/* ---- backward over a tile of up to R_MAX queries ----
 * Same sharing as the forward tile: P and dP rows over the union of the
 * rows' key ranges (P = 0 outside each row's own range, hence dS = 0 too),
 * dQ rows from shared K loads, and each dK/dV row is read and written once
 * per tile instead of once per query. */

/* dK[j] += scale * sum_r dS[r][j] q[r] and dV[j] += sum_r P[r][j] go[r]. */
static inline __attribute__((always_inline)) void
tile_kv_grads(int R, size_t n, const float *P, const float *DS, const float *const *q,
              const float *const *go, size_t dh, float scale, float *dK, size_t lddk,
              float *dV, size_t lddv)
{
    for (size_t c = 0; c < dh; c += W) {
        const __mmask16 m = tail_mask(dh - c);
        __m512 qs[R_MAX], gv[R_MAX];
        for (int r = 0; r < R; r++) {
            qs[r] = _mm512_mul_ps(_mm512_set1_ps(scale), _mm512_maskz_loadu_ps(m, q[r] + c));
            gv[r] = _mm512_maskz_loadu_ps(m, go[r] + c);
        }
        for (size_t j = 0; j < n; j++) {
            float *k = dK + j * lddk + c, *v = dV + j * lddv + c;
            __m512 kv = _mm512_maskz_loadu_ps(m, k), vv = _mm512_maskz_loadu_ps(m, v);
            for (int r = 0; r < R; r++) {
                kv = _mm512_fmadd_ps(_mm512_set1_ps(DS[(size_t)r * S_CAP + j]), qs[r], kv);
                vv = _mm512_fmadd_ps(_mm512_set1_ps(P[(size_t)r * S_CAP + j]), gv[r], vv);
            }
            _mm512_mask_storeu_ps(k, m, kv);
            _mm512_mask_storeu_ps(v, m, vv);
        }
    }
}

static inline __attribute__((always_inline)) void
bwd_tile(int R, size_t i0, size_t Tk, size_t heads, size_t h, size_t dh, const float *Q,
         size_t ldq, const float *K, size_t ldk, const uint32_t *kb, const uint32_t *ke,
         float scale, const float *O, size_t ldo, const float *lse, const float *dO,
         size_t lddo, float *dQ, size_t lddq, float *dK, size_t lddk, float *dV, size_t lddv,
         const float *kt, const float *vt, size_t st, float *sb)
{
    const size_t c = h * dh;
    size_t b[R_MAX], e[R_MAX], bu = Tk, eu = 0;
    unsigned live = 0;
    for (int r = 0; r < R; r++) {
        key_range(i0 + r, Tk, kb, ke, &b[r], &e[r]);
        if (b[r] < e[r]) {
            bu = b[r] < bu ? b[r] : bu;
            eu = e[r] > eu ? e[r] : eu;
            live |= 1u << r;
        }
    }
    if (!live)
        return; /* the output rows were constant zeros: no gradient */
    const size_t n = eu - bu;
    size_t lo[R_MAX], hi[R_MAX], all_lo[R_MAX], all_hi[R_MAX];
    const float *q[R_MAX], *go[R_MAX];
    float *gq[R_MAX], sc[R_MAX];
    for (int r = 0; r < R; r++) {
        lo[r] = b[r] < e[r] ? b[r] - bu : 0;
        hi[r] = b[r] < e[r] ? e[r] - bu : 0;
        all_lo[r] = 0;
        all_hi[r] = n;
        q[r] = Q + (i0 + r) * ldq + c;
        go[r] = dO + (i0 + r) * lddo + c;
        gq[r] = dQ + (i0 + r) * lddq + c;
        sc[r] = scale;
    }
    float *P = sb, *DS = sb + (size_t)R_MAX * S_CAP;
    __m512 mx[R_MAX];
    tile_scores(R, dh, q, kt, st, bu, n, scale, lo, hi, P, mx);
    tile_scores(R, dh, go, vt, st, bu, n, 1.0f, all_lo, all_hi, DS, mx);
    for (int r = 0; r < R; r++) {
        float *pr = P + (size_t)r * S_CAP, *dr = DS + (size_t)r * S_CAP;
        if (!((live >> r) & 1)) {
            for (size_t j = 0; j < n; j += W) {
                _mm512_storeu_ps(pr + j, _mm512_setzero_ps());
                _mm512_storeu_ps(dr + j, _mm512_setzero_ps());
            }
            continue;
        }
        softmax_grad_row(n, pr, dr, lse[(i0 + r) * heads + h],
                         dot(dh, go[r], O + (i0 + r) * ldo + c), 1);
    }
    tile_pv(R, n, DS, K + bu * ldk + c, ldk, dh, sc, gq, 1, live);
    tile_kv_grads(R, n, P, DS, q, go, dh, scale, dK + bu * lddk + c, lddk, dV + bu * lddv + c,
                  lddv);
}

static void attention_bwd_avx512(size_t Tq, size_t Tk, size_t heads, size_t dh,
                                 const float *Q, size_t ldq, const float *K, size_t ldk,
                                 const float *V, size_t ldv, const uint32_t *key_begin,
                                 const uint32_t *key_end, float scale, const float *O,
                                 size_t ldo, const float *lse, const float *dO,
                                 size_t lddo, float *dQ, size_t lddq, float *dK,
                                 size_t lddk, float *dV, size_t lddv, float *scratch)
{
    const size_t st = t_stride(Tk);
    if (use_tile(Tq, Tk, dh)) {
        float *kt = tls_addr(kt_tls), *vt = tls_addr(vt_tls), *sb = tls_addr(s_tls);
        for (size_t h = 0; h < heads; h++) {
            transpose(Tk, dh, K + h * dh, ldk, kt, st);
            transpose(Tk, dh, V + h * dh, ldv, vt, st);
            size_t i = 0;
            for (; i + R_MAX <= Tq; i += R_MAX)
                bwd_tile(R_MAX, i, Tk, heads, h, dh, Q, ldq, K, ldk, key_begin, key_end, scale,
                         O, ldo, lse, dO, lddo, dQ, lddq, dK, lddk, dV, lddv, kt, vt, st, sb);
            for (; i < Tq; i++) /* the last < R_MAX queries */
                bwd_tile(1, i, Tk, heads, h, dh, Q, ldq, K, ldk, key_begin, key_end, scale, O,
                         ldo, lse, dO, lddo, dQ, lddq, dK, lddk, dV, lddv, kt, vt, st, sb);
        }
        return;
    }
    /* Few queries (or huge Tk * dh): one row at a time, no transpose. */
    float *p = scratch, *ds = scratch + Tk;
    for (size_t h = 0; h < heads; h++) {
        const size_t c = h * dh;
        for (size_t i = 0; i < Tq; i++) {
            size_t b, e;
            key_range(i, Tk, key_begin, key_end, &b, &e);
            if (b == e)
                continue; /* the output row was a constant zero: no gradient */
            const size_t n = e - b;
            const float *q = Q + i * ldq + c, *go = dO + i * lddo + c;
            dots_direct(dh, q, K + c, ldk, b, n, scale, p);
            dots_direct(dh, go, V + c, ldv, b, n, 1.0f, ds);
            softmax_grad_row(n, p, ds, lse[i * heads + h], dot(dh, go, O + i * ldo + c), 0);
            weighted_rows(n, ds, K + b * ldk + c, ldk, dh, scale, dQ + i * lddq + c, 1);
            rank1_rows(n, ds, q, dh, scale, dK + b * lddk + c, lddk);
            rank1_rows(n, p, go, dh, 1.0f, dV + b * lddv + c, lddv);
        }
    }
}

void nu_fill_attention_avx512(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_avx512;
    t->attention_bwd = attention_bwd_avx512;
}
