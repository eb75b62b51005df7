/* Attention forward for head size 16 with queries in vector lanes
 * (attention16_avx512.c); private to kernels/avx512/. */
#ifndef NU_ATTENTION16_AVX512_H
#define NU_ATTENTION16_AVX512_H

#include <stddef.h>
#include <stdint.h>

/* attention_fwd (kernels.h) for dh = 16.  Returns 0, touching nothing,
 * when Tk is beyond its score buffer: the caller takes the general path. */
int nu_attention_fwd16_avx512(size_t Tq, size_t Tk, size_t heads, const float *Q, size_t ldq,
                              const float *K, size_t ldk, const float *V, size_t ldv,
                              const uint32_t *key_begin, const uint32_t *key_end, float scale,
                              float *O, size_t ldo, float *lse);

#endif
