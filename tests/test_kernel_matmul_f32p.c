/* Kernel tests for matmul_f32p (fp32 weights packed once, kernels.h).
 *
 * 1. nu_f32_pack_b and nu_f32_pack_bt: every element where the layout
 *    says, zeros past N.
 * 2. The contract that keeps a model's answers when its weights are packed:
 *    on every ISA with the vector kernel, matmul_f32p on the packed B is
 *    bit-identical to the same table's matmul_nn on B itself (elsewhere
 *    the reference runs, bit-identical to the scalar matmul_nn) (which tests/test_kernel_matmul.c checks
 *    against the scalar reference and for row invariance), and writes
 *    nothing outside C's M x N cells (guards, ldc gaps).  A kernel that
 *    dropped, repeated or reordered one k step, used the wrong panel or
 *    mishandled the last ragged panel would fail this.
 * 3. The scalar reference against a double-precision product, within the
 *    fp32 sum bound of tests/test_kernel_matmul.c: a reference that read
 *    the layout wrongly would otherwise pass 2 by agreeing with nothing.
 * 4. matmul_f32p_native is 1 exactly on the vector tables that have it.
 *    On B packed from its transpose, matmul_f32p has the same table's
 *    matmul_nt bits for M >= 3 (the loss packs its shared negatives so).
 * 5. matmul_f32p_gelu: bit-identical to matmul_f32p (accumulate 0) then
 *    gelu_fwd of the same table (the scalar ones where not native).
 * Shapes: M = 0..7 (every row count of a tile), 11, 13, 40, 111 (two
 * items' tokens); N = the model's 64, 192, 256 and ragged panels (1, 15,
 * 17, 33, 100, 130 needs a chunk of 8 panels plus one); odd K, K = 0, the
 * model's 64 and 256 and K past matmul_nn's k block (300). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "f32_pack.h"
#include "kernel_test_util.h"

static float *pack(const float *B, size_t K, size_t N, size_t ldb)
{
    const size_t n = nu_f32_packed_elems(K, N);
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64 + 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    nu_f32_pack_b(K, N, B, ldb, p);
    return p;
}

/* Elements of the packed panels (2 of 16 columns, K rows) that differ from
 * src[k * sk + col * sc], or from 0 past column N. */
static size_t misplaced(const float *packed, size_t K, size_t N, const float *src, size_t sk,
                        size_t sc)
{
    size_t bad = 0;
    for (size_t q = 0; q < 2; q++)
        for (size_t k = 0; k < K; k++)
            for (size_t j = 0; j < 16; j++) {
                const size_t col = q * 16 + j;
                const float want = col < N ? src[k * sk + col * sc] : 0.0f;
                bad += memcmp(&packed[(q * K + k) * 16 + j], &want, sizeof want) != 0;
            }
    return bad;
}

static void check_layout(nu_rng *rng)
{
    const size_t K = 5, N = 21, ldb = 23;
    float B[5 * 23];
    nu_rng_fill(rng, B, K * ldb, -1.0f, 1.0f);
    NU_CHECK(nu_f32_packed_elems(K, N) == 2 * 16 * K, "packed elems %zu",
             nu_f32_packed_elems(K, N));
    float *p = pack(B, K, N, ldb);
    size_t bad = misplaced(p, K, N, B, ldb, 1);
    NU_CHECK(bad == 0, "nu_f32_pack_b: %zu elements out of place", bad);
    /* The transposed source: Bt (N x K, stride ldt) packs as B = Bt^T. */
    const size_t ldt = 7;
    float Bt[21 * 7], *q = pack(B, K, N, ldb);
    nu_rng_fill(rng, Bt, N * ldt, -1.0f, 1.0f);
    nu_f32_pack_bt(K, N, Bt, ldt, q);
    bad = misplaced(q, K, N, Bt, 1, ldt);
    NU_CHECK(bad == 0, "nu_f32_pack_bt: %zu elements out of place", bad);
    free(q);
    free(p);
}

typedef struct shape {
    size_t M, N, K, lda, ldc;
} shape;

