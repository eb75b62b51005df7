/* Layernorm and L2 normalisation, forward and backward, avx512 (F/DQ).
 * 16 floats a vector; tails use mask registers (masked-out lanes are neither
 * read nor written, and masked loads never fault past the end).  Row
 * reductions are fp32 with several accumulators. */
#include <immintrin.h>
#include <math.h>

#include "../kernels.h"
#include "../layernorm_drive.h"
#include "reduce16_avx512.h"
#include "vec_avx512.h"

/* ---- layernorm ---- */

/* Mean and rstd of four rows at once: the four horizontal sums share one
 * shuffle tree and one sqrt/div, which are the cost at d = 64. */
static void ln_stats4(size_t d, const float *x, size_t ldx, float eps, float mu[4],
                      float rs[4])
{
    const float *x0 = x, *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t c = 0; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(k, x0 + c));
        s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(k, x1 + c));
        s2 = _mm512_add_ps(s2, _mm512_maskz_loadu_ps(k, x2 + c));
        s3 = _mm512_add_ps(s3, _mm512_maskz_loadu_ps(k, x3 + c));
    }
    const __m128 dv = _mm_set1_ps((float)d);
    _mm_storeu_ps(mu, _mm_div_ps(hsum4(s0, s1, s2, s3), dv));
    const __m512 m0 = _mm512_set1_ps(mu[0]), m1 = _mm512_set1_ps(mu[1]);
    const __m512 m2 = _mm512_set1_ps(mu[2]), m3 = _mm512_set1_ps(mu[3]);
    s0 = s1 = s2 = s3 = _mm512_setzero_ps();
    for (size_t c = 0; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        __m512 a0 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x0 + c), m0);
        __m512 a1 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x1 + c), m1);
        __m512 a2 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x2 + c), m2);
        __m512 a3 = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x3 + c), m3);
        s0 = _mm512_fmadd_ps(a0, a0, s0);
        s1 = _mm512_fmadd_ps(a1, a1, s1);
        s2 = _mm512_fmadd_ps(a2, a2, s2);
        s3 = _mm512_fmadd_ps(a3, a3, s3);
    }
    __m128 var = _mm_div_ps(hsum4(s0, s1, s2, s3), dv);
    var = _mm_sqrt_ps(_mm_add_ps(var, _mm_set1_ps(eps)));
    _mm_storeu_ps(rs, _mm_div_ps(_mm_set1_ps(1.0f), var));
}

/* y = (x - mu) rs gamma + beta over one row (y may alias x). */
static void ln_row_out(size_t d, const float *xr, float mu, float rs, const float *gamma,
                       const float *beta, float *yr)
{
    const __m512 m = _mm512_set1_ps(mu), s = _mm512_set1_ps(rs);
    for (size_t c = 0; c < d; c += W) {
        __mmask16 k = tail_k(d - c < W ? d - c : W);
        __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + c), m), s);
        _mm512_mask_storeu_ps(yr + c, k,
                              _mm512_fmadd_ps(xh, _mm512_maskz_loadu_ps(k, gamma + c),
                                              _mm512_maskz_loadu_ps(k, beta + c)));
    }
}

/* Rows of at most LN16_V whole vectors (the model's d = 64) go 16 at a
 * time: their 16 sums (then sums of squares) reduce in one shuffle tree
 * (reduce16_avx512.h) and one division, sqrt and reciprocal serve all 16,
 * where ln_stats4 pays a tree and a sqrt/div per 4 rows and the drive an
 * indirect call per row (~65 cycles a row before, at d = 64).  A group past
 * the last row repeats that row, so every row sees the same arithmetic
 * wherever it lies in the batch (the rows stay bit-for-bit invariant). */
#define LN16_V 4

