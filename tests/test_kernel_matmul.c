/* Kernel tests for matmul_nn / matmul_nt / matmul_tn.
 *
 * 1. The scalar reference is checked against a double-precision naive
 *    product written here.
 * 2. Every other ISA this host runs is checked against the scalar table.
 * Shapes cover M = 1, sizes that are not multiples of any vector width or
 * tile, K = 0, M = 0, N = 0, bias NULL / non-NULL, accumulate 0 / 1, row
 * strides larger than the row width, misaligned pointers, and shapes larger
 * than the blocking sizes (K > KC, N > NC, many row panels).
 *
 * Tolerances.  For one output, let S = sum_k |a_ik b_kj| + |bias_j| + |C_old|
 * (the magnitudes that enter the sum) and u = 2^-24.  Any fp32 evaluation of
 * that sum, in any order, with or without FMA, blocked over K or not, has
 * |error| <= gamma_(K+2) S ~ (K + 2) u S (Higham, dot products: the sum has
 * K products plus bias plus old C).  So the scalar result must be within
 * 1.01 (K + 2) u S of the exact (double) value and two fp32 implementations
 * within twice that of each other; 1e-6 absolute covers S ~ 0.  The bound is
 * rigorous, so the test is never flaky, yet a dropped or doubled term
 * (typically ~S / K) is far beyond it for every K used here (K < 2000).
 * Elements of C outside the M x N block (row padding, guards) must be
 * bit-for-bit untouched.
 *
 * 3. Row invariance (check_row_invariance): the model stacks the tokens of
 *    many items into one A and calls matmul_nn once, and its output for an
 *    item must be bit-identical whatever other items share the batch and
 *    whatever the batch size (tests/test_unit_forward.c checks this for the
 *    whole model).  So for every ISA, output row i of nn (and tn, which
 *    shares the same code) must depend only on row i of A, B, bias, old C
 *    and K, N: never on M, on the code path (one/two-row strips, in-place
 *    B, packed B) or on where row i falls in a register tile.  Checked with
 *    memcmp against calls on row i alone and on sub-ranges around it.  nt is
 *    only used by the training backward and for M <= 2 uses dot products
 *    split across vector lanes, so it is not row-invariant and not checked. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel_test_util.h"

typedef enum { NN, NT, TN } variant;
static const char *const vname[] = {"nn", "nt", "tn"};

typedef void (*matmul_fn)(size_t, size_t, size_t, const float *, size_t, const float *,
                          size_t, const float *, float *, size_t, int);

static matmul_fn pick(const nu_kernel_table *t, variant v)
{
    return v == NN ? t->matmul_nn : v == NT ? t->matmul_nt : t->matmul_tn;
}

typedef struct shape {
    size_t M, N, K;
    size_t lda, ldb, ldc;
    size_t mis_a, mis_b, mis_c, mis_bias;
} shape;

/* Floats a rows x cols matrix with row stride ld needs (0 when empty). */
static size_t extent(size_t rows, size_t cols, size_t ld)
{
    return rows && cols ? (rows - 1) * ld + cols : 0;
}

/* Stored shapes: A is M x K (nn, nt) or K x M (tn); B is K x N (nn, tn) or N x K (nt). */
static size_t a_rows(variant v, const shape *s) { return v == TN ? s->K : s->M; }
static size_t a_cols(variant v, const shape *s) { return v == TN ? s->M : s->K; }
static size_t b_rows(variant v, const shape *s) { return v == NT ? s->N : s->K; }
static size_t b_cols(variant v, const shape *s) { return v == NT ? s->K : s->N; }

static float a_at(variant v, const float *A, size_t lda, size_t i, size_t k)
{
    return v == TN ? A[k * lda + i] : A[i * lda + k];
}

static float b_at(variant v, const float *B, size_t ldb, size_t k, size_t j)
{
    return v == NT ? B[j * ldb + k] : B[k * ldb + j];
}

/* Checks got against want with the per-element bound described above;
 * counts one check. */
static void check_bound(const char *what, const float *got, const double *want,
                        const double *mag, const shape *s, double factor)
{
    const double u = ldexp(1.0, -24);
    size_t bad = 0;
    for (size_t i = 0; i < s->M; i++)
        for (size_t j = 0; j < s->N; j++) {
            const size_t e = i * s->N + j;
            const double g = got[i * s->ldc + j];
            const double tol = factor * 1.01 * (double)(s->K + 2) * u * mag[e] + 1e-6;
            if (!(fabs(g - want[e]) <= tol)) {
                if (bad < 5)
                    fprintf(stderr, "  %s (%zu,%zu): got %.9g want %.9g tol %.3g\n", what, i,
                            j, g, want[e], tol);
                bad++;
            }
        }
    NU_CHECK(bad == 0, "%s: %zu of %zu values out of bound", what, bad, s->M * s->N);
}

