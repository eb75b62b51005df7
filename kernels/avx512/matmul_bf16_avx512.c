/* Group "matmul_bf16" of the avx512 table: the vdpbf16ps kernel where the
 * CPU has AVX512_BF16; otherwise the scalar reference stays in place with
 * matmul_bf16_native = 0, which tells callers to keep fp32. */
#include "../cpu.h"
#include "../kernels.h"
#include "matmul_bf16_avx512.h"

void nu_fill_matmul_bf16_avx512(nu_kernel_table *t)
{
    if (!nu_cpu_detect()->avx512_bf16)
        return;
    t->matmul_bf16 = nu_matmul_bf16_avx512dp;
    t->matmul_bf16_gelu = nu_matmul_bf16_gelu_avx512dp;
    t->matmul_bf16_native = 1;
}
