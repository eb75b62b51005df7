/* Masked multi-head attention, AVX2 + FMA (8 floats per ymm; dh = 16 is two).
 *
 * Same plan as the AVX-512 file: per head, with Tq >= 4, K (and V for the
 * backward) is transposed (8 x 8 register blocks) into a bounded thread-local
 * buffer, so 8 keys' scores are one FMA chain over dh with broadcast query
 * elements, and queries go in tiles of 4 sharing every key/value load (each
 * dK/dV row updated once per tile).  With few queries (Tq = 1) each score is
 * a reduced dot product instead.  Softmax with SLEEF's exp.  Tails use
 * vmaskmov loads/stores (never touching memory outside the mask), but only
 * for partial vectors: vmaskmov stores are slow on AMD cores. */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"

#define W 8
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

/* Lanes [0, rem) set (all when rem >= 8). */
static __m256i tail_mask(size_t rem)
{
    int r = rem >= W ? W : (int)rem;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Row stride of a transposed buffer: an 8-wide load starting at any key
 * below Tk stays inside the row. */
static size_t t_stride(size_t Tk) { return (Tk + 2 * W - 2) / W * W; }

static int use_transpose(size_t Tq, size_t Tk, size_t dh)
{
    return Tq >= T_MIN_QUERIES && t_stride(Tk) * dh <= T_CAP;
}

/* Transposes an 8 x 8 block in registers: r[k] holds row k on entry,
 * column k on exit. */
static void transpose8(__m256 r[8])
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

/* xt[d * st + j] = X[j][d] in 8 x 8 register blocks; rows past Tk come in
 * as zeros (st leaves room for them), columns past dh are masked off. */
static void transpose(size_t Tk, size_t dh, const float *X, size_t ldx, float *xt, size_t st)
{
    __m256 r[8];
    for (size_t j0 = 0; j0 < Tk; j0 += W) {
        size_t rows = Tk - j0 < W ? Tk - j0 : W;
        for (size_t d0 = 0; d0 < dh; d0 += W) {
            size_t cols = dh - d0 < W ? dh - d0 : W;
            __m256i m = tail_mask(cols);
            for (size_t k = 0; k < W; k++)
                r[k] = k >= rows    ? _mm256_setzero_ps()
                       : cols == W ? _mm256_loadu_ps(X + (j0 + k) * ldx + d0)
                                   : _mm256_maskload_ps(X + (j0 + k) * ldx + d0, m);
            transpose8(r);
            for (size_t c = 0; c < cols; c++)
                _mm256_storeu_ps(xt + (d0 + c) * st + j0, r[c]);
        }
    }
}

static float dot(size_t dh, const float *a, const float *b)
{
    __m256 acc = _mm256_setzero_ps();
    size_t d = 0;
    for (; d + W <= dh; d += W)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), acc);
    if (d < dh) {
        __m256i m = tail_mask(dh - d);
        acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + d, m), _mm256_maskload_ps(b + d, m), acc);
    }
    return hsum(acc);
}

/* Same without the transpose: one reduced dot product per key. */
static void dots_direct(size_t dh, const float *q, const float *X, size_t ldx, size_t b,
                        size_t n, float scale, float *s)
{
    if (dh == 2 * W) {
        const __m256 q0 = _mm256_loadu_ps(q), q1 = _mm256_loadu_ps(q + W);
        for (size_t j = 0; j < n; j++) {
            const float *x = X + (b + j) * ldx;
            __m256 p = _mm256_fmadd_ps(q1, _mm256_loadu_ps(x + W),
                                       _mm256_mul_ps(q0, _mm256_loadu_ps(x)));
            s[j] = scale * hsum(p);
        }
        return;
    }
    for (size_t j = 0; j < n; j++)
        s[j] = scale * dot(dh, q, X + (b + j) * ldx);
}

static float row_max(size_t n, const float *s)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m = ninf;
    size_t j = 0;
    for (; j + W <= n; j += W)
        m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
    if (j < n) {
        __m256i k = tail_mask(n - j);
        m = _mm256_max_ps(m, _mm256_blendv_ps(ninf, _mm256_maskload_ps(s + j, k),
                                              _mm256_castsi256_ps(k)));
    }
    return hmax(m);
}

