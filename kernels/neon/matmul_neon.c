/* Matrix products, NEON (AArch64 Advanced SIMD): GotoBLAS/BLIS-style
 * blocking around an 8 x 12 register tile (24 q-register accumulators + 3
 * for B + the A broadcasts fit in the 32 vector registers; 24 independent
 * FMA chains cover the latency x pipes of current cores).
 *
 * Loop order (K split in KC blocks, N in NC blocks):
 *   jc (NC) -> pc (KC): pack B[KC x NC] into NR-wide panels (stays in L2)
 *     -> ic (MR): pack one MR x KC micro-panel of A (stays in L1)
 *       -> jr (NR): micro-kernel streams one B panel from L2.
 * The three layouts differ only in how panels are packed (transposed or
 * not); the micro-kernel is shared.  Row edges use a kernel specialised to
 * the row count (no wasted FMAs for M = 1); column edges use zero-padded B
 * panels and go through a small stack tile (NEON has no masked stores).
 *
 * Row invariance (nn, tn): the bits of output row i depend only on row i of
 * A, on B, bias, old C row, K and N -- never on M, the path taken or the
 * tile a row lands in -- so a model's output for one item does not depend
 * on the batch it shares.  Every path computes each element in one fixed
 * order: acc = accumulate ? C_old (+ bias) : bias (or 0), then
 * acc = fma(A[i][k], B[k][j], acc) for k = 0, 1, ..., K - 1, then C = acc.
 * K blocks continue the chain from what the previous block stored in C.
 * (nt for M <= 2 uses dot products across k and is not row-invariant.) */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "../gemm_drive.h"
#include "../kernels.h"

#define MR 8
#define NR 12
#define KC 256
#define NC 504 /* a multiple of NR: only the last panel of N is partial */

/* 504 KiB + 8 KiB per thread: bounded scratch, never allocated per call. */

typedef nu_gemm_view view;
_Static_assert(MR <= NU_GEMM_MR_MAX && KC <= NU_GEMM_KC_MAX && NC <= NU_GEMM_NC_MAX,
               "the shared driver's packing buffers are too small");

/* In-register 4 x 4 transpose: r[i][j] -> r[j][i]. */
static inline void transpose4(float32x4_t r[4])
{
    const float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]);
    const float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]);
    const float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
    const float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(d0, d2));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(d1, d3));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(d0, d2));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(d1, d3));
}

/* dst[k * dld + r] = src[r * lds + k] for r < rows (<= 4), zero for
 * rows <= r < 4, k < kc.  dld >= 4 so the 4-wide stores never overlap. */
static void pack_transposed4(float *dst, size_t dld, const float *src, size_t lds,
                             size_t rows, size_t kc)
{
    size_t k = 0;
    for (; rows > 0 && k + 4 <= kc; k += 4) {
        float32x4_t r[4];
        for (size_t i = 0; i < 4; i++)
            r[i] = i < rows ? vld1q_f32(src + i * lds + k) : vdupq_n_f32(0.0f);
        transpose4(r);
        for (size_t i = 0; i < 4; i++)
            vst1q_f32(dst + (k + i) * dld, r[i]);
    }
    for (; k < kc; k++)
        for (size_t i = 0; i < 4; i++)
            dst[k * dld + i] = i < rows ? src[i * lds + k] : 0.0f;
}

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }

/* Rows g..g+3 of a group of `n` rows, clamped to 0..4. */
static size_t rows_in_group(size_t n, size_t g) { return n > g ? min_sz(n - g, 4) : 0; }

/* One MR x kc micro-panel of A: ap[k * MR + r] = A(i0 + r, p0 + k).  Rows
 * past mr hold zeros or junk: the row-specialised kernel never reads them. */
static void pack_a(float *ap, view a, size_t mr, size_t kc)
{
    if (a.cs == 1) { /* nn / nt: rows of A are contiguous in k -> transpose */
        for (size_t g = 0; g < MR; g += 4)
            if (rows_in_group(mr, g))
                pack_transposed4(ap + g, MR, a.p + g * a.rs, a.rs, rows_in_group(mr, g), kc);
    } else { /* tn: the MR rows of one k are contiguous */
        for (size_t k = 0; k < kc; k++)
            memcpy(ap + k * MR, a.p + k * a.cs, mr * sizeof(float));
    }
}

/* kc x nc block of B as NR-wide panels, zero-padded to NR columns:
 * panel q holds bp[q * kc * NR + k * NR + j] = B(p0 + k, j0 + q * NR + j). */
