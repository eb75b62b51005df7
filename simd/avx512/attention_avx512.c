/* PLACEHOLDER: the attention kernels for avx512 are not written yet; the table keeps
 * the scalar reference for them. */
#include "../kernels.h"

void nu_fill_attention_avx512(nu_kernel_table *t) { (void)t; }
