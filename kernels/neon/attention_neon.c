/* Masked multi-head attention, NEON (4 floats per q register; dh = 16 is four).
 *
 * Same plan as the x86 files: per head, with Tq >= 4, K (and V for the
 * backward) is transposed into a bounded thread-local buffer so that 4 keys'
 * scores are one FMA chain over dh with broadcast query elements, and
 * queries go in tiles of 4 sharing every key/value load (each dK/dV row
 * updated once per tile).  With few queries (inference, Tq = 1) each score is
 * a reduced dot product instead.  Softmax with SLEEF's exp.  NEON has no
 * masked memory ops: tails go through a small stack array or scalar loops. */
#include <arm_neon.h>
#include <math.h>
#include <sleef.h>
#include <string.h>

#include "../kernels.h"

#define W 4
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

/* rem (< 4) floats from p, the other lanes `fill`. */
static float32x4_t load_tail(const float *p, size_t rem, float fill)
{
    float t[W] = {fill, fill, fill, fill};
    memcpy(t, p, rem * sizeof(float));
    return vld1q_f32(t);
}

static void store_tail(float *p, size_t rem, float32x4_t v)
{
    float t[W];
    vst1q_f32(t, v);
    memcpy(p, t, rem * sizeof(float));
}

/* Row stride of a transposed buffer: a 4-wide load starting at any key
 * below Tk stays inside the row. */
static size_t t_stride(size_t Tk) { return (Tk + 2 * W - 2) / W * W; }

static int use_transpose(size_t Tq, size_t Tk, size_t dh)
{
    return Tq >= T_MIN_QUERIES && t_stride(Tk) * dh <= T_CAP;
}

/* xt[d * st + j] = X[j][d]: reads rows contiguously. */
static void transpose(size_t Tk, size_t dh, const float *X, size_t ldx, float *xt, size_t st)
{
    for (size_t j = 0; j < Tk; j++)
        for (size_t d = 0; d < dh; d++)
            xt[d * st + j] = X[j * ldx + d];
}

static float dot(size_t dh, const float *a, const float *b)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    size_t d = 0;
    for (; d + W <= dh; d += W)
        acc = vfmaq_f32(acc, vld1q_f32(a + d), vld1q_f32(b + d));
    float s = vaddvq_f32(acc);
    for (; d < dh; d++)
        s += a[d] * b[d];
    return s;
}

/* Same without the transpose: one reduced dot product per key. */
static void dots_direct(size_t dh, const float *q, const float *X, size_t ldx, size_t b,
                        size_t n, float scale, float *s)
{
    if (dh == 4 * W) {
        const float32x4_t q0 = vld1q_f32(q), q1 = vld1q_f32(q + 4), q2 = vld1q_f32(q + 8),
                          q3 = vld1q_f32(q + 12);
        for (size_t j = 0; j < n; j++) {
            const float *x = X + (b + j) * ldx;
            float32x4_t p0 = vmulq_f32(q0, vld1q_f32(x)), p1 = vmulq_f32(q1, vld1q_f32(x + 4));
            p0 = vfmaq_f32(p0, q2, vld1q_f32(x + 8));
            p1 = vfmaq_f32(p1, q3, vld1q_f32(x + 12));
            s[j] = scale * vaddvq_f32(vaddq_f32(p0, p1));
        }
        return;
    }
    for (size_t j = 0; j < n; j++)
        s[j] = scale * dot(dh, q, X + (b + j) * ldx);
}

static float row_max(size_t n, const float *s)
{
    float32x4_t m = vdupq_n_f32(-INFINITY);
    size_t j = 0;
    for (; j + W <= n; j += W)
        m = vmaxq_f32(m, vld1q_f32(s + j));
    if (j < n)
        m = vmaxq_f32(m, load_tail(s + j, n - j, -INFINITY));
    return vmaxvq_f32(m);
}

/* s[j] = exp(s[j] - shift); returns the sum. */
static float exp_row(size_t n, float *s, float shift)
{
    const float32x4_t sh = vdupq_n_f32(shift);
    float32x4_t sum = vdupq_n_f32(0.0f);
    size_t j = 0;
    for (; j + W <= n; j += W) {
        float32x4_t p = Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(s + j), sh));
        vst1q_f32(s + j, p);
        sum = vaddq_f32(sum, p);
    }
    float total = vaddvq_f32(sum);
    if (j < n) {
        float t[W];
        vst1q_f32(t, Sleef_expf4_u10advsimd(vsubq_f32(load_tail(s + j, n - j, 0.0f), sh)));
        for (size_t l = 0; l < n - j; l++) {
            s[j + l] = t[l];
            total += t[l];
        }
    }
    return total;
}

