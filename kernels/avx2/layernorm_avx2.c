/* Layernorm and L2 normalisation, forward and backward, avx2 + fma.
 * 8 floats a vector; tails use maskload/maskstore (masked-out lanes are
 * neither read nor written, so no access past the end).  Row reductions are
 * fp32 with several accumulators. */
#include <immintrin.h>
#include <math.h>

#include "../kernels.h"
#include "../layernorm_drive.h"
#include "vec_avx2.h"

/* ---- layernorm ---- */

/* Mean and rstd of four rows at once: the four horizontal sums share one
 * shuffle tree and one sqrt/div, which are the cost at d = 64. */
static void ln_stats4(size_t d, const float *x, size_t ldx, float eps, float mu[4],
                      float rs[4])
{
    const float *x0 = x, *x1 = x + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
    const size_t dv = d - d % W;
    const __m256i kt = tail_mask(d % W);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t c = 0;
    for (; c < dv; c += W) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x0 + c));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x1 + c));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x2 + c));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x3 + c));
    }
    if (c < d) {
        s0 = _mm256_add_ps(s0, _mm256_maskload_ps(x0 + c, kt));
        s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x1 + c, kt));
        s2 = _mm256_add_ps(s2, _mm256_maskload_ps(x2 + c, kt));
        s3 = _mm256_add_ps(s3, _mm256_maskload_ps(x3 + c, kt));
    }
    const __m128 dd = _mm_set1_ps((float)d);
    _mm_storeu_ps(mu, _mm_div_ps(hsum4(s0, s1, s2, s3), dd));
    const __m256 m0 = _mm256_set1_ps(mu[0]), m1 = _mm256_set1_ps(mu[1]);
    const __m256 m2 = _mm256_set1_ps(mu[2]), m3 = _mm256_set1_ps(mu[3]);
    s0 = s1 = s2 = s3 = _mm256_setzero_ps();
    for (c = 0; c < dv; c += W) {
        __m256 a0 = _mm256_sub_ps(_mm256_loadu_ps(x0 + c), m0);
        __m256 a1 = _mm256_sub_ps(_mm256_loadu_ps(x1 + c), m1);
        __m256 a2 = _mm256_sub_ps(_mm256_loadu_ps(x2 + c), m2);
        __m256 a3 = _mm256_sub_ps(_mm256_loadu_ps(x3 + c), m3);
        s0 = _mm256_fmadd_ps(a0, a0, s0);
        s1 = _mm256_fmadd_ps(a1, a1, s1);
        s2 = _mm256_fmadd_ps(a2, a2, s2);
        s3 = _mm256_fmadd_ps(a3, a3, s3);
    }
    if (c < d) {
        /* Tail lanes load 0 and are masked back to 0 after the shift. */
        const __m256 k = _mm256_castsi256_ps(kt);
        __m256 a0 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x0 + c, kt), m0), k);
        __m256 a1 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x1 + c, kt), m1), k);
        __m256 a2 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x2 + c, kt), m2), k);
        __m256 a3 = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x3 + c, kt), m3), k);
        s0 = _mm256_fmadd_ps(a0, a0, s0);
        s1 = _mm256_fmadd_ps(a1, a1, s1);
        s2 = _mm256_fmadd_ps(a2, a2, s2);
        s3 = _mm256_fmadd_ps(a3, a3, s3);
    }
    __m128 var = _mm_div_ps(hsum4(s0, s1, s2, s3), dd);
    var = _mm_sqrt_ps(_mm_add_ps(var, _mm_set1_ps(eps)));
    _mm_storeu_ps(rs, _mm_div_ps(_mm_set1_ps(1.0f), var));
}

/* y = (x - mu) rs gamma + beta over one row (y may alias x). */
static void ln_row_out(size_t d, const float *xr, float mu, float rs, const float *gamma,
                       const float *beta, float *yr)
{
    const __m256 m = _mm256_set1_ps(mu), s = _mm256_set1_ps(rs);
    size_t c = 0;
    for (; c + W <= d; c += W) {
        __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + c), m), s);
        _mm256_storeu_ps(yr + c, _mm256_fmadd_ps(xh, _mm256_loadu_ps(gamma + c),
                                                 _mm256_loadu_ps(beta + c)));
    }
    if (c < d) {
        __m256i k = tail_mask(d - c);
        __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + c, k), m), s);
        _mm256_maskstore_ps(yr + c, k,
                            _mm256_fmadd_ps(xh, _mm256_maskload_ps(gamma + c, k),
                                            _mm256_maskload_ps(beta + c, k)));
    }
}

static void layernorm_fwd_avx2(size_t rows, size_t d, const float *x, size_t ldx,
                               const float *gamma, const float *beta, float eps, float *y,
                               size_t ldy, float *mean, float *rstd)
{
    nu_layernorm_fwd_drive(rows, d, x, ldx, gamma, beta, eps, y, ldy, mean, rstd, ln_stats4,
                           ln_row_out);
}

/* One layernorm_bwd step over 8 lanes of pass 1: row sums and dgamma/dbeta. */
static inline void lnb_pass1(__m256 xv, __m256 dyv, __m256 gv, __m256 m, __m256 s,
                             __m256 *sg, __m256 *sgx, __m256 *dgv, __m256 *dbv)
{
    __m256 xh = _mm256_mul_ps(_mm256_sub_ps(xv, m), s);
    __m256 g = _mm256_mul_ps(dyv, gv);
    *sg = _mm256_add_ps(*sg, g);
    *sgx = _mm256_fmadd_ps(g, xh, *sgx);
    *dgv = _mm256_fmadd_ps(dyv, xh, *dgv);
    *dbv = _mm256_add_ps(*dbv, dyv);
}