/* C must equal C0 bit for bit outside the M x N block, and guards be intact. */
static void check_untouched(const char *what, const nu_buf *C, const float *C0,
                            const shape *s)
{
    size_t bad = 0;
    for (size_t e = 0; e < C->n; e++) {
        const size_t i = e / s->ldc, j = e % s->ldc;
        const int inside = i < s->M && j < s->N && s->M && s->N;
        if (!inside && memcmp(&C->data[e], &C0[e], sizeof(float)) != 0)
            bad++;
    }
    NU_CHECK(bad == 0 && nu_buf_guard_ok(C), "%s: %zu elements outside the output changed%s",
             what, bad, nu_buf_guard_ok(C) ? "" : " (guard overwritten)");
}

static float scratch_c0[1 << 20];
static double scratch_want[1 << 20], scratch_mag[1 << 20];
static float scratch_ref[1 << 20];

/* Runs one case: every ISA this host runs, scalar first (checked against
 * double), the others against the scalar result. */
static void run_case(variant v, const shape *s, int with_bias, int accumulate, nu_rng *rng)
{
    char what[160];
    const size_t na = extent(a_rows(v, s), a_cols(v, s), s->lda);
    const size_t nb = extent(b_rows(v, s), b_cols(v, s), s->ldb);
    const size_t nc = extent(s->M, s->N, s->ldc);
    const size_t cap = sizeof scratch_c0 / sizeof scratch_c0[0];
    if (nc > cap || s->M * s->N > cap) {
        NU_CHECK(0, "test case too big");
        return;
    }
    nu_buf A = nu_buf_new(na, s->mis_a), B = nu_buf_new(nb, s->mis_b);
    nu_buf bias = nu_buf_new(s->N, s->mis_bias), C = nu_buf_new(nc, s->mis_c);
    nu_rng_fill(rng, A.data, na, -1.0f, 1.0f);
    nu_rng_fill(rng, B.data, nb, -1.0f, 1.0f);
    nu_rng_fill(rng, bias.data, s->N, -1.0f, 1.0f);
    nu_rng_fill(rng, scratch_c0, nc, -2.0f, 2.0f);
    const float *bp = with_bias ? bias.data : NULL;

    for (size_t i = 0; i < s->M; i++)
        for (size_t j = 0; j < s->N; j++) {
            double dot = 0, mag = 0;
            for (size_t k = 0; k < s->K; k++) {
                const double p = (double)a_at(v, A.data, s->lda, i, k) *
                                 (double)b_at(v, B.data, s->ldb, k, j);
                dot += p;
                mag += fabs(p);
            }
            const double c0 = scratch_c0[i * s->ldc + j], bj = bp ? bp[j] : 0.0;
            scratch_want[i * s->N + j] = (accumulate ? c0 : 0.0) + dot + bj;
            scratch_mag[i * s->N + j] = mag + fabs(bj) + (accumulate ? fabs(c0) : 0.0);
        }

    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        snprintf(what, sizeof what,
                 "matmul_%s/%s M%zu N%zu K%zu lda%zu ldb%zu ldc%zu bias%d acc%d", vname[v],
                 t->name, s->M, s->N, s->K, s->lda, s->ldb, s->ldc, with_bias, accumulate);
        memcpy(C.data, scratch_c0, nc * sizeof(float));
        pick(t, v)(s->M, s->N, s->K, A.data, s->lda, B.data, s->ldb, bp, C.data, s->ldc,
                   accumulate);
        check_untouched(what, &C, scratch_c0, s);
        NU_CHECK(nu_buf_guard_ok(&A) && nu_buf_guard_ok(&B) && nu_buf_guard_ok(&bias),
                 "%s: input guard overwritten", what);
        if (t->isa == NU_ISA_SCALAR) {
            check_bound(what, C.data, scratch_want, scratch_mag, s, 1.0);
            memcpy(scratch_ref, C.data, nc * sizeof(float));
        } else {
            /* Compared with the scalar result: widen want to double first. */
            static double ref_d[1 << 20];
            for (size_t i = 0; i < s->M; i++)
                for (size_t j = 0; j < s->N; j++)
                    ref_d[i * s->N + j] = scratch_ref[i * s->ldc + j];
            check_bound(what, C.data, ref_d, scratch_mag, s, 2.0);
        }
    }
    nu_buf_free(&A);
    nu_buf_free(&B);
    nu_buf_free(&bias);
    nu_buf_free(&C);
}

