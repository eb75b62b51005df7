/* matmul_f32p, the reference: matmul_nn_scalar's loop (one dot product per
 * element in k order, then bias, then = or +=) reading B from the shared
 * packed layout (f32_pack.h), so its bits are matmul_nn_scalar's. */
#include <math.h>

#include "../f32_pack.h"
#include "../kernels.h"

static void matmul_f32p_scalar(size_t M, size_t N, size_t K, const float *A, size_t lda,
                               const float *Bp, const float *bias, float *C, size_t ldc,
                               int accumulate)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            const float *b = Bp + (j / NU_F32_PANEL) * K * NU_F32_PANEL + j % NU_F32_PANEL;
            float s = 0.0f;
            for (size_t k = 0; k < K; k++)
                s += A[i * lda + k] * b[k * NU_F32_PANEL];
            const float v = s + (bias ? bias[j] : 0.0f);
            C[i * ldc + j] = accumulate ? C[i * ldc + j] + v : v;
        }
}

/* The product, then gelu_fwd_scalar's expression on each element. */
static void matmul_f32p_gelu_scalar(size_t M, size_t N, size_t K, const float *A, size_t lda,
                                    const float *Bp, const float *bias, float *C, size_t ldc)
{
    matmul_f32p_scalar(M, N, K, A, lda, Bp, bias, C, ldc, 0);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            const float x = C[i * ldc + j];
            C[i * ldc + j] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
        }
}

void nu_fill_matmul_f32p_scalar(nu_kernel_table *t)
{
    t->matmul_f32p = matmul_f32p_scalar;
    t->matmul_f32p_gelu = matmul_f32p_gelu_scalar;
    t->matmul_f32p_native = 0;
}
