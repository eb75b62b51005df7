/* The portable loop structure of the attention kernels (kernels.h group
 * "attention"), shared by the AVX2, AVX-512 and NEON files; the scalar
 * reference (kernels/scalar/attention_scalar.c) stays on its own.
 *
 * Design: static inline driver code in this header, included by each
 * kernels/<isa>/attention_<isa>.c after it defines its vector primitives as
 * static inline functions (listed below).  Not a table of function pointers
 * as in gemm_drive.h: there each pointer is a whole micro-kernel, here the
 * primitives are single instructions (a broadcast FMA, a masked load) inside
 * loops unrolled over the tile's queries and key blocks.  Only inlined, and
 * compiled with the including file's ISA flags (the files in kernels/<isa>/
 * get them, the common ones in kernels/ do not), do the accumulators stay in
 * registers; an indirect call per FMA would cost more than the kernel.
 * attention_drive.c holds the one out-of-line piece, the per-thread buffers.
 *
 * Plan: per head, when several queries share the keys (Tq >= 4), K (and V
 * for the backward) is transposed into a per-thread buffer, so the scores of
 * W keys are one FMA chain over dh with broadcast query elements (no
 * horizontal sums).  Queries then go in tiles of up to 4 that share every key
 * and value load (fwd_tile, bwd_tile): scores and P.V run over the union of
 * their key ranges, each row's scores outside its own range set to -inf in
 * registers (so its P is 0 there); the independent rows give the core
 * several softmax chains to overlap, and in the backward each dK/dV row is
 * updated once per tile.  Rows in the buffers are written as whole vectors
 * so the next full-vector load forwards from the store.  With few queries
 * (inference cross-attention, Tq = 1) the transpose would cost more than it
 * saves: each score is a dot product with one reduction, one row at a time.
 * Softmax in two passes (max, then exp) as the reference.
 *
 * The including file defines, before the #include:
 *   NU_ATT_ISA         name suffix: the kernels are attention_fwd_<ISA> and
 *                      attention_bwd_<ISA> (static; its fill function
 *                      stores them in the table);
 *   NU_ATT_W           floats per vector;
 *   NU_ATT_NB_MAX      key vectors per query in one score block (1..4):
 *                      NB_MAX * R_MAX accumulators must fit the registers;
 *   NU_ATT_MASKED      1: masked loads/stores are cheap, so dh tails are
 *                      vector chunks; 0: dh tails run in scalar loops here;
 *   NU_ATT_REG_TRANSPOSE  1: K and V are transposed in W x W register
 *                      blocks with att_transpose; 0: element by element;
 *   att_v, att_m       a vector of floats, and a partial-vector mask;
 * and these static inline primitives ("s" a float broadcast to all lanes):
 *   att_zero() att_set1(s) att_load(p) att_store(p, v)
 *   att_add(a, b) att_sub(a, b) att_max(a, b)  (a op b, lanewise)
 *   att_mul(a, b)         a * b
 *   att_mul_n(v, s)       v * s
 *   att_fma(acc, a, b)    acc + a * b, fused
 *   att_fma_n(acc, v, s)  acc + v * s, fused
 *   att_hsum(v) att_hmax(v)  sum and max of the lanes
 *   att_exp(v)            SLEEF's expf, 1 ulp
 *   att_tail(rem)         the mask of lanes [0, rem), 0 < rem < W
 *   att_loadm(p, m)       lanes of m from p, 0 elsewhere
 *   att_loadm_ninf(p, m)  the same with -inf elsewhere
 *   att_storem(p, m, v)   stores the lanes of m only
 *                         (these three touch no memory outside the mask)
 *   att_keep(m, v)        v in the lanes of m, 0 elsewhere (NU_ATT_MASKED)
 *   att_score_range(acc, scale, lo, hi, j)  acc * scale in lanes l with
 *                         j + l in [lo, hi), -inf elsewhere
 *   att_dot16(q, x)       q . x for dh = 16: q holds 16 / W loaded vectors
 *   att_transpose(r)      r[W]: rows in, columns out (NU_ATT_REG_TRANSPOSE)
 * The helpers below keep each ISA's order of operations, so every ISA gives
 * the same bits as its own loops did before this driver. */