/* A shape with the given strides padding (extra floats per row). */
static shape make(variant v, size_t M, size_t N, size_t K, size_t pad, size_t mis)
{
    shape s = {M, N, K, 0, 0, 0, mis % 4, (mis + 1) % 4, (mis + 2) % 4, (mis + 3) % 4};
    s.lda = (v == TN ? M : K) + pad;
    s.ldb = (v == NT ? K : N) + pad;
    s.ldc = N + pad;
    if (s.lda == 0)
        s.lda = 1;
    if (s.ldb == 0)
        s.ldb = 1;
    if (s.ldc == 0)
        s.ldc = 1;
    return s;
}


/* ---- row invariance (see the header) ---- */

/* Calls f on rows [lo, hi) of the M-row product into out (row stride ldo),
 * which starts as rows [lo, hi) of C0 (row stride ldc0). */
static void call_rows(matmul_fn f, variant v, size_t lo, size_t hi, size_t N, size_t K,
                      const float *A, size_t lda, const float *B, size_t ldb,
                      const float *bias, const float *C0, size_t ldc0, float *out, size_t ldo,
                      int accumulate)
{
    for (size_t i = lo; i < hi; i++)
        memcpy(out + (i - lo) * ldo, C0 + i * ldc0, N * sizeof(float));
    const float *a = v == TN ? A + lo : A + lo * lda;
    f(hi - lo, N, K, a, lda, B, ldb, bias, out, ldo, accumulate);
}

/* For one ISA and variant: C for all M rows in one call, then for a few
 * rows i, row i recomputed alone, in a two-row call, in [i-3, i+5) and in
 * a 19-row window starting at a varying offset before i (clipped to the M
 * rows).  Row i must come out bit-identical every time.  The sub-calls use
 * another C stride and alignment than the full call on purpose. */
static void check_row_invariance(const nu_kernel_table *t, variant v, size_t M, size_t K,
                                 size_t N, int with_bias, int accumulate, nu_rng *rng)
{
    const size_t lda = (v == TN ? M : K) + 1, ldb = N + 2, ldc = N, ldo = N + 5;
    nu_buf A = nu_buf_new((v == TN ? K : M) * lda, 1), B = nu_buf_new(K * ldb, 2);
    nu_buf bias = nu_buf_new(N, 3), C = nu_buf_new(M * ldc, 0), C0 = nu_buf_new(M * ldc, 0);
    nu_buf out = nu_buf_new(19 * ldo, 3);
    nu_rng_fill(rng, A.data, A.n, -1.0f, 1.0f);
    nu_rng_fill(rng, B.data, B.n, -1.0f, 1.0f);
    nu_rng_fill(rng, bias.data, N, -1.0f, 1.0f);
    nu_rng_fill(rng, C0.data, C0.n, -2.0f, 2.0f);
    const float *bp = with_bias ? bias.data : NULL;
    const matmul_fn f = pick(t, v);
    call_rows(f, v, 0, M, N, K, A.data, lda, B.data, ldb, bp, C0.data, ldc, C.data, ldc,
              accumulate);
    const size_t rows[4] = {0, M / 2, M - 1, nu_rng_range(rng, 0, M - 1)};
    size_t bad = 0, first_row = 0, first_lo = 0, first_hi = 0;
    for (size_t r = 0; r < 4; r++) {
        const size_t i = rows[r];
        const size_t off = 1 + (i + r) % 7;
        size_t ranges[4][2] = {
            {i, i + 1},
            {i > 0 ? i - 1 : i, 0},
            {i > 3 ? i - 3 : 0, i + 5},
            {i > off ? i - off : 0, 0},
        };
        ranges[1][1] = ranges[1][0] + 2;
        ranges[3][1] = ranges[3][0] + 19;
        for (size_t q = 0; q < 4; q++) {
            const size_t lo = ranges[q][0], hi = ranges[q][1] < M ? ranges[q][1] : M;
            call_rows(f, v, lo, hi, N, K, A.data, lda, B.data, ldb, bp, C0.data, ldc,
                      out.data, ldo, accumulate);
            if (memcmp(out.data + (i - lo) * ldo, C.data + i * ldc, N * sizeof(float)) != 0 &&
                bad++ == 0) {
                first_row = i;
                first_lo = lo;
                first_hi = hi;
            }
        }
    }
    NU_CHECK(bad == 0 && nu_buf_guard_ok(&out) && nu_buf_guard_ok(&C),
             "row invariance matmul_%s/%s M%zu K%zu N%zu bias%d acc%d: %zu mismatches "
             "(first: row %zu in rows [%zu, %zu))",
             vname[v], t->name, M, K, N, with_bias, accumulate, bad, first_row, first_lo,
             first_hi);
    nu_buf_free(&A);
    nu_buf_free(&B);
    nu_buf_free(&bias);
    nu_buf_free(&C);
    nu_buf_free(&C0);
    nu_buf_free(&out);
}