/* s[j] = exp(s[j] - shift); returns the sum. */
static float exp_row(size_t n, float *s, float shift)
{
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + W <= n; j += W) {
        __m256 p = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), sh));
        _mm256_storeu_ps(s + j, p);
        sum = _mm256_add_ps(sum, p);
    }
    if (j < n) {
        __m256i k = tail_mask(n - j);
        __m256 p = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_maskload_ps(s + j, k), sh));
        p = _mm256_and_ps(p, _mm256_castsi256_ps(k));
        _mm256_maskstore_ps(s + j, k, p);
        sum = _mm256_add_ps(sum, p);
    }
    return hsum(sum);
}

/* One dh chunk of weighted_rows: FULL chunks use plain loads. */
static inline __attribute__((always_inline)) __m256
weighted_chunk(int FULL, __m256i m, size_t n, const float *w, const float *x, size_t ldx)
{
#define LD(p) (FULL ? _mm256_loadu_ps(p) : _mm256_maskload_ps((p), m))
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), LD(x + j * ldx), a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(w[j + 1]), LD(x + (j + 1) * ldx), a1);
        a2 = _mm256_fmadd_ps(_mm256_set1_ps(w[j + 2]), LD(x + (j + 2) * ldx), a2);
        a3 = _mm256_fmadd_ps(_mm256_set1_ps(w[j + 3]), LD(x + (j + 3) * ldx), a3);
    }
    for (; j < n; j++)
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), LD(x + j * ldx), a0);
#undef LD
    return _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
}

/* out[0..dh) (= or +=) alpha * sum_j w[j] X[j]: four accumulators break the
 * FMA dependency chain over keys. */
static void weighted_rows(size_t n, const float *w, const float *X, size_t ldx, size_t dh,
                          float alpha, float *out, int accumulate)
{
    const __m256 al = _mm256_set1_ps(alpha);
    for (size_t c = 0; c < dh; c += W) {
        const int full = dh - c >= W;
        __m256i m = tail_mask(dh - c);
        __m256 r = full ? weighted_chunk(1, m, n, w, X + c, ldx)
                        : weighted_chunk(0, m, n, w, X + c, ldx);
        r = _mm256_mul_ps(al, r);
        if (accumulate)
            r = _mm256_add_ps(r, _mm256_maskload_ps(out + c, m));
        _mm256_maskstore_ps(out + c, m, r);
    }
}

/* Y[j] += w[j] * alpha * y for j < n (rank-1 update of key/value gradients). */
static void rank1_rows(size_t n, const float *w, const float *y, size_t dh, float alpha,
                       float *Y, size_t ldy)
{
    for (size_t c = 0; c < dh; c += W) {
        float *o = Y + c;
        if (dh - c >= W) {
            const __m256 yv = _mm256_mul_ps(_mm256_set1_ps(alpha), _mm256_loadu_ps(y + c));
            for (size_t j = 0; j < n; j++)
                _mm256_storeu_ps(o + j * ldy, _mm256_fmadd_ps(_mm256_set1_ps(w[j]), yv,
                                                              _mm256_loadu_ps(o + j * ldy)));
        } else {
            __m256i m = tail_mask(dh - c);
            const __m256 yv = _mm256_mul_ps(_mm256_set1_ps(alpha), _mm256_maskload_ps(y + c, m));
            for (size_t j = 0; j < n; j++)
                _mm256_maskstore_ps(o + j * ldy, m,
                                    _mm256_fmadd_ps(_mm256_set1_ps(w[j]), yv,
                                                    _mm256_maskload_ps(o + j * ldy, m)));
        }
    }
}

static void zero_row(size_t dh, float *o)
{
    for (size_t c = 0; c < dh; c += W)
        _mm256_maskstore_ps(o + c, tail_mask(dh - c), _mm256_setzero_ps());
}

