/* axpy, add_bias_rows, sum_rows and dot_rows, avx2 + fma.  8 floats a
 * vector; tails use maskload/maskstore (masked-out lanes are neither read
 * nor written, so no access past the end).  dot_rows sums in fp32 with
 * several accumulators; sum_rows keeps the scalar order (bit for bit). */
#include <immintrin.h>

#include "../kernels.h"
#include "vec_avx2.h"

/* ---- elementwise and column sums ---- */

static void axpy_avx2(size_t n, float alpha, const float *x, float *y)
{
    const __m256 a = _mm256_set1_ps(alpha);
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        __m256 y0 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        __m256 y1 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i + W), _mm256_loadu_ps(y + i + W));
        __m256 y2 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i + 2 * W),
                                    _mm256_loadu_ps(y + i + 2 * W));
        __m256 y3 = _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i + 3 * W),
                                    _mm256_loadu_ps(y + i + 3 * W));
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + W, y1);
        _mm256_storeu_ps(y + i + 2 * W, y2);
        _mm256_storeu_ps(y + i + 3 * W, y3);
    }
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n) {
        __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, k, _mm256_fmadd_ps(a, _mm256_maskload_ps(x + i, k),
                                                      _mm256_maskload_ps(y + i, k)));
    }
}

static void add_bias_rows_avx2(size_t rows, size_t n, float *x, size_t ldx, const float *bias)
{
    const __m256i kt = tail_mask(n % W);
    const size_t nv = n - n % W;
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        size_t c = 0;
        for (; c < nv; c += W)
            _mm256_storeu_ps(xr + c, _mm256_add_ps(_mm256_loadu_ps(xr + c),
                                                   _mm256_loadu_ps(bias + c)));
        if (c < n)
            _mm256_maskstore_ps(xr + c, kt, _mm256_add_ps(_mm256_maskload_ps(xr + c, kt),
                                                          _mm256_maskload_ps(bias + c, kt)));
    }
}

/* Column blocks of 32 held in registers over all rows; rows are added in
 * order starting from dbias, the same order as the scalar reference. */
static void sum_rows_avx2(size_t rows, size_t n, const float *dy, size_t lddy, float *dbias)
{
    if (rows == 0)
        return;
    size_t c = 0;
    for (; c + 4 * W <= n; c += 4 * W) {
        __m256 a0 = _mm256_loadu_ps(dbias + c), a1 = _mm256_loadu_ps(dbias + c + W);
        __m256 a2 = _mm256_loadu_ps(dbias + c + 2 * W), a3 = _mm256_loadu_ps(dbias + c + 3 * W);
        for (size_t r = 0; r < rows; r++) {
            const float *p = dy + r * lddy + c;
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + W));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + 2 * W));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + 3 * W));
        }
        _mm256_storeu_ps(dbias + c, a0);
        _mm256_storeu_ps(dbias + c + W, a1);
        _mm256_storeu_ps(dbias + c + 2 * W, a2);
        _mm256_storeu_ps(dbias + c + 3 * W, a3);
    }
    for (; c < n; c += W) {
        __m256i k = tail_mask(n - c < W ? n - c : W);
        __m256 a = _mm256_maskload_ps(dbias + c, k);
        for (size_t r = 0; r < rows; r++)
            a = _mm256_add_ps(a, _mm256_maskload_ps(dy + r * lddy + c, k));
        _mm256_maskstore_ps(dbias + c, k, a);
    }
}

/* ---- dot products of one vector with many rows ---- */

/* Four rows at once: x is loaded once per 4 rows and the 4 horizontal sums
 * share one shuffle tree.  Two accumulators per row cover the FMA latency. */
static void dot_rows_avx2(size_t rows, size_t d, const float *x, const float *T, size_t ldt,
                          float *out)
{
    const __m256i kt = tail_mask(d % W);
    const size_t dv = d - d % W;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *t0 = T + r * ldt, *t1 = t0 + ldt, *t2 = t1 + ldt, *t3 = t2 + ldt;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        size_t c = 0;
        for (; c + 2 * W <= dv; c += 2 * W) {
            __m256 xa = _mm256_loadu_ps(x + c), xb = _mm256_loadu_ps(x + c + W);
            a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t0 + c), a0);
            a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t1 + c), a1);
            a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t2 + c), a2);
            a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t3 + c), a3);
            b0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t0 + c + W), b0);
            b1 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t1 + c + W), b1);
            b2 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t2 + c + W), b2);
            b3 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(t3 + c + W), b3);
        }
        if (c < dv) {
            __m256 xa = _mm256_loadu_ps(x + c);
            a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t0 + c), a0);
            a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t1 + c), a1);
            a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t2 + c), a2);
            a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(t3 + c), a3);
            c += W;
        }
        if (c < d) {
            __m256 xa = _mm256_maskload_ps(x + c, kt);
            b0 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t0 + c, kt), b0);
            b1 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t1 + c, kt), b1);
            b2 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t2 + c, kt), b2);
            b3 = _mm256_fmadd_ps(xa, _mm256_maskload_ps(t3 + c, kt), b3);
        }
        _mm_storeu_ps(out + r, hsum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1),
                                     _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3)));
    }
    for (; r < rows; r++)
        out[r] = row_dot(d, x, T + r * ldt);
}

void nu_fill_vector_avx2(nu_kernel_table *t)
{
    t->axpy = axpy_avx2;
    t->add_bias_rows = add_bias_rows_avx2;
    t->sum_rows = sum_rows_avx2;
    t->dot_rows = dot_rows_avx2;
}