/* Every K and N below crosses one path or blocking size of some ISA (K
 * below and above KC = 256, N across strip widths and NC); M covers the
 * one- and two-row strips, the in-place small-M path, the packed path and
 * every position in a register tile.  Each (K, N) pair gets two values of M
 * and one bias / accumulate combination in turn, which covers every M with
 * several K and N while staying quick under qemu. */
static void run_row_invariance(nu_rng *rng)
{
    static const size_t Ms[] = {1, 2, 3, 5, 8, 13, 16, 17, 33, 64, 100, 300};
    static const size_t Ks[] = {16, 48, 64, 200, 256, 257, 300, 600, 1024};
    static const size_t Ns[] = {16, 48, 64, 100, 192, 256, 513};
    size_t c = 0;
    for (size_t kk = 0; kk < sizeof Ks / sizeof Ks[0]; kk++)
        for (size_t nn = 0; nn < sizeof Ns / sizeof Ns[0]; nn++, c++) {
            const size_t K = Ks[kk], N = Ns[nn];
            /* Small M in turn; a large M too, kept moderate when K * N is big. */
            const size_t m_small = Ms[c % 6], m_big = Ms[6 + c % 6];
            const size_t M_big = K * N > 150000 && m_big > 64 ? 33 + c % 40 : m_big;
            const size_t Mv[2] = {m_small, M_big};
            for (size_t q = 0; q < 2; q++) {
                /* c / 6: each M meets every bias / accumulate combination. */
                const int combo = (int)((c / 6 + q) % 4);
                static const variant checked[2] = {NN, TN}; /* not nt: see the header */
                const nu_kernel_table *t;
                NU_FOR_EACH_ISA(t)
                for (int v = 0; v < 2; v++)
                    check_row_invariance(t, checked[v], Mv[q], K, N, combo & 1, combo >> 1,
                                         rng);
            }
        }
}

int main(void)
{
    nu_rng rng = {20261129};
    /* Small and awkward shapes: every bias / accumulate combination. */
    static const size_t small[][3] = {
        {1, 1, 1},   {1, 64, 64}, {1, 33, 17}, {2, 5, 3},    {3, 7, 15},   {7, 31, 33},
        {8, 32, 16}, {9, 33, 65}, {6, 16, 8},  {5, 17, 3},   {17, 15, 31}, {13, 65, 63},
        {4, 48, 7},  {12, 24, 9}, {33, 47, 1}, {2, 200, 5},  {15, 63, 17}, {16, 16, 16},
        {1, 100, 0}, {7, 9, 0},   {0, 5, 5},   {5, 0, 5},    {0, 0, 0},    {31, 1, 40},
        /* one- and two-row paths: full strips plus every kind of remainder */
        {1, 200, 9}, {2, 129, 20}, {1, 90, 33}, {2, 40, 7},  {2, 300, 18}, {1, 37, 70},
    };
    for (int v = NN; v <= TN; v++)
        for (size_t c = 0; c < sizeof small / sizeof small[0]; c++)
            for (int combo = 0; combo < 4; combo++) {
                const size_t pad = (c + (size_t)combo) % 3 == 0 ? 0 : 1 + c % 5;
                shape s = make((variant)v, small[c][0], small[c][1], small[c][2], pad,
                               c + (size_t)combo);
                run_case((variant)v, &s, combo & 1, combo >> 1, &rng);
            }
    /* Random shapes, strides and alignments. */
    for (int r = 0; r < 60; r++) {
        const variant v = (variant)(r % 3);
        shape s = make(v, nu_rng_range(&rng, 1, 40), nu_rng_range(&rng, 1, 90),
                       nu_rng_range(&rng, 1, 90), nu_rng_range(&rng, 0, 7),
                       nu_rng_range(&rng, 0, 3));
        run_case(v, &s, (int)nu_rng_range(&rng, 0, 1), (int)nu_rng_range(&rng, 0, 1), &rng);
    }
    /* Shapes crossing the blocking sizes of every ISA (KC <= 256, NC <= 512,
     * many row panels), kept small enough for qemu. */
    static const size_t big[][3] = {
        {20, 530, 300}, {70, 40, 520}, {9, 1100, 33}, {300, 50, 64}, {1, 700, 600},
        {11, 300, 530}, {2, 600, 300},
    };
    for (int v = NN; v <= TN; v++)
        for (size_t c = 0; c < sizeof big / sizeof big[0]; c++) {
            shape s = make((variant)v, big[c][0], big[c][1], big[c][2], c % 2 ? 3 : 0, c);
            run_case((variant)v, &s, (int)(c % 2), (int)((c / 2) % 2), &rng);
        }
    run_row_invariance(&rng);
    return nu_test_finish("kernel_matmul");
}
