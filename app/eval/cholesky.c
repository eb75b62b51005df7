/* Right-looking Cholesky: after pivot k, the trailing lower triangle loses
 * the outer product of column k.  Column k is copied to a contiguous vector
 * first so the update is a row-wise axpy the compiler vectorises (a
 * dot-product form would need reassociation, which -O3 does not allow). */
#include "eval/cholesky.h"

#include <math.h>

int nu_cholesky_factor(double *a, size_t n, double *work)
{
    for (size_t k = 0; k < n; k++) {
        double pivot = a[k * n + k];
        if (!(pivot > 0) || !isfinite(pivot))
            return 0;
        pivot = sqrt(pivot);
        a[k * n + k] = pivot;
        double inv = 1.0 / pivot;
        for (size_t i = k + 1; i < n; i++) {
            a[i * n + k] *= inv;
            work[i] = a[i * n + k];
        }
        for (size_t i = k + 1; i < n; i++) {
            double lik = work[i];
            double *row = a + i * n;
            for (size_t j = k + 1; j <= i; j++)
                row[j] -= lik * work[j];
        }
    }
    return 1;
}

void nu_cholesky_solve(const double *l, size_t n, double *b)
{
    /* L z = b, forward. */
    for (size_t i = 0; i < n; i++) {
        double s = b[i];
        for (size_t j = 0; j < i; j++)
            s -= l[i * n + j] * b[j];
        b[i] = s / l[i * n + i];
    }
    /* L^T x = z, backward, by columns of L^T (rows of L): contiguous reads. */
    for (size_t i = n; i-- > 0;) {
        b[i] /= l[i * n + i];
        double xi = b[i];
        for (size_t j = 0; j < i; j++)
            b[j] -= l[i * n + j] * xi;
    }
}