static void ln_rows16(size_t nv, size_t d, const float *x, size_t ldx, size_t n,
                      const float *gamma, const float *beta, float eps, float *y, size_t ldy,
                      float *mean, float *rstd)
{
    const float *xr[16];
    for (size_t i = 0; i < 16; i++)
        xr[i] = x + (i < n ? i : n - 1) * ldx;
    __m512 acc[16];
    for (size_t i = 0; i < 16; i++) {
        acc[i] = _mm512_loadu_ps(xr[i]);
        for (size_t v = 1; v < nv; v++)
            acc[i] = _mm512_add_ps(acc[i], _mm512_loadu_ps(xr[i] + v * W));
    }
    /* lane 4L + j of a tree's result belongs to row 4j + L */
    const __m512 dv = _mm512_set1_ps((float)d);
    float mu[16], rs[16];
    _mm512_storeu_ps(mu, _mm512_div_ps(nu_reduce16_raw(acc), dv));
    for (size_t i = 0; i < 16; i++) {
        const __m512 m = _mm512_set1_ps(mu[(i & 3) * 4 + (i >> 2)]);
        const __m512 a = _mm512_sub_ps(_mm512_loadu_ps(xr[i]), m);
        acc[i] = _mm512_mul_ps(a, a);
        for (size_t v = 1; v < nv; v++) {
            const __m512 b = _mm512_sub_ps(_mm512_loadu_ps(xr[i] + v * W), m);
            acc[i] = _mm512_fmadd_ps(b, b, acc[i]);
        }
    }
    const __m512 var = _mm512_div_ps(nu_reduce16_raw(acc), dv);
    _mm512_storeu_ps(rs, _mm512_div_ps(_mm512_set1_ps(1.0f),
                                       _mm512_sqrt_ps(_mm512_add_ps(var, _mm512_set1_ps(eps)))));
    __m512 g[LN16_V], b[LN16_V];
    for (size_t v = 0; v < nv; v++) {
        g[v] = _mm512_loadu_ps(gamma + v * W);
        b[v] = _mm512_loadu_ps(beta + v * W);
    }
    for (size_t i = 0; i < n; i++) {
        const size_t l = (i & 3) * 4 + (i >> 2);
        const __m512 m = _mm512_set1_ps(mu[l]), sc = _mm512_set1_ps(rs[l]);
        for (size_t v = 0; v < nv; v++) {
            const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr[i] + v * W), m), sc);
            _mm512_storeu_ps(y + i * ldy + v * W, _mm512_fmadd_ps(xh, g[v], b[v]));
        }
        if (mean)
            mean[i] = mu[l];
        if (rstd)
            rstd[i] = rs[l];
    }
}

static void layernorm_fwd_avx512(size_t rows, size_t d, const float *x, size_t ldx,
                                 const float *gamma, const float *beta, float eps, float *y,
                                 size_t ldy, float *mean, float *rstd)
{
    if (d > 0 && d % W == 0 && d <= LN16_V * W) {
        for (size_t r = 0; r < rows; r += 16)
            ln_rows16(d / W, d, x + r * ldx, ldx, rows - r < 16 ? rows - r : 16, gamma, beta,
                      eps, y + r * ldy, ldy, mean ? mean + r : NULL, rstd ? rstd + r : NULL);
        return;
    }
    nu_layernorm_fwd_drive(rows, d, x, ldx, gamma, beta, eps, y, ldy, mean, rstd, ln_stats4,
                           ln_row_out);
}

/* layernorm_bwd for d <= 4 W (the model's d = 64): dgamma and dbeta stay
 * in registers across the rows instead of a load and store per row (whose
 * store-to-load chain from row to row bounded the loop); the same adds in
 * the same order as the general loop below, so the same bits. */
#define LN_AHEAD 8 /* rows: ~2 KiB at d = 64 */

static void layernorm_bwd_short(size_t rows, size_t d, const float *x, size_t ldx,
                                const float *gamma, const float *mean, const float *rstd,
                                const float *dy, size_t lddy, float *dx, size_t lddx,
                                float *dgamma, float *dbeta)
{
    enum { V = 4 };
    const size_t nv = (d + W - 1) / W;
    __mmask16 k[V];
    __m512 gm[V], dg[V], db[V];
    for (size_t v = 0; v < V; v++) {
        k[v] = v < nv ? tail_k(d - v * W < W ? d - v * W : W) : 0;
        gm[v] = _mm512_maskz_loadu_ps(k[v], gamma + v * W);
        dg[v] = _mm512_maskz_loadu_ps(k[v], dgamma + v * W);
        db[v] = _mm512_maskz_loadu_ps(k[v], dbeta + v * W);
    }
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        /* x is a saved activation the forward wrote long ago (in memory,
         * not cache): asked for LN_AHEAD rows ahead, its lines arrive while
         * the rows before are done (a hint: the results do not change). */
        if (r + LN_AHEAD < rows)
            for (size_t c = 0; c < d; c += W)
                _mm_prefetch((const char *)(xr + LN_AHEAD * ldx + c), _MM_HINT_T0);
        const __m512 m = _mm512_set1_ps(mean[r]), s = _mm512_set1_ps(rstd[r]);
        __m512 xh[V], g[V], sg = _mm512_setzero_ps(), sgx = sg;
        for (size_t v = 0; v < nv; v++) {
            const __m512 dyv = _mm512_maskz_loadu_ps(k[v], dyr + v * W);
            xh[v] = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k[v], xr + v * W), m), s);
            g[v] = _mm512_mul_ps(dyv, gm[v]);
            sg = _mm512_add_ps(sg, g[v]);
            sgx = _mm512_fmadd_ps(g[v], xh[v], sgx);
            dg[v] = _mm512_fmadd_ps(dyv, xh[v], dg[v]);
            db[v] = _mm512_add_ps(dyv, db[v]);
        }
        const __m512 mg = _mm512_set1_ps(_mm512_reduce_add_ps(sg) / (float)d);
        const __m512 mgx = _mm512_set1_ps(_mm512_reduce_add_ps(sgx) / (float)d);
        for (size_t v = 0; v < nv; v++) {
            const __m512 u = _mm512_fnmadd_ps(xh[v], mgx, _mm512_sub_ps(g[v], mg));
            _mm512_mask_storeu_ps(dxr + v * W, k[v],
                                  _mm512_fmadd_ps(s, u, _mm512_maskz_loadu_ps(k[v], dxr + v * W)));
        }
    }
    for (size_t v = 0; v < nv; v++) {
        _mm512_mask_storeu_ps(dgamma + v * W, k[v], dg[v]);
        _mm512_mask_storeu_ps(dbeta + v * W, k[v], db[v]);
    }
}

