/* The avx2 kernel table. */
#include <immintrin.h>
#include "../kernels.h"

const char *nu_whoami_avx2(void)
{
    /* Executes an AVX2+FMA instruction: a CPU without it would fault here. */
    volatile float one = 1.0f;
    __m256 v = _mm256_fmadd_ps(_mm256_set1_ps(one), _mm256_set1_ps(one), _mm256_setzero_ps());
    return _mm256_cvtss_f32(v) == 1.0f ? "avx2" : "avx2?";
}

void nu_build_table_avx2(nu_kernel_table *t)
{
    nu_build_table_scalar(t); /* every entry starts as the reference */
    t->isa = NU_ISA_AVX2;
    t->name = "avx2";
    t->whoami = nu_whoami_avx2;
    nu_fill_peak_avx2(t);
    nu_fill_matmul_avx2(t);
    nu_fill_layernorm_avx2(t);
    nu_fill_activation_avx2(t);
    nu_fill_vector_avx2(t);
    nu_fill_loss_avx2(t);
    nu_fill_attention_avx2(t);
    nu_fill_score_avx2(t);
    nu_fill_score_lowp_avx2(t);
}
