/* The shared row loop of the x86 layernorm forwards; see layernorm_drive.h. */
#include "layernorm_drive.h"

void nu_layernorm_fwd_drive(size_t rows, size_t d, const float *x, size_t ldx, const float *gamma,
                            const float *beta, float eps, float *y, size_t ldy, float *mean,
                            float *rstd, nu_ln_stats4_fn stats4, nu_ln_row_out_fn row_out)
{
    if (d == 0)
        return;
    size_t r = 0;
    float mu[4], rs[4];
    for (; r + 4 <= rows; r += 4) {
        stats4(d, x + r * ldx, ldx, eps, mu, rs);
        for (int i = 0; i < 4; i++) {
            row_out(d, x + (r + i) * ldx, mu[i], rs[i], gamma, beta, y + (r + i) * ldy);
            if (mean)
                mean[r + i] = mu[i];
            if (rstd)
                rstd[r + i] = rs[i];
        }
    }
    for (; r < rows; r++) {
        const float *xr = x + r * ldx;
        /* The same arithmetic as a row inside a group of four (stride 0
         * repeats the row), so a row's bits never depend on its position:
         * the model's outputs must not depend on the batch. */
        stats4(d, xr, 0, eps, mu, rs);
        row_out(d, xr, mu[0], rs[0], gamma, beta, y + r * ldy);
        if (mean)
            mean[r] = mu[0];
        if (rstd)
            rstd[r] = rs[0];
    }
}
