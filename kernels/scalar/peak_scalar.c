/* Roofline reference loops, scalar.  Plain C: the compiler may vectorise the
 * read loop with baseline SSE2, which is the honest scalar-build figure. */
#include "../kernels.h"

#define CHAINS 8

static float peak_fma_scalar(size_t iters)
{
    float acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = (float)c * 0.001f;
    const float a = 0.999999f, b = 1e-7f;
    for (size_t i = 0; i < iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = acc[c] * a + b;
    float s = 0;
    for (int c = 0; c < CHAINS; c++)
        s += acc[c];
    return s;
}

static float stream_sum_scalar(size_t n, const float *x)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++)
        s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

void nu_fill_peak_scalar(nu_kernel_table *t)
{
    t->peak_fma = peak_fma_scalar;
    t->peak_fma_flops_per_iter = 2 * CHAINS;
    t->stream_sum = stream_sum_scalar;
}
