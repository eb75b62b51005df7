/* Matrix products, AVX-512: GotoBLAS/BLIS-style blocking around an 8 x 32
 * register tile (16 zmm accumulators = 32 independent 256-bit FMA chains,
 * enough for Zen 4's 2 pipes x 4 cycles even though it splits 512-bit ops).
 *
 * Loop order (K split in KC blocks, N in NC blocks):
 *   jc (NC) -> pc (KC): pack B[KC x NC] into NR-wide panels (stays in L2)
 *     -> ic (MR): pack one MR x KC micro-panel of A (stays in L1)
 *       -> jr (NR): micro-kernel streams one B panel from L2.
 * The three layouts differ only in how panels are packed (transposed or
 * not); the micro-kernel is shared.  Row edges use a kernel specialised to
 * the row count (no wasted FMAs for M = 1); column edges use zero-padded B
 * panels and masked C stores.  For small M (up to two row panels) packing B
 * would cost as much as the product, so nn/tn read B in place with masked
 * loads; one or two rows use wide strips instead, nt dot products.  tn,
 * and nn / nt with small K or A, skip A's packing: kernel_direct_R
 * broadcasts A's elements from where they lie (gemm_drive.h).
 *
 * Row invariance (nn, tn): the bits of output row i depend only on row i of
 * A, on B, bias, old C row, K and N -- never on M, the path taken or the
 * tile a row lands in -- so a model's output for one item does not depend
 * on the batch it shares.  Every path computes each element in one fixed
 * order: acc = accumulate ? C_old (+ bias) : bias (or 0), then
 * acc = fma(A[i][k], B[k][j], acc) for k = 0, 1, ..., K - 1, then C = acc.
 * K blocks continue the chain from what the previous block stored in C.
 * (nt for M <= 2 uses dot products across k and is not row-invariant.) */
#include <immintrin.h>

#include "../gemm_drive.h"
#include "../kernels.h"
#include "matmul_f32p_avx512.h"

#define MR 8
#define NR 32
#define KC 256
#define NC 512

/* 512 KiB + 8 KiB per thread: bounded scratch, never allocated per call. */

typedef nu_gemm_view view;
_Static_assert(MR <= NU_GEMM_MR_MAX && KC <= NU_GEMM_KC_MAX && NC <= NU_GEMM_NC_MAX,
               "the shared driver's packing buffers are too small");