/* ---- forward over a tile of up to R_MAX queries ----
 * As in the AVX-512 file: the queries of a tile share every load of the
 * transposed keys and of V; scores and P.V run over the union of their key
 * ranges with each row's scores outside its own range set to -inf in
 * registers (P = 0 there); whole vectors are stored so that later loads
 * forward from the stores; independent rows overlap their softmax chains. */
#define R_MAX 4
/* Score row capacity of a tile (Tk up to ~1000). */
#define S_CAP 1024
/* Rows 0..R_MAX-1: scores / P; rows R_MAX..2*R_MAX-1: dP / dS (backward). */
static _Thread_local float s_tls[2 * R_MAX * S_CAP];

static int use_tile(size_t Tq, size_t Tk, size_t dh)
{
    return use_transpose(Tq, Tk, dh) && t_stride(Tk) <= S_CAP;
}

/* Lanes of the 8 keys from j whose index lies in [lo, hi). */
static __m256 range_mask(size_t lo, size_t hi, size_t j)
{
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)j),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i ge_lo = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)lo - 1));
    __m256i lt_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx);
    return _mm256_castsi256_ps(_mm256_and_si256(ge_lo, lt_hi));
}

/* NB blocks of 8 keys for R queries: R * NB independent FMA chains (16 ymm
 * registers: R * NB <= 8). */
static inline __attribute__((always_inline)) void
tile_blocks(int R, int NB, size_t dh, const float *const *q, const float *xt, size_t st,
            float scale, const size_t *lo, const size_t *hi, size_t j0, float *s,
            __m256 *mx)
{
    __m256 acc[R_MAX][2];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++)
            acc[r][u] = _mm256_setzero_ps();
    for (size_t d = 0; d < dh; d++) {
        const float *row = xt + d * st + j0;
        __m256 k[2];
        for (int u = 0; u < NB; u++)
            k[u] = _mm256_loadu_ps(row + u * W);
        for (int r = 0; r < R; r++) {
            const __m256 qd = _mm256_set1_ps(q[r][d]);
            for (int u = 0; u < NB; u++)
                acc[r][u] = _mm256_fmadd_ps(qd, k[u], acc[r][u]);
        }
    }
    const __m256 sc = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++) {
            size_t j = (size_t)u * W + j0;
            __m256 v = _mm256_blendv_ps(ninf, _mm256_mul_ps(sc, acc[r][u]),
                                        range_mask(lo[r], hi[r], j));
            _mm256_storeu_ps(s + (size_t)r * S_CAP + j, v);
            mx[r] = _mm256_max_ps(mx[r], v);
        }
}

/* s[r * S_CAP + j] = scale * q[r] . X[b + j] for j < n (rounded up to whole
 * vectors, -inf outside each row's range); mx[r] gets the row maxima. */
static inline __attribute__((always_inline)) void
tile_scores(int R, size_t dh, const float *const *q, const float *xt, size_t st, size_t b,
            size_t n, float scale, const size_t *lo, const size_t *hi, float *s, __m256 *mx)
{
    const float *x0 = xt + b;
    for (int r = 0; r < R; r++)
        mx[r] = _mm256_set1_ps(-INFINITY);
    size_t j = 0;
    for (; j + W < n; j += 2 * W)
        tile_blocks(R, 2, dh, q, x0, st, scale, lo, hi, j, s, mx);
    if (j < n)
        tile_blocks(R, 1, dh, q, x0, st, scale, lo, hi, j, s, mx);
}

/* One dh chunk of tile_pv; FULL chunks use plain loads. */
static inline __attribute__((always_inline)) void
tile_pv_chunk(int R, int FULL, __m256i m, size_t n, const float *P, const float *x, size_t ldx,
              const float *inv, float *const *out, size_t c, int accumulate, unsigned live)
{
#define LD(p) (FULL ? _mm256_loadu_ps(p) : _mm256_maskload_ps((p), m))
    __m256 a[R_MAX], b[R_MAX];
    for (int r = 0; r < R; r++)
        a[r] = b[r] = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const __m256 x0 = LD(x + j * ldx), x1 = LD(x + (j + 1) * ldx);
        for (int r = 0; r < R; r++) {
            const float *p = P + (size_t)r * S_CAP + j;
            a[r] = _mm256_fmadd_ps(_mm256_set1_ps(p[0]), x0, a[r]);
            b[r] = _mm256_fmadd_ps(_mm256_set1_ps(p[1]), x1, b[r]);
        }
    }
    if (j < n) {
        const __m256 x0 = LD(x + j * ldx);
        for (int r = 0; r < R; r++)
            a[r] = _mm256_fmadd_ps(_mm256_set1_ps(P[(size_t)r * S_CAP + j]), x0, a[r]);
    }
