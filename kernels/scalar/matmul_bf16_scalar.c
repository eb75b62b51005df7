/* matmul_bf16, the reference: A rounded to bf16 as it is read, B from the
 * shared packed layout (bf16_pack.h), products summed in fp32 in k order.
 * The product of two bf16 is exact in fp32, so each step rounds once, like
 * an FMA chain. */
#include <math.h>

#include "../bf16_pack.h"
#include "../kernels.h"

/* Element (k, j) of a packed K x N matrix with k2 = ceil(K / 2) pairs. */
static float packed_at(const uint16_t *Bp, size_t k2, size_t k, size_t j)
{
    const size_t p = j / NU_BF16_PANEL, c = j % NU_BF16_PANEL;
    return nu_bf16_widen(Bp[(p * k2 + k / 2) * 2 * NU_BF16_PANEL + 2 * c + (k & 1)]);
}

static void matmul_bf16_scalar(size_t M, size_t N, size_t K, const float *A, size_t lda,
                               const uint16_t *Bp, const float *bias, float *C, size_t ldc,
                               int accumulate)
{
    const size_t k2 = (K + 1) / 2;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            const float b = bias ? bias[j] : 0.0f;
            float acc = accumulate ? C[i * ldc + j] + b : b;
            for (size_t k = 0; k < K; k++)
                acc += nu_bf16_widen(nu_bf16_round(A[i * lda + k])) * packed_at(Bp, k2, k, j);
            C[i * ldc + j] = acc;
        }
}

/* The product, then gelu_fwd_scalar's expression on each element. */
static void matmul_bf16_gelu_scalar(size_t M, size_t N, size_t K, const float *A, size_t lda,
                                    const uint16_t *Bp, const float *bias, float *C, size_t ldc)
{
    matmul_bf16_scalar(M, N, K, A, lda, Bp, bias, C, ldc, 0);
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            const float x = C[i * ldc + j];
            C[i * ldc + j] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
        }
}

void nu_fill_matmul_bf16_scalar(nu_kernel_table *t)
{
    t->matmul_bf16 = matmul_bf16_scalar;
    t->matmul_bf16_gelu = matmul_bf16_gelu_scalar;
    t->matmul_bf16_native = 0;
}