static void run_case(const shape *s, int with_bias, int accumulate, nu_rng *rng)
{
    const size_t na = s->M ? (s->M - 1) * s->lda + s->K : 0, nb = s->K * s->N;
    const size_t nc = s->M ? (s->M - 1) * s->ldc + s->N : 0;
    nu_buf A = nu_buf_new(na, 1), bias = nu_buf_new(s->N, 2), C = nu_buf_new(nc, 3);
    float *B = malloc((nb + 1) * sizeof *B), *C0 = malloc((nc + 1) * sizeof *C0);
    float *want = malloc((nc + 1) * sizeof *want);
    if (!B || !C0 || !want) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    nu_rng_fill(rng, A.data, na, -1.0f, 1.0f);
    nu_rng_fill(rng, B, nb, -1.0f, 1.0f);
    nu_rng_fill(rng, bias.data, s->N, -1.0f, 1.0f);
    nu_rng_fill(rng, C0, nc, -2.0f, 2.0f);
    const float *bp = with_bias ? bias.data : NULL;
    float *Bp = pack(B, s->K, s->N, s->N);
    char what[160];
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        snprintf(what, sizeof what, "matmul_f32p/%s M%zu N%zu K%zu lda%zu ldc%zu bias%d acc%d",
                 t->name, s->M, s->N, s->K, s->lda, s->ldc, with_bias, accumulate);
        /* A table without the vector kernel keeps the reference, whose
         * bits are the scalar matmul_nn's. */
        const nu_kernel_table *nn = t->matmul_f32p_native ? t : nu_test_isa_table(NU_ISA_SCALAR);
        memcpy(want, C0, nc * sizeof(float));
        nn->matmul_nn(s->M, s->N, s->K, A.data, s->lda, B, s->N, bp, want, s->ldc, accumulate);
        memcpy(C.data, C0, nc * sizeof(float));
        t->matmul_f32p(s->M, s->N, s->K, A.data, s->lda, Bp, bp, C.data, s->ldc, accumulate);
        size_t diff = 0, first = nc;
        for (size_t e = 0; e < nc; e++)
            if (memcmp(&C.data[e], &want[e], sizeof(float)) != 0 && diff++ == 0)
                first = e;
        NU_CHECK(diff == 0 && nu_buf_guard_ok(&C) && nu_buf_guard_ok(&A),
                 "%s: %zu elements differ from matmul_nn (first at %zu: %.9g vs %.9g) or a "
                 "guard was hit", what, diff, first, first < nc ? C.data[first] : 0.0,
                 first < nc ? want[first] : 0.0);
        /* B packed from its transpose (nu_f32_pack_bt) gives matmul_nt's
         * bits on that transpose wherever matmul_nt keeps one FMA chain per
         * element in k order (M >= 3: its M <= 2 path sums dot products). */
        if (s->M >= 3 && nb > 0) {
            float *Bt = malloc(nb * sizeof *Bt), *Btp = pack(B, s->K, s->N, s->N);
            if (!Bt) {
                fprintf(stderr, "out of memory\n");
                exit(2);
            }
            for (size_t k = 0; k < s->K; k++)
                for (size_t j = 0; j < s->N; j++)
                    Bt[j * s->K + k] = B[k * s->N + j];
            nu_f32_pack_bt(s->K, s->N, Bt, s->K, Btp);
            memcpy(want, C0, nc * sizeof(float));
            nn->matmul_nt(s->M, s->N, s->K, A.data, s->lda, Bt, s->K, bp, want, s->ldc,
                          accumulate);
            memcpy(C.data, C0, nc * sizeof(float));
            t->matmul_f32p(s->M, s->N, s->K, A.data, s->lda, Btp, bp, C.data, s->ldc,
                           accumulate);
            diff = 0;
            for (size_t e = 0; e < nc; e++)
                diff += memcmp(&C.data[e], &want[e], sizeof(float)) != 0;
            NU_CHECK(diff == 0 && nu_buf_guard_ok(&C), "%s: %zu elements differ from matmul_nt "
                     "on B^T packed by nu_f32_pack_bt, or a guard was hit", what, diff);
            free(Bt);
            free(Btp);
        }
        /* The fused GELU: the product then gelu_fwd, row by row. */
        memcpy(want, C0, nc * sizeof(float));
        nn->matmul_f32p(s->M, s->N, s->K, A.data, s->lda, Bp, bp, want, s->ldc, 0);
        for (size_t i = 0; i < s->M; i++)
            nn->gelu_fwd(s->N, want + i * s->ldc, want + i * s->ldc);
        memcpy(C.data, C0, nc * sizeof(float));
        t->matmul_f32p_gelu(s->M, s->N, s->K, A.data, s->lda, Bp, bp, C.data, s->ldc);
        diff = 0;
        for (size_t e = 0; e < nc; e++)
            diff += memcmp(&C.data[e], &want[e], sizeof(float)) != 0;
        NU_CHECK(diff == 0 && nu_buf_guard_ok(&C), "%s gelu: %zu elements differ from matmul_f32p "
                 "+ gelu_fwd or a guard was hit", what, diff);
        if (t->isa != NU_ISA_SCALAR)
            continue;
        memcpy(C.data, C0, nc * sizeof(float)); /* the product again, for check 3 */
        t->matmul_f32p(s->M, s->N, s->K, A.data, s->lda, Bp, bp, C.data, s->ldc, accumulate);
        /* The reference against the exact product. */
        const double u = ldexp(1.0, -24);
        size_t bad = 0;
        for (size_t i = 0; i < s->M; i++)
            for (size_t j = 0; j < s->N; j++) {
                double dot = 0, mag = 0;
                for (size_t k = 0; k < s->K; k++) {
                    const double p = (double)A.data[i * s->lda + k] * B[k * s->N + j];
                    dot += p;
                    mag += fabs(p);
                }
                const double c0 = C0[i * s->ldc + j], bj = bp ? bp[j] : 0.0;
                const double x = dot + bj + (accumulate ? c0 : 0.0);
                mag += fabs(bj) + (accumulate ? fabs(c0) : 0.0);
                const double tol = 1.01 * (double)(s->K + 2) * u * mag + 1e-6;
                if (!(fabs(C.data[i * s->ldc + j] - x) <= tol) && bad++ < 3)
                    fprintf(stderr, "  %s (%zu,%zu): got %.9g want %.9g\n", what, i, j,
                            C.data[i * s->ldc + j], x);
            }
        NU_CHECK(bad == 0, "%s: %zu values out of the fp32 sum bound", what, bad);
    }
    free(Bp);
    free(B);
    free(C0);
    free(want);
    nu_buf_free(&A);
    nu_buf_free(&bias);
    nu_buf_free(&C);
}