#undef LD
    for (int r = 0; r < R; r++) {
        if (!((live >> r) & 1))
            continue; /* empty range: the row is not written at all */
        __m256 v = _mm256_mul_ps(_mm256_set1_ps(inv[r]), _mm256_add_ps(a[r], b[r]));
        if (FULL) {
            if (accumulate)
                v = _mm256_add_ps(v, _mm256_loadu_ps(out[r] + c));
            _mm256_storeu_ps(out[r] + c, v);
        } else {
            if (accumulate)
                v = _mm256_add_ps(v, _mm256_maskload_ps(out[r] + c, m));
            _mm256_maskstore_ps(out[r] + c, m, v);
        }
    }
}

/* out[r] (= or +=) inv[r] * sum_j P[r][j] X[j] for the rows r in `live`,
 * sharing each X load. */
static inline __attribute__((always_inline)) void
tile_pv(int R, size_t n, const float *P, const float *X, size_t ldx, size_t dh,
        const float *inv, float *const *out, int accumulate, unsigned live)
{
    for (size_t c = 0; c < dh; c += W) {
        const __m256i m = tail_mask(dh - c);
        if (dh - c >= W)
            tile_pv_chunk(R, 1, m, n, P, X + c, ldx, inv, out, c, accumulate, live);
        else
            tile_pv_chunk(R, 0, m, n, P, X + c, ldx, inv, out, c, accumulate, live);
    }
}

/* P = exp(s - max) over whole vectors of each tile row (the -inf lanes give
 * 0).  An empty row is all -inf: shifted by 0 instead, its P is all 0. */
static void tile_softmax(size_t R, size_t n, float *s, const __m256 *mx, float *m, float *sum,
                         float *inv)
{
    for (size_t r = 0; r < R; r++) {
        float *sr = s + r * S_CAP;
        m[r] = hmax(mx[r]);
        const __m256 sh = _mm256_set1_ps(m[r] == -INFINITY ? 0.0f : m[r]);
        __m256 acc = _mm256_setzero_ps();
        for (size_t j = 0; j < n; j += W) {
            __m256 p = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(sr + j), sh));
            _mm256_storeu_ps(sr + j, p);
            acc = _mm256_add_ps(acc, p);
        }
        sum[r] = hsum(acc);
        inv[r] = sum[r] > 0.0f ? 1.0f / sum[r] : 0.0f;
    }
}

/* One tile of R queries starting at i0 for head h. */
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
        __m256 mx[R_MAX];
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

static void attention_fwd_avx2(size_t Tq, size_t Tk, size_t heads, size_t dh,
                               const float *Q, size_t ldq, const float *K, size_t ldk,
                               const float *V, size_t ldv, const uint32_t *key_begin,
                               const uint32_t *key_end, float scale, float *O, size_t ldo,
                               float *lse, float *scratch)
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
    const __m256 lv = _mm256_set1_ps(L), dv = _mm256_set1_ps(D);
    for (size_t j = 0; j < n; j += W) {
        if (full || n - j >= W) {
            __m256 pv = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(p + j), lv));
            __m256 g = _mm256_mul_ps(pv, _mm256_sub_ps(_mm256_loadu_ps(ds + j), dv));
            _mm256_storeu_ps(p + j, pv);
            _mm256_storeu_ps(ds + j, g);
        } else {
            __m256i m = tail_mask(n - j);
            __m256 pv = Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_maskload_ps(p + j, m), lv));
            __m256 g = _mm256_mul_ps(pv, _mm256_sub_ps(_mm256_maskload_ps(ds + j, m), dv));
            _mm256_maskstore_ps(p + j, m, pv);
            _mm256_maskstore_ps(ds + j, m, g);
        }
    }
}

