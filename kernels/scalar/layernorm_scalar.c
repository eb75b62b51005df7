/* Layernorm and L2 normalisation, forward and backward: the scalar
 * reference.  Plain loops that follow kernels.h word for word.  The row
 * reductions (layernorm mean/var and backward row sums, l2 norms) accumulate
 * in double, and layernorm_fwd computes y in double too, so the reference is
 * more accurate than any fp32 vector version it is compared with. */
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

void nu_fill_layernorm_scalar(nu_kernel_table *t)
{
    t->layernorm_fwd = layernorm_fwd_scalar;
    t->layernorm_bwd = layernorm_bwd_scalar;
    t->l2norm_fwd = l2norm_fwd_scalar;
    t->l2norm_bwd = l2norm_bwd_scalar;
}
