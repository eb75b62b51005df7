/* The portable row loop of the x86 layernorm forwards: rows in groups of
 * four share one statistics pass; each ISA supplies the two row kernels. */
#ifndef NU_SIMD_LAYERNORM_DRIVE_H
#define NU_SIMD_LAYERNORM_DRIVE_H

#include <stddef.h>

/* Mean and 1/sqrt(var + eps) of 4 rows x, x + ldx, ...; ldx = 0 repeats one
 * row, which must give the same bits as that row inside a group. */
typedef void (*nu_ln_stats4_fn)(size_t d, const float *x, size_t ldx, float eps, float mu[4],
                                float rs[4]);
/* y = (x - mu) * rs * gamma + beta for one row. */
typedef void (*nu_ln_row_out_fn)(size_t d, const float *xr, float mu, float rs,
                                 const float *gamma, const float *beta, float *yr);

/* layernorm_fwd of kernels.h with the given row kernels. */
void nu_layernorm_fwd_drive(size_t rows, size_t d, const float *x, size_t ldx, const float *gamma,
                            const float *beta, float eps, float *y, size_t ldy, float *mean,
                            float *rstd, nu_ln_stats4_fn stats4, nu_ln_row_out_fn row_out);

#endif
