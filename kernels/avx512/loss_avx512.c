/* logsumexp, exp_shift and sigmoid_xent, avx512 (F/DQ).  16 floats a
 * vector; tails use mask registers (masked-out lanes are neither read nor
 * written, and masked loads never fault past the end).  Transcendentals
 * from SLEEF's avx512f u10 functions (1 ulp), exp_shift's exp inline
 * (exp_avx512.h, ~1 ulp, the one the attention and GELU kernels use, so
 * the exp_shift tests check it).  logsumexp sums in fp32 with
 * two accumulators; sigmoid_xent sums in double (kernels.h). */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"
#include "exp_avx512.h"
#include "vec_avx512.h"

static float logsumexp_avx512(size_t n, const float *x)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf;
    __mmask16 nan = 0;
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + W);
        /* max drops NaN, so NaNs are tracked on the side. */
        nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q);
        m0 = _mm512_max_ps(m0, a);
        m1 = _mm512_max_ps(m1, b);
    }
    for (; i < n; i += W) {
        __m512 a = _mm512_mask_loadu_ps(ninf, tail_k(n - i < W ? n - i : W), x + i);
        nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        m0 = _mm512_max_ps(m0, a);
    }
    if (nan)
        return NAN;
    const float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    if (isinf(m)) /* n == 0 or all -inf: -inf; any +inf: +inf */
        return m;
    const __m512 mv = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    for (i = 0; i + 2 * W <= n; i += 2 * W) {
        s0 = _mm512_add_ps(s0,
                           Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv)));
        s1 = _mm512_add_ps(
            s1, Sleef_expf16_u10avx512f(_mm512_sub_ps(_mm512_loadu_ps(x + i + W), mv)));
    }
    for (; i < n; i += W) {
        __m512 a = _mm512_mask_loadu_ps(ninf, tail_k(n - i < W ? n - i : W), x + i);
        s0 = _mm512_add_ps(s0, Sleef_expf16_u10avx512f(_mm512_sub_ps(a, mv)));
    }
    return m + logf(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
}

static void exp_shift_avx512(size_t n, const float *x, float shift, float *y)
{
    const __m512 s = _mm512_set1_ps(shift);
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm512_storeu_ps(y + i, nu_exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), s)));
    if (i < n) {
        __mmask16 k = tail_k(n - i);
        _mm512_mask_storeu_ps(y + i, k, nu_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), s)));
    }
}

/* One block of 16 (lanes in k): adds the loss terms to acc (two double
 * vectors) and returns sigmoid(x) - l. */
static inline __m512 xent16(__m512 x, __m512 l, __mmask16 k, __m512d acc[2])
{
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    const __m512 e = Sleef_expf16_u10avx512f(_mm512_sub_ps(zero, _mm512_abs_ps(x))); /* (0,1] */
    __m512 term = _mm512_fnmadd_ps(x, l, _mm512_max_ps(x, zero));
    term = _mm512_maskz_add_ps(k, term, Sleef_log1pf16_u10avx512f(e)); /* off lanes add 0 */
    acc[0] = _mm512_add_pd(acc[0], _mm512_cvtps_pd(_mm512_castps512_ps256(term)));
    acc[1] = _mm512_add_pd(acc[1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(term, 1)));
    __mmask16 pos = _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ);
    __m512 num = _mm512_mask_blend_ps(pos, e, one);
    return _mm512_sub_ps(_mm512_div_ps(num, _mm512_add_ps(one, e)), l);
}

static double sigmoid_xent_avx512(size_t n, const float *logits, const float *labels,
                                  float *dlogits)
{
    __m512d acc[2] = {_mm512_setzero_pd(), _mm512_setzero_pd()};
    for (size_t i = 0; i < n; i += W) {
        __mmask16 k = tail_k(n - i < W ? n - i : W);
        __m512 g = xent16(_mm512_maskz_loadu_ps(k, logits + i),
                          _mm512_maskz_loadu_ps(k, labels + i), k, acc);
        if (dlogits)
            _mm512_mask_storeu_ps(dlogits + i, k, g);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(acc[0], acc[1]));
}

void nu_fill_loss_avx512(nu_kernel_table *t)
{
    t->logsumexp = logsumexp_avx512;
    t->exp_shift = exp_shift_avx512;
    t->sigmoid_xent = sigmoid_xent_avx512;
}