/* out[0..dh) (= or +=) alpha * sum_j w[j] X[j]: four accumulators break the
 * FMA dependency chain over keys. */
static void weighted_rows(size_t n, const float *w, const float *X, size_t ldx, size_t dh,
                          float alpha, float *out, int accumulate)
{
    size_t c = 0;
    for (; c + W <= dh; c += W) {
        const float *x = X + c;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        size_t j = 0;
        for (; j + 4 <= n; j += 4) {
            a0 = vfmaq_n_f32(a0, vld1q_f32(x + j * ldx), w[j]);
            a1 = vfmaq_n_f32(a1, vld1q_f32(x + (j + 1) * ldx), w[j + 1]);
            a2 = vfmaq_n_f32(a2, vld1q_f32(x + (j + 2) * ldx), w[j + 2]);
            a3 = vfmaq_n_f32(a3, vld1q_f32(x + (j + 3) * ldx), w[j + 3]);
        }
        for (; j < n; j++)
            a0 = vfmaq_n_f32(a0, vld1q_f32(x + j * ldx), w[j]);
        float32x4_t r = vmulq_n_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)), alpha);
        if (accumulate)
            r = vaddq_f32(r, vld1q_f32(out + c));
        vst1q_f32(out + c, r);
    }
    for (; c < dh; c++) {
        float a = 0.0f;
        for (size_t j = 0; j < n; j++)
            a += w[j] * X[j * ldx + c];
        out[c] = alpha * a + (accumulate ? out[c] : 0.0f);
    }
}

/* Y[j] += w[j] * alpha * y for j < n (rank-1 update of key/value gradients). */
static void rank1_rows(size_t n, const float *w, const float *y, size_t dh, float alpha,
                       float *Y, size_t ldy)
{
    size_t c = 0;
    for (; c + W <= dh; c += W) {
        const float32x4_t yv = vmulq_n_f32(vld1q_f32(y + c), alpha);
        float *o = Y + c;
        for (size_t j = 0; j < n; j++)
            vst1q_f32(o + j * ldy, vfmaq_n_f32(vld1q_f32(o + j * ldy), yv, w[j]));
    }
    for (; c < dh; c++) {
        const float yc = alpha * y[c];
        for (size_t j = 0; j < n; j++)
            Y[j * ldy + c] += w[j] * yc;
    }
}

static void zero_row(size_t dh, float *o)
{
    for (size_t c = 0; c < dh; c++)
        o[c] = 0.0f;
}

/* ---- query tiles (see the AVX-512 file) ----
 * Up to R_MAX queries share every load of the transposed keys and of V:
 * scores run over the union of their key ranges, with each row's scores
 * outside its own range set to -inf in registers (P = 0 there); rows are
 * stored as whole vectors; the backward updates each dK/dV row once per
 * tile. */
#define R_MAX 4
/* Score row capacity of a tile (Tk up to ~1000). */
#define S_CAP 1024
/* Rows 0..R_MAX-1: scores / P; rows R_MAX..2*R_MAX-1: dP / dS (backward). */
static _Thread_local float s_tls[2 * R_MAX * S_CAP];

static int use_tile(size_t Tq, size_t Tk, size_t dh)
{
    return use_transpose(Tq, Tk, dh) && t_stride(Tk) <= S_CAP;
}

/* Lanes of the 4 keys from j whose index lies in [lo, hi). */
static uint32x4_t range_mask(size_t lo, size_t hi, size_t j)
{
    static const uint32_t lane[W] = {0, 1, 2, 3};
    uint32x4_t idx = vaddq_u32(vdupq_n_u32((uint32_t)j), vld1q_u32(lane));
    return vandq_u32(vcgeq_u32(idx, vdupq_n_u32((uint32_t)lo)),
                     vcltq_u32(idx, vdupq_n_u32((uint32_t)hi)));
}

