/* Implicit-feedback ALS (see als.h): data layout, the exact row solves and
 * the objective. */
#include "eval/als.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "eval/cholesky.h"
#include "util/rng.h"

void nu_als_defaults(nu_als_params *p)
{
    *p = (nu_als_params){.dim = 64, .iterations = 15, .alpha = 40.0, .lambda = 0.1, .seed = 0,
                         .threads = 0};
}

void nu_als_data_free(nu_als_data *d)
{
    free(d->row_off);
    free(d->row_col);
    free(d->row_val);
    free(d->col_off);
    free(d->col_row);
    free(d->col_val);
    memset(d, 0, sizeof *d);
}

/* Stable counting sort of the indices `in` (n of them) by key[in[j]] in
 * [0, nkeys): out in key order, equal keys in input order. */
static nu_status counting_sort(const uint32_t *key, size_t nkeys, const size_t *in, size_t n,
                               size_t *out)
{
    size_t *start = calloc(nkeys + 1, sizeof *start);
    if (!start)
        return nu_error(NU_ERR_NOMEM, "out of memory for ALS data");
    for (size_t j = 0; j < n; j++)
        start[key[in[j]] + 1]++;
    for (size_t k = 0; k < nkeys; k++)
        start[k + 1] += start[k];
    for (size_t j = 0; j < n; j++)
        out[start[key[in[j]]]++] = in[j];
    free(start);
    return NU_OK;
}

nu_status nu_als_data_from_pairs(size_t rows, size_t cols, const uint32_t *row, const uint32_t *col,
                                 size_t n, nu_als_data *out)
{
    memset(out, 0, sizeof *out);
    for (size_t j = 0; j < n; j++)
        if (row[j] >= rows || col[j] >= cols)
            return nu_error(NU_ERR_INVALID_ARG, "ALS pair %zu: (%u, %u) outside %zu x %zu", j,
                            row[j], col[j], rows, cols);
    out->rows = rows;
    out->cols = cols;
    size_t *a = malloc((n + 1) * sizeof *a), *b = malloc((n + 1) * sizeof *b);
    out->row_off = calloc(rows + 1, sizeof *out->row_off);
    out->col_off = calloc(cols + 1, sizeof *out->col_off);
    out->row_col = malloc((n + 1) * sizeof *out->row_col);
    out->row_val = malloc((n + 1) * sizeof *out->row_val);
    out->col_row = malloc((n + 1) * sizeof *out->col_row);
    out->col_val = malloc((n + 1) * sizeof *out->col_val);
    nu_status st = NU_OK;
    if (!a || !b || !out->row_off || !out->col_off || !out->row_col || !out->row_val ||
        !out->col_row || !out->col_val)
        st = nu_error(NU_ERR_NOMEM, "out of memory for ALS data");
    for (size_t j = 0; st == NU_OK && j < n; j++)
        a[j] = j;
    /* By row, then stably by column: column-major, rows ascending. */
    if (st == NU_OK)
        st = counting_sort(row, rows, a, n, b);
    if (st == NU_OK)
        st = counting_sort(col, cols, b, n, a);
    if (st == NU_OK) {
        size_t nnz = 0;
        for (size_t j = 0; j < n; j++) {
            uint32_t r = row[a[j]], c = col[a[j]];
            if (nnz > 0 && out->col_row[nnz - 1] == r && j > 0 && col[a[j - 1]] == c) {
                out->col_val[nnz - 1] += 1.0f; /* a repeated pair */
                continue;
            }
            out->col_row[nnz] = r;
            out->col_val[nnz] = 1.0f;
            out->col_off[c + 1]++;
            nnz++;
        }
        out->nnz = nnz;
        for (size_t c = 0; c < cols; c++)
            out->col_off[c + 1] += out->col_off[c];
        /* The transpose: walking columns in order keeps each row's columns sorted. */
        for (size_t e = 0; e < nnz; e++)
            out->row_off[out->col_row[e] + 1]++;
        for (size_t r = 0; r < rows; r++)
            out->row_off[r + 1] += out->row_off[r];
        memcpy(b, out->row_off, rows * sizeof *b);
        for (size_t c = 0; c < cols; c++)
            for (size_t e = out->col_off[c]; e < out->col_off[c + 1]; e++) {
                size_t at = b[out->col_row[e]]++;
                out->row_col[at] = (uint32_t)c;
                out->row_val[at] = out->col_val[e];
            }
    }
    free(a);
    free(b);
    if (st != NU_OK)
        nu_als_data_free(out);
    return st;
}

void nu_als_factors_free(nu_als_factors *f)
{
    free(f->X);
    free(f->Y);
    memset(f, 0, sizeof *f);
}

/* G = F^T F (d x d, full) for F with n rows, summed row by row in order. */
static void gram(const double *F, size_t n, size_t d, double *G)
{
    memset(G, 0, d * d * sizeof *G);
    for (size_t r = 0; r < n; r++) {
        const double *f = F + r * d;
        for (size_t a = 0; a < d; a++) {
            double fa = f[a];
            double *g = G + a * d;
            for (size_t b = 0; b <= a; b++)
                g[b] += fa * f[b];
        }
    }
    for (size_t a = 0; a < d; a++)
        for (size_t b = a + 1; b < d; b++)
            G[a * d + b] = G[b * d + a];
}

/* One side of a sparse matrix: n rows, entries [off[r], off[r + 1]). */
typedef struct als_side {
    size_t n;
    const size_t *off;
    const uint32_t *idx;
    const float *val;
} als_side;

/* The exact minimiser of every row given the other side's factors F (and
 * G = F^T F).  Returns 0 when a system was not positive definite. */
