/* The ALS under lookalike-mf: the Cholesky solve against its definition,
 * the sparse layout (repeated pairs counted), the objective against a brute
 * force sum, an objective that never increases over iterations, rows that
 * are exact minimisers after their half-step, and a fit that is the same for
 * a seed whatever the thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/als.h"
#include "eval/cholesky.h"
#include "kernel_test_util.h"

static double unit_rand(nu_rng *r)
{
    return (double)nu_rng_uniform(r, -1.0f, 1.0f);
}

static void test_cholesky(void)
{
    nu_rng r = {11};
    for (size_t n = 1; n <= 64; n = n < 8 ? n + 1 : n * 2) {
        /* A = R R^T + I: symmetric positive definite. */
        double *R = malloc(n * n * sizeof *R), *A = malloc(n * n * sizeof *A),
               *L = malloc(n * n * sizeof *L), *b = malloc(n * sizeof *b), *x = malloc(n * sizeof *x),
               *work = malloc(n * sizeof *work);
        for (size_t i = 0; i < n * n; i++)
            R[i] = unit_rand(&r);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++) {
                double s = i == j ? 1.0 : 0.0;
                for (size_t t = 0; t < n; t++)
                    s += R[i * n + t] * R[j * n + t];
                A[i * n + j] = s;
            }
        for (size_t i = 0; i < n; i++)
            b[i] = x[i] = unit_rand(&r);
        memcpy(L, A, n * n * sizeof *L);
        NU_CHECK(nu_cholesky_factor(L, n, work), "n=%zu: positive definite", n);
        double err = 0, res = 0;
        for (size_t i = 0; i < n; i++) /* L L^T = A on the lower triangle */
            for (size_t j = 0; j <= i; j++) {
                double s = 0;
                for (size_t t = 0; t <= j; t++)
                    s += L[i * n + t] * L[j * n + t];
                err = fmax(err, fabs(s - A[i * n + j]));
            }
        nu_cholesky_solve(L, n, x);
        for (size_t i = 0; i < n; i++) { /* A x = b */
            double s = 0;
            for (size_t j = 0; j < n; j++)
                s += A[i * n + j] * x[j];
            res = fmax(res, fabs(s - b[i]));
        }
        NU_CHECK(err < 1e-10 * n && res < 1e-9 * n, "n=%zu: |LL^T - A| %g, |Ax - b| %g", n, err,
                 res);
        free(R);
        free(A);
        free(L);
        free(b);
        free(x);
        free(work);
    }
    /* Not positive definite: a zero pivot, a negative one, a NaN. */
    double work[2], a1[4] = {1, 9, 1, 1}, a2[4] = {-1, 0, 0, 1}, a3[4] = {NAN, 0, 0, 1};
    NU_CHECK(!nu_cholesky_factor(a1, 2, work), "[[1, .], [1, 1]] is singular");
    NU_CHECK(!nu_cholesky_factor(a2, 2, work), "negative pivot refused");
    NU_CHECK(!nu_cholesky_factor(a3, 2, work), "NaN refused");
}

static void test_layout(void)
{
    /* 3 x 4: (0,1) twice, (2,0), (0,3), (2,3); given out of order. */
    const uint32_t row[] = {2, 0, 0, 2, 0}, col[] = {3, 1, 3, 0, 1};
    nu_als_data d;
    NU_CHECK(nu_als_data_from_pairs(3, 4, row, col, 5, &d) == NU_OK, "layout: %s", nu_last_error());
    NU_CHECK(d.nnz == 4, "nnz %zu", d.nnz);
    const size_t roff[] = {0, 2, 2, 4}, coff[] = {0, 1, 2, 2, 4};
    const uint32_t rcol[] = {1, 3, 0, 3}, crow[] = {2, 0, 0, 2};
    const float rval[] = {2, 1, 1, 1}, cval[] = {1, 2, 1, 1};
    NU_CHECK(!memcmp(d.row_off, roff, sizeof roff) && !memcmp(d.row_col, rcol, sizeof rcol) &&
                 !memcmp(d.row_val, rval, sizeof rval),
             "rows: sorted columns, the repeated pair counts 2");
    NU_CHECK(!memcmp(d.col_off, coff, sizeof coff) && !memcmp(d.col_row, crow, sizeof crow) &&
                 !memcmp(d.col_val, cval, sizeof cval),
             "columns: sorted rows, the same values");
    nu_als_data_free(&d);
    const uint32_t bad_col[] = {4};
    NU_CHECK(nu_als_data_from_pairs(3, 4, row, bad_col, 1, &d) == NU_ERR_INVALID_ARG,
             "a column outside the matrix is refused");
}

/* A random rows x cols matrix of about `per_row` entries a row, some
 * repeated; row 0 and column 0 left empty. */
static void random_data(size_t rows, size_t cols, size_t per_row, uint64_t seed, nu_als_data *d)
{
    nu_rng r = {seed};
    size_t n = 0, cap = rows * per_row + 1;
    uint32_t *row = malloc(cap * sizeof *row), *col = malloc(cap * sizeof *col);
    for (size_t u = 1; u < rows; u++)
        for (size_t j = 0; j < per_row; j++) {
            row[n] = (uint32_t)u;
            col[n++] = (uint32_t)nu_rng_range(&r, 1, cols - 1);
        }
    NU_CHECK(nu_als_data_from_pairs(rows, cols, row, col, n, d) == NU_OK, "random data");
    free(row);
    free(col);
}