/* NB blocks of 4 keys for R queries: R * NB independent FMA chains. */
static inline __attribute__((always_inline)) void
tile_blocks(int R, int NB, size_t dh, const float *const *q, const float *xt, size_t st,
            float scale, const size_t *lo, const size_t *hi, size_t j0, float *s,
            float32x4_t *mx)
{
    float32x4_t acc[R_MAX][4];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++)
            acc[r][u] = vdupq_n_f32(0.0f);
    for (size_t d = 0; d < dh; d++) {
        const float *row = xt + d * st + j0;
        float32x4_t k[4];
        for (int u = 0; u < NB; u++)
            k[u] = vld1q_f32(row + u * W);
        for (int r = 0; r < R; r++) {
            const float qd = q[r][d];
            for (int u = 0; u < NB; u++)
                acc[r][u] = vfmaq_n_f32(acc[r][u], k[u], qd);
        }
    }
    const float32x4_t ninf = vdupq_n_f32(-INFINITY);
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++) {
            size_t j = (size_t)u * W + j0;
            float32x4_t v = vbslq_f32(range_mask(lo[r], hi[r], j),
                                      vmulq_n_f32(acc[r][u], scale), ninf);
            vst1q_f32(s + (size_t)r * S_CAP + j, v);
            mx[r] = vmaxq_f32(mx[r], v);
        }
}

/* s[r * S_CAP + j] = scale * q[r] . X[b + j] for j < n (rounded up to whole
 * vectors, -inf outside each row's range); mx[r] gets the row maxima. */
