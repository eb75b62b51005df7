/* The portable blocking loop of the packed matmul kernels (BLIS-style:
 * NC-wide column panels, KC-deep blocks, MR-row micro-panels), shared by
 * every ISA; each ISA supplies its micro-kernels and packing routines. */
#ifndef NU_SIMD_GEMM_DRIVE_H
#define NU_SIMD_GEMM_DRIVE_H

#include <stddef.h>

/* Strided view of an operand: element (r, c) is p[r * rs + c * cs]. */
typedef struct nu_gemm_view {
    const float *p;
    size_t rs, cs;
} nu_gemm_view;

/* C[0..mr) x [0..nr) (+)= the kc-deep product of a packed MR-row panel of A
 * and a panel of B (packed NR wide, or read in place with row stride bs);
 * bias (NULL or nr values) and load_c (1: add to C) start the FMA chain. */
typedef void (*nu_gemm_micro_fn)(size_t kc, const float *a, const float *b, size_t bs, size_t nr,
                                 float *c, size_t ldc, const float *bias, int load_c);

/* The same product with A read in place instead of from a packed panel:
 * element (r, k) of the MR x kc block is a[r * ars + k * acs] (ars == 1 or
 * acs == 1); B is a packed NR-wide panel. */
typedef void (*nu_gemm_direct_fn)(size_t kc, const float *a, size_t ars, size_t acs,
                                  const float *b, size_t nr, float *c, size_t ldc,
                                  const float *bias, int load_c);

/* Defines kernel_packed_R and kernel_in_place_R, the micro-kernels for R-row
 * panels, from the including file's
 *   kernel(R, kc, a, b, bs, nr, c, ldc, bias, load_c, b_in_place)
 * (an always-inline body specialised on R and on B's layout). */
#define NU_GEMM_DEFINE_KERNELS(R)                                                          \
    static void kernel_packed_##R(size_t kc, const float *a, const float *b, size_t bs,    \
                                  size_t nr, float *c, size_t ldc, const float *bias,      \
                                  int load_c)                                              \
    {                                                                                      \
        kernel(R, kc, a, b, bs, nr, c, ldc, bias, load_c, 0);                              \
    }                                                                                      \
    static void kernel_in_place_##R(size_t kc, const float *a, const float *b, size_t bs,  \
                                    size_t nr, float *c, size_t ldc, const float *bias,    \
                                    int load_c)                                            \
    {                                                                                      \
        kernel(R, kc, a, b, bs, nr, c, ldc, bias, load_c, 1);                              \
    }

/* Largest blocking an ISA may use: the driver's packing buffers. */
#define NU_GEMM_MR_MAX 8
#define NU_GEMM_KC_MAX 256
#define NU_GEMM_NC_MAX 512

typedef struct nu_gemm_isa {
    size_t mr, nr, kc, nc;
    const nu_gemm_micro_fn *packed;   /* [mr + 1], indexed by the panel's rows */
    const nu_gemm_micro_fn *in_place; /* [mr + 1] reading B unpacked, or NULL */
    void (*pack_a)(float *ap, nu_gemm_view a, size_t mr, size_t kc);
    void (*pack_b)(float *bp, nu_gemm_view b, size_t kc, size_t nc);
    /* One or two rows of A with B read in place (B.cs == 1). */
    void (*rows)(size_t M, size_t N, size_t K, nu_gemm_view A, const float *B, size_t ldb,
                 const float *bias, float *C, size_t ldc, int accumulate);
    /* K == 0: C = bias (or 0), or C += bias with accumulate. */
    void (*fill_bias)(size_t M, size_t N, const float *bias, float *C, size_t ldc, int accumulate);
    /* [mr + 1] reading A unpacked (packed B), or NULL: the packing of A
     * costs a sizeable share of the product when K is small (K = 64: one
     * MR x K transpose per N / NR micro-kernels), and the micro-kernel can
     * broadcast A's elements from where they are. */
    const nu_gemm_direct_fn *direct;
} nu_gemm_isa;

/* C (M x N, ldc) = or += A (M x K) B (K x N) + bias, as kernels.h's matmul. */
void nu_gemm_drive(const nu_gemm_isa *isa, size_t M, size_t N, size_t K, nu_gemm_view A,
                   nu_gemm_view B, const float *bias, float *C, size_t ldc, int accumulate);

#endif
