/* The neon kernel table. */
#include <arm_neon.h>
#include "../kernels.h"

const char *nu_whoami_neon(void)
{
    /* Executes an AdvSIMD instruction. */
    volatile float one = 1.0f;
    float32x4_t v = vfmaq_f32(vdupq_n_f32(0.0f), vdupq_n_f32(one), vdupq_n_f32(one));
    return vaddvq_f32(v) == 4.0f ? "neon" : "neon?";
}

void nu_build_table_neon(nu_kernel_table *t)
{
    nu_build_table_scalar(t); /* every entry starts as the reference */
    t->isa = NU_ISA_NEON;
    t->name = "neon";
    t->whoami = nu_whoami_neon;
    nu_fill_peak_neon(t);
    nu_fill_matmul_neon(t);
    nu_fill_layernorm_neon(t);
    nu_fill_activation_neon(t);
    nu_fill_vector_neon(t);
    nu_fill_loss_neon(t);
    nu_fill_attention_neon(t);
    nu_fill_score_neon(t);
    nu_fill_score_lowp_neon(t);
}
