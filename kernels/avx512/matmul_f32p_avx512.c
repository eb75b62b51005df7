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
 * accumulators before the one store: the same bits as the two calls.
 *
 * The same tiles serve matmul_tn_avx512 from 3 rows up (the weight
 * gradients X^T dY, the loss's shared-negative gradient): A^T's rows are
 * read in place (one k's 6 elements adjacent) and B, an activation
 * gradient new at every call, is packed into panels per K x N block here;
 * 24 accumulators and the panel-outer order run these products faster than
 * the shared driver's 8 x 32 tiles.  Bits: matmul_tn_avx512's (the same
 * start value and one FMA per k in k order; a later K block continues from
 * the stored C, as the driver's do). */
#include <immintrin.h>

#include "../f32_pack.h"
#include "../kernels.h"
#include "gelu_avx512.h"
#include "matmul_edges_avx512.h"
#include "matmul_f32p_avx512.h"

#define MR 6
#define NV 4      /* panels per tile from 4 rows up */
#define NV_FEW 8  /* panels per tile for 1 to 3 rows */

_Static_assert(NU_F32_PANEL == 16, "one panel row is one zmm");

/* C[R rows x V panels] (+)= A[R x K] . panels, then GELU when `gelu`
 * (after the k loop: the branch costs nothing); the last panel has nlast
 * (1..16) columns.  R and V are constants at every call; so is k_major:
 * element (r, k) of A is a[r * lda + k] (0) or a[k * lda + r] (1: tn's A^T). */
static inline __attribute__((always_inline)) void
tile(const int R, const int V, const int k_major, size_t K, const float *a, size_t lda,
     const float *bp, size_t nlast, float *c, size_t ldc, const float *bias, int load_c, int gelu)
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
            const __m512 av =
                _mm512_set1_ps(k_major ? a[k * lda + (size_t)r] : a[(size_t)r * lda + k]);
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
        tile(R, V, 0, K, a, lda, bp, nlast, c, ldc, bias, load_c, gelu);                   \
    }                                                                                      \
    static void tile_t_##R##_##V(size_t K, const float *a, size_t lda, const float *bp,    \
                                 size_t nlast, float *c, size_t ldc, const float *bias,    \
                                 int load_c, int gelu)                                     \
    {                                                                                      \
        tile(R, V, 1, K, a, lda, bp, nlast, c, ldc, bias, load_c, gelu);                   \
    }
#define TILES4(R) TILE(R, 1) TILE(R, 2) TILE(R, 3) TILE(R, 4)
#define TILES8(R) TILES4(R) TILE(R, 5) TILE(R, 6) TILE(R, 7) TILE(R, 8)
TILES8(1)
TILES8(2)
TILES8(3)
TILES4(4)
TILES4(5)
TILES4(6)

#define ROW8(T, R) {NULL, T##R##_1, T##R##_2, T##R##_3, T##R##_4, T##R##_5, T##R##_6,       \
                    T##R##_7, T##R##_8}
#define ROW4(T, R) {NULL, T##R##_1, T##R##_2, T##R##_3, T##R##_4, NULL, NULL, NULL, NULL}
#define TILES(T)                                                                           \
    {{NULL}, ROW8(T, 1), ROW8(T, 2), ROW8(T, 3), ROW4(T, 4), ROW4(T, 5), ROW4(T, 6)}
static const tile_fn tiles[2][MR + 1][NV_FEW + 1] = {TILES(tile_), TILES(tile_t_)};

/* C (+)= A . B + bias, then GELU when `gelu` (accumulate 0 then); A^T's
 * layout when k_major (see tile). */
static void product(int k_major, size_t M, size_t N, size_t K, const float *A, size_t lda,
                    const float *Bp, const float *bias, float *C, size_t ldc, int accumulate,
                    int gelu)
{
    const size_t panels = (N + 15) / 16, vmax = M <= 3 ? NV_FEW : NV;
    for (size_t p = 0; p < panels; p += vmax) {
        const size_t v = panels - p < vmax ? panels - p : vmax, nlast = N - (p + v - 1) * 16;
        const float *bp = Bp + p * K * NU_F32_PANEL, *bb = bias ? bias + p * 16 : NULL;
        for (size_t i = 0; i < M; i += MR) {
            const size_t r = M - i < MR ? M - i : MR;
            tiles[k_major][r][v](K, A + (k_major ? i : i * lda), lda, bp, nlast,
                                 C + i * ldc + p * 16, ldc, bb, accumulate, gelu);
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
    product(0, M, N, K, A, lda, Bp, bias, C, ldc, accumulate, 0);
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
    product(0, M, N, K, A, lda, Bp, bias, C, ldc, 0, 1);
}

/* ---- matmul_tn from 3 rows up (matmul_avx512.c) ---- */

#define TN_KC 256 /* rows of B per packed block */
#define TN_NC 512 /* columns of B per packed block: 512 KiB of panels at most */

/* Per-thread panels of one K x N block of B (bounded, never allocated). */
static _Thread_local _Alignas(64) float tn_pack[TN_KC * TN_NC];

/* Rows [0, kc) and columns [0, nc) of B as the panels of f32_pack.h. */
static void pack_panels(size_t kc, size_t nc, const float *B, size_t ldb, float *out)
{
    for (size_t p = 0; p * 16 < nc; p++) {
        const __mmask16 m = mask16(nc - p * 16);
        const float *src = B + p * 16;
        float *dst = out + p * kc * NU_F32_PANEL;
        for (size_t k = 0; k < kc; k++, src += ldb)
            _mm512_store_ps(dst + k * NU_F32_PANEL, _mm512_maskz_loadu_ps(m, src));
    }
}

/* A's kc x M block towards L2.  In the weight gradients A is a saved
 * activation in memory, and the tiles walk it a few columns at a time down
 * all kc rows (a stride the hardware prefetcher follows poorly); asked for
 * in bulk first, it streams in while B is packed.  A hint: no effect on
 * the results.  Larger blocks (the loss's logits) are products of the
 * call before, still in L2, and would only spend load slots. */
#define TN_PREFETCH_MAX (256 * 128) /* floats: 128 KiB */
static void prefetch_block(size_t kc, size_t M, const float *A, size_t lda)
{
    for (size_t k = 0; k < kc; k++)
        for (size_t i = 0; i < M; i += 16)
            _mm_prefetch((const char *)(A + k * lda + i), _MM_HINT_T1);
}

void nu_matmul_tn_panels_avx512(size_t M, size_t N, size_t K, const float *A, size_t lda,
                                const float *B, size_t ldb, const float *bias, float *C,
                                size_t ldc, int accumulate)
{
    for (size_t jc = 0; jc < N; jc += TN_NC) {
        const size_t nc = N - jc < TN_NC ? N - jc : TN_NC;
        for (size_t pc = 0; pc < K; pc += TN_KC) {
            const size_t kc = K - pc < TN_KC ? K - pc : TN_KC;
            if (jc == 0 && kc * M <= TN_PREFETCH_MAX)
                prefetch_block(kc, M, A + pc * lda, lda);
            pack_panels(kc, nc, B + pc * ldb + jc, ldb, tn_pack);
            /* the first block starts from bias and the caller's flag, later
             * ones continue from the stored C */
            product(1, M, nc, kc, A + pc * lda, lda, tn_pack, pc == 0 && bias ? bias + jc : NULL,
                    C + jc, ldc, pc == 0 ? accumulate : 1, 0);
        }
    }
}

void nu_fill_matmul_f32p_avx512(nu_kernel_table *t)
{
    t->matmul_f32p = matmul_f32p_avx512;
    t->matmul_f32p_gelu = matmul_f32p_gelu_avx512;
    t->matmul_f32p_native = 1;
}