static void check_native_flag(void)
{
    const nu_kernel_table *t;
    NU_FOR_EACH_ISA(t)
    {
        const int expect = t->isa == NU_ISA_AVX512;
        NU_CHECK(t->matmul_f32p_native == expect, "%s: matmul_f32p_native is %d, expected %d",
                 t->name, t->matmul_f32p_native, expect);
    }
}

int main(void)
{
    nu_rng rng = {20261208};
    check_layout(&rng);
    check_native_flag();
    static const size_t Ms[] = {0, 1, 2, 3, 4, 5, 6, 7, 11, 13, 40, 111};
    static const size_t Ns[] = {64, 192, 256, 1, 15, 17, 33, 100, 130};
    static const size_t Ks[] = {0, 1, 2, 3, 31, 33, 64, 65, 256, 300};
    const size_t nm = sizeof Ms / sizeof Ms[0];
    size_t c = 0;
    for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
            for (size_t q = 0; q < 3; q++, c++) {
                const size_t M = Ms[(c * 7 + q) % nm], pad = c % 3;
                shape s = {M, Ns[ni], Ks[ki], Ks[ki] + pad, Ns[ni] + (c % 2)};
                run_case(&s, (int)(c & 1), (int)((c >> 1) & 1), &rng);
            }
    /* Every row count with the model's shapes, every bias / accumulate. */
    static const size_t model[][2] = {{64, 192}, {64, 64}, {64, 256}, {256, 64}, {64, 128}};
    for (size_t m = 0; m < 5; m++)
        for (size_t M = 1; M <= 14; M++)
            for (int combo = 0; combo < 4; combo++) {
                shape s = {M, model[m][1], model[m][0], model[m][0] + 1, model[m][1]};
                run_case(&s, combo & 1, combo >> 1, &rng);
            }
    return nu_test_finish("matmul_f32p");
}
