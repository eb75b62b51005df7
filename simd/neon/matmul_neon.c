/* PLACEHOLDER: the matmul kernels for neon are not written yet; the table keeps
 * the scalar reference for them. */
#include "../kernels.h"

void nu_fill_matmul_neon(nu_kernel_table *t) { (void)t; }
