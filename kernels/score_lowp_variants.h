/* Test hook of the compressed-table scoring kernels (group "score_lowp"):
 * builds the entries of one ISA with a chosen code path, so the fallback
 * paths can be tested on a CPU that has the faster extensions.  A request
 * for an extension the CPU lacks is ignored (that path would fault). */
#ifndef NU_SIMD_SCORE_LOWP_VARIANTS_H
#define NU_SIMD_SCORE_LOWP_VARIANTS_H

#include "kernels.h"

#if defined(__x86_64__)
/* use_bf16_dp: VDPBF16PS for bf16; use_vnni: VPDPBUSD for int8. */
void nu_fill_score_lowp_avx512_variant(nu_kernel_table *t, int use_bf16_dp, int use_vnni);
#endif
#if defined(__aarch64__)
/* use_dotprod: SDOT for int8. */
void nu_fill_score_lowp_neon_variant(nu_kernel_table *t, int use_dotprod);
#endif

#endif