#ifndef NU_SIMD_ATTENTION_DRIVE_H
#define NU_SIMD_ATTENTION_DRIVE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Floats per transposed buffer (32 KiB): dh = 16 fits Tk up to ~480 keys;
 * larger items take the path without the transpose. */
#define NU_ATT_T_CAP (1u << 13)
/* Fewer queries than this share too little of the transpose's cost. */
#define NU_ATT_T_MIN_QUERIES 4
/* Queries per tile. */
#define NU_ATT_R_MAX 4
/* Score row capacity of a tile (Tk up to ~1000). */
#define NU_ATT_S_CAP 1024

/* The calling thread's buffers: transposed K and V (NU_ATT_T_CAP floats
 * each) and the tile's score rows (rows 0..R_MAX-1: scores / P, rows
 * R_MAX..2*R_MAX-1: dP / dS in the backward; NU_ATT_S_CAP floats each).
 * Out of line on purpose: the compiler cannot recompute the addresses
 * inside the loops (in PIC code a thread-local address is a __tls_get_addr
 * call, which clobbers every vector register). */
typedef struct nu_att_buffers {
    float *kt, *vt, *s;
} nu_att_buffers;
nu_att_buffers nu_attention_buffers(void);

/* ---- the driver: only in the ISA files, after their primitives ---- */
#ifdef NU_ATT_W

#if NU_ATT_NB_MAX < 1 || NU_ATT_NB_MAX > 4
#error "NU_ATT_NB_MAX must be 1..4"
#endif

#define NU_ATT_INLINE static inline __attribute__((always_inline))
#define NU_ATT_PASTE2(a, b) a##b
#define NU_ATT_PASTE(a, b) NU_ATT_PASTE2(a, b)

/* Visible key range of query i, clamped to [0, Tk] so a bad end cannot read
 * past K; begin >= end means the row sees nothing. */