static void layernorm_bwd_avx512(size_t rows, size_t d, const float *x, size_t ldx,
                                 const float *gamma, const float *mean, const float *rstd,
                                 const float *dy, size_t lddy, float *dx, size_t lddx,
                                 float *dgamma, float *dbeta)
{
    if (d == 0)
        return;
    if (d <= 4 * W) {
        layernorm_bwd_short(rows, d, x, ldx, gamma, mean, rstd, dy, lddy, dx, lddx, dgamma, dbeta);
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const __m512 m = _mm512_set1_ps(mean[r]), s = _mm512_set1_ps(rstd[r]);
        __m512 sg = _mm512_setzero_ps(), sgx = sg;
        /* Pass 1: row sums of g and g xhat; dgamma, dbeta.  Masked-out lanes
         * load dy = 0, so they add nothing. */
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 dyv = _mm512_maskz_loadu_ps(k, dyr + c);
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + c), m), s);
            __m512 g = _mm512_mul_ps(dyv, _mm512_maskz_loadu_ps(k, gamma + c));
            sg = _mm512_add_ps(sg, g);
            sgx = _mm512_fmadd_ps(g, xh, sgx);
            _mm512_mask_storeu_ps(dgamma + c, k,
                                  _mm512_fmadd_ps(dyv, xh, _mm512_maskz_loadu_ps(k, dgamma + c)));
            _mm512_mask_storeu_ps(dbeta + c, k,
                                  _mm512_add_ps(dyv, _mm512_maskz_loadu_ps(k, dbeta + c)));
        }
        const __m512 mg = _mm512_set1_ps(_mm512_reduce_add_ps(sg) / (float)d);
        const __m512 mgx = _mm512_set1_ps(_mm512_reduce_add_ps(sgx) / (float)d);
        /* Pass 2: dx += rstd (g - mean(g) - xhat mean(g xhat)). */
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + c), m), s);
            __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, dyr + c),
                                     _mm512_maskz_loadu_ps(k, gamma + c));
            __m512 u = _mm512_fnmadd_ps(xh, mgx, _mm512_sub_ps(g, mg));
            _mm512_mask_storeu_ps(dxr + c, k,
                                  _mm512_fmadd_ps(s, u, _mm512_maskz_loadu_ps(k, dxr + c)));
        }
    }
}

/* ---- L2 normalisation ---- */

static void l2norm_fwd_avx512(size_t rows, size_t d, const float *x, size_t ldx, float eps,
                              float *y, size_t ldy, float *norm)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        const float nr = sqrtf(row_dot(d, xr, xr));
        const __m512 inv = _mm512_set1_ps(1.0f / (nr > eps ? nr : eps));
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            _mm512_mask_storeu_ps(yr + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, xr + c), inv));
        }
        if (norm)
            norm[r] = nr;
    }
}

static void l2norm_bwd_avx512(size_t rows, size_t d, const float *y, size_t ldy,
                              const float *norm, float eps, const float *dy, size_t lddy,
                              float *dx, size_t lddx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const int live = norm[r] > eps;
        /* Clamped rows: y = x / eps is linear, so dx += dy / eps (yd = 0). */
        const __m512 yd = _mm512_set1_ps(live ? row_dot(d, yr, dyr) : 0.0f);
        const __m512 inv = _mm512_set1_ps(1.0f / (live ? norm[r] : eps));
        for (size_t c = 0; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 u = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(k, yr + c), yd,
                                        _mm512_maskz_loadu_ps(k, dyr + c));
            _mm512_mask_storeu_ps(dxr + c, k,
                                  _mm512_fmadd_ps(u, inv, _mm512_maskz_loadu_ps(k, dxr + c)));
        }
    }
}

void nu_fill_layernorm_avx512(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_avx512;
    t->layernorm_bwd = layernorm_bwd_avx512;
    t->l2norm_fwd = l2norm_fwd_avx512;
    t->l2norm_bwd = l2norm_bwd_avx512;
}
