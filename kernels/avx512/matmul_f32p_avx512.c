/* matmul_f32p, AVX-512: C (+)= A . B with B packed once (f32_pack.h) into
 * 16-column panels, so a call packs nothing: A is broadcast from where it
 * lies, one element per row and k, and each panel row is one zmm.
 *
 * Register tile: R rows x V panels (R <= 6, R * V <= 24 accumulators of 32
 * zmm), enough independent chains to cover the FMA latency on two pipes;
 * with at most three rows (a few items' decoder queries) V goes up to 8 so
 * even M = 1 keeps 8 chains.  Panels are the outer loop so a chunk of B
 * (K x 64 floats, 16 KiB at K = 64) stays in L1 while every row block
 * streams past it.
 *
 * Bits: each element is started as matmul_nn_avx512 starts it (C_old +
 * bias, C_old, bias or 0) and then takes one FMA per k in k order, as every
 * path of matmul_nn_avx512 does (its K blocks continue from the stored C,
 * which is exact), so the result equals matmul_nn's on the unpacked B.
 * matmul_f32p_gelu applies gelu_fwd_avx512's GELU (gelu_avx512.h) to the
 * accumulators before the one store: the same bits as the two calls. */
#include <immintrin.h>

#include "../f32_pack.h"
#include "../kernels.h"
#include "gelu_avx512.h"
#include "matmul_edges_avx512.h"

#define MR 6
#define NV 4      /* panels per tile from 4 rows up */
#define NV_FEW 8  /* panels per tile for 1 to 3 rows */

_Static_assert(NU_F32_PANEL == 16, "one panel row is one zmm");

/* C[R rows x V panels] (+)= A[R x K] . panels, then GELU when `gelu`
 * (after the k loop: the branch costs nothing); the last panel has nlast
 * (1..16) columns.  R and V are constants at every call. */
static inline __attribute__((always_inline)) void
tile(const int R, const int V, size_t K, const float *a, size_t lda, const float *bp,
     size_t nlast, float *c, size_t ldc, const float *bias, int load_c, int gelu)
{
    __m512 acc[MR][NV_FEW];
    __mmask16 m[NV_FEW];
    const size_t ps = K * NU_F32_PANEL; /* floats from one panel to the next */
#pragma GCC unroll 8
    for (int q = 0; q < V; q++)
        m[q] = q == V - 1 ? mask16(nlast) : (__mmask16)0xFFFF;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            acc[r][q] = start16(c + (size_t)r * ldc + 16 * q, bias ? bias + 16 * q : NULL, m[q],
                                load_c);
    }
    for (size_t k = 0; k < K; k++, bp += NU_F32_PANEL) {
        __m512 b[NV_FEW];
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            b[q] = _mm512_loadu_ps(bp + q * ps);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(a[(size_t)r * lda + k]);
#pragma GCC unroll 8
            for (int q = 0; q < V; q++)
                acc[r][q] = _mm512_fmadd_ps(av, b[q], acc[r][q]);
        }
    }
    if (gelu) {
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
            for (int q = 0; q < V; q++)
                acc[r][q] = nu_gelu16(acc[r][q]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16 * q, m[q], acc[r][q]);
    }
}

typedef void (*tile_fn)(size_t K, const float *a, size_t lda, const float *bp, size_t nlast,
                        float *c, size_t ldc, const float *bias, int load_c, int gelu);

#define TILE(R, V)                                                                         \
    static void tile_##R##_##V(size_t K, const float *a, size_t lda, const float *bp,      \
                               size_t nlast, float *c, size_t ldc, const float *bias,      \
                               int load_c, int gelu)                                       \
    {                                                                                      \
        tile(R, V, K, a, lda, bp, nlast, c, ldc, bias, load_c, gelu);                      \
    }
#define TILES4(R) TILE(R, 1) TILE(R, 2) TILE(R, 3) TILE(R, 4)
#define TILES8(R) TILES4(R) TILE(R, 5) TILE(R, 6) TILE(R, 7) TILE(R, 8)
TILES8(1)
TILES8(2)
TILES8(3)
TILES4(4)
TILES4(5)
TILES4(6)

#define ROW8(R) {NULL, tile_##R##_1, tile_##R##_2, tile_##R##_3, tile_##R##_4,              \
                 tile_##R##_5, tile_##R##_6, tile_##R##_7, tile_##R##_8}
#define ROW4(R) {NULL, tile_##R##_1, tile_##R##_2, tile_##R##_3, tile_##R##_4,              \
                 NULL, NULL, NULL, NULL}
static const tile_fn tiles[MR + 1][NV_FEW + 1] = {
    {NULL}, ROW8(1), ROW8(2), ROW8(3), ROW4(4), ROW4(5), ROW4(6),
};

/* C (+)= A . B + bias, then GELU when `gelu` (accumulate 0 then). */
static void product(size_t M, size_t N, size_t K, const float *A, size_t lda, const float *Bp,
                    const float *bias, float *C, size_t ldc, int accumulate, int gelu)
{
    const size_t panels = (N + 15) / 16, vmax = M <= 3 ? NV_FEW : NV;
    for (size_t p = 0; p < panels; p += vmax) {
        const size_t v = panels - p < vmax ? panels - p : vmax, nlast = N - (p + v - 1) * 16;
        const float *bp = Bp + p * K * NU_F32_PANEL, *bb = bias ? bias + p * 16 : NULL;
        for (size_t i = 0; i < M; i += MR) {
            const size_t r = M - i < MR ? M - i : MR;
            tiles[r][v](K, A + i * lda, lda, bp, nlast, C + i * ldc + p * 16, ldc, bb,
                        accumulate, gelu);
        }
    }
}

static void matmul_f32p_avx512(size_t M, size_t N, size_t K, const float *A, size_t lda,
                               const float *Bp, const float *bias, float *C, size_t ldc,
                               int accumulate)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        fill_bias(M, N, bias, C, ldc, accumulate);
        return;
    }
    product(M, N, K, A, lda, Bp, bias, C, ldc, accumulate, 0);
}

static void matmul_f32p_gelu_avx512(size_t M, size_t N, size_t K, const float *A, size_t lda,
                                    const float *Bp, const float *bias, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        fill_bias_gelu(M, N, bias, C, ldc);
        return;
    }
    product(M, N, K, A, lda, Bp, bias, C, ldc, 0, 1);
}

void nu_fill_matmul_f32p_avx512(nu_kernel_table *t)
{
    t->matmul_f32p = matmul_f32p_avx512;
    t->matmul_f32p_gelu = matmul_f32p_gelu_avx512;
    t->matmul_f32p_native = 1;
}
