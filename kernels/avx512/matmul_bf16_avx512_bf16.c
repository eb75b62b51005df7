/* matmul_bf16 with AVX512_BF16 dot products (vdpbf16ps): one instruction
 * does 16 lanes x 2 bf16 products into fp32, twice the multiply-adds of an
 * fp32 FMA, and the weights take half the bytes.
 *
 * B comes packed once (bf16_pack.h): 16-column panels of k pairs, each
 * 64-byte row of a panel one vdpbf16ps operand.  A is rounded to bf16 per
 * MR-row block (vcvtne2ps2bf16, nearest even) into pairs along k; each pair
 * is broadcast to all 16 lanes.  Register tile: MR = 6 rows x NV = 4 panels
 * (64 columns) = 24 accumulators, enough independent chains to cover the
 * dot product's latency on two pipes.  No K blocking is needed for the
 * model's K (<= 2 x 1024 here); longer K runs in blocks that continue from
 * what the previous block stored in C.
 *
 * matmul_bf16_gelu applies gelu_fwd_avx512's GELU (gelu_avx512.h) to the
 * accumulators of the last k block before their store: the bits of the
 * product followed by gelu_fwd.
 *
 * Row invariance: every row's outputs come from the same sequence of
 * instructions (start value, then one vdpbf16ps per k pair in order)
 * whatever the row count of its tile, so a row's bits do not depend on M. */
#include <immintrin.h>

#include "../bf16_pack.h"
#include "gelu_avx512.h"
#include "matmul_edges_avx512.h"
#include "matmul_bf16_avx512.h"

#define MR 6
#define NV 4
#define KP_MAX 1024 /* k pairs per block: 6 rows of packed A = 24 KiB */

_Static_assert(NU_BF16_PANEL == 16, "one panel row is one zmm of bf16 pairs");

static _Thread_local _Alignas(64) uint32_t a_buf[MR * KP_MAX];

/* Out of line: keeps __tls_get_addr out of the hot loops (-fPIC). */
__attribute__((noinline)) static uint32_t *a_scratch(void)
{
    return a_buf;
}

/* Rows r < mr of A, elements [0, kn): ap[r * aps + kp] holds bf16 of
 * A[r][2kp] (low) and A[r][2kp + 1] (high), zero past kn; aps is a
 * multiple of 16 covering ceil(kn / 2). */
static void pack_a(uint32_t *ap, size_t aps, const float *A, size_t lda, size_t mr, size_t kn)
{
    for (size_t r = 0; r < mr; r++, A += lda)
        for (size_t k = 0; k < kn; k += 32) {
            const size_t n = kn - k;
            const __m512 lo = _mm512_maskz_loadu_ps(mask16(n), A + k);
            const __m512 hi = _mm512_maskz_loadu_ps(mask16(n > 16 ? n - 16 : 0), A + k + 16);
            _mm512_store_si512(ap + r * aps + k / 2, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
}

/* C[R rows x V panels] (+)= A pairs . B panels over kpn k pairs, then GELU
 * when `gelu` (after the k loop: the branch costs nothing); the last panel
 * has nlast (1..16) columns.  R and V are constants at every call. */
static inline __attribute__((always_inline)) void
tile(const int R, const int V, size_t kpn, const uint32_t *ap, size_t aps, const uint32_t *bp,
     size_t bps, size_t nlast, float *c, size_t ldc, const float *bias, int load_c, int gelu)
{
    __m512 acc[MR][NV];
    __mmask16 m[NV];
#pragma GCC unroll 4
    for (int q = 0; q < V; q++)
        m[q] = q == V - 1 ? mask16(nlast) : (__mmask16)0xFFFF;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
        for (int q = 0; q < V; q++)
            acc[r][q] = start16(c + (size_t)r * ldc + 16 * q, bias ? bias + 16 * q : NULL, m[q],
                                load_c);
    }
    for (size_t kp = 0; kp < kpn; kp++) {
        __m512i b[NV];
#pragma GCC unroll 4
        for (int q = 0; q < V; q++)
            b[q] = _mm512_loadu_si512(bp + q * bps + kp * 16);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[(size_t)r * aps + kp]);
#pragma GCC unroll 4
            for (int q = 0; q < V; q++)
                acc[r][q] = _mm512_dpbf16_ps(acc[r][q], a, (__m512bh)b[q]);
        }
    }
    if (gelu) {
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
            for (int q = 0; q < V; q++)
                acc[r][q] = nu_gelu16(acc[r][q]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
        for (int q = 0; q < V; q++)
            _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16 * q, m[q], acc[r][q]);
    }
}