static void pack_b(float *bp, view b, size_t kc, size_t nc)
{
    for (size_t j0 = 0; j0 < nc; j0 += NR, bp += kc * NR) {
        const size_t nr = min_sz(NR, nc - j0);
        if (b.cs == 1) { /* nn / tn: copy row segments */
            const float *src = b.p + j0;
            for (size_t k = 0; k < kc; k++, src += b.rs) {
                if (nr == NR) {
                    vst1q_f32(bp + k * NR, vld1q_f32(src));
                    vst1q_f32(bp + k * NR + 4, vld1q_f32(src + 4));
                    vst1q_f32(bp + k * NR + 8, vld1q_f32(src + 8));
                } else {
                    for (size_t j = 0; j < NR; j++)
                        bp[k * NR + j] = j < nr ? src[j] : 0.0f;
                }
            }
        } else { /* nt: B rows are contiguous in k -> transpose 4 rows at a time */
            for (size_t g = 0; g < NR; g += 4) {
                const size_t rows = rows_in_group(nr, g);
                const float *src = rows ? b.p + (j0 + g) * b.cs : b.p;
                pack_transposed4(bp + g, NR, src, b.cs, rows, kc);
            }
        }
    }
}

/* Start value of one output element (see the header): C_old + bias, C_old
 * (later K blocks and accumulate), bias, or zero. */
static inline float start1(const float *c, const float *bias, int load_c)
{
    if (load_c)
        return bias ? *c + *bias : *c;
    return bias ? *bias : 0.0f;
}

/* start1 for a 4-lane slice of a row (same additions, lane by lane). */
static inline float32x4_t start4(const float *c, const float *bias, int load_c)
{
    if (load_c) {
        const float32x4_t v = vld1q_f32(c);
        return bias ? vaddq_f32(v, vld1q_f32(bias)) : v;
    }
    return bias ? vld1q_f32(bias) : vdupq_n_f32(0.0f);
}

/* One FMA row of the tile; the lane is a literal and R a compile-time
 * constant, so rows past R vanish. */
#define TILE_ROW(r, av, lane)                                                              \
    if (R > r) {                                                                           \
        c0[r] = vfmaq_laneq_f32(c0[r], b0, av, lane);                                      \
        c1[r] = vfmaq_laneq_f32(c1[r], b1, av, lane);                                      \
        c2[r] = vfmaq_laneq_f32(c2[r], b2, av, lane);                                      \
    }

/* The micro-kernel: C[R x nr] = start + Apanel . Bpanel, one FMA chain per
 * element in k order, started from start1 / start4.  R is a compile-time
 * constant at every call and the row loops are fully unrolled, so the
 * accumulator arrays become registers.  A is read as two vectors and used
 * by lane, so 24 accumulators + 3 B + 2 A fit in the 32 registers.  Partial
 * tiles (nr < NR) start from and finish into a stack copy (NEON has no
 * masked loads or stores). */
static inline __attribute__((always_inline)) void
kernel(const int R, size_t kc, const float *a, const float *b, size_t nr, float *c,
       size_t ldc, const float *bias, int load_c)
{
    float32x4_t c0[MR], c1[MR], c2[MR];
    float tile[MR][NR];
    if (nr == NR) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const float *cr = c + (size_t)r * ldc;
            c0[r] = start4(cr, bias, load_c);
            c1[r] = start4(cr + 4, bias ? bias + 4 : NULL, load_c);
            c2[r] = start4(cr + 8, bias ? bias + 8 : NULL, load_c);
        }
    } else {
        for (int r = 0; r < R; r++)
            for (size_t j = 0; j < NR; j++)
                tile[r][j] = j < nr ? start1(c + (size_t)r * ldc + j, bias ? bias + j : NULL,
                                             load_c)
                                    : 0.0f;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            c0[r] = vld1q_f32(tile[r]);
            c1[r] = vld1q_f32(tile[r] + 4);
            c2[r] = vld1q_f32(tile[r] + 8);
        }
    }
    for (size_t k = 0; k < kc; k++, a += MR, b += NR) {
        const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        const float32x4_t a0 = vld1q_f32(a), a1 = R > 4 ? vld1q_f32(a + 4) : a0;
        TILE_ROW(0, a0, 0)
        TILE_ROW(1, a0, 1)
        TILE_ROW(2, a0, 2)
        TILE_ROW(3, a0, 3)
        TILE_ROW(4, a1, 0)
        TILE_ROW(5, a1, 1)
        TILE_ROW(6, a1, 2)
        TILE_ROW(7, a1, 3)
    }
    if (nr == NR) {
#pragma GCC unroll 8
        for (int r = 0; r < R; r++, c += ldc) {
            vst1q_f32(c, c0[r]);
            vst1q_f32(c + 4, c1[r]);
            vst1q_f32(c + 8, c2[r]);
        }
        return;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        vst1q_f32(tile[r], c0[r]);
        vst1q_f32(tile[r] + 4, c1[r]);
        vst1q_f32(tile[r] + 8, c2[r]);
    }
    for (int r = 0; r < R; r++, c += ldc)
        memcpy(c, tile[r], nr * sizeof(float));
}

