/* The scalar kernel table. */

#include "../kernels.h"

const char *nu_whoami_scalar(void)
{
    return "scalar";
}

void nu_build_table_scalar(nu_kernel_table *t)
{
    t->isa = NU_ISA_SCALAR;
    t->name = "scalar";
    t->whoami = nu_whoami_scalar;
    nu_fill_peak_scalar(t);
    nu_fill_matmul_scalar(t);
    nu_fill_matmul_bf16_scalar(t);
    nu_fill_matmul_f32p_scalar(t);
    nu_fill_layernorm_scalar(t);
    nu_fill_activation_scalar(t);
    nu_fill_vector_scalar(t);
    nu_fill_loss_scalar(t);
    nu_fill_attention_scalar(t);
    nu_fill_score_scalar(t);
    nu_fill_score_lowp_scalar(t);
}
