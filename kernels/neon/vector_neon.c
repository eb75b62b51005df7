/* axpy, add_bias_rows, sum_rows and dot_rows, NEON (aarch64 Advanced
 * SIMD).  4 floats a vector; tails are scalar loops, so nothing past the end
 * is read or written.  dot_rows sums in fp32 with several accumulators;
 * sum_rows keeps the scalar order (bit for bit). */
#include <arm_neon.h>
#include <math.h>

#include "../kernels.h"
#include "vec_neon.h"

/* Four horizontal sums at once: lane k of the result is the sum of a_k. */
static inline float32x4_t hsum4(float32x4_t a0, float32x4_t a1, float32x4_t a2,
                                float32x4_t a3)
{
    return vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));
}

/* ---- elementwise and column sums ---- */

static void axpy_neon(size_t n, float alpha, const float *x, float *y)
{
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        float32x4_t y0 = vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha);
        float32x4_t y1 = vfmaq_n_f32(vld1q_f32(y + i + W), vld1q_f32(x + i + W), alpha);
        float32x4_t y2 = vfmaq_n_f32(vld1q_f32(y + i + 2 * W), vld1q_f32(x + i + 2 * W), alpha);
        float32x4_t y3 = vfmaq_n_f32(vld1q_f32(y + i + 3 * W), vld1q_f32(x + i + 3 * W), alpha);
        vst1q_f32(y + i, y0);
        vst1q_f32(y + i + W, y1);
        vst1q_f32(y + i + 2 * W, y2);
        vst1q_f32(y + i + 3 * W, y3);
    }
    for (; i + W <= n; i += W)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), alpha));
    for (; i < n; i++)
        y[i] = fmaf(alpha, x[i], y[i]);
}

static void add_bias_rows_neon(size_t rows, size_t n, float *x, size_t ldx, const float *bias)
{
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * ldx;
        size_t c = 0;
        for (; c + W <= n; c += W)
            vst1q_f32(xr + c, vaddq_f32(vld1q_f32(xr + c), vld1q_f32(bias + c)));
        for (; c < n; c++)
            xr[c] += bias[c];
    }
}

/* Column blocks of 16 held in registers over all rows; rows are added in
 * order starting from dbias, the same order as the scalar reference. */
static void sum_rows_neon(size_t rows, size_t n, const float *dy, size_t lddy, float *dbias)
{
    if (rows == 0)
        return;
    size_t c = 0;
    for (; c + 4 * W <= n; c += 4 * W) {
        float32x4_t a0 = vld1q_f32(dbias + c), a1 = vld1q_f32(dbias + c + W);
        float32x4_t a2 = vld1q_f32(dbias + c + 2 * W), a3 = vld1q_f32(dbias + c + 3 * W);
        for (size_t r = 0; r < rows; r++) {
            const float *p = dy + r * lddy + c;
            a0 = vaddq_f32(a0, vld1q_f32(p));
            a1 = vaddq_f32(a1, vld1q_f32(p + W));
            a2 = vaddq_f32(a2, vld1q_f32(p + 2 * W));
            a3 = vaddq_f32(a3, vld1q_f32(p + 3 * W));
        }
        vst1q_f32(dbias + c, a0);
        vst1q_f32(dbias + c + W, a1);
        vst1q_f32(dbias + c + 2 * W, a2);
        vst1q_f32(dbias + c + 3 * W, a3);
    }
    for (; c + W <= n; c += W) {
        float32x4_t a = vld1q_f32(dbias + c);
        for (size_t r = 0; r < rows; r++)
            a = vaddq_f32(a, vld1q_f32(dy + r * lddy + c));
        vst1q_f32(dbias + c, a);
    }
    for (; c < n; c++)
        for (size_t r = 0; r < rows; r++)
            dbias[c] += dy[r * lddy + c];
}

/* ---- dot products of one vector with many rows ---- */

/* Four rows at once: x is loaded once per 4 rows and the 4 horizontal sums
 * share one pairwise-add tree.  Two accumulators per row cover the FMA
 * latency; a scalar tail finishes each row. */
static void dot_rows_neon(size_t rows, size_t d, const float *x, const float *T, size_t ldt,
                          float *out)
{
    const size_t dv = d - d % W;
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *t0 = T + r * ldt, *t1 = t0 + ldt, *t2 = t1 + ldt, *t3 = t2 + ldt;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        size_t c = 0;
        for (; c + 2 * W <= dv; c += 2 * W) {
            float32x4_t xa = vld1q_f32(x + c), xb = vld1q_f32(x + c + W);
            a0 = vfmaq_f32(a0, xa, vld1q_f32(t0 + c));
            a1 = vfmaq_f32(a1, xa, vld1q_f32(t1 + c));
            a2 = vfmaq_f32(a2, xa, vld1q_f32(t2 + c));
            a3 = vfmaq_f32(a3, xa, vld1q_f32(t3 + c));
            b0 = vfmaq_f32(b0, xb, vld1q_f32(t0 + c + W));
            b1 = vfmaq_f32(b1, xb, vld1q_f32(t1 + c + W));
            b2 = vfmaq_f32(b2, xb, vld1q_f32(t2 + c + W));
            b3 = vfmaq_f32(b3, xb, vld1q_f32(t3 + c + W));
        }
        if (c < dv) {
            float32x4_t xa = vld1q_f32(x + c);
            a0 = vfmaq_f32(a0, xa, vld1q_f32(t0 + c));
            a1 = vfmaq_f32(a1, xa, vld1q_f32(t1 + c));
            a2 = vfmaq_f32(a2, xa, vld1q_f32(t2 + c));
            a3 = vfmaq_f32(a3, xa, vld1q_f32(t3 + c));
        }
        float32x4_t s = hsum4(vaddq_f32(a0, b0), vaddq_f32(a1, b1), vaddq_f32(a2, b2),
                              vaddq_f32(a3, b3));
        if (dv < d) {
            float32x4_t tail = vdupq_n_f32(0);
            for (c = dv; c < d; c++) {
                const float tv[W] = {t0[c], t1[c], t2[c], t3[c]};
                tail = vfmaq_n_f32(tail, vld1q_f32(tv), x[c]);
            }
            s = vaddq_f32(s, tail);
        }
        vst1q_f32(out + r, s);
    }
    for (; r < rows; r++)
        out[r] = row_dot(d, x, T + r * ldt);
}

void nu_fill_vector_neon(nu_kernel_table *t)
{
    t->axpy = axpy_neon;
    t->add_bias_rows = add_bias_rows_neon;
    t->sum_rows = sum_rows_neon;
    t->dot_rows = dot_rows_neon;
}