static inline void key_range(size_t i, size_t Tk, const uint32_t *kb, const uint32_t *ke,
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

/* Row stride of a transposed buffer: a whole-vector load starting at any
 * key below Tk stays inside the row. */
static inline size_t t_stride(size_t Tk)
{
    return (Tk + 2 * NU_ATT_W - 2) / NU_ATT_W * NU_ATT_W;
}

static inline int use_tile(size_t Tq, size_t Tk, size_t dh)
{
    return Tq >= NU_ATT_T_MIN_QUERIES && t_stride(Tk) * dh <= NU_ATT_T_CAP &&
           t_stride(Tk) <= NU_ATT_S_CAP;
}

#if NU_ATT_REG_TRANSPOSE
/* xt[d * st + j] = X[j][d] in W x W register blocks; rows past Tk come in as
 * zeros (st leaves room for them), columns past dh are masked off (only
 * partial vectors use masked loads). */
static void transpose(size_t Tk, size_t dh, const float *X, size_t ldx, float *xt, size_t st)
{
    att_v r[NU_ATT_W];
    for (size_t j0 = 0; j0 < Tk; j0 += NU_ATT_W) {
        const size_t rows = Tk - j0 < NU_ATT_W ? Tk - j0 : NU_ATT_W;
        for (size_t d0 = 0; d0 < dh; d0 += NU_ATT_W) {
            const size_t cols = dh - d0 < NU_ATT_W ? dh - d0 : NU_ATT_W;
            for (size_t k = 0; k < NU_ATT_W; k++) {
                const float *x = X + (j0 + k) * ldx + d0;
                r[k] = k >= rows           ? att_zero()
                       : cols == NU_ATT_W ? att_load(x)
                                          : att_loadm(x, att_tail(cols));
            }
            att_transpose(r);
            for (size_t c = 0; c < cols; c++)
                att_store(xt + (d0 + c) * st + j0, r[c]);
        }
    }
}
#else
/* xt[d * st + j] = X[j][d]: reads rows contiguously. */
static void transpose(size_t Tk, size_t dh, const float *X, size_t ldx, float *xt, size_t st)
{
    for (size_t j = 0; j < Tk; j++)
        for (size_t d = 0; d < dh; d++)
            xt[d * st + j] = X[j * ldx + d];
}
#endif

/* ---- one (query, head) row at a time, without the transpose ---- */

static float dot(size_t dh, const float *a, const float *b)
{
    att_v acc = att_zero();
    size_t d = 0;
    for (; d + NU_ATT_W <= dh; d += NU_ATT_W)
        acc = att_fma(acc, att_load(a + d), att_load(b + d));
#if NU_ATT_MASKED
    if (d < dh) {
        const att_m m = att_tail(dh - d);
        acc = att_fma(acc, att_loadm(a + d, m), att_loadm(b + d, m));
    }
    return att_hsum(acc);
#else
    float s = att_hsum(acc);
    for (; d < dh; d++)
        s += a[d] * b[d];
    return s;
#endif
}

/* s[j] = scale * q . X[b + j] for j < n: one reduced dot product per key. */
static void dots_direct(size_t dh, const float *q, const float *X, size_t ldx, size_t b,
                        size_t n, float scale, float *s)
{
    if (dh == 16) {
        att_v qv[16 / NU_ATT_W];
        for (size_t k = 0; k < 16 / NU_ATT_W; k++)
            qv[k] = att_load(q + k * NU_ATT_W);
        for (size_t j = 0; j < n; j++)
            s[j] = scale * att_dot16(qv, X + (b + j) * ldx);
        return;
    }
    for (size_t j = 0; j < n; j++)
        s[j] = scale * dot(dh, q, X + (b + j) * ldx);
}

static float row_max(size_t n, const float *s)
{
    att_v m = att_set1(-INFINITY);
    size_t j = 0;
    for (; j + NU_ATT_W <= n; j += NU_ATT_W)
        m = att_max(m, att_load(s + j));
    if (j < n)
        m = att_max(m, att_loadm_ninf(s + j, att_tail(n - j)));
    return att_hmax(m);
}

/* s[j] = exp(s[j] - shift); returns the sum. */
static float exp_row(size_t n, float *s, float shift)
{
    const att_v sh = att_set1(shift);
    att_v sum = att_zero();
    size_t j = 0;
    for (; j + NU_ATT_W <= n; j += NU_ATT_W) {
        const att_v p = att_exp(att_sub(att_load(s + j), sh));
        att_store(s + j, p);
        sum = att_add(sum, p);
    }
#if NU_ATT_MASKED
    if (j < n) {
        const att_m m = att_tail(n - j);
        const att_v p = att_keep(m, att_exp(att_sub(att_loadm(s + j, m), sh)));
        att_storem(s + j, m, p);
        sum = att_add(sum, p);
    }
    return att_hsum(sum);
#else
    float total = att_hsum(sum);
    if (j < n) {
        float t[NU_ATT_W];
        att_store(t, att_exp(att_sub(att_loadm(s + j, att_tail(n - j)), sh)));
        for (size_t l = 0; l < n - j; l++) {
            s[j + l] = t[l];
            total += t[l];
        }
    }
    return total;
#endif
}

/* sum_j w[j] X[j] over one dh chunk; FULL chunks use plain loads and ignore
 * m.  Four accumulators break the FMA dependency chain over keys. */
NU_ATT_INLINE att_v weighted_chunk(int FULL, att_m m, size_t n, const float *w, const float *x,
                                   size_t ldx)
{
#define LD(p) (FULL ? att_load(p) : att_loadm((p), m))
    att_v a0 = att_zero(), a1 = a0, a2 = a0, a3 = a0;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        a0 = att_fma_n(a0, LD(x + j * ldx), w[j]);
        a1 = att_fma_n(a1, LD(x + (j + 1) * ldx), w[j + 1]);
        a2 = att_fma_n(a2, LD(x + (j + 2) * ldx), w[j + 2]);
        a3 = att_fma_n(a3, LD(x + (j + 3) * ldx), w[j + 3]);
    }
    for (; j < n; j++)
        a0 = att_fma_n(a0, LD(x + j * ldx), w[j]);
#undef LD
    return att_add(att_add(a0, a1), att_add(a2, a3));
}

