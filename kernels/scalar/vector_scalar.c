/* axpy, add_bias_rows, sum_rows and dot_rows: the scalar reference.  Plain
 * loops that follow kernels.h word for word.  dot_rows accumulates in
 * double, so it is more accurate than any fp32 vector version it is
 * compared with. */
#include "../kernels.h"

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

void nu_fill_vector_scalar(nu_kernel_table *t)
{
    t->axpy = axpy_scalar;
    t->add_bias_rows = add_bias_rows_scalar;
    t->sum_rows = sum_rows_scalar;
    t->dot_rows = dot_rows_scalar;
}
