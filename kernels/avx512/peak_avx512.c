/* Roofline reference loops, avx512: enough independent FMA chains to cover
 * latency x pipes, and a multi-accumulator streaming read. */
#include <immintrin.h>

#include "../kernels.h"

#define CHAINS 12

static float peak_fma_avx512(size_t iters)
{
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c * 0.001f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (size_t i = 0; i < iters; i++) {
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    }
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++)
        s = _mm512_add_ps(s, acc[c]);
    float out[16];
    _mm512_storeu_ps(out, s);
    float r = 0;
    for (int i = 0; i < 16; i++)
        r += out[i];
    return r;
}

static float stream_sum_avx512(size_t n, const float *x)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 4 * 16 <= n; i += 4 * 16) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 2 * 16));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 3 * 16));
    }
    s0 = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
    float out[16];
    _mm512_storeu_ps(out, s0);
    float r = 0;
    for (int k = 0; k < 16; k++)
        r += out[k];
    for (; i < n; i++)
        r += x[i];
    return r;
}

void nu_fill_peak_avx512(nu_kernel_table *t)
{
    t->peak_fma = peak_fma_avx512;
    t->peak_fma_flops_per_iter = 2 * CHAINS * 16;
    t->stream_sum = stream_sum_avx512;
}
