/* GELU forward and backward: the scalar reference.  Plain loops that follow
 * kernels.h word for word; erf and exp come from libm (erff, expf). */
#include <math.h>

#include "../kernels.h"

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

void nu_fill_activation_scalar(nu_kernel_table *t)
{
    t->gelu_fwd = gelu_fwd_scalar;
    t->gelu_bwd = gelu_bwd_scalar;
}