/* Micro-kernels for each panel height; B is always packed NR wide here, so
 * the driver's row stride bs is NR and unused. */
#define DEFINE_KERNEL(R)                                                                   \
    static void kernel_##R(size_t kc, const float *a, const float *b, size_t bs, size_t nr, \
                           float *c, size_t ldc, const float *bias, int load_c)            \
    {                                                                                      \
        (void)bs;                                                                          \
        kernel(R, kc, a, b, nr, c, ldc, bias, load_c);                                     \
    }
DEFINE_KERNEL(1)
DEFINE_KERNEL(2)
DEFINE_KERNEL(3)
DEFINE_KERNEL(4)
DEFINE_KERNEL(5)
DEFINE_KERNEL(6)
DEFINE_KERNEL(7)
DEFINE_KERNEL(8)

static const nu_gemm_micro_fn kernels_packed[MR + 1] = {
    NULL, kernel_1, kernel_2, kernel_3, kernel_4, kernel_5, kernel_6, kernel_7, kernel_8};

/* Writes c = dot (+ bias) or c += dot (+ bias), as the scalar reference does. */
static inline void put(float *c, float dot, const float *bias, int accumulate)
{
    const float v = dot + (bias ? *bias : 0.0f);
    *c = accumulate ? *c + v : v;
}

/* C for one or two rows (nn / tn, B read in place), in the same
 * per-element order as the micro-kernel (start4, then FMAs in k order):
 * each pass keeps R rows x V * 4 columns in registers over the whole of K,
 * so B is read as contiguous row segments without packing it, and R * V
 * independent FMA chains hide the FMA latency even for M = 1. */
static inline __attribute__((always_inline)) void
strip(const int R, const int V, size_t K, view A, const float *b, size_t ldb, float *c,
      size_t ldc, const float *bias, int accumulate)
{
    float32x4_t acc[2][8], bv[8];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            acc[r][q] = start4(c + (size_t)r * ldc + 4 * q, bias ? bias + 4 * q : NULL,
                               accumulate);
    }
    for (size_t k = 0; k < K; k++, b += ldb) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            bv[q] = vld1q_f32(b + 4 * q);
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const float a = A.p[(size_t)r * A.rs + k * A.cs];
#pragma GCC unroll 8
            for (int q = 0; q < V; q++)
                acc[r][q] = vfmaq_n_f32(acc[r][q], bv[q], a);
        }
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r++, c += ldc) {
#pragma GCC unroll 8
        for (int q = 0; q < V; q++)
            vst1q_f32(c + 4 * q, acc[r][q]);
    }
}

typedef void (*strip_fn)(size_t K, view A, const float *b, size_t ldb, float *c, size_t ldc,
                         const float *bias, int accumulate);

#define DEFINE_STRIP(R, V)                                                                 \
    static void strip_##R##_##V(size_t K, view A, const float *b, size_t ldb, float *c,    \
                                size_t ldc, const float *bias, int accumulate)             \
    {                                                                                      \
        strip(R, V, K, A, b, ldb, c, ldc, bias, accumulate);                               \
    }
DEFINE_STRIP(1, 8)
DEFINE_STRIP(1, 4)
DEFINE_STRIP(1, 1)
DEFINE_STRIP(2, 8)
DEFINE_STRIP(2, 4)
DEFINE_STRIP(2, 1)

/* C = A . B for M <= 2 with B rows contiguous (nn, tn): 32-, 16- then
 * 4-column strips, then single columns (NEON has no masked loads), all in
 * the order of the header. */
