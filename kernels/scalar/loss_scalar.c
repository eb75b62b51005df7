/* logsumexp, exp_shift and sigmoid_xent: the scalar reference.  Plain loops
 * that follow kernels.h word for word.  Sums accumulate in double;
 * per-element transcendental results come from libm (expf, log1pf). */
#include <math.h>

#include "../kernels.h"

/* NaN anywhere gives NaN; max == -inf (n == 0 or all -inf) gives -inf;
 * max == +inf gives +inf (x - max would be inf - inf = NaN). */
static float logsumexp_scalar(size_t n, const float *x)
{
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]))
            return NAN;
        if (x[i] > m)
            m = x[i];
    }
    if (isinf(m))
        return m;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += expf(x[i] - m);
    return m + (float)log(s);
}

static void exp_shift_scalar(size_t n, const float *x, float shift, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = expf(x[i] - shift);
}

/* Each term in fp32, the sum in double (kernels.h). */
static double sigmoid_xent_scalar(size_t n, const float *logits, const float *labels,
                                  float *dlogits)
{
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        const float x = logits[i], l = labels[i];
        const float e = expf(-fabsf(x)); /* in (0, 1]: never overflows */
        loss += (double)((x > 0 ? x : 0.0f) - x * l + log1pf(e));
        if (dlogits) {
            const float sig = (x >= 0 ? 1.0f : e) / (1.0f + e);
            dlogits[i] = sig - l;
        }
    }
    return loss;
}

void nu_fill_loss_scalar(nu_kernel_table *t)
{
    t->logsumexp = logsumexp_scalar;
    t->exp_shift = exp_shift_scalar;
    t->sigmoid_xent = sigmoid_xent_scalar;
}