static inline __attribute__((always_inline)) void
tile_scores(int R, size_t dh, const float *const *q, const float *xt, size_t st, size_t b,
            size_t n, float scale, const size_t *lo, const size_t *hi, float *s,
            float32x4_t *mx)
{
    const float *x0 = xt + b;
    for (int r = 0; r < R; r++)
        mx[r] = vdupq_n_f32(-INFINITY);
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
 * sharing each X load; dh % 4 tail columns in scalar code. */
static inline __attribute__((always_inline)) void
tile_pv(int R, size_t n, const float *P, const float *X, size_t ldx, size_t dh,
        const float *inv, float *const *out, int accumulate, unsigned live)
{
    size_t c = 0;
    for (; c + W <= dh; c += W) {
        const float *x = X + c;
        float32x4_t a[R_MAX], b[R_MAX];
        for (int r = 0; r < R; r++)
            a[r] = b[r] = vdupq_n_f32(0.0f);
        size_t j = 0;
        for (; j + 2 <= n; j += 2) {
            const float32x4_t x0 = vld1q_f32(x + j * ldx), x1 = vld1q_f32(x + (j + 1) * ldx);
            for (int r = 0; r < R; r++) {
                const float *p = P + (size_t)r * S_CAP + j;
                a[r] = vfmaq_n_f32(a[r], x0, p[0]);
                b[r] = vfmaq_n_f32(b[r], x1, p[1]);
            }
        }
        if (j < n) {
            const float32x4_t x0 = vld1q_f32(x + j * ldx);
            for (int r = 0; r < R; r++)
                a[r] = vfmaq_n_f32(a[r], x0, P[(size_t)r * S_CAP + j]);
        }
        for (int r = 0; r < R; r++) {
            if (!((live >> r) & 1))
                continue; /* empty range: the row is not written at all */
            float32x4_t v = vmulq_n_f32(vaddq_f32(a[r], b[r]), inv[r]);
            if (accumulate)
                v = vaddq_f32(v, vld1q_f32(out[r] + c));
            vst1q_f32(out[r] + c, v);
        }
    }
    for (; c < dh; c++)
        for (int r = 0; r < R; r++) {
            if (!((live >> r) & 1))
                continue;
            float a = 0.0f;
            for (size_t j = 0; j < n; j++)
                a += P[(size_t)r * S_CAP + j] * X[j * ldx + c];
            out[r][c] = inv[r] * a + (accumulate ? out[r][c] : 0.0f);
        }
}

/* P = exp(s - max) over whole vectors of each tile row (the -inf lanes give
 * 0).  An empty row is all -inf: shifted by 0 instead, its P is all 0. */
static void tile_softmax(size_t R, size_t n, float *s, const float32x4_t *mx, float *m,
                         float *sum, float *inv)
{
    for (size_t r = 0; r < R; r++) {
        float *sr = s + r * S_CAP;
        m[r] = vmaxvq_f32(mx[r]);
        const float32x4_t sh = vdupq_n_f32(m[r] == -INFINITY ? 0.0f : m[r]);
        float32x4_t acc = vdupq_n_f32(0.0f);
        for (size_t j = 0; j < n; j += W) {
            float32x4_t p = Sleef_expf4_u10advsimd(vsubq_f32(vld1q_f32(sr + j), sh));
            vst1q_f32(sr + j, p);
            acc = vaddq_f32(acc, p);
        }
        sum[r] = vaddvq_f32(acc);
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
        float32x4_t mx[R_MAX];
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

static void attention_fwd_neon(size_t Tq, size_t Tk, size_t heads, size_t dh,
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
 * rows (room for whole vectors) need no tail handling. */
static void softmax_grad_row(size_t n, float *p, float *ds, float L, float D, int full)
{
    const float32x4_t lv = vdupq_n_f32(L), dv = vdupq_n_f32(D);
    for (size_t j = 0; j < n; j += W) {
        const int whole = full || n - j >= W;
        size_t rem = n - j;
        float32x4_t x = whole ? vld1q_f32(p + j) : load_tail(p + j, rem, 0.0f);
        float32x4_t y = whole ? vld1q_f32(ds + j) : load_tail(ds + j, rem, 0.0f);
        float32x4_t pv = Sleef_expf4_u10advsimd(vsubq_f32(x, lv));
        float32x4_t g = vmulq_f32(pv, vsubq_f32(y, dv));
        if (whole) {
            vst1q_f32(p + j, pv);
            vst1q_f32(ds + j, g);
        } else {
            store_tail(p + j, rem, pv);
            store_tail(ds + j, rem, g);
        }
    }
}

/* dK[j] += scale * sum_r dS[r][j] q[r] and dV[j] += sum_r P[r][j] go[r];
 * dh % 4 tail columns in scalar code. */
static inline __attribute__((always_inline)) void
tile_kv_grads(int R, size_t n, const float *P, const float *DS, const float *const *q,
              const float *const *go, size_t dh, float scale, float *dK, size_t lddk,
              float *dV, size_t lddv)
{
    size_t c = 0;
    for (; c + W <= dh; c += W) {
        float32x4_t qs[R_MAX], gv[R_MAX];
        for (int r = 0; r < R; r++) {
            qs[r] = vmulq_n_f32(vld1q_f32(q[r] + c), scale);
            gv[r] = vld1q_f32(go[r] + c);
        }
        for (size_t j = 0; j < n; j++) {
            float *k = dK + j * lddk + c, *v = dV + j * lddv + c;
            float32x4_t kv = vld1q_f32(k), vv = vld1q_f32(v);
            for (int r = 0; r < R; r++) {
                kv = vfmaq_n_f32(kv, qs[r], DS[(size_t)r * S_CAP + j]);
                vv = vfmaq_n_f32(vv, gv[r], P[(size_t)r * S_CAP + j]);
            }
            vst1q_f32(k, kv);
            vst1q_f32(v, vv);
        }
    }
    for (; c < dh; c++)
        for (size_t j = 0; j < n; j++) {
            float gk = 0.0f, gvv = 0.0f;
            for (int r = 0; r < R; r++) {
                gk += DS[(size_t)r * S_CAP + j] * (scale * q[r][c]);
                gvv += P[(size_t)r * S_CAP + j] * go[r][c];
            }
            dK[j * lddk + c] += gk;
            dV[j * lddv + c] += gvv;
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
    float32x4_t mx[R_MAX];
    tile_scores(R, dh, q, kt, st, bu, n, scale, lo, hi, P, mx);
    tile_scores(R, dh, go, vt, st, bu, n, 1.0f, all_lo, all_hi, DS, mx);
    for (int r = 0; r < R; r++) {
        float *pr = P + (size_t)r * S_CAP, *dr = DS + (size_t)r * S_CAP;
        if (!((live >> r) & 1)) {
            for (size_t j = 0; j < n; j += W) {
                vst1q_f32(pr + j, vdupq_n_f32(0.0f));
                vst1q_f32(dr + j, vdupq_n_f32(0.0f));
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

static void attention_bwd_neon(size_t Tq, size_t Tk, size_t heads, size_t dh,
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

void nu_fill_attention_neon(nu_kernel_table *t)
{
    t->attention_fwd = attention_fwd_neon;
    t->attention_bwd = attention_bwd_neon;
}