/* out[0..dh) (= or +=) alpha * sum_j w[j] X[j]. */
static void weighted_rows(size_t n, const float *w, const float *X, size_t ldx, size_t dh,
                          float alpha, float *out, int accumulate)
{
    size_t c = 0;
    for (; c + NU_ATT_W <= dh; c += NU_ATT_W) {
        att_v r = att_mul_n(weighted_chunk(1, att_tail(1), n, w, X + c, ldx), alpha);
        if (accumulate)
            r = att_add(r, att_load(out + c));
        att_store(out + c, r);
    }
#if NU_ATT_MASKED
    if (c < dh) {
        const att_m m = att_tail(dh - c);
        att_v r = att_mul_n(weighted_chunk(0, m, n, w, X + c, ldx), alpha);
        if (accumulate)
            r = att_add(r, att_loadm(out + c, m));
        att_storem(out + c, m, r);
    }
#else
    for (; c < dh; c++) {
        float a = 0.0f;
        for (size_t j = 0; j < n; j++)
            a += w[j] * X[j * ldx + c];
        out[c] = alpha * a + (accumulate ? out[c] : 0.0f);
    }
#endif
}

/* Y[j] += w[j] * alpha * y for j < n (rank-1 update of key/value gradients). */
static void rank1_rows(size_t n, const float *w, const float *y, size_t dh, float alpha,
                       float *Y, size_t ldy)
{
    size_t c = 0;
    for (; c + NU_ATT_W <= dh; c += NU_ATT_W) {
        const att_v yv = att_mul_n(att_load(y + c), alpha);
        float *o = Y + c;
        for (size_t j = 0; j < n; j++)
            att_store(o + j * ldy, att_fma_n(att_load(o + j * ldy), yv, w[j]));
    }
#if NU_ATT_MASKED
    if (c < dh) {
        const att_m m = att_tail(dh - c);
        const att_v yv = att_mul_n(att_loadm(y + c, m), alpha);
        float *o = Y + c;
        for (size_t j = 0; j < n; j++)
            att_storem(o + j * ldy, m, att_fma_n(att_loadm(o + j * ldy, m), yv, w[j]));
    }
#else
    for (; c < dh; c++) {
        const float yc = alpha * y[c];
        for (size_t j = 0; j < n; j++)
            Y[j * ldy + c] += w[j] * yc;
    }
#endif
}

static void zero_row(size_t dh, float *o)
{
    size_t c = 0;
    for (; c + NU_ATT_W <= dh; c += NU_ATT_W)
        att_store(o + c, att_zero());
#if NU_ATT_MASKED
    if (c < dh)
        att_storem(o + c, att_tail(dh - c), att_zero());
#else
    for (; c < dh; c++)
        o[c] = 0.0f;
#endif
}

/* p[j] = exp(p[j] - L) and ds[j] = p[j] * (ds[j] - D), written back; full
 * rows (room for whole vectors) need no partial vectors. */
static void softmax_grad_row(size_t n, float *p, float *ds, float L, float D, int full)
{
    const att_v lv = att_set1(L), dv = att_set1(D);
    for (size_t j = 0; j < n; j += NU_ATT_W) {
        if (full || n - j >= NU_ATT_W) {
            const att_v pv = att_exp(att_sub(att_load(p + j), lv));
            const att_v g = att_mul(pv, att_sub(att_load(ds + j), dv));
            att_store(p + j, pv);
            att_store(ds + j, g);
        } else {
            const att_m m = att_tail(n - j);
            const att_v pv = att_exp(att_sub(att_loadm(p + j, m), lv));
            const att_v g = att_mul(pv, att_sub(att_loadm(ds + j, m), dv));
            att_storem(p + j, m, pv);
            att_storem(ds + j, m, g);
        }
    }
}