static inline __mmask16 mask16(size_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* In-register 8 x 8 transpose (AVX): r[i][j] -> r[j][i]. */
static inline void transpose8(__m256 r[8])
{
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

/* dst[k * dld + r] = src[r * lds + k] for r < rows (<= 8), zero for
 * rows <= r < 8, k < kc.  dld >= 8 here, so 8-wide stores never overlap. */
static void pack_transposed8(float *dst, size_t dld, const float *src, size_t lds,
                             size_t rows, size_t kc)
{
    size_t k = 0;
    for (; rows > 0 && k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (size_t i = 0; i < 8; i++)
            r[i] = i < rows ? _mm256_loadu_ps(src + i * lds + k) : _mm256_setzero_ps();
        transpose8(r);
        for (size_t i = 0; i < 8; i++)
            _mm256_storeu_ps(dst + (k + i) * dld, r[i]);
    }
    for (; k < kc; k++)
        for (size_t i = 0; i < 8; i++)
            dst[k * dld + i] = i < rows ? src[i * lds + k] : 0.0f;
}

/* One MR x kc micro-panel of A: ap[k * MR + r] = A(i0 + r, p0 + k).  Rows
 * past mr are left unset: the row-specialised kernel never reads them. */
static void pack_a(float *ap, view a, size_t mr, size_t kc)
{
    if (a.cs == 1) { /* nn / nt: rows of A are contiguous in k -> transpose */
        pack_transposed8(ap, MR, a.p, a.rs, mr, kc);
    } else { /* tn: the MR rows of one k are contiguous */
        const __mmask8 m = (__mmask8)((1u << mr) - 1u);
        for (size_t k = 0; k < kc; k++)
            _mm256_store_ps(ap + k * MR, _mm256_maskz_loadu_ps(m, a.p + k * a.cs));
    }
}

/* kc x nc block of B as NR-wide panels, zero-padded to NR columns:
 * panel q holds bp[q * kc * NR + k * NR + j] = B(p0 + k, j0 + q * NR + j). */
static void pack_b(float *bp, view b, size_t kc, size_t nc)
{
    for (size_t j0 = 0; j0 < nc; j0 += NR, bp += kc * NR) {
        const size_t nr = nc - j0 < NR ? nc - j0 : NR;
        if (b.cs == 1) { /* nn / tn: copy row segments */
            const float *src = b.p + j0;
            const __mmask16 m0 = mask16(nr), m1 = mask16(nr > 16 ? nr - 16 : 0);
            for (size_t k = 0; k < kc; k++, src += b.rs) {
                _mm512_store_ps(bp + k * NR, _mm512_maskz_loadu_ps(m0, src));
                _mm512_store_ps(bp + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        } else { /* nt: B rows are contiguous in k -> transpose 8 rows at a time */
            for (size_t g = 0; g < NR; g += 8) {
                const size_t rows = nr > g ? (nr - g < 8 ? nr - g : 8) : 0;
                pack_transposed8(bp + g, NR, rows ? b.p + (j0 + g) * b.cs : b.p, b.cs, rows, kc);
            }
        }
    }
}

/* Start value of one 16-column slice of an output row (see the header):
 * C_old + bias, C_old (later K blocks and accumulate), bias, or zero. */
static inline __m512 start16(const float *c, const float *bias, __mmask16 m, int load_c)
{
    if (load_c) {
        const __m512 v = _mm512_maskz_loadu_ps(m, c);
        return bias ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias)) : v;
    }
    return bias ? _mm512_maskz_loadu_ps(m, bias) : _mm512_setzero_ps();
}

/* Where the micro-kernel reads A: a packed panel (element (r, k) at
 * a[k * MR + r]), or A in place with its rows' elements adjacent for one k
 * (a[k * acs + r]: tn's A^T) or along k (a[r * ars + k]: nn / nt). */
enum { A_PACKED, A_K_MAJOR, A_ROW_MAJOR };

/* The micro-kernel: C[R x nr] = start + Apanel . Bpanel, one FMA chain per
 * element in k order, started from start16.  R is a compile-time constant
 * at every call and the row loops are fully unrolled, so the accumulator
 * arrays become registers.  bs: B row stride (NR for a packed panel, ldb in
 * place); masked B loads only when reading B in place (its columns may end
 * early).  a_mode (A_*) and the strides say where A's elements are; the
 * order of the FMAs does not depend on it. */
static inline __attribute__((always_inline)) void
kernel_a(const int R, size_t kc, const float *a, size_t ars, size_t acs, const int a_mode,
         const float *b, size_t bs, size_t nr, float *c, size_t ldc, const float *bias,
         int load_c, const int in_place)
{
    const __mmask16 m0 = mask16(nr), m1 = mask16(nr > 16 ? nr - 16 : 0);
    const size_t a_step = a_mode == A_PACKED ? MR : a_mode == A_K_MAJOR ? acs : 1;
    const float *ar[MR];
    __m512 c0[MR], c1[MR];
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        ar[r] = a_mode == A_ROW_MAJOR ? a + (size_t)r * ars : a + r;
        c0[r] = start16(c + (size_t)r * ldc, bias, m0, load_c);
        c1[r] = start16(c + (size_t)r * ldc + 16, bias ? bias + 16 : NULL, m1, load_c);
    }
    for (size_t k = 0; k < kc; k++, b += bs) {
        const __m512 b0 = in_place ? _mm512_maskz_loadu_ps(m0, b) : _mm512_load_ps(b);
        const __m512 b1 = in_place ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_load_ps(b + 16);
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(a_mode == A_ROW_MAJOR ? ar[r][k] : a[r]);
            c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
        }
        a += a_step;
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++, c += ldc) {
        _mm512_mask_storeu_ps(c, m0, c0[r]);
        _mm512_mask_storeu_ps(c + 16, m1, c1[r]);
    }
}

static inline __attribute__((always_inline)) void
kernel(const int R, size_t kc, const float *a, const float *b, size_t bs, size_t nr,
       float *c, size_t ldc, const float *bias, int load_c, const int in_place)
{
    kernel_a(R, kc, a, 1, MR, A_PACKED, b, bs, nr, c, ldc, bias, load_c, in_place);
}

/* kernel(R, ...) above, as the driver's packed and in-place micro-kernels,
 * and kernel_direct_R reading A in place (B packed). */
#define DEFINE_KERNELS(R)                                                                  \
    NU_GEMM_DEFINE_KERNELS(R)                                                              \
    static void kernel_direct_##R(size_t kc, const float *a, size_t ars, size_t acs,       \
                                  const float *b, size_t nr, float *c, size_t ldc,         \
                                  const float *bias, int load_c)                           \
    {                                                                                      \
        if (acs == 1)                                                                      \
            kernel_a(R, kc, a, ars, 1, A_ROW_MAJOR, b, NR, nr, c, ldc, bias, load_c, 0);   \
        else                                                                               \
            kernel_a(R, kc, a, 1, acs, A_K_MAJOR, b, NR, nr, c, ldc, bias, load_c, 0);     \
    }