static void gemm_rows(size_t M, size_t N, size_t K, view A, const float *B, size_t ldb,
                      const float *bias, float *C, size_t ldc, int accumulate)
{
    const strip_fn s32 = M == 1 ? strip_1_8 : strip_2_8;
    const strip_fn s16 = M == 1 ? strip_1_4 : strip_2_4;
    const strip_fn s4 = M == 1 ? strip_1_1 : strip_2_1;
    size_t j = 0;
    for (; j + 32 <= N; j += 32)
        s32(K, A, B + j, ldb, C + j, ldc, bias ? bias + j : NULL, accumulate);
    for (; j + 16 <= N; j += 16)
        s16(K, A, B + j, ldb, C + j, ldc, bias ? bias + j : NULL, accumulate);
    for (; j + 4 <= N; j += 4)
        s4(K, A, B + j, ldb, C + j, ldc, bias ? bias + j : NULL, accumulate);
    /* fmaf, not a * b + s: the same fused, once-rounded step as vfmaq. */
    for (; j < N; j++)
        for (size_t i = 0; i < M; i++) {
            float s = start1(C + i * ldc + j, bias ? bias + j : NULL, accumulate);
            for (size_t k = 0; k < K; k++)
                s = fmaf(A.p[i * A.rs + k * A.cs], B[k * ldb + j], s);
            C[i * ldc + j] = s;
        }
}

/* Dot product of n floats; four partial sums in vectors, tail in scalar. */
static inline float dot(const float *x, const float *y, size_t n)
{
    float32x4_t s = vdupq_n_f32(0.0f);
    size_t k = 0;
    for (; k + 4 <= n; k += 4)
        s = vfmaq_f32(s, vld1q_f32(x + k), vld1q_f32(y + k));
    float t = vaddvq_f32(s);
    for (; k < n; k++)
        t += x[k] * y[k];
    return t;
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
            float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
            size_t k = 0;
            for (; k + 4 <= K; k += 4) {
                const float32x4_t a = vld1q_f32(A + k);
                s0 = vfmaq_f32(s0, a, vld1q_f32(b + k));
                s1 = vfmaq_f32(s1, a, vld1q_f32(b + ldb + k));
                s2 = vfmaq_f32(s2, a, vld1q_f32(b + 2 * ldb + k));
                s3 = vfmaq_f32(s3, a, vld1q_f32(b + 3 * ldb + k));
            }
            float t[4] = {vaddvq_f32(s0), vaddvq_f32(s1), vaddvq_f32(s2), vaddvq_f32(s3)};
            for (; k < K; k++)
                for (size_t q = 0; q < 4; q++)
                    t[q] += A[k] * b[q * ldb + k];
            for (size_t q = 0; q < 4; q++)
                put(C + j + q, t[q], bias ? bias + j + q : NULL, accumulate);
        }
        for (; j < N; j++)
            put(C + j, dot(A, B + j * ldb, K), bias ? bias + j : NULL, accumulate);
    }
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
static const nu_gemm_isa gemm_isa = {MR, NR, KC, NC, kernels_packed, NULL, pack_a, pack_b,
                                     gemm_rows, fill_bias, NULL};

/* C = A(M x K) . B(K x N) (+ bias) for any strided views of A and B. */
static void gemm(size_t M, size_t N, size_t K, view A, view B, const float *bias, float *C,
                 size_t ldc, int accumulate)
{
    nu_gemm_drive(&gemm_isa, M, N, K, A, B, bias, C, ldc, accumulate);
}

static void matmul_nn_neon(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *B, size_t ldb, const float *bias, float *C, size_t ldc,
                           int accumulate)
{
    gemm(M, N, K, (view){A, lda, 1}, (view){B, ldb, 1}, bias, C, ldc, accumulate);
}

static void matmul_nt_neon(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *B, size_t ldb, const float *bias, float *C, size_t ldc,
                           int accumulate)
{
    if (M <= 2) /* as on x86: dot products beat packing (transposing) B */
        nt_rows_dot(M, N, K, A, lda, B, ldb, bias, C, ldc, accumulate);
    else
        gemm(M, N, K, (view){A, lda, 1}, (view){B, 1, ldb}, bias, C, ldc, accumulate);
}

static void matmul_tn_neon(size_t M, size_t N, size_t K, const float *A, size_t lda,
                           const float *B, size_t ldb, const float *bias, float *C, size_t ldc,
                           int accumulate)
{
    gemm(M, N, K, (view){A, 1, lda}, (view){B, ldb, 1}, bias, C, ldc, accumulate);
}

void nu_fill_matmul_neon(nu_kernel_table *t)
{
    t->matmul_nn = matmul_nn_neon;
    t->matmul_nt = matmul_nt_neon;
    t->matmul_tn = matmul_tn_neon;
}
