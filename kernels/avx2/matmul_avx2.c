/* Matrix products, AVX2 + FMA: GotoBLAS/BLIS-style blocking around a 6 x 16
 * register tile (12 ymm accumulators: more than the 2 pipes x 4 cycles = 8
 * independent FMA chains Zen 4 needs, and 12 + 2 B + 1 A fit in 16 ymm).
 *
 * Loop order (K split in KC blocks, N in NC blocks):
 *   jc (NC) -> pc (KC): pack B[KC x NC] into NR-wide panels (stays in L2)
 *     -> ic (MR): pack one MR x KC micro-panel of A (stays in L1)
 *       -> jr (NR): micro-kernel streams one B panel from L2.
 * The three layouts differ only in how panels are packed (transposed or
 * not); the micro-kernel is shared.  Row edges use a kernel specialised to
 * the row count (no wasted FMAs for M = 1); column edges use zero-padded B
 * panels and masked C loads/stores.  For small M (up to two row panels)
 * packing B would cost as much as the product, so nn/tn read B in place;
 * one or two rows use wide strips instead, nt dot products.
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

#define MR 6
#define NR 16
#define KC 256
#define NC 512

/* 512 KiB + 6 KiB per thread: bounded scratch, never allocated per call.
 * a_pack has 8 floats of slack for the overlapping 8-wide stores below. */

typedef nu_gemm_view view;
_Static_assert(MR <= NU_GEMM_MR_MAX && KC <= NU_GEMM_KC_MAX && NC <= NU_GEMM_NC_MAX,
               "the shared driver's packing buffers are too small");

/* Lane mask selecting the first n (clamped to 0..8) lanes. */
static inline __m256i mask8(size_t n)
{
    const int m = n > 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* In-register 8 x 8 transpose: r[i][j] -> r[j][i]. */
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

/* dst[k * dld + r] = src[r * lds + k] for r < rows, zero for rows <= r <
 * width, k < kc (rows <= width <= 8).  When dld < 8 the 8-wide stores
 * overlap the next k's slots; they go in increasing k so each is fixed by
 * the next, and the last spills 8 - dld floats (the buffer has slack). */
static void pack_transposed8(float *dst, size_t dld, size_t width, const float *src,
                             size_t lds, size_t rows, size_t kc)
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
        for (size_t i = 0; i < width; i++)
            dst[k * dld + i] = i < rows ? src[i * lds + k] : 0.0f;
}

/* One MR x kc micro-panel of A: ap[k * MR + r] = A(i0 + r, p0 + k).  Rows
 * past mr hold zeros or junk: the row-specialised kernel never reads them. */
static void pack_a(float *ap, view a, size_t mr, size_t kc)
{
    if (a.cs == 1) { /* nn / nt: rows of A are contiguous in k -> transpose */
        pack_transposed8(ap, MR, MR, a.p, a.rs, mr, kc);
    } else { /* tn: the MR rows of one k are contiguous (overlapping stores, see above) */
        const __m256i m = mask8(mr);
        for (size_t k = 0; k < kc; k++)
            _mm256_storeu_ps(ap + k * MR, _mm256_maskload_ps(a.p + k * a.cs, m));
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
            const __m256i m0 = mask8(nr), m1 = mask8(nr > 8 ? nr - 8 : 0);
            for (size_t k = 0; k < kc; k++, src += b.rs) {
                _mm256_store_ps(bp + k * NR, _mm256_maskload_ps(src, m0));
                _mm256_store_ps(bp + k * NR + 8, _mm256_maskload_ps(src + 8, m1));
            }
        } else { /* nt: B rows are contiguous in k -> transpose 8 rows at a time */
            for (size_t g = 0; g < NR; g += 8) {
                const size_t rows = nr > g ? (nr - g < 8 ? nr - g : 8) : 0;
                pack_transposed8(bp + g, NR, 8, rows ? b.p + (j0 + g) * b.cs : b.p, b.cs, rows, kc);
            }
        }
    }
}

/* Start value of one 8-column slice of an output row (see the header):
 * C_old + bias, C_old (later K blocks and accumulate), bias, or zero.
 * full: all 8 lanes are in the matrix (plain loads). */
static inline __m256 start8(const float *c, const float *bias, __m256i m, int load_c,
                            int full)
{
    if (load_c) {
        const __m256 v = full ? _mm256_loadu_ps(c) : _mm256_maskload_ps(c, m);
        if (!bias)
            return v;
        return _mm256_add_ps(v, full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m));
    }
    if (!bias)
        return _mm256_setzero_ps();
    return full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m);
}

/* The micro-kernel: C[R x nr] = start + Apanel . Bpanel, one FMA chain per
 * element in k order, started from start8.  R is a compile-time constant
 * at every call and the row loops are fully unrolled, so the accumulator
 * arrays become registers.  bs: B row stride (NR for a packed panel, ldb in
 * place); masked B loads only when reading B in place (its columns may end
 * early). */