static int solve_side(const als_side *s, const double *F, const double *G, size_t d,
                      const nu_als_params *p, int threads, double *out)
{
    int ok = 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        double *A = malloc((d * d + 2 * d) * sizeof *A);
        double *b = A ? A + d * d : NULL, *work = A ? b + d : NULL;
        if (!A) {
#pragma omp atomic write
            ok = 0;
        }
#pragma omp for schedule(dynamic, 16)
        for (size_t r = 0; r < s->n; r++) {
            double *x = out + r * d;
            size_t cnt = s->off[r + 1] - s->off[r];
            if (cnt == 0 || !A) {
                memset(x, 0, d * sizeof *x);
                continue;
            }
            memcpy(A, G, d * d * sizeof *A);
            for (size_t a = 0; a < d; a++)
                A[a * d + a] += p->lambda * (double)cnt;
            memset(b, 0, d * sizeof *b);
            for (size_t e = s->off[r]; e < s->off[r + 1]; e++) {
                const double *y = F + (size_t)s->idx[e] * d;
                double c = 1.0 + p->alpha * (double)s->val[e], w = c - 1.0;
                for (size_t a = 0; a < d; a++) {
                    double wy = w * y[a];
                    double *Ar = A + a * d;
                    for (size_t bb = 0; bb <= a; bb++)
                        Ar[bb] += wy * y[bb];
                    b[a] += c * y[a];
                }
            }
            if (!nu_cholesky_factor(A, d, work)) {
#pragma omp atomic write
                ok = 0;
                memset(x, 0, d * sizeof *x);
                continue;
            }
            nu_cholesky_solve(A, d, b);
            memcpy(x, b, d * sizeof *x);
        }
        free(A);
    }
    return ok;
}

double nu_als_objective(const nu_als_data *d, const nu_als_params *p, const nu_als_factors *f)
{
    size_t k = f->dim;
    double *GX = malloc(2 * k * k * sizeof *GX);
    if (!GX)
        return NAN;
    double *GY = GX + k * k, total = 0;
    gram(f->X, f->rows, k, GX);
    gram(f->Y, f->cols, k, GY);
    for (size_t a = 0; a < k * k; a++)
        total += GX[a] * GY[a];
    free(GX);
    for (size_t u = 0; u < d->rows; u++) {
        const double *x = f->X + u * k;
        double norm2 = 0;
        for (size_t a = 0; a < k; a++)
            norm2 += x[a] * x[a];
        total += p->lambda * (double)(d->row_off[u + 1] - d->row_off[u]) * norm2;
        for (size_t e = d->row_off[u]; e < d->row_off[u + 1]; e++) {
            const double *y = f->Y + (size_t)d->row_col[e] * k;
            double s = 0, c = 1.0 + p->alpha * (double)d->row_val[e];
            for (size_t a = 0; a < k; a++)
                s += x[a] * y[a];
            total += c * (1 - s) * (1 - s) - s * s;
        }
    }
    for (size_t i = 0; i < d->cols; i++) {
        const double *y = f->Y + i * k;
        double norm2 = 0;
        for (size_t a = 0; a < k; a++)
            norm2 += y[a] * y[a];
        total += p->lambda * (double)(d->col_off[i + 1] - d->col_off[i]) * norm2;
    }
    return total;
}

nu_status nu_als_fit(const nu_als_data *d, const nu_als_params *p, nu_als_factors *f,
                     double *objective)
{
    memset(f, 0, sizeof *f);
    size_t k = p->dim;
    if (k == 0 || k > 1024 || !(p->alpha >= 0) || !(p->lambda > 0))
        return nu_error(NU_ERR_INVALID_ARG, "ALS: dim in 1..1024, alpha >= 0 and lambda > 0");
    f->rows = d->rows;
    f->cols = d->cols;
    f->dim = k;
    f->X = malloc((d->rows * k + 1) * sizeof *f->X);
    f->Y = malloc((d->cols * k + 1) * sizeof *f->Y);
    double *G = malloc(k * k * sizeof *G);
    if (!f->X || !f->Y || !G) {
        free(G);
        nu_als_factors_free(f);
        return nu_error(NU_ERR_NOMEM, "out of memory for ALS factors");
    }
    /* Small random factors: Y decides the first X solve; X only the
     * objective before it. */
    nu_random rng = {p->seed};
    for (size_t j = 0; j < d->rows * k; j++)
        f->X[j] = 0.01 * nu_random_normal(&rng);
    for (size_t j = 0; j < d->cols * k; j++)
        f->Y[j] = 0.01 * nu_random_normal(&rng);
    int threads = p->threads > 0 ? p->threads : omp_get_max_threads();
    als_side by_row = {d->rows, d->row_off, d->row_col, d->row_val};
    als_side by_col = {d->cols, d->col_off, d->col_row, d->col_val};
    if (objective)
        objective[0] = nu_als_objective(d, p, f);
    nu_status st = NU_OK;
    for (size_t it = 0; it < p->iterations && st == NU_OK; it++) {
        gram(f->Y, f->cols, k, G);
        int ok = solve_side(&by_row, f->Y, G, k, p, threads, f->X);
        gram(f->X, f->rows, k, G);
        ok = ok && solve_side(&by_col, f->X, G, k, p, threads, f->Y);
        if (!ok)
            st = nu_error(NU_ERR_INTERNAL, "ALS iteration %zu: a normal-equation system was not "
                                           "positive definite (non-finite data?)", it + 1);
        else if (objective)
            objective[it + 1] = nu_als_objective(d, p, f);
    }
    free(G);
    if (st != NU_OK)
        nu_als_factors_free(f);
    return st;
}
