/* Normalisation, activations, elementwise ops and reductions: the scalar
 * reference.  Plain loops that follow kernels.h word for word.  Reductions
 * (layernorm mean/var, l2 norms, dot products, the logsumexp sum, the
 * layernorm backward row sums) accumulate in double, and layernorm_fwd
 * computes y in double too, so the reference is more accurate than any fp32
 * vector version it is compared with.
 * Per-element transcendental results come from libm (expf, erff, log1pf). */
#include <math.h>

#include "../kernels.h"

static void layernorm_fwd_scalar(size_t rows, size_t d, const float *x, size_t ldx,
                                 const float *gamma, const float *beta, float eps, float *y,
                                 size_t ldy, float *mean, float *rstd)
{
    if (d == 0)
        return; /* mean of an empty row is undefined: leave every output alone */
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        double s = 0;
        for (size_t c = 0; c < d; c++)
            s += xr[c];
        const double mu = s / (double)d;
        double v = 0;
        for (size_t c = 0; c < d; c++)
            v += (xr[c] - mu) * (xr[c] - mu);
        const double rs = 1.0 / sqrt(v / (double)d + (double)eps);
        /* Stats are complete before y is written, so y may alias x.  y in
         * double too: (x - mean) cancels when the row has a large offset. */
        for (size_t c = 0; c < d; c++)
            yr[c] = (float)((xr[c] - mu) * rs * gamma[c] + beta[c]);
        if (mean)
            mean[r] = (float)mu;
        if (rstd)
            rstd[r] = (float)rs;
    }
}

/* With xhat = (x - mean) rstd and g = dy gamma:
 * dx = rstd (g - mean(g) - xhat mean(g xhat)); dgamma = sum dy xhat; dbeta = sum dy. */
static void layernorm_bwd_scalar(size_t rows, size_t d, const float *x, size_t ldx,
                                 const float *gamma, const float *mean, const float *rstd,
                                 const float *dy, size_t lddy, float *dx, size_t lddx,
                                 float *dgamma, float *dbeta)
{
    if (d == 0)
        return;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        const float m = mean[r], rs = rstd[r];
        double sg = 0, sgx = 0;
        for (size_t c = 0; c < d; c++) {
            const float xh = (xr[c] - m) * rs;
            const float g = dyr[c] * gamma[c];
            sg += g;
            sgx += (double)g * xh;
            dgamma[c] += dyr[c] * xh;
            dbeta[c] += dyr[c];
        }
        const float mg = (float)(sg / (double)d), mgx = (float)(sgx / (double)d);
        for (size_t c = 0; c < d; c++) {
            const float xh = (xr[c] - m) * rs;
            const float g = dyr[c] * gamma[c];
            dxr[c] += rs * (g - mg - xh * mgx);
        }
    }
}

#define NU_INV_SQRT2 0.70710678118654752440f
#define NU_INV_SQRT_2PI 0.39894228040143267794f

static void gelu_fwd_scalar(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * NU_INV_SQRT2));
}

/* GELU'(x) = Phi(x) + x phi(x). */
static void gelu_bwd_scalar(size_t n, const float *x, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++) {
        const float phi_cdf = 0.5f * (1.0f + erff(x[i] * NU_INV_SQRT2));
        const float phi_pdf = NU_INV_SQRT_2PI * expf(-0.5f * x[i] * x[i]);
        dx[i] = dy[i] * (phi_cdf + x[i] * phi_pdf);
    }
}

static void axpy_scalar(size_t n, float alpha, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

static void add_bias_rows_scalar(size_t rows, size_t n, float *x, size_t ldx,
                                 const float *bias)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < n; c++)
            x[r * ldx + c] += bias[c];
}

/* Rows are added into dbias one after another, in row order (the vector
 * versions keep that order, so they match this bit for bit). */
static void sum_rows_scalar(size_t rows, size_t n, const float *dy, size_t lddy,
                            float *dbias)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < n; c++)
            dbias[c] += dy[r * lddy + c];
}

static void l2norm_fwd_scalar(size_t rows, size_t d, const float *x, size_t ldx, float eps,
                              float *y, size_t ldy, float *norm)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        double s = 0;
        for (size_t c = 0; c < d; c++)
            s += (double)xr[c] * xr[c];
        const float nr = (float)sqrt(s);
        const float den = nr > eps ? nr : eps;
        for (size_t c = 0; c < d; c++)
            yr[c] = xr[c] / den;
        if (norm)
            norm[r] = nr;
    }
}

static void l2norm_bwd_scalar(size_t rows, size_t d, const float *y, size_t ldy,
                              const float *norm, float eps, const float *dy, size_t lddy,
                              float *dx, size_t lddx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *yr = y + r * ldy, *dyr = dy + r * lddy;
        float *dxr = dx + r * lddx;
        if (norm[r] > eps) {
            double s = 0;
            for (size_t c = 0; c < d; c++)
                s += (double)yr[c] * dyr[c];
            const float yd = (float)s;
            for (size_t c = 0; c < d; c++)
                dxr[c] += (dyr[c] - yr[c] * yd) / norm[r];
        } else {
            /* Clamped: y = x / eps is linear in x. */
            for (size_t c = 0; c < d; c++)
                dxr[c] += dyr[c] / eps;
        }
    }
}

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

static void dot_rows_scalar(size_t rows, size_t d, const float *x, const float *T, size_t ldt,
                            float *out)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t c = 0; c < d; c++)
            s += (double)x[c] * T[r * ldt + c];
        out[r] = (float)s;
    }
}

void nu_fill_norm_scalar(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_scalar;
    t->layernorm_bwd = layernorm_bwd_scalar;
    t->gelu_fwd = gelu_fwd_scalar;
    t->gelu_bwd = gelu_bwd_scalar;
    t->axpy = axpy_scalar;
    t->add_bias_rows = add_bias_rows_scalar;
    t->sum_rows = sum_rows_scalar;
    t->l2norm_fwd = l2norm_fwd_scalar;
    t->l2norm_bwd = l2norm_bwd_scalar;
    t->logsumexp = logsumexp_scalar;
    t->exp_shift = exp_shift_scalar;
    t->sigmoid_xent = sigmoid_xent_scalar;
    t->dot_rows = dot_rows_scalar;
}