static inline __attribute__((always_inline)) void
kernel(const int R, size_t kc, const float *a, const float *b, size_t bs, size_t nr,
       float *c, size_t ldc, const float *bias, int load_c, const int in_place)
{
    const __m256i m0 = mask8(nr), m1 = mask8(nr > 8 ? nr - 8 : 0);
    const int full = nr == NR;
    __m256 c0[MR], c1[MR];
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        c0[r] = start8(c + (size_t)r * ldc, bias, m0, load_c, full);
        c1[r] = start8(c + (size_t)r * ldc + 8, bias ? bias + 8 : NULL, m1, load_c, full);
    }
    for (size_t k = 0; k < kc; k++, a += MR, b += bs) {
        const __m256 b0 = in_place ? _mm256_maskload_ps(b, m0) : _mm256_load_ps(b);
        const __m256 b1 = in_place ? _mm256_maskload_ps(b + 8, m1) : _mm256_load_ps(b + 8);
        #pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const __m256 av = _mm256_broadcast_ss(a + r);
            c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
        }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; r++, c += ldc) {
        if (full) { /* full tile: plain stores */
            _mm256_storeu_ps(c, c0[r]);
            _mm256_storeu_ps(c + 8, c1[r]);
        } else {
            _mm256_maskstore_ps(c, m0, c0[r]);
            _mm256_maskstore_ps(c + 8, m1, c1[r]);
        }
    }
}

/* kernel(R, ...) above, as the driver's packed and in-place micro-kernels. */
NU_GEMM_DEFINE_KERNELS(1)
NU_GEMM_DEFINE_KERNELS(2)
NU_GEMM_DEFINE_KERNELS(3)
NU_GEMM_DEFINE_KERNELS(4)
NU_GEMM_DEFINE_KERNELS(5)
NU_GEMM_DEFINE_KERNELS(6)

static const nu_gemm_micro_fn kernels_packed[MR + 1] = {
    NULL,            kernel_packed_1, kernel_packed_2, kernel_packed_3,
    kernel_packed_4, kernel_packed_5, kernel_packed_6};
static const nu_gemm_micro_fn kernels_in_place[MR + 1] = {
    NULL,              kernel_in_place_1, kernel_in_place_2, kernel_in_place_3,
    kernel_in_place_4, kernel_in_place_5, kernel_in_place_6};

/* C for one or two rows (nn / tn, B read in place), in the same
 * per-element order as the micro-kernel (start8, then FMAs in k order):
 * each pass keeps R rows x V * 8 columns in registers over the whole of K,
 * so B is read as long contiguous row segments (the NR-wide in-place tiles
 * would step through B 64 bytes per row, page after page) and R * V
 * independent FMA chains hide the FMA latency even for M = 1.  masked: the
 * last, narrower strip. */