/* ---- tiles of up to R_MAX queries over the transposed keys ---- */

/* NB blocks of W keys for R queries: R * NB independent FMA chains, each
 * loaded key vector used R times.  Row r's scores outside its own range
 * [lo[r], hi[r]) become -inf, whole vectors are stored, and the row maxima
 * are folded into mx[r]. */
NU_ATT_INLINE void tile_blocks(int R, int NB, size_t dh, const float *const *q, const float *xt,
                               size_t st, float scale, const size_t *lo, const size_t *hi,
                               size_t j0, float *s, att_v *mx)
{
    att_v acc[NU_ATT_R_MAX][4];
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++)
            acc[r][u] = att_zero();
    for (size_t d = 0; d < dh; d++) {
        const float *row = xt + d * st + j0;
        att_v k[4];
        for (int u = 0; u < NB; u++)
            k[u] = att_load(row + u * NU_ATT_W);
        for (int r = 0; r < R; r++) {
            const float qd = q[r][d];
            for (int u = 0; u < NB; u++)
                acc[r][u] = att_fma_n(acc[r][u], k[u], qd);
        }
    }
    for (int r = 0; r < R; r++)
        for (int u = 0; u < NB; u++) {
            const size_t j = (size_t)u * NU_ATT_W + j0;
            const att_v v = att_score_range(acc[r][u], scale, lo[r], hi[r], j);
            att_store(s + (size_t)r * NU_ATT_S_CAP + j, v);
            mx[r] = att_max(mx[r], v);
        }
}

/* s[r * S_CAP + j] = scale * q[r] . X[b + j] for j < n (rounded up to whole
 * vectors, -inf outside each row's range); mx[r] gets the row maxima. */
NU_ATT_INLINE void tile_scores(int R, size_t dh, const float *const *q, const float *xt,
                               size_t st, size_t b, size_t n, float scale, const size_t *lo,
                               const size_t *hi, float *s, att_v *mx)
{
    const float *x0 = xt + b;
    for (int r = 0; r < R; r++)
        mx[r] = att_set1(-INFINITY);
    size_t j = 0;
    for (; j + (NU_ATT_NB_MAX - 1) * NU_ATT_W < n; j += NU_ATT_NB_MAX * NU_ATT_W)
        tile_blocks(R, NU_ATT_NB_MAX, dh, q, x0, st, scale, lo, hi, j, s, mx);
    /* Fewer than NB_MAX vectors left. */
    const size_t left = (n - j + NU_ATT_W - 1) / NU_ATT_W;
    if (NU_ATT_NB_MAX > 3 && left == 3)
        tile_blocks(R, 3, dh, q, x0, st, scale, lo, hi, j, s, mx);
    else if (NU_ATT_NB_MAX > 2 && left == 2)
        tile_blocks(R, 2, dh, q, x0, st, scale, lo, hi, j, s, mx);
    else if (left == 1)
        tile_blocks(R, 1, dh, q, x0, st, scale, lo, hi, j, s, mx);
}

/* One dh chunk of tile_pv; FULL chunks use plain loads and stores and
 * ignore m. */
NU_ATT_INLINE void tile_pv_chunk(int R, int FULL, att_m m, size_t n, const float *P,
                                 const float *x, size_t ldx, const float *inv, float *const *out,
                                 size_t c, int accumulate, unsigned live)
{
#define LD(p) (FULL ? att_load(p) : att_loadm((p), m))
    att_v a[NU_ATT_R_MAX], b[NU_ATT_R_MAX];
    for (int r = 0; r < R; r++)
        a[r] = b[r] = att_zero();
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const att_v x0 = LD(x + j * ldx), x1 = LD(x + (j + 1) * ldx);
        for (int r = 0; r < R; r++) {
            const float *p = P + (size_t)r * NU_ATT_S_CAP + j;
            a[r] = att_fma_n(a[r], x0, p[0]);
            b[r] = att_fma_n(b[r], x1, p[1]);
        }
    }
    if (j < n) {
        const att_v x0 = LD(x + j * ldx);
        for (int r = 0; r < R; r++)
            a[r] = att_fma_n(a[r], x0, P[(size_t)r * NU_ATT_S_CAP + j]);
    }
    for (int r = 0; r < R; r++) {
        if (!((live >> r) & 1))
            continue; /* empty range: the row is not written at all */
        att_v v = att_mul_n(att_add(a[r], b[r]), inv[r]);
        if (accumulate)
            v = att_add(v, LD(out[r] + c));
        if (FULL)
            att_store(out[r] + c, v);
        else
            att_storem(out[r] + c, m, v);
    }