DEFINE_KERNELS(1)
DEFINE_KERNELS(2)
DEFINE_KERNELS(3)
DEFINE_KERNELS(4)
DEFINE_KERNELS(5)
DEFINE_KERNELS(6)
DEFINE_KERNELS(7)
DEFINE_KERNELS(8)

static const nu_gemm_micro_fn kernels_packed[MR + 1] = {
    NULL, kernel_packed_1, kernel_packed_2, kernel_packed_3, kernel_packed_4,
    kernel_packed_5, kernel_packed_6, kernel_packed_7, kernel_packed_8};
static const nu_gemm_micro_fn kernels_in_place[MR + 1] = {
    NULL, kernel_in_place_1, kernel_in_place_2, kernel_in_place_3, kernel_in_place_4,
    kernel_in_place_5, kernel_in_place_6, kernel_in_place_7, kernel_in_place_8};
static const nu_gemm_direct_fn kernels_direct[MR + 1] = {
    NULL, kernel_direct_1, kernel_direct_2, kernel_direct_3, kernel_direct_4,
    kernel_direct_5, kernel_direct_6, kernel_direct_7, kernel_direct_8};

/* C for one or two rows (nn / tn, B read in place), in the same
 * per-element order as the micro-kernel (start16, then FMAs in k order):
 * each pass keeps R rows x V * 16 columns in registers over the whole of K,
 * so B is read as long contiguous row segments (the NR-wide in-place tiles
 * would step through B 128 bytes per row, page after page) and R * V
 * independent FMA chains hide the FMA latency even for M = 1.  masked: the
 * last, narrower strip. */
static inline __attribute__((always_inline)) void
strip(const int R, const int V, const int masked, size_t K, view A, const float *b,
      size_t ldb, size_t n, float *c, size_t ldc, const float *bias, int accumulate)
{
    __mmask16 m[8];
    __m512 acc[2][8], bv[8];
#pragma GCC unroll 8
    for (int q = 0; q < V; q++)
        m[q] = masked ? mask16(n > (size_t)q * 16 ? n - (size_t)q * 16 : 0) : 0xFFFF;
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            acc[r][q] = start16(c + (size_t)r * ldc + 16 * q,
                                bias ? bias + 16 * q : NULL, m[q], accumulate);
    }
    for (size_t k = 0; k < K; k++, b += ldb) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            bv[q] = masked ? _mm512_maskz_loadu_ps(m[q], b + 16 * q) : _mm512_loadu_ps(b + 16 * q);
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const __m512 av = _mm512_set1_ps(A.p[(size_t)r * A.rs + k * A.cs]);
#pragma GCC unroll 8
            for (int q = 0; q < V; q++)
                acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r++, c += ldc) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            _mm512_mask_storeu_ps(c + 16 * q, m[q], acc[r][q]);
    }
}

typedef void (*strip_fn)(size_t K, view A, const float *b, size_t ldb, size_t n, float *c,
                         size_t ldc, const float *bias, int accumulate);

#define DEFINE_STRIP(R, V, MASKED, NAME)                                                   \
    static void NAME(size_t K, view A, const float *b, size_t ldb, size_t n, float *c,     \
                     size_t ldc, const float *bias, int accumulate)                        \
    {                                                                                      \
        strip(R, V, MASKED, K, A, b, ldb, n, c, ldc, bias, accumulate);                    \
    }
DEFINE_STRIP(1, 8, 0, strip_1_full)
DEFINE_STRIP(1, 8, 1, strip_1_m8)
DEFINE_STRIP(1, 4, 1, strip_1_m4)
DEFINE_STRIP(2, 8, 0, strip_2_full)
DEFINE_STRIP(2, 8, 1, strip_2_m8)
DEFINE_STRIP(2, 4, 1, strip_2_m4)

#define STRIP_W 128 /* columns of a full strip: 8 zmm */

/* C = A . B for M <= 2 with B rows contiguous (nn, tn). */
static void gemm_rows(size_t M, size_t N, size_t K, view A, const float *B, size_t ldb,
                      const float *bias, float *C, size_t ldc, int accumulate)
{
    const strip_fn full = M == 1 ? strip_1_full : strip_2_full;
    const strip_fn m8 = M == 1 ? strip_1_m8 : strip_2_m8;
    const strip_fn m4 = M == 1 ? strip_1_m4 : strip_2_m4;
    size_t j = 0;
    for (; j + STRIP_W <= N; j += STRIP_W)
        full(K, A, B + j, ldb, STRIP_W, C + j, ldc, bias ? bias + j : NULL, accumulate);
    if (j < N)
        (N - j <= STRIP_W / 2 ? m4 : m8)(K, A, B + j, ldb, N - j, C + j, ldc,
                                         bias ? bias + j : NULL, accumulate);
}