/* The objective summed pair by pair, straight from its definition. */
static double brute_objective(const nu_als_data *d, const nu_als_params *p, const nu_als_factors *f)
{
    size_t k = f->dim;
    double total = 0;
    for (size_t u = 0; u < d->rows; u++) {
        for (size_t i = 0; i < d->cols; i++) {
            double r = 0, s = 0;
            for (size_t e = d->row_off[u]; e < d->row_off[u + 1]; e++)
                if (d->row_col[e] == i)
                    r = d->row_val[e];
            for (size_t a = 0; a < k; a++)
                s += f->X[u * k + a] * f->Y[i * k + a];
            double pref = r > 0 ? 1 : 0;
            total += (1 + p->alpha * r) * (pref - s) * (pref - s);
        }
        for (size_t a = 0; a < k; a++)
            total += p->lambda * (double)(d->row_off[u + 1] - d->row_off[u]) * f->X[u * k + a] *
                     f->X[u * k + a];
    }
    for (size_t i = 0; i < d->cols; i++)
        for (size_t a = 0; a < k; a++)
            total += p->lambda * (double)(d->col_off[i + 1] - d->col_off[i]) * f->Y[i * k + a] *
                     f->Y[i * k + a];
    return total;
}

static void test_fit(size_t dim)
{
    nu_als_data d;
    random_data(40, 30, 4, 5, &d);
    nu_als_params p;
    nu_als_defaults(&p);
    p.dim = dim;
    p.seed = 9;
    p.threads = 1;
    double obj[16];
    nu_als_factors f;
    NU_CHECK(nu_als_fit(&d, &p, &f, obj) == NU_OK, "fit d=%zu: %s", dim, nu_last_error());
    int falls = 1;
    for (size_t t = 0; t < p.iterations; t++)
        if (!(obj[t + 1] <= obj[t] * (1 + 1e-12)))
            falls = 0;
    NU_CHECK(falls && obj[p.iterations] < 0.5 * obj[0], "d=%zu: objective %g -> %g -> %g, never up",
             dim, obj[0], obj[1], obj[p.iterations]);
    double brute = brute_objective(&d, &p, &f), fast = nu_als_objective(&d, &p, &f);
    NU_CHECK(fabs(brute - fast) <= 1e-9 * brute && fabs(fast - obj[p.iterations]) <= 1e-12 * fast,
             "d=%zu: objective %.12g, brute force %.12g", dim, fast, brute);
    /* The last half-step solved every column exactly: moving one of its
     * coordinates either way cannot lower the objective. */
    int minimal = 1;
    for (size_t i = 0; i < d.cols; i += 7)
        for (size_t a = 0; a < dim; a += dim / 4 ? dim / 4 : 1)
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                double keep = f.Y[i * dim + a];
                f.Y[i * dim + a] = keep + sgn * 1e-4;
                if (nu_als_objective(&d, &p, &f) < fast - 1e-9 * fast)
                    minimal = 0;
                f.Y[i * dim + a] = keep;
            }
    NU_CHECK(minimal, "d=%zu: the item factors are exact minimisers", dim);
    /* Row 0 has no entries: the zero factor. */
    int zero = 1;
    for (size_t a = 0; a < dim; a++)
        zero &= f.X[a] == 0.0;
    NU_CHECK(zero, "d=%zu: a row without entries gets the zero factor", dim);
    /* The same seed: the same factors, bit for bit, on 1 or 3 threads;
     * another seed: others. */
    nu_als_factors g, h;
    p.threads = 3;
    NU_CHECK(nu_als_fit(&d, &p, &g, NULL) == NU_OK, "refit");
    NU_CHECK(!memcmp(f.X, g.X, d.rows * dim * sizeof *f.X) &&
                 !memcmp(f.Y, g.Y, d.cols * dim * sizeof *f.Y),
             "d=%zu: deterministic for a seed, whatever the threads", dim);
    p.seed = 10;
    NU_CHECK(nu_als_fit(&d, &p, &h, NULL) == NU_OK &&
                 memcmp(f.X, h.X, d.rows * dim * sizeof *f.X) != 0,
             "d=%zu: another seed, other factors", dim);
    nu_als_factors_free(&f);
    nu_als_factors_free(&g);
    nu_als_factors_free(&h);
    nu_als_data_free(&d);
}

static void test_defaults(void)
{
    nu_als_params p;
    nu_als_defaults(&p);
    NU_CHECK(p.dim == 64 && p.iterations == 15 && p.alpha == 40.0 && p.lambda == 0.1,
             "documented defaults: dim 64, 15 iterations, alpha 40, lambda 0.1");
    nu_als_data d;
    random_data(5, 5, 2, 1, &d);
    nu_als_factors f;
    p.lambda = 0;
    NU_CHECK(nu_als_fit(&d, &p, &f, NULL) == NU_ERR_INVALID_ARG, "lambda 0 refused");
    nu_als_data_free(&d);
}

int main(void)
{
    test_cholesky();
    test_layout();
    test_fit(8);
    test_fit(64);
    test_defaults();
    return nu_test_finish("unit_eval_als");
}