typedef void (*tile_fn)(size_t kpn, const uint32_t *ap, size_t aps, const uint32_t *bp,
                        size_t bps, size_t nlast, float *c, size_t ldc, const float *bias,
                        int load_c, int gelu);

#define TILE(R, V)                                                                         \
    static void tile_##R##_##V(size_t kpn, const uint32_t *ap, size_t aps,                 \
                               const uint32_t *bp, size_t bps, size_t nlast, float *c,     \
                               size_t ldc, const float *bias, int load_c, int gelu)        \
    {                                                                                      \
        tile(R, V, kpn, ap, aps, bp, bps, nlast, c, ldc, bias, load_c, gelu);              \
    }
#define TILES(R) TILE(R, 1) TILE(R, 2) TILE(R, 3) TILE(R, 4)
TILES(1)
TILES(2)
TILES(3)
TILES(4)
TILES(5)
TILES(6)

static const tile_fn tiles[MR + 1][NV + 1] = {
    {NULL, NULL, NULL, NULL, NULL},
    {NULL, tile_1_1, tile_1_2, tile_1_3, tile_1_4},
    {NULL, tile_2_1, tile_2_2, tile_2_3, tile_2_4},
    {NULL, tile_3_1, tile_3_2, tile_3_3, tile_3_4},
    {NULL, tile_4_1, tile_4_2, tile_4_3, tile_4_4},
    {NULL, tile_5_1, tile_5_2, tile_5_3, tile_5_4},
    {NULL, tile_6_1, tile_6_2, tile_6_3, tile_6_4},
};

static inline size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* C (+)= bf16(A) . B + bias; GELU on the result when `gelu` (no accumulate
 * then; one k block, as the model's K <= 2 KP_MAX, else a second pass). */
static void product(size_t M, size_t N, size_t K, const float *A, size_t lda, const uint16_t *Bp,
                    const float *bias, float *C, size_t ldc, int accumulate, int gelu)
{
    const size_t k2 = (K + 1) / 2, panels = (N + 15) / 16;
    const uint32_t *B = (const uint32_t *)(const void *)Bp; /* read only by intrinsics */
    uint32_t *ap = a_scratch();
    for (size_t kp0 = 0; kp0 < k2; kp0 += KP_MAX) {
        const size_t kpn = min_sz(KP_MAX, k2 - kp0), kn = min_sz(2 * kpn, K - 2 * kp0);
        const size_t aps = (kpn + 15) & ~(size_t)15;
        /* Bias and accumulate start the first block; later blocks continue from C. */
        const float *bias_k = kp0 == 0 ? bias : NULL;
        const int load_c = kp0 == 0 ? accumulate : 1, last = kp0 + kpn >= k2;
        for (size_t i = 0; i < M; i += MR) {
            const size_t mr = min_sz(MR, M - i);
            pack_a(ap, aps, A + i * lda + 2 * kp0, lda, mr, kn);
            for (size_t p = 0; p < panels; p += NV) {
                const size_t v = min_sz(NV, panels - p);
                const size_t nlast = N - (p + v - 1) * 16;
                tiles[mr][v](kpn, ap, aps, B + (p * k2 + kp0) * 16, k2 * 16, nlast,
                             C + i * ldc + p * 16, ldc, bias_k ? bias_k + p * 16 : NULL, load_c,
                             gelu && last);
            }
        }
    }
}

void nu_matmul_bf16_avx512dp(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const uint16_t *Bp, const float *bias, float *C, size_t ldc,
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

void nu_matmul_bf16_gelu_avx512dp(size_t M, size_t N, size_t K, const float *A, size_t lda,
                                  const uint16_t *Bp, const float *bias, float *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        fill_bias_gelu(M, N, bias, C, ldc);
        return;
    }
    product(M, N, K, A, lda, Bp, bias, C, ldc, 0, 1);
}
