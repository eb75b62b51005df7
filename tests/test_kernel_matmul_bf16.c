/* Kernel tests for matmul_bf16 (weights packed once in bf16, kernels.h).
 *
 * 1. nu_bf16_round: nearest even on ties, NaN, infinities, denormals.
 * 2. The scalar reference against a double-precision product of the
 *    bf16-rounded operands: every product of two bf16 is exact, so only
 *    the fp32 sum rounds and the bound of tests/test_kernel_matmul.c holds:
 *    |error| <= 1.01 (K + 2) u S, u = 2^-24, S = sum |a' b'| + |bias| +
 *    |C_old| (primes: rounded).  Every other ISA against the scalar result
 *    within twice that; a dropped pair (~S / K) is far outside it.
 * 3. The rounding itself: against the exact fp32 operands the result may
 *    move by at most (2 u8 + u8^2) sum |a b| (u8 = 2^-8, bf16's unit
 *    roundoff, once per operand) plus the sum's bound; an ISA that skipped
 *    rounding A would still pass this, one that truncated instead of
 *    rounding would fail check 2.
 * 4. Row invariance, as matmul_nn: output row i alone, in a two-row call
 *    and in a window around it is bit-identical to the full call.
 * 5. matmul_bf16_native is 1 exactly where the table runs vdpbf16ps.
 * 6. matmul_bf16_gelu: bit-identical to matmul_bf16 (accumulate 0) then
 *    gelu_fwd of the same table (the scalar pair where not native).
 * Shapes: M = 0, 1, 2, 3, every position of a 6-row tile, T ~ 40; N = 64,
 * 128, 192, 256 (the model's) and ragged panels; odd K, K = 0, and K past
 * the kernel's k block (2048). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf16_pack.h"
#include "cpu.h"
#include "kernel_test_util.h"

static double widen_round(float x)
{
    return nu_bf16_widen(nu_bf16_round(x));
}

static void check_round(void)
{
    const float one = 1.0f, tie_down = 1.0f + 0x1p-8f, tie_up = 1.0f + 3 * 0x1p-8f;
    NU_CHECK(widen_round(one) == 1.0, "round(1)");
    NU_CHECK(widen_round(tie_down) == 1.0, "1 + 2^-8 ties to even 1, got %.9g",
             widen_round(tie_down));
    NU_CHECK(widen_round(tie_up) == 1.0 + 0x1p-6, "1 + 3 2^-8 ties to even 1 + 2^-6, got %.9g",
             widen_round(tie_up));
    NU_CHECK(widen_round(1.0f + 0x1p-8f + 0x1p-20f) == 1.0 + 0x1p-7, "above a tie rounds up");
    NU_CHECK(widen_round(-3.0e38f) == -3.0e38 || isinf(widen_round(-3.0e38f)) ||
                 fabs(widen_round(-3.0e38f) + 3.0e38) < 3.0e36,
             "large values round near");
    NU_CHECK(isinf(widen_round(INFINITY)) && widen_round(-INFINITY) < 0, "infinities stay");
    NU_CHECK(isnan(widen_round(NAN)), "NaN stays NaN");
    NU_CHECK(nu_bf16_round(1e-40f) == 0 && nu_bf16_round(-1e-40f) == 0x8000,
             "denormals become signed zeros");
}

typedef struct shape {
    size_t M, N, K, lda, ldc;
} shape;

static uint16_t *pack(const float *B, size_t K, size_t N, size_t ldb)
{
    uint16_t *p = aligned_alloc(64, (nu_bf16_packed_elems(K, N) * 2 + 63) / 64 * 64 + 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    nu_bf16_pack_b(K, N, B, ldb, p);
    return p;
}

static size_t bad_bound(const char *what, const float *got, size_t ldc, const double *want,
                        const double *mag, const double *mag_exact, const shape *s,
                        double factor, double rel_round)
{
    const double u = ldexp(1.0, -24);
    size_t bad = 0;
    for (size_t i = 0; i < s->M; i++)
        for (size_t j = 0; j < s->N; j++) {
            const size_t e = i * s->N + j;
            const double tol = factor * 1.01 * (double)(s->K + 2) * u * mag[e] +
                               rel_round * mag_exact[e] + 1e-6;
            const double g = got[i * ldc + j];
            if (!(fabs(g - want[e]) <= tol) && bad++ < 5)
                fprintf(stderr, "  %s (%zu,%zu): got %.9g want %.9g tol %.3g\n", what, i, j,
                        g, want[e], tol);
        }
    return bad;
}

static void run_case(const shape *s, int with_bias, int accumulate, nu_rng *rng)
{
    const size_t na = s->M ? (s->M - 1) * s->lda + s->K : 0, nb = s->K * s->N;
    const size_t nc = s->M ? (s->M - 1) * s->ldc + s->N : 0, cells = s->M * s->N;
    nu_buf A = nu_buf_new(na, 1), bias = nu_buf_new(s->N, 2), C = nu_buf_new(nc, 3);
    float *B = malloc((nb + 1) * sizeof *B), *C0 = malloc((nc + 1) * sizeof *C0);
    float *ref = malloc((nc + 1) * sizeof *ref);
    double *want = malloc((cells + 1) * sizeof *want), *exact = malloc((cells + 1) * sizeof *exact);
    double *mag = malloc((cells + 1) * sizeof *mag), *mag_x = malloc((cells + 1) * sizeof *mag_x);
    if (!B || !C0 || !ref || !want || !exact || !mag || !mag_x) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    nu_rng_fill(rng, A.data, na, -1.0f, 1.0f);
    nu_rng_fill(rng, B, nb, -1.0f, 1.0f);
    nu_rng_fill(rng, bias.data, s->N, -1.0f, 1.0f);
    nu_rng_fill(rng, C0, nc, -2.0f, 2.0f);
    const float *bp = with_bias ? bias.data : NULL;
    uint16_t *Bp = pack(B, s->K, s->N, s->N);
    for (size_t i = 0; i < s->M; i++)
        for (size_t j = 0; j < s->N; j++) {
            double dot = 0, m = 0, dx = 0, mx = 0;
            for (size_t k = 0; k < s->K; k++) {
                const float a = A.data[i * s->lda + k], b = B[k * s->N + j];
                const double p = widen_round(a) * widen_round(b), px = (double)a * b;
                dot += p;
                m += fabs(p);
                dx += px;
                mx += fabs(px);
            }
            const double c0 = C0[i * s->ldc + j], bj = bp ? bp[j] : 0.0;
            const double start = (accumulate ? c0 : 0.0) + bj;
            const double smag = fabs(bj) + (accumulate ? fabs(c0) : 0.0);
            want[i * s->N + j] = start + dot;
            exact[i * s->N + j] = start + dx;
            mag[i * s->N + j] = m + smag;
            mag_x[i * s->N + j] = mx;
        }
    double *zero = calloc(cells + 1, sizeof *zero);
    const double rel_round = 2 * 0x1p-8 + 0x1p-16;
    char what[160];
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        snprintf(what, sizeof what, "matmul_bf16/%s M%zu N%zu K%zu lda%zu ldc%zu bias%d acc%d",
                 t->name, s->M, s->N, s->K, s->lda, s->ldc, with_bias, accumulate);
        memcpy(C.data, C0, nc * sizeof(float));
        t->matmul_bf16(s->M, s->N, s->K, A.data, s->lda, Bp, bp, C.data, s->ldc, accumulate);
        size_t outside = 0;
        for (size_t e = 0; e < nc; e++)
            if (e % s->ldc >= s->N && memcmp(&C.data[e], &C0[e], sizeof(float)) != 0)
                outside++;
        NU_CHECK(outside == 0 && nu_buf_guard_ok(&C) && nu_buf_guard_ok(&A) &&
                     nu_buf_guard_ok(&bias),
                 "%s: %zu elements outside the output changed or a guard was hit", what,
                 outside);
        size_t bad;
        if (t->isa == NU_ISA_SCALAR) {
            bad = bad_bound(what, C.data, s->ldc, want, mag, zero, s, 1.0, 0.0);
            memcpy(ref, C.data, nc * sizeof(float));
        } else {
            static double ref_d[1 << 20];
            for (size_t i = 0; i < s->M; i++)
                for (size_t j = 0; j < s->N; j++)
                    ref_d[i * s->N + j] = ref[i * s->ldc + j];
            bad = bad_bound(what, C.data, s->ldc, ref_d, mag, zero, s, 2.0, 0.0);
        }
        NU_CHECK(bad == 0, "%s: %zu of %zu values out of the fp32-sum bound", what, bad, cells);
        bad = bad_bound(what, C.data, s->ldc, exact, mag, mag_x, s, 1.0, rel_round);
        NU_CHECK(bad == 0, "%s: %zu of %zu values beyond the bf16 rounding bound of the exact "
                 "product", what, bad, cells);
        /* The fused GELU: the product (accumulate 0) then gelu_fwd, row by
         * row, bit for bit (the scalar pair where the table is not native). */
        const nu_kernel_table *pair = t->matmul_bf16_native ? t : nu_test_isa_table(NU_ISA_SCALAR);
        float *gw = malloc((nc + 1) * sizeof *gw);
        if (!gw) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        memcpy(gw, C0, nc * sizeof(float));
        pair->matmul_bf16(s->M, s->N, s->K, A.data, s->lda, Bp, bp, gw, s->ldc, 0);
        for (size_t i = 0; i < s->M; i++)
            pair->gelu_fwd(s->N, gw + i * s->ldc, gw + i * s->ldc);
        memcpy(C.data, C0, nc * sizeof(float));
        t->matmul_bf16_gelu(s->M, s->N, s->K, A.data, s->lda, Bp, bp, C.data, s->ldc);
        size_t diff = 0;
        for (size_t e = 0; e < nc; e++)
            diff += memcmp(&C.data[e], &gw[e], sizeof(float)) != 0;
        NU_CHECK(diff == 0 && nu_buf_guard_ok(&C), "%s gelu: %zu elements differ from "
                 "matmul_bf16 + gelu_fwd or a guard was hit", what, diff);
        free(gw);
    }
    free(zero);
    free(Bp);
    free(B);
    free(C0);
    free(ref);
    free(want);
    free(exact);
    free(mag);
    free(mag_x);
    nu_buf_free(&A);
    nu_buf_free(&bias);
    nu_buf_free(&C);
}