#undef LD
}

/* out[r] (= or +=) inv[r] * sum_j P[r][j] X[j] for the rows r in `live`,
 * sharing each X load; two accumulators per row (even/odd j) shorten the
 * chains. */
NU_ATT_INLINE void tile_pv(int R, size_t n, const float *P, const float *X, size_t ldx,
                           size_t dh, const float *inv, float *const *out, int accumulate,
                           unsigned live)
{
    size_t c = 0;
    for (; c + NU_ATT_W <= dh; c += NU_ATT_W)
        tile_pv_chunk(R, 1, att_tail(1), n, P, X + c, ldx, inv, out, c, accumulate, live);
#if NU_ATT_MASKED
    if (c < dh)
        tile_pv_chunk(R, 0, att_tail(dh - c), n, P, X + c, ldx, inv, out, c, accumulate, live);
#else
    for (; c < dh; c++)
        for (int r = 0; r < R; r++) {
            if (!((live >> r) & 1))
                continue;
            float a = 0.0f;
            for (size_t j = 0; j < n; j++)
                a += P[(size_t)r * NU_ATT_S_CAP + j] * X[j * ldx + c];
            out[r][c] = inv[r] * a + (accumulate ? out[r][c] : 0.0f);
        }
#endif
}

/* P = exp(s - max) over whole vectors of each tile row (the -inf lanes give
 * 0).  An empty row is all -inf: shifted by 0 instead, its P is all 0. */
static void tile_softmax(size_t R, size_t n, float *s, const att_v *mx, float *m, float *sum,
                         float *inv)
{
    for (size_t r = 0; r < R; r++) {
        float *sr = s + r * NU_ATT_S_CAP;
        m[r] = att_hmax(mx[r]);
        const att_v sh = att_set1(m[r] == -INFINITY ? 0.0f : m[r]);
        att_v acc = att_zero();
        for (size_t j = 0; j < n; j += NU_ATT_W) {
            const att_v p = att_exp(att_sub(att_load(sr + j), sh));
            att_store(sr + j, p);
            acc = att_add(acc, p);
        }
        sum[r] = att_hsum(acc);
        inv[r] = sum[r] > 0.0f ? 1.0f / sum[r] : 0.0f;
    }
}

