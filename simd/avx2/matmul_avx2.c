/* PLACEHOLDER: the matmul kernels for avx2 are not written yet; the table keeps
 * the scalar reference for them. */
#include "../kernels.h"

void nu_fill_matmul_avx2(nu_kernel_table *t) { (void)t; }