/* ---- backward over a tile of up to R_MAX queries ----
 * Same sharing as the forward tile: P and dP rows over the union of the
 * rows' key ranges (P = 0 outside each row's own range, hence dS = 0 too),
 * dQ rows from shared K loads, and each dK/dV row is read and written once
 * per tile instead of once per query. */

/* One dh chunk of tile_kv_grads.  FULL chunks use plain loads/stores:
 * vmaskmov stores are slow on AMD cores. */
static inline __attribute__((always_inline)) void
kv_grads_chunk(int R, int FULL, __m256i m, size_t n, const float *P, const float *DS,
               const __m256 *qs, const __m256 *gv, float *dK, size_t lddk, float *dV,
               size_t lddv)
{
    for (size_t j = 0; j < n; j++) {
        float *k = dK + j * lddk, *v = dV + j * lddv;
        __m256 kv = FULL ? _mm256_loadu_ps(k) : _mm256_maskload_ps(k, m);
        __m256 vv = FULL ? _mm256_loadu_ps(v) : _mm256_maskload_ps(v, m);
        for (int r = 0; r < R; r++) {
            kv = _mm256_fmadd_ps(_mm256_set1_ps(DS[(size_t)r * S_CAP + j]), qs[r], kv);
            vv = _mm256_fmadd_ps(_mm256_set1_ps(P[(size_t)r * S_CAP + j]), gv[r], vv);
        }
        if (FULL) {
            _mm256_storeu_ps(k, kv);
            _mm256_storeu_ps(v, vv);
        } else {
            _mm256_maskstore_ps(k, m, kv);
            _mm256_maskstore_ps(v, m, vv);
        }
    }
}

/* dK[j] += scale * sum_r dS[r][j] q[r] and dV[j] += sum_r P[r][j] go[r]. */
static inline __attribute__((always_inline)) void
tile_kv_grads(int R, size_t n, const float *P, const float *DS, const float *const *q,
              const float *const *go, size_t dh, float scale, float *dK, size_t lddk,
              float *dV, size_t lddv)
{
    for (size_t c = 0; c < dh; c += W) {
        const __m256i m = tail_mask(dh - c);
        __m256 qs[R_MAX], gv[R_MAX];
        for (int r = 0; r < R; r++) {
            qs[r] = _mm256_mul_ps(_mm256_set1_ps(scale), _mm256_maskload_ps(q[r] + c, m));
            gv[r] = _mm256_maskload_ps(go[r] + c, m);
        }
        if (dh - c >= W)
            kv_grads_chunk(R, 1, m, n, P, DS, qs, gv, dK + c, lddk, dV + c, lddv);
        else
            kv_grads_chunk(R, 0, m, n, P, DS, qs, gv, dK + c, lddk, dV + c, lddv);
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
    __m256 mx[R_MAX];
    tile_scores(R, dh, q, kt, st, bu, n, scale, lo, hi, P, mx);
    tile_scores(R, dh, go, vt, st, bu, n, 1.0f, all_lo, all_hi, DS, mx);
    for (int r = 0; r < R; r++) {
        float *pr = P + (size_t)r * S_CAP, *dr = DS + (size_t)r * S_CAP;
        if (!((live >> r) & 1)) {
            for (size_t j = 0; j < n; j += W) {
                _mm256_storeu_ps(pr + j, _mm256_setzero_ps());
                _mm256_storeu_ps(dr + j, _mm256_setzero_ps());
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

static void attention_bwd_avx2(size_t Tq, size_t Tk, size_t heads, size_t dh,
                               const float *Q, size_t ldq, const float *K, size_t ldk,
                               const float *V, size_t ldv, const uint32_t *key_begin,
                               const uint32_t *key_end, float scale, const float *O,
                               size_t ldo, const float *lse, const float *dO, size_t lddo,
                               float *dQ, size_t lddq, float *dK, size_t lddk, float *dV,
                               size_t lddv, float *scratch)
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

void nu_fill_attention_avx2(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_avx2;
    t->attention_bwd = attention_bwd_avx2;
}
