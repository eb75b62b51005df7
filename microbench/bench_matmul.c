/* Matmul benchmarks: matmul_{nn,nt,tn} x ISA x shape, named
 * "matmul_nn/avx512/M1024_K256_N256".  Shapes are the model's: a layer of
 * a batch of tokens (M up to thousands, K and N from d = 64 to 4d), one
 * small layer, and a single row (M = 1).  Each run is C = A.B + bias
 * (accumulate 0), the forward of a linear layer. */
#include <stdio.h>
#include <stdlib.h>

#include "dispatch.h"
#include "gbench.h"

typedef struct mm_case {
    const nu_kernel_table *t;
    int variant; /* 0 nn, 1 nt, 2 tn */
    size_t M, K, N;
} mm_case;

static const size_t shapes[][3] = {
    /* M, K, N */
    {1024, 256, 256}, {64, 64, 256}, {1, 64, 64},    {4096, 64, 192},
    {1, 256, 1024},   {16, 128, 128}, {512, 1024, 256}, {2048, 128, 512},
    {4096, 16, 128},  {4, 256, 1024}, {8, 256, 1024},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])
#define N_ISA_MAX 4
static mm_case cases[N_ISA_MAX][3][N_SHAPES];

static float *alloc_filled(size_t n, float scale)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "nextuser-microbench: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (float)((int)(i % 17) - 8);
    return p;
}

static void bench_matmul(nu_bench_state *st, void *arg)
{
    const mm_case *c = arg;
    const size_t M = c->M, K = c->K, N = c->N;
    float *A = alloc_filled(M * K, 1e-2f), *B = alloc_filled(K * N, 1e-2f);
    float *bias = alloc_filled(N, 1e-3f), *C = alloc_filled(M * N, 0.0f);
    /* Leading dimensions of the stored operands for each layout. */
    const size_t lda = c->variant == 2 ? M : K, ldb = c->variant == 1 ? K : N;
    void (*fn)(size_t, size_t, size_t, const float *, size_t, const float *, size_t,
               const float *, float *, size_t, int) =
        c->variant == 0 ? c->t->matmul_nn : c->variant == 1 ? c->t->matmul_nt : c->t->matmul_tn;
    while (nu_bench_keep_running(st)) {
        fn(M, N, K, A, lda, B, ldb, bias, C, N, 0);
        nu_bench_do_not_optimize(C);
    }
    nu_bench_report_work(st, 2.0 * (double)M * (double)N * (double)K,
                         (double)(M * K + K * N + M * N + N) * sizeof(float));
    free(A);
    free(B);
    free(bias);
    free(C);
}

void nu_bench_register_matmul(void)
{
    static const char *const vnames[3] = {"nn", "nt", "tn"};
    char name[96];
    for (int i = 0; i < NU_ISA_COUNT && i < N_ISA_MAX; i++) {
        const nu_kernel_table *t = nu_kernels_for((nu_isa)i);
        if (!t)
            continue;
        for (int v = 0; v < 3; v++)
            for (size_t s = 0; s < N_SHAPES; s++) {
                mm_case *c = &cases[i][v][s];
                *c = (mm_case){t, v, shapes[s][0], shapes[s][1], shapes[s][2]};
                /* The scalar reference is too slow for the two biggest shapes. */
                if (i == NU_ISA_SCALAR && c->M * c->K * c->N > (size_t)70000000)
                    continue;
                snprintf(name, sizeof name, "matmul_%s/%s/M%zu_K%zu_N%zu", vnames[v], t->name,
                         c->M, c->K, c->N);
                nu_bench_register(name, bench_matmul, c, 0);
            }
    }
}
