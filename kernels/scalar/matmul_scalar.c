/* Matrix products: the scalar reference.  One dot product per output element
 * summed in k order, so every element's rounding is easy to reason about;
 * plain loops that follow kernels.h word for word (speed is not the point). */
#include "../kernels.h"

/* Writes one output element: v = dot (+ bias), then C = v or C += v. */
static void put(float *c, float dot, const float *bias, size_t j, int accumulate)
{
    float v = dot + (bias ? bias[j] : 0.0f);
    *c = accumulate ? *c + v : v;
}

static void matmul_nn_scalar(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *B, size_t ldb, const float *bias, float *C,
                             size_t ldc, int accumulate)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (size_t k = 0; k < K; k++)
                s += A[i * lda + k] * B[k * ldb + j];
            put(&C[i * ldc + j], s, bias, j, accumulate);
        }
}

static void matmul_nt_scalar(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *B, size_t ldb, const float *bias, float *C,
                             size_t ldc, int accumulate)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (size_t k = 0; k < K; k++)
                s += A[i * lda + k] * B[j * ldb + k];
            put(&C[i * ldc + j], s, bias, j, accumulate);
        }
}

static void matmul_tn_scalar(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *B, size_t ldb, const float *bias, float *C,
                             size_t ldc, int accumulate)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float s = 0.0f;
            for (size_t k = 0; k < K; k++)
                s += A[k * lda + i] * B[k * ldb + j];
            put(&C[i * ldc + j], s, bias, j, accumulate);
        }
}

void nu_fill_matmul_scalar(nu_kernel_table *t)
{
    t->matmul_nn = matmul_nn_scalar;
    t->matmul_nt = matmul_nt_scalar;
    t->matmul_tn = matmul_tn_scalar;
}