static inline __attribute__((always_inline)) void
strip(const int R, const int V, const int masked, size_t K, view A, const float *b,
      size_t ldb, size_t n, float *c, size_t ldc, const float *bias, int accumulate)
{
    __m256i m[12];
    __m256 acc[2][12], bv[12];
#pragma GCC unroll 12
    for (int q = 0; q < V; q++)
        m[q] = masked ? mask8(n > (size_t)q * 8 ? n - (size_t)q * 8 : 0) : _mm256_set1_epi32(-1);
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 12
        for (int q = 0; q < V; q++)
            acc[r][q] = start8(c + (size_t)r * ldc + 8 * q, bias ? bias + 8 * q : NULL, m[q],
                               accumulate, !masked);
    }
    for (size_t k = 0; k < K; k++, b += ldb) {
#pragma GCC unroll 12
        for (int q = 0; q < V; q++)
            bv[q] = masked ? _mm256_maskload_ps(b + 8 * q, m[q]) : _mm256_loadu_ps(b + 8 * q);
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const __m256 av = _mm256_broadcast_ss(A.p + (size_t)r * A.rs + k * A.cs);
#pragma GCC unroll 12
            for (int q = 0; q < V; q++)
                acc[r][q] = _mm256_fmadd_ps(av, bv[q], acc[r][q]);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r++, c += ldc) {
#pragma GCC unroll 12
        for (int q = 0; q < V; q++) {
            if (masked)
                _mm256_maskstore_ps(c + 8 * q, m[q], acc[r][q]);
            else
                _mm256_storeu_ps(c + 8 * q, acc[r][q]);
        }
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
/* One row: up to 12 ymm wide (B loads fold into the FMAs: 12 accumulators
 * + 1 A); two rows: 4 ymm, so 8 accumulators + 4 B + 1 A fit in 16
 * registers.  Wide strips matter: B rows are far apart, and each strip is a
 * run of short contiguous reads (measured: 96 columns ~1.5x faster than 64).
 * The remainder goes in unmasked 64- and 32-column strips, then one masked
 * 4-ymm strip (masked strips keep their masks in registers too). */
DEFINE_STRIP(1, 12, 0, strip_1_v12)
DEFINE_STRIP(1, 8, 0, strip_1_v8)
DEFINE_STRIP(1, 4, 0, strip_1_v4)
DEFINE_STRIP(1, 4, 1, strip_1_v4_masked)
DEFINE_STRIP(2, 4, 0, strip_2_v4)
DEFINE_STRIP(2, 4, 1, strip_2_v4_masked)

/* C = A . B for M <= 2 with B rows contiguous (nn, tn). */
static void gemm_rows(size_t M, size_t N, size_t K, view A, const float *B, size_t ldb,
                      const float *bias, float *C, size_t ldc, int accumulate)
{
    size_t j = 0;
#define RUN_STRIPS(fn, w)                                                                  \
    for (; j + (w) <= N; j += (w))                                                         \
        fn(K, A, B + j, ldb, (w), C + j, ldc, bias ? bias + j : NULL, accumulate);
    if (M == 1) {
        RUN_STRIPS(strip_1_v12, 96)
        RUN_STRIPS(strip_1_v8, 64)
        RUN_STRIPS(strip_1_v4, 32)
    } else {
        RUN_STRIPS(strip_2_v4, 32)
    }
#undef RUN_STRIPS
    if (j < N)
        (M == 1 ? strip_1_v4_masked : strip_2_v4_masked)(
            K, A, B + j, ldb, N - j, C + j, ldc, bias ? bias + j : NULL, accumulate);
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
                                     gemm_rows, fill_bias, NULL};

/* C = A(M x K) . B(K x N) (+ bias) for any strided views of A and B. */
static void gemm(size_t M, size_t N, size_t K, view A, view B, const float *bias, float *C,
                 size_t ldc, int accumulate)
{
    nu_gemm_drive(&gemm_isa, M, N, K, A, B, bias, C, ldc, accumulate);
}

static void matmul_nn_avx2(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *B, size_t ldb, const float *bias, float *C, size_t ldc,
                           int accumulate)
{
    gemm(M, N, K, (view){A, lda, 1}, (view){B, ldb, 1}, bias, C, ldc, accumulate);
}

/* Writes c = dot (+ bias) or c += dot (+ bias), as the scalar reference does. */
static inline void put(float *c, float dot, const float *bias, int accumulate)
{
    const float v = dot + (bias ? *bias : 0.0f);
    *c = accumulate ? *c + v : v;
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
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
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (size_t k = 0; k < K; k += 8) {
                const __m256i m = mask8(K - k);
                const __m256 a = _mm256_maskload_ps(A + k, m);
                s0 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + k, m), s0);
                s1 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + ldb + k, m), s1);
                s2 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + 2 * ldb + k, m), s2);
                s3 = _mm256_fmadd_ps(a, _mm256_maskload_ps(b + 3 * ldb + k, m), s3);
            }
            put(C + j, hsum(s0), bias ? bias + j : NULL, accumulate);
            put(C + j + 1, hsum(s1), bias ? bias + j + 1 : NULL, accumulate);
            put(C + j + 2, hsum(s2), bias ? bias + j + 2 : NULL, accumulate);
            put(C + j + 3, hsum(s3), bias ? bias + j + 3 : NULL, accumulate);
        }
        for (; j < N; j++) {
            __m256 s = _mm256_setzero_ps();
            for (size_t k = 0; k < K; k += 8) {
                const __m256i m = mask8(K - k);
                s = _mm256_fmadd_ps(_mm256_maskload_ps(A + k, m),
                                    _mm256_maskload_ps(B + j * ldb + k, m), s);
            }
            put(C + j, hsum(s), bias ? bias + j : NULL, accumulate);
        }
    }
}

static void matmul_nt_avx2(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *B, size_t ldb, const float *bias, float *C, size_t ldc,
                           int accumulate)
{
    if (M <= 2) /* measured: faster than packing up to 2 rows */
        nt_rows_dot(M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate);
    else
        gemm(M, N, K, (view){A, lda, 1}, (view){B, 1, ldb}, bias, C, ldc, accumulate);
}

static void matmul_tn_avx2(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *B, size_t ldb, const float *bias, float *C, size_t ldc,
                           int accumulate)
{
    gemm(M, N, K, (view){A, 1, lda}, (view){B, ldb, 1}, bias, C, ldc, accumulate);
}

void nu_fill_matmul_avx2(nu_kernel_table *t)
{
    t->matmul_nn = matmul_nn_avx2;
    t->matmul_nt = matmul_nt_avx2;
    t->matmul_tn = matmul_tn_avx2;
}