/* One forward tile of R queries starting at i0 for head h. */
NU_ATT_INLINE void fwd_tile(int R, size_t i0, size_t Tk, size_t heads, size_t h, size_t dh,
                            const float *Q, size_t ldq, const float *V, size_t ldv,
                            const uint32_t *kb, const uint32_t *ke, float scale, float *O,
                            size_t ldo, float *lse, const float *kt, size_t st, float *sb)
{
    const size_t c = h * dh;
    size_t b[NU_ATT_R_MAX], e[NU_ATT_R_MAX], bu = Tk, eu = 0;
    const float *q[NU_ATT_R_MAX];
    float *o[NU_ATT_R_MAX];
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
        size_t n = eu - bu, lo[NU_ATT_R_MAX], hi[NU_ATT_R_MAX];
        float m[NU_ATT_R_MAX] = {0}, sum[NU_ATT_R_MAX] = {0}, inv[NU_ATT_R_MAX] = {0};
        for (int r = 0; r < R; r++) {
            lo[r] = b[r] < e[r] ? b[r] - bu : 0;
            hi[r] = b[r] < e[r] ? e[r] - bu : 0;
        }
        att_v mx[NU_ATT_R_MAX];
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

static void NU_ATT_PASTE(attention_fwd_, NU_ATT_ISA)(
    size_t Tq, size_t Tk, size_t heads, size_t dh, const float *Q, size_t ldq, const float *K,
    size_t ldk, const float *V, size_t ldv, const uint32_t *key_begin, const uint32_t *key_end,
    float scale, float *O, size_t ldo, float *lse, float *scratch)
{
    const size_t st = t_stride(Tk);
    if (use_tile(Tq, Tk, dh)) {
        const nu_att_buffers buf = nu_attention_buffers();
        for (size_t h = 0; h < heads; h++) {
            transpose(Tk, dh, K + h * dh, ldk, buf.kt, st);
            size_t i = 0;
            for (; i + NU_ATT_R_MAX <= Tq; i += NU_ATT_R_MAX)
                fwd_tile(NU_ATT_R_MAX, i, Tk, heads, h, dh, Q, ldq, V, ldv, key_begin, key_end,
                         scale, O, ldo, lse, buf.kt, st, buf.s);
            for (; i < Tq; i++) /* the last < R_MAX queries */
                fwd_tile(1, i, Tk, heads, h, dh, Q, ldq, V, ldv, key_begin, key_end, scale, O,
                         ldo, lse, buf.kt, st, buf.s);
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

/* ---- backward tiles ----
 * Same sharing as the forward tile: P and dP rows over the union of the
 * rows' key ranges (P = 0 outside each row's own range, hence dS = 0 too),
 * dQ rows from shared K loads, and each dK/dV row is read and written once
 * per tile instead of once per query. */

/* One dh chunk of tile_kv_grads; FULL chunks use plain loads and stores
 * and ignore m. */
NU_ATT_INLINE void kv_grads_chunk(int R, int FULL, att_m m, size_t n, const float *P,
                                  const float *DS, const att_v *qs, const att_v *gv, float *dK,
                                  size_t lddk, float *dV, size_t lddv)
{
    for (size_t j = 0; j < n; j++) {
        float *k = dK + j * lddk, *v = dV + j * lddv;
        att_v kv = FULL ? att_load(k) : att_loadm(k, m);
        att_v vv = FULL ? att_load(v) : att_loadm(v, m);
        for (int r = 0; r < R; r++) {
            kv = att_fma_n(kv, qs[r], DS[(size_t)r * NU_ATT_S_CAP + j]);
            vv = att_fma_n(vv, gv[r], P[(size_t)r * NU_ATT_S_CAP + j]);
        }
        if (FULL) {
            att_store(k, kv);
            att_store(v, vv);
        } else {
            att_storem(k, m, kv);
            att_storem(v, m, vv);
        }
    }
}

/* dK[j] += scale * sum_r dS[r][j] q[r] and dV[j] += sum_r P[r][j] go[r]. */
NU_ATT_INLINE void tile_kv_grads(int R, size_t n, const float *P, const float *DS,
                                 const float *const *q, const float *const *go, size_t dh,
                                 float scale, float *dK, size_t lddk, float *dV, size_t lddv)
{
    att_v qs[NU_ATT_R_MAX], gv[NU_ATT_R_MAX];
    size_t c = 0;
    for (; c + NU_ATT_W <= dh; c += NU_ATT_W) {
        for (int r = 0; r < R; r++) {
            qs[r] = att_mul_n(att_load(q[r] + c), scale);
            gv[r] = att_load(go[r] + c);
        }
        kv_grads_chunk(R, 1, att_tail(1), n, P, DS, qs, gv, dK + c, lddk, dV + c, lddv);
    }
#if NU_ATT_MASKED
    if (c < dh) {
        const att_m m = att_tail(dh - c);
        for (int r = 0; r < R; r++) {
            qs[r] = att_mul_n(att_loadm(q[r] + c, m), scale);
            gv[r] = att_loadm(go[r] + c, m);
        }
        kv_grads_chunk(R, 0, m, n, P, DS, qs, gv, dK + c, lddk, dV + c, lddv);
    }
#else
    for (; c < dh; c++)
        for (size_t j = 0; j < n; j++) {
            float gk = 0.0f, gvv = 0.0f;
            for (int r = 0; r < R; r++) {
                gk += DS[(size_t)r * NU_ATT_S_CAP + j] * (scale * q[r][c]);
                gvv += P[(size_t)r * NU_ATT_S_CAP + j] * go[r][c];
            }
            dK[j * lddk + c] += gk;
            dV[j * lddv + c] += gvv;
        }
#endif
}

NU_ATT_INLINE void bwd_tile(int R, size_t i0, size_t Tk, size_t heads, size_t h, size_t dh,
                            const float *Q, size_t ldq, const float *K, size_t ldk,
                            const uint32_t *kb, const uint32_t *ke, float scale, const float *O,
                            size_t ldo, const float *lse, const float *dO, size_t lddo,
                            float *dQ, size_t lddq, float *dK, size_t lddk, float *dV,
                            size_t lddv, const float *kt, const float *vt, size_t st, float *sb)
{
    const size_t c = h * dh;
    size_t b[NU_ATT_R_MAX], e[NU_ATT_R_MAX], bu = Tk, eu = 0;
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
    size_t lo[NU_ATT_R_MAX], hi[NU_ATT_R_MAX], all_lo[NU_ATT_R_MAX], all_hi[NU_ATT_R_MAX];
    const float *q[NU_ATT_R_MAX], *go[NU_ATT_R_MAX];
    float *gq[NU_ATT_R_MAX], sc[NU_ATT_R_MAX];
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
    float *P = sb, *DS = sb + (size_t)NU_ATT_R_MAX * NU_ATT_S_CAP;
    att_v mx[NU_ATT_R_MAX];
    tile_scores(R, dh, q, kt, st, bu, n, scale, lo, hi, P, mx);
    tile_scores(R, dh, go, vt, st, bu, n, 1.0f, all_lo, all_hi, DS, mx);
    for (int r = 0; r < R; r++) {
        float *pr = P + (size_t)r * NU_ATT_S_CAP, *dr = DS + (size_t)r * NU_ATT_S_CAP;
        if (!((live >> r) & 1)) {
            for (size_t j = 0; j < n; j += NU_ATT_W) {
                att_store(pr + j, att_zero());
                att_store(dr + j, att_zero());
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

static void NU_ATT_PASTE(attention_bwd_, NU_ATT_ISA)(
    size_t Tq, size_t Tk, size_t heads, size_t dh, const float *Q, size_t ldq, const float *K,
    size_t ldk, const float *V, size_t ldv, const uint32_t *key_begin, const uint32_t *key_end,
    float scale, const float *O, size_t ldo, const float *lse, const float *dO, size_t lddo,
    float *dQ, size_t lddq, float *dK, size_t lddk, float *dV, size_t lddv, float *scratch)
{
    const size_t st = t_stride(Tk);
    if (use_tile(Tq, Tk, dh)) {
        const nu_att_buffers buf = nu_attention_buffers();
        for (size_t h = 0; h < heads; h++) {
            transpose(Tk, dh, K + h * dh, ldk, buf.kt, st);
            transpose(Tk, dh, V + h * dh, ldv, buf.vt, st);
            size_t i = 0;
            for (; i + NU_ATT_R_MAX <= Tq; i += NU_ATT_R_MAX)
                bwd_tile(NU_ATT_R_MAX, i, Tk, heads, h, dh, Q, ldq, K, ldk, key_begin, key_end,
                         scale, O, ldo, lse, dO, lddo, dQ, lddq, dK, lddk, dV, lddv, buf.kt,
                         buf.vt, st, buf.s);
            for (; i < Tq; i++) /* the last < R_MAX queries */
                bwd_tile(1, i, Tk, heads, h, dh, Q, ldq, K, ldk, key_begin, key_end, scale, O,
                         ldo, lse, dO, lddo, dQ, lddq, dK, lddk, dV, lddv, buf.kt, buf.vt, st,
                         buf.s);
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

#endif /* NU_ATT_W */
#endif