/* Row i computed in the full M-row call, alone, in a pair and in a window
 * of 7 rows: bit-identical every time (the forward stacks many items' rows). */
static void check_rows(const nu_kernel_table *t, size_t M, size_t N, size_t K, int with_bias,
                       int accumulate, nu_rng *rng)
{
    const size_t lda = K + 3, ldc = N + 1;
    float *A = malloc((M * lda + 1) * sizeof *A), *B = malloc((K * N + 1) * sizeof *B);
    float *bias = malloc((N + 1) * sizeof *bias), *C0 = malloc((M * ldc + 1) * sizeof *C0);
    float *C = malloc((M * ldc + 1) * sizeof *C), *out = malloc((8 * N + 1) * sizeof *out);
    if (!A || !B || !bias || !C0 || !C || !out) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    nu_rng_fill(rng, A, M * lda, -1.0f, 1.0f);
    nu_rng_fill(rng, B, K * N, -1.0f, 1.0f);
    nu_rng_fill(rng, bias, N, -1.0f, 1.0f);
    nu_rng_fill(rng, C0, M * ldc, -2.0f, 2.0f);
    uint16_t *Bp = pack(B, K, N, N);
    const float *bp = with_bias ? bias : NULL;
    memcpy(C, C0, M * ldc * sizeof(float));
    t->matmul_bf16(M, N, K, A, lda, Bp, bp, C, ldc, accumulate);
    size_t bad = 0;
    const size_t rows[3] = {0, M / 2, M - 1};
    for (size_t r = 0; r < 3; r++) {
        const size_t i = rows[r];
        const size_t windows[3][2] = {{i, i + 1}, {i > 0 ? i - 1 : i, (i > 0 ? i - 1 : i) + 2},
                                      {i > 4 ? i - 4 : 0, (i > 4 ? i - 4 : 0) + 7}};
        for (size_t w = 0; w < 3; w++) {
            const size_t lo = windows[w][0], hi = windows[w][1] < M ? windows[w][1] : M;
            for (size_t q = lo; q < hi; q++)
                memcpy(out + (q - lo) * N, C0 + q * ldc, N * sizeof(float));
            t->matmul_bf16(hi - lo, N, K, A + lo * lda, lda, Bp, bp, out, N, accumulate);
            if (memcmp(out + (i - lo) * N, C + i * ldc, N * sizeof(float)) != 0)
                bad++;
        }
    }
    NU_CHECK(bad == 0, "row invariance matmul_bf16/%s M%zu N%zu K%zu bias%d acc%d: %zu mismatches",
             t->name, M, N, K, with_bias, accumulate, bad);
    free(Bp);
    free(A);
    free(B);
    free(bias);
    free(C0);
    free(C);
    free(out);
}

