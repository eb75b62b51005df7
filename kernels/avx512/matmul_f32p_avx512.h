/* matmul_tn through matmul_f32p's register tiles (matmul_f32p_avx512.c),
 * for matmul_avx512.c. */
#ifndef NU_MATMUL_F32P_AVX512_H
#define NU_MATMUL_F32P_AVX512_H

#include <stddef.h>

/* C[M x N] (=|+=) A^T B (+ bias), A: K x M, B: K x N, as kernels.h's
 * matmul_tn, for M >= 3, N >= 1 and K >= 1, with matmul_tn_avx512's bits. */
void nu_matmul_tn_panels_avx512(size_t M, size_t N, size_t K, const float *A, size_t lda,
                                const float *B, size_t ldb, const float *bias, float *C,
                                size_t ldc, int accumulate);

#endif
