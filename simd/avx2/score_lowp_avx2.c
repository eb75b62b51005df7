/* PLACEHOLDER: bf16/int8 scoring for avx2 not written yet; the table keeps
 * the scalar reference. */
#include "../kernels.h"

void nu_fill_score_lowp_avx2(nu_kernel_table *t) { (void)t; }