static void check_native_flag(void)
{
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        const int expect = t->isa == NU_ISA_AVX512 && nu_cpu_detect()->avx512_bf16;
        NU_CHECK(t->matmul_bf16_native == expect,
                 "%s: matmul_bf16_native is %d, expected %d (avx512_bf16 %s)", t->name,
                 t->matmul_bf16_native, expect, nu_cpu_detect()->avx512_bf16 ? "present" : "absent");
    }
    if (!nu_cpu_detect()->avx512_bf16)
        printf("SKIP vdpbf16ps kernel: this CPU has no AVX512_BF16 (every table runs the "
               "reference)\n");
}

int main(void)
{
    nu_rng rng = {20261207};
    check_round();
    check_native_flag();
    static const size_t Ms[] = {0, 1, 2, 3, 4, 5, 6, 7, 11, 13, 40};
    static const size_t Ns[] = {64, 128, 192, 256, 1, 15, 17, 33, 100};
    static const size_t Ks[] = {0, 1, 2, 3, 31, 33, 64, 65, 255, 256};
    size_t c = 0;
    for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
            for (size_t q = 0; q < 2; q++, c++) {
                const size_t M = Ms[(c * 7 + q) % (sizeof Ms / sizeof Ms[0])];
                const size_t pad = c % 3;
                shape s = {M, Ns[ni], Ks[ki], Ks[ki] + pad, Ns[ni] + (c % 2)};
                run_case(&s, (int)(c & 1), (int)((c >> 1) & 1), &rng);
            }
    /* The model's shapes at T ~ 40 tokens, every bias / accumulate combination. */
    static const size_t model[][2] = {{64, 192}, {64, 64}, {64, 256}, {256, 64}, {64, 128}};
    for (size_t m = 0; m < 5; m++)
        for (int combo = 0; combo < 4; combo++) {
            shape s = {40, model[m][1], model[m][0], model[m][0], model[m][1]};
            run_case(&s, combo & 1, combo >> 1, &rng);
        }
    /* K past the kernel's k block of 2048: blocks continue from C. */
    shape long_k = {7, 40, 2100, 2101, 41};
    run_case(&long_k, 1, 1, &rng);
    run_case(&long_k, 0, 0, &rng);
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    for (size_t m = 0; m < 5; m++) {
        check_rows(t, 40 + m, model[m][1], model[m][0], (int)(m & 1), (int)(m >> 1 & 1), &rng);
        check_rows(t, 13, model[m][1] + 7, model[m][0] + 1, 1, 1, &rng);
    }
    return nu_test_finish("kernel matmul_bf16");
}
