/* A small dense Cholesky factorisation and solve in double, for the
 * per-row normal equations of ALS (d around 64): A = L L^T, then
 * L L^T x = b.  Matrices are n x n, row-major; only the lower triangle of
 * A is read. */
#ifndef NU_CHOLESKY_H
#define NU_CHOLESKY_H

#include <stddef.h>

/* Overwrites the lower triangle of a with L (the strict upper triangle is
 * left as it was).  work: n doubles of scratch.  Returns 0 when a is not
 * numerically positive definite (a pivot <= 0 or not finite), else 1. */
int nu_cholesky_factor(double *a, size_t n, double *work);

/* Solves L L^T x = b in place (b becomes x), L from nu_cholesky_factor. */
void nu_cholesky_solve(const double *l, size_t n, double *b);

#endif
