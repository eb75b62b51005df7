/* The avx512 kernel table. */
#include <immintrin.h>
#include "../kernels.h"

const char *nu_whoami_avx512(void)
{
    /* Executes an AVX-512 instruction: a CPU without it would fault here. */
    volatile float one = 1.0f;
    __m512 v = _mm512_fmadd_ps(_mm512_set1_ps(one), _mm512_set1_ps(one), _mm512_setzero_ps());
    return _mm512_reduce_add_ps(v) == 16.0f ? "avx512" : "avx512?";
}

void nu_build_table_avx512(nu_kernel_table *t)
{
    nu_build_table_scalar(t); /* every entry starts as the reference */
    t->isa = NU_ISA_AVX512;
    t->name = "avx512";
    t->whoami = nu_whoami_avx512;
    nu_fill_peak_avx512(t);
    nu_fill_matmul_avx512(t);
    nu_fill_matmul_bf16_avx512(t);
    nu_fill_matmul_f32p_avx512(t);
    nu_fill_layernorm_avx512(t);
    nu_fill_activation_avx512(t);
    nu_fill_vector_avx512(t);
    nu_fill_loss_avx512(t);
    nu_fill_attention_avx512(t);
    nu_fill_score_avx512(t);
    nu_fill_score_lowp_avx512(t);
}
