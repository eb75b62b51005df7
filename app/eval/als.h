/* Weighted ALS for implicit feedback (Hu, Koren and Volinsky, "Collaborative
 * filtering for implicit feedback datasets", ICDM 2008), the user factors of
 * the lookalike-mf baseline.
 *
 * Data: r_ui >= 0 (here the number of positives of user u on item i).
 * Preference p_ui = 1 where r_ui > 0, else 0; confidence c_ui = 1 + alpha r_ui.
 * Minimises over X (rows x dim) and Y (cols x dim)
 *   sum over ALL (u, i) of c_ui (p_ui - x_u . y_i)^2
 *   + lambda (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2)
 * where n_u, n_i count the nonzero entries of the row / column: the
 * frequency-weighted regularisation of ALS-WR (Zhou et al. 2008), as Spark
 * MLlib applies it to implicit ALS too, so one lambda suits rows with 1 or
 * 1,000 entries.  Each half-iteration solves every row exactly
 *   (Y^T Y + Y_u^T (C_u - I) Y_u + lambda n_u I) x_u = Y_u^T C_u p_u
 * with a dense Cholesky in double, so the objective never increases.  A row
 * without entries gets the zero vector (its exact minimiser).
 * The fit is deterministic for a seed whatever the thread count: rows are
 * independent and every sum runs in a fixed order. */
#ifndef NU_ALS_H
#define NU_ALS_H

#include <stddef.h>
#include <stdint.h>

#include "nextuser/nextuser.h"

typedef struct nu_als_params {
    size_t dim;        /* factor dimension */
    size_t iterations; /* full iterations (X then Y) */
    double alpha;      /* confidence slope */
    double lambda;     /* regularisation, times the row's entry count */
    uint64_t seed;     /* initial factors */
    int threads;       /* <= 0: OpenMP's default */
} nu_als_params;

/* The documented defaults of lookalike-mf: dim 64, 15 iterations,
 * alpha 40 (Hu et al. 2008's value), lambda 0.1 (Spark MLlib's regParam
 * default, with its frequency scaling), seed 0, default threads. */
void nu_als_defaults(nu_als_params *p);

/* A sparse rows x cols matrix held both by row and by column. */
typedef struct nu_als_data {
    size_t rows, cols, nnz;
    size_t *row_off;  /* rows + 1 */
    uint32_t *row_col;
    float *row_val;
    size_t *col_off;  /* cols + 1 */
    uint32_t *col_row;
    float *col_val;
} nu_als_data;

/* From n (row, col) pairs; a repeated pair adds 1 to its value, so each
 * value is the pair's count.  Rows and columns are kept in index order. */
nu_status nu_als_data_from_pairs(size_t rows, size_t cols, const uint32_t *row, const uint32_t *col,
                                 size_t n, nu_als_data *out);
void nu_als_data_free(nu_als_data *d);

typedef struct nu_als_factors {
    size_t rows, cols, dim;
    double *X; /* rows x dim */
    double *Y; /* cols x dim */
} nu_als_factors;

/* Fits the factors (allocated here).  objective: NULL or iterations + 1
 * values, the objective after initialisation and after each iteration. */
nu_status nu_als_fit(const nu_als_data *d, const nu_als_params *p, nu_als_factors *f,
                     double *objective);
void nu_als_factors_free(nu_als_factors *f);

/* The objective above for the current factors, in O((rows + cols) dim^2 +
 * nnz dim): the sum over all pairs is trace((X^T X)(Y^T Y)) plus the
 * correction c (1 - s)^2 - s^2 at each nonzero entry. */
double nu_als_objective(const nu_als_data *d, const nu_als_params *p, const nu_als_factors *f);

#endif
