/* logsumexp, exp_shift and sigmoid_xent, avx2 + fma.  8 floats a vector;
 * tails use maskload/maskstore (masked-out lanes are neither read nor
 * written, so no access past the end).  Transcendentals from SLEEF's avx2
 * u10 functions (1 ulp).  logsumexp sums in fp32 with two accumulators;
 * sigmoid_xent sums in double (kernels.h). */
#include <immintrin.h>
#include <math.h>
#include <sleef.h>

#include "../kernels.h"
#include "vec_avx2.h"

static inline float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float logsumexp_avx2(size_t n, const float *x)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 m0 = ninf, m1 = ninf, nan = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + W);
        /* maxps drops NaN, so NaNs are tracked on the side. */
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
        m0 = _mm256_max_ps(m0, a);
        m1 = _mm256_max_ps(m1, b);
    }
    for (; i < n; i += W) {
        __m256i k = tail_mask(n - i < W ? n - i : W);
        __m256 a = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, k), _mm256_castsi256_ps(k));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        m0 = _mm256_max_ps(m0, a);
    }
    if (_mm256_movemask_ps(nan))
        return NAN;
    const float m = hmax(_mm256_max_ps(m0, m1));
    if (isinf(m)) /* n == 0 or all -inf: -inf; any +inf: +inf */
        return m;
    const __m256 mv = _mm256_set1_ps(m);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (i = 0; i + 2 * W <= n; i += 2 * W) {
        s0 = _mm256_add_ps(s0, Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)));
        s1 = _mm256_add_ps(s1,
                           Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + W), mv)));
    }
    for (; i < n; i += W) {
        __m256i k = tail_mask(n - i < W ? n - i : W);
        __m256 a = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, k), _mm256_castsi256_ps(k));
        s0 = _mm256_add_ps(s0, Sleef_expf8_u10avx2(_mm256_sub_ps(a, mv)));
    }
    return m + logf(hsum(_mm256_add_ps(s0, s1)));
}

static void exp_shift_avx2(size_t n, const float *x, float shift, float *y)
{
    const __m256 s = _mm256_set1_ps(shift);
    size_t i = 0;
    for (; i + W <= n; i += W)
        _mm256_storeu_ps(y + i, Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
    if (i < n) {
        __m256i k = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, k,
                            Sleef_expf8_u10avx2(_mm256_sub_ps(_mm256_maskload_ps(x + i, k), s)));
    }
}

/* One block of 8: adds the loss terms of the lanes in k to acc (two double
 * vectors) and returns sigmoid(x) - l.  Full blocks skip the masked memory
 * ops (a masked store is slow on AMD). */
static inline __m256 xent8(__m256 x, __m256 l, __m256 k, __m256d acc[2])
{
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    const __m256 e = Sleef_expf8_u10avx2(_mm256_sub_ps(zero, ax)); /* (0, 1] */
    __m256 term = _mm256_fnmadd_ps(x, l, _mm256_max_ps(x, zero));
    term = _mm256_add_ps(term, Sleef_log1pf8_u10avx2(e));
    term = _mm256_and_ps(term, k); /* off lanes add 0 */
    acc[0] = _mm256_add_pd(acc[0], _mm256_cvtps_pd(_mm256_castps256_ps128(term)));
    acc[1] = _mm256_add_pd(acc[1], _mm256_cvtps_pd(_mm256_extractf128_ps(term, 1)));
    __m256 num = _mm256_blendv_ps(e, one, _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
    return _mm256_sub_ps(_mm256_div_ps(num, _mm256_add_ps(one, e)), l);
}

static double sigmoid_xent_avx2(size_t n, const float *logits, const float *labels,
                                float *dlogits)
{
    __m256d acc[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
    const __m256 all = _mm256_castsi256_ps(tail_mask(W));
    size_t i = 0;
    for (; i + W <= n; i += W) {
        __m256 g = xent8(_mm256_loadu_ps(logits + i), _mm256_loadu_ps(labels + i), all, acc);
        if (dlogits)
            _mm256_storeu_ps(dlogits + i, g);
    }
    if (i < n) {
        __m256i k = tail_mask(n - i);
        __m256 g = xent8(_mm256_maskload_ps(logits + i, k), _mm256_maskload_ps(labels + i, k),
                         _mm256_castsi256_ps(k), acc);
        if (dlogits)
            _mm256_maskstore_ps(dlogits + i, k, g);
    }
    __m256d s = _mm256_add_pd(acc[0], acc[1]);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

void nu_fill_loss_avx2(nu_kernel_table *t)
{
    t->logsumexp = logsumexp_avx2;
    t->exp_shift = exp_shift_avx2;
    t->sigmoid_xent = sigmoid_xent_avx2;
}
