/* axpy, add_bias_rows, sum_rows and dot_rows, avx512 (F/DQ).  16 floats a
 * vector; tails use mask registers (masked-out lanes are neither read nor
 * written, and masked loads never fault past the end).  dot_rows sums in
 * fp32 with several accumulators; sum_rows keeps the scalar order (bit for
 * bit). */
#include <immintrin.h>

#include "../kernels.h"
#include "vec_avx512.h"

/* ---- elementwise and column sums ---- */

static void axpy_avx512(size_t n, float alpha, const float *x, float *y)
{
    const __m512 a = _mm512_set1_ps(alpha);
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        __m512 y0 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i));
        __m512 y1 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i + W), _mm512_loadu_ps(y + i + W));
        __m512 y2 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i + 2 * W),
                                    _mm512_loadu_ps(y + i + 2 * W));
        __m512 y3 = _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i + 3 * W),
                                    _mm512_loadu_ps(y + i + 3 * W));
        _mm512_storeu_ps(y + i, y0);
        _mm512_storeu_ps(y + i + W, y1);
        _mm512_storeu_ps(y + i + 2 * W, y2);
        _mm512_storeu_ps(y + i + 3 * W, y3);
    }
    for (; i < n; i += W) {
        __mmask16 k = tail_k(n - i < W ? n - i : W);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k, x + i),
                                                        _mm512_maskz_loadu_ps(k, y + i)));
    }
}

static void add_bias_rows_avx512(size_t rows, size_t n, float *x, size_t ldx,
                                 const float *bias)
{
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        for (size_t c = 0; c < n; c += W) {
            __mmask16 k = tail_k(n - c < W ? n - c : W);
            _mm512_mask_storeu_ps(xr + c, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, xr + c),
                                                           _mm512_maskz_loadu_ps(k, bias + c)));
        }
    }
}

/* Column blocks of 64 held in registers over all rows; rows are added in
 * order starting from dbias, the same order as the scalar reference. */
static void sum_rows_avx512(size_t rows, size_t n, const float *dy, size_t lddy,
                            float *dbias)
{
    if (rows == 0)
        return;
    size_t c = 0;
    for (; c + 4 * W <= n; c += 4 * W) {
        __m512 a0 = _mm512_loadu_ps(dbias + c), a1 = _mm512_loadu_ps(dbias + c + W);
        __m512 a2 = _mm512_loadu_ps(dbias + c + 2 * W), a3 = _mm512_loadu_ps(dbias + c + 3 * W);
        for (size_t r = 0; r < rows; r++) {
            const float *p = dy + r * lddy + c;
            a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p));
            a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + W));
            a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + 2 * W));
            a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + 3 * W));
        }
        _mm512_storeu_ps(dbias + c, a0);
        _mm512_storeu_ps(dbias + c + W, a1);
        _mm512_storeu_ps(dbias + c + 2 * W, a2);
        _mm512_storeu_ps(dbias + c + 3 * W, a3);
    }
    for (; c < n; c += W) {
        __mmask16 k = tail_k(n - c < W ? n - c : W);
        __m512 a = _mm512_maskz_loadu_ps(k, dbias + c);
        for (size_t r = 0; r < rows; r++)
            a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(k, dy + r * lddy + c));
        _mm512_mask_storeu_ps(dbias + c, k, a);
    }
}

/* ---- dot products of one vector with many rows ---- */

/* Four rows at once: x is loaded once per 4 rows and the 4 horizontal sums
 * share one shuffle tree.  Two accumulators per row cover the FMA latency. */
static void dot_rows_avx512(size_t rows, size_t d, const float *x, const float *T,
                            size_t ldt, float *out)
{
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *t0 = T + r * ldt, *t1 = t0 + ldt, *t2 = t1 + ldt, *t3 = t2 + ldt;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        size_t c = 0;
        for (; c + 2 * W <= d; c += 2 * W) {
            __m512 xa = _mm512_loadu_ps(x + c), xb = _mm512_loadu_ps(x + c + W);
            a0 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t0 + c), a0);
            a1 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t1 + c), a1);
            a2 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t2 + c), a2);
            a3 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(t3 + c), a3);
            b0 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t0 + c + W), b0);
            b1 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t1 + c + W), b1);
            b2 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t2 + c + W), b2);
            b3 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(t3 + c + W), b3);
        }
        for (; c < d; c += W) {
            __mmask16 k = tail_k(d - c < W ? d - c : W);
            __m512 xa = _mm512_maskz_loadu_ps(k, x + c);
            a0 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t0 + c), a0);
            a1 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t1 + c), a1);
            a2 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t2 + c), a2);
            a3 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(k, t3 + c), a3);
        }
        _mm_storeu_ps(out + r, hsum4(_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1),
                                     _mm512_add_ps(a2, b2), _mm512_add_ps(a3, b3)));
    }
    for (; r < rows; r++)
        out[r] = row_dot(d, x, T + r * ldt);
}

void nu_fill_vector_avx512(nu_kernel_table *t)
{
    t->axpy = axpy_avx512;
    t->add_bias_rows = add_bias_rows_avx512;
    t->sum_rows = sum_rows_avx512;
    t->dot_rows = dot_rows_avx512;
}