/* K == 0: the product is empty, C = bias (or 0), or C = C_old + bias: the
 * start value of every other path. */
static void fill_bias(size_t M, size_t N, const float *bias, float *C, size_t ldc,
                      int accumulate)
{
    for (size_t i = 0; i < M; i++, C += ldc)
        for (size_t j = 0; j < N; j++) {
            const float v = bias ? bias[j] : 0.0f;
            C[j] = accumulate ? C[j] + v : v;
        }
}

/* This ISA's pieces for the shared blocking loop (gemm_drive.c). */
static const nu_gemm_isa gemm_isa = {MR, NR, KC, NC, kernels_packed, kernels_in_place, pack_a, pack_b,
                                     gemm_rows, fill_bias, kernels_direct};

/* C = A(M x K) . B(K x N) (+ bias) for any strided views of A and B. */
static void gemm(size_t M, size_t N, size_t K, view A, view B, const float *bias, float *C,
                 size_t ldc, int accumulate)
{
    nu_gemm_drive(&gemm_isa, M, N, K, A, B, bias, C, ldc, accumulate);
}

static void matmul_nn_avx512(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *B, size_t ldb, const float *bias, float *C,
                             size_t ldc, int accumulate)
{
    gemm(M, N, K, (view){A, lda, 1}, (view){B, ldb, 1}, bias, C, ldc, accumulate);
}

/* Writes c = dot (+ bias) or c += dot (+ bias), as the scalar reference does. */
static inline void put(float *c, float dot, const float *bias, int accumulate)
{
    const float v = dot + (bias ? *bias : 0.0f);
    *c = accumulate ? *c + v : v;
}

/* nt for one or two rows of A: C[i][j] = A_i . B_j as dot products along the
 * contiguous k of both rows, four B rows at a time.  Packing B here would be
 * a full transpose of B for a product that reads B only once. */
static void nt_rows_dot(size_t M, size_t N, size_t K, const float *A, size_t lda,
                        const float *B, size_t ldb, const float *bias, float *C, size_t ldc,
                        int accumulate)
{
    for (size_t i = 0; i < M; i++, A += lda, C += ldc) {
        size_t j = 0;
        for (; j + 4 <= N; j += 4) {
            const float *b = B + j * ldb;
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t k = 0; k < K; k += 16) {
                const __mmask16 m = mask16(K - k);
                const __m512 a = _mm512_maskz_loadu_ps(m, A + k);
                s0 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, b + k), s0);
                s1 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, b + ldb + k), s1);
                s2 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, b + 2 * ldb + k), s2);
                s3 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, b + 3 * ldb + k), s3);
            }
            put(C + j, _mm512_reduce_add_ps(s0), bias ? bias + j : NULL, accumulate);
            put(C + j + 1, _mm512_reduce_add_ps(s1), bias ? bias + j + 1 : NULL, accumulate);
            put(C + j + 2, _mm512_reduce_add_ps(s2), bias ? bias + j + 2 : NULL, accumulate);
            put(C + j + 3, _mm512_reduce_add_ps(s3), bias ? bias + j + 3 : NULL, accumulate);
        }
        for (; j < N; j++) {
            __m512 s = _mm512_setzero_ps();
            for (size_t k = 0; k < K; k += 16) {
                const __mmask16 m = mask16(K - k);
                s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, A + k),
                                    _mm512_maskz_loadu_ps(m, B + j * ldb + k), s);
            }
            put(C + j, _mm512_reduce_add_ps(s), bias ? bias + j : NULL, accumulate);
        }
    }
}

static void matmul_nt_avx512(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *B, size_t ldb, const float *bias, float *C,
                             size_t ldc, int accumulate)
{
    if (M <= 2) /* measured: faster than packing up to 2 rows */
        nt_rows_dot(M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate);
    else
        gemm(M, N, K, (view){A, lda, 1}, (view){B, 1, ldb}, bias, C, ldc, accumulate);
}

static void matmul_tn_avx512(size_t M, size_t N, size_t K, const float *A, size_t lda,
                             const float *B, size_t ldb, const float *bias, float *C,
                             size_t ldc, int accumulate)
{
    if (M >= 3 && N > 0 && K > 0) { /* the same bits from matmul_f32p's wider tiles */
        nu_matmul_tn_panels_avx512(M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate);
        return;
    }
    gemm(M, N, K, (view){A, 1, lda}, (view){B, ldb, 1}, bias, C, ldc, accumulate);
}

void nu_fill_matmul_avx512(nu_kernel_table *t)
{
    t->matmul_nn = matmul_nn_avx512;
    t->matmul_nt = matmul_nt_avx512;
    t->matmul_tn = matmul_tn_avx512;
}
