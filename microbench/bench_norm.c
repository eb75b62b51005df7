/* Benchmarks of the kernel groups "layernorm", "activation", "vector" and
 * "loss", in one file so their registration order (the listed names) stays
 * as it was before the groups were split.  Kernel x ISA x shape, named e.g.
 * "layernorm_fwd/avx512/R4096_D64" or "axpy/avx2/N1048576".  These kernels
 * are memory-bound, so the figure to read is GB/s (frac_read_bw against the
 * measured one-core streaming read).  Bytes per call count the compulsory
 * traffic once: every input read and every output written (an accumulated
 * output counts as a read and a write); re-reads of a row that is still in
 * L1 are not counted.  FLOPs are given for the arithmetic kernels only
 * (transcendentals have no meaningful FLOP count; their rate shows as
 * items/s).  Shapes: the model's (d = 64, 128; a few thousand rows), plus one
 * larger-than-cache case for axpy, exp_shift and dot_rows to show streaming. */
#include <stdio.h>
#include <stdlib.h>

#include "dispatch.h"
#include "gbench.h"

enum {
    K_LN_FWD, K_LN_BWD, K_GELU_FWD, K_GELU_BWD, K_AXPY, K_ADD_BIAS, K_SUM_ROWS,
    K_L2_FWD, K_L2_BWD, K_LSE, K_EXP_SHIFT, K_XENT, K_DOT_ROWS, K_COUNT
};

static const char *const knames[K_COUNT] = {
    "layernorm_fwd", "layernorm_bwd", "gelu_fwd",  "gelu_bwd",  "axpy",
    "add_bias_rows", "sum_rows",      "l2norm_fwd", "l2norm_bwd", "logsumexp",
    "exp_shift",     "sigmoid_xent",  "dot_rows"};

/* One shape per line: kernel, rows (0 for 1-d kernels), width or length. */
typedef struct norm_shape {
    int kernel;
    size_t rows, n;
} norm_shape;

static const norm_shape shapes[] = {
    {K_LN_FWD, 4096, 64},    {K_LN_FWD, 4096, 128},   {K_LN_BWD, 4096, 64},
    {K_LN_BWD, 4096, 128},   {K_GELU_FWD, 0, 1 << 20}, {K_GELU_BWD, 0, 1 << 20},
    {K_AXPY, 0, 1 << 20},    {K_AXPY, 0, 1 << 24},    {K_ADD_BIAS, 4096, 128},
    {K_SUM_ROWS, 4096, 128}, {K_L2_FWD, 4096, 64},    {K_L2_BWD, 4096, 64},
    {K_LSE, 0, 1025},        {K_EXP_SHIFT, 0, 1 << 20}, {K_EXP_SHIFT, 0, 1 << 24},
    {K_XENT, 0, 4096},       {K_DOT_ROWS, 1024, 64},  {K_DOT_ROWS, 1 << 18, 64},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

typedef struct norm_case {
    const nu_kernel_table *t;
    const norm_shape *s;
} norm_case;

static norm_case cases[NU_ISA_COUNT][N_SHAPES];

/* Values in [lo, lo + span): small and varied, no denormals or overflow
 * even after millions of accumulating calls. */
static float *alloc_filled(size_t n, float lo, float span)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64 + 64);
    if (!p) {
        fprintf(stderr, "nextuser-microbench: out of memory\n");
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = lo + span * (float)((i * 7919u) % 1000u) * 1e-3f;
    return p;
}

/* Runs one call of the case's kernel on prepared buffers. */
static void run_once(const nu_kernel_table *t, int k, size_t rows, size_t n, float **b,
                     double *sink)
{
    switch (k) {
    case K_LN_FWD:
        t->layernorm_fwd(rows, n, b[0], n, b[1], b[2], 1e-5f, b[3], n, b[4], b[5]);
        break;
    case K_LN_BWD:
        t->layernorm_bwd(rows, n, b[0], n, b[1], b[4], b[5], b[2], n, b[3], n, b[6], b[7]);
        break;
    case K_GELU_FWD: t->gelu_fwd(n, b[0], b[1]); break;
    case K_GELU_BWD: t->gelu_bwd(n, b[0], b[2], b[1]); break;
    case K_AXPY: t->axpy(n, 1e-6f, b[0], b[1]); break;
    case K_ADD_BIAS: t->add_bias_rows(rows, n, b[1], n, b[2]); break;
    case K_SUM_ROWS: t->sum_rows(rows, n, b[0], n, b[2]); break;
    case K_L2_FWD: t->l2norm_fwd(rows, n, b[0], n, 1e-6f, b[1], n, b[4]); break;
    case K_L2_BWD: t->l2norm_bwd(rows, n, b[1], n, b[4], 1e-6f, b[2], n, b[3], n); break;
    case K_LSE: *sink += t->logsumexp(n, b[0]); break;
    case K_EXP_SHIFT: t->exp_shift(n, b[0], 1.0f, b[1]); break;
    case K_XENT: *sink += t->sigmoid_xent(n, b[0], b[6], b[1]); break;
    case K_DOT_ROWS: t->dot_rows(rows, n, b[2], b[0], n, b[4]); break;
    default: break;
    }
}