static void layernorm_bwd_avx2(size_t rows, size_t d, const float *x, size_t ldx,
                               const float *gamma, const float *mean, const float *rstd,
                               const float *dy, size_t lddy, float *dx, size_t lddx,
                               float *dgamma, float *dbeta)
{
    if (d == 0)
        return;
    const __m256i kt = tail_mask(d % W);
    const size_t dv = d - d % W;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const __m256 m = _mm256_set1_ps(mean[r]), s = _mm256_set1_ps(rstd[r]);
        __m256 sg = _mm256_setzero_ps(), sgx = sg;
        size_t c = 0;
        for (; c < dv; c += W) {
            __m256 dgv = _mm256_loadu_ps(dgamma + c), dbv = _mm256_loadu_ps(dbeta + c);
            lnb_pass1(_mm256_loadu_ps(xr + c), _mm256_loadu_ps(dyr + c),
                      _mm256_loadu_ps(gamma + c), m, s, &sg, &sgx, &dgv, &dbv);
            _mm256_storeu_ps(dgamma + c, dgv);
            _mm256_storeu_ps(dbeta + c, dbv);
        }
        if (c < d) {
            /* Masked-out lanes load dy = 0, so they add nothing to the sums. */
            __m256 dgv = _mm256_maskload_ps(dgamma + c, kt);
            __m256 dbv = _mm256_maskload_ps(dbeta + c, kt);
            lnb_pass1(_mm256_maskload_ps(xr + c, kt), _mm256_maskload_ps(dyr + c, kt),
                      _mm256_maskload_ps(gamma + c, kt), m, s, &sg, &sgx, &dgv, &dbv);
            _mm256_maskstore_ps(dgamma + c, kt, dgv);
            _mm256_maskstore_ps(dbeta + c, kt, dbv);
        }
        const __m256 mg = _mm256_set1_ps(hsum(sg) / (float)d);
        const __m256 mgx = _mm256_set1_ps(hsum(sgx) / (float)d);
        for (c = 0; c < d; c += W) {
            const int tail = c >= dv;
            __m256 xv = tail ? _mm256_maskload_ps(xr + c, kt) : _mm256_loadu_ps(xr + c);
            __m256 dyv = tail ? _mm256_maskload_ps(dyr + c, kt) : _mm256_loadu_ps(dyr + c);
            __m256 gv = tail ? _mm256_maskload_ps(gamma + c, kt) : _mm256_loadu_ps(gamma + c);
            __m256 dxv = tail ? _mm256_maskload_ps(dxr + c, kt) : _mm256_loadu_ps(dxr + c);
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(xv, m), s);
            __m256 u = _mm256_sub_ps(_mm256_mul_ps(dyv, gv), mg);
            u = _mm256_fnmadd_ps(xh, mgx, u);
            dxv = _mm256_fmadd_ps(s, u, dxv);
            if (tail)
                _mm256_maskstore_ps(dxr + c, kt, dxv);
            else
                _mm256_storeu_ps(dxr + c, dxv);
        }
    }
}

/* ---- L2 normalisation ---- */

/* y = x * s over one row (y may alias x). */
static inline void row_scale(size_t d, const float *x, float s, float *y)
{
    const __m256 sv = _mm256_set1_ps(s);
    size_t c = 0;
    for (; c + W <= d; c += W)
        _mm256_storeu_ps(y + c, _mm256_mul_ps(_mm256_loadu_ps(x + c), sv));
    if (c < d) {
        __m256i k = tail_mask(d - c);
        _mm256_maskstore_ps(y + c, k, _mm256_mul_ps(_mm256_maskload_ps(x + c, k), sv));
    }
}

static void l2norm_fwd_avx2(size_t rows, size_t d, const float *x, size_t ldx, float eps,
                            float *y, size_t ldy, float *norm)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        const float nr = sqrtf(row_dot(d, xr, xr));
        row_scale(d, xr, 1.0f / (nr > eps ? nr : eps), y + r * ldy);
        if (norm)
            norm[r] = nr;
    }
}

static void l2norm_bwd_avx2(size_t rows, size_t d, const float *y, size_t ldy,
                            const float *norm, float eps, const float *dy, size_t lddy,
                            float *dx, size_t lddx)
{
    const __m256i kt = tail_mask(d % W);
    const size_t dv = d - d % W;
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const int live = norm[r] > eps;
        /* Clamped rows: y = x / eps is linear, so dx += dy / eps (yd = 0). */
        const __m256 yd = _mm256_set1_ps(live ? row_dot(d, yr, dyr) : 0.0f);
        const __m256 inv = _mm256_set1_ps(1.0f / (live ? norm[r] : eps));
        for (size_t c = 0; c < d; c += W) {
            const int tail = c >= dv;
            __m256 yv = tail ? _mm256_maskload_ps(yr + c, kt) : _mm256_loadu_ps(yr + c);
            __m256 dyv = tail ? _mm256_maskload_ps(dyr + c, kt) : _mm256_loadu_ps(dyr + c);
            __m256 dxv = tail ? _mm256_maskload_ps(dxr + c, kt) : _mm256_loadu_ps(dxr + c);
            dxv = _mm256_fmadd_ps(_mm256_fnmadd_ps(yv, yd, dyv), inv, dxv);
            if (tail)
                _mm256_maskstore_ps(dxr + c, kt, dxv);
            else
                _mm256_storeu_ps(dxr + c, dxv);
        }
    }
}

void nu_fill_layernorm_avx2(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_avx2;
    t->layernorm_bwd = layernorm_bwd_avx2;
    t->l2norm_fwd = l2norm_fwd_avx2;
    t->l2norm_bwd = l2norm_bwd_avx2;
}
