/* PLACEHOLDER: bf16/int8 scoring for neon not written yet; the table keeps
 * the scalar reference. */
#include "../kernels.h"

void nu_fill_score_lowp_neon(nu_kernel_table *t) { (void)t; }