/* Compulsory bytes and nominal FLOPs of one call. */
static void work_of(int k, size_t rows, size_t n, double *bytes, double *flops)
{
    const double e = (double)(rows ? rows * n : n), f = sizeof(float);
    static const double rw[K_COUNT] = {
        /* floats moved per element */
        [K_LN_FWD] = 2, [K_LN_BWD] = 4,    [K_GELU_FWD] = 2, [K_GELU_BWD] = 3,
        [K_AXPY] = 3,   [K_ADD_BIAS] = 2,  [K_SUM_ROWS] = 1, [K_L2_FWD] = 2,
        [K_L2_BWD] = 4, [K_LSE] = 1,       [K_EXP_SHIFT] = 2, [K_XENT] = 3,
        [K_DOT_ROWS] = 1};
    static const double fl[K_COUNT] = {
        /* arithmetic per element, transcendentals not counted */
        [K_LN_FWD] = 8, [K_LN_BWD] = 14, [K_AXPY] = 2,   [K_ADD_BIAS] = 1,
        [K_SUM_ROWS] = 1, [K_L2_FWD] = 3, [K_L2_BWD] = 6, [K_DOT_ROWS] = 2};
    *bytes = rw[k] * e * f;
    *flops = fl[k] * e;
}

static void bench_norm(nu_bench_state *st, void *arg)
{
    const norm_case *c = arg;
    const int k = c->s->kernel;
    const size_t rows = c->s->rows, n = c->s->n;
    const size_t big = rows ? rows * n : n, vec = rows ? (rows > n ? rows : n) : n;
    /* b[0..3]: big inputs/outputs; b[4], b[5]: per-row or per-vector;
     * b[6], b[7]: per-column accumulators or labels. */
    float *b[8] = {
        alloc_filled(big, -1.0f, 2.0f), alloc_filled(big, -1.0f, 2.0f),
        alloc_filled(big > vec ? big : vec, -1e-3f, 2e-3f), alloc_filled(big, -1.0f, 2.0f),
        alloc_filled(vec, 0.5f, 1.0f), alloc_filled(vec, 0.5f, 1.0f),
        alloc_filled(big > vec ? big : vec, 0.0f, 1.0f), alloc_filled(vec, 0.0f, 1.0f)};
    double sink = 0;
    /* Backward kernels need real stats from their forward. */
    if (k == K_LN_BWD)
        c->t->layernorm_fwd(rows, n, b[0], n, b[1], b[2], 1e-5f, b[3], n, b[4], b[5]);
    if (k == K_L2_BWD)
        c->t->l2norm_fwd(rows, n, b[0], n, 1e-6f, b[1], n, b[4]);
    while (nu_bench_keep_running(st)) {
        run_once(c->t, k, rows, n, b, &sink);
        nu_bench_do_not_optimize(b[1]);
        nu_bench_do_not_optimize(b[3]);
    }
    nu_bench_do_not_optimize(&sink);
    double bytes, flops;
    work_of(k, rows, n, &bytes, &flops);
    nu_bench_report_work(st, flops, bytes);
    nu_bench_set_items_processed(st, nu_bench_iterations(st) * (int64_t)big);
    for (int i = 0; i < 8; i++)
        free(b[i]);
}

void nu_bench_register_norm(void)
{
    char name[96];
    for (int i = 0; i < NU_ISA_COUNT; i++) {
        const nu_kernel_table *t = nu_kernels_for((nu_isa)i);
        if (!t)
            continue;
        for (size_t s = 0; s < N_SHAPES; s++) {
            const norm_shape *sh = &shapes[s];
            cases[i][s] = (norm_case){t, sh};
            if (sh->rows)
                snprintf(name, sizeof name, "%s/%s/R%zu_%s%zu", knames[sh->kernel], t->name,
                         sh->rows, sh->kernel == K_ADD_BIAS || sh->kernel == K_SUM_ROWS ? "N" : "D",
                         sh->n);
            else
                snprintf(name, sizeof name, "%s/%s/N%zu", knames[sh->kernel], t->name, sh->n);
            nu_bench_register(name, bench_norm, &cases[i][s], 0);
        }
    }
}
