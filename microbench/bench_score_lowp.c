/* Benchmarks of scoring + top-K on compressed tables (bf16, int8), per ISA
 * (and, on AVX-512, per code path) and shape.
 * Work per call: 2 B N d multiply-adds-as-FLOPs; bytes: the table read once
 * (bf16: 2 N d; int8: N d + 8 N for row_scale and row_sum) plus the
 * queries -- B = 1 is bound by that read.  Compare with
 * score_topk/<isa>/B1_N1000000_d64_K1000 (fp32) in the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "gbench.h"
#include "util/huge_alloc.h"
#include "score_lowp_variants.h"

void nu_bench_register_score_lowp(void);

typedef struct lowp_shape {
    size_t B, N, d, K;
} lowp_shape;

static const lowp_shape shapes[] = {
    {1, 1000000, 64, 1000},
    {1, 1000000, 64, 100},
    {16, 1000000, 64, 100},
    {16, 100000, 64, 1000},
    {256, 100000, 64, 100},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])
#define MAX_TABLES 8

typedef struct lowp_case {
    const nu_kernel_table *t;
    lowp_shape s;
    int i8;
} lowp_case;

/* One shared data set for the largest shape, made on first use. */
static struct {
    int ready;
    float *qf;
    int8_t *q8;
    float *qscale;
    uint16_t *tb;
    int8_t *t8;
    float *row_scale;
    int32_t *row_sum;
} data;

/* In 2 MiB pages, page-aligned, as the user tables are: a table 64 bytes
 * off a page boundary once hid a 1.6x slower B = 1 scan (results/bench.md). */
static void *bench_alloc(size_t bytes)
{
    void *p = nu_huge_alloc(bytes);
    if (!p) {
        fprintf(stderr, "bench_score_lowp: out of memory\n");
        exit(2);
    }
    return p;
}

static float lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) * (1.0f / 16777216.0f) - 0.5f;
}

static void ensure_data(void)
{
    if (data.ready)
        return;
    size_t rows = 0, nq = 0, d = 0;
    for (size_t i = 0; i < NSHAPES; i++) {
        rows = shapes[i].N > rows ? shapes[i].N : rows;
        nq = shapes[i].B > nq ? shapes[i].B : nq;
        d = shapes[i].d > d ? shapes[i].d : d;
    }
    uint32_t s = 1;
    data.qf = bench_alloc(nq * d * sizeof(float));
    data.q8 = bench_alloc(nq * d);
    data.qscale = bench_alloc(nq * sizeof(float));
    for (size_t i = 0; i < nq * d; i++) {
        data.qf[i] = lcg(&s);
        data.q8[i] = (int8_t)(data.qf[i] * 254.0f);
    }
    for (size_t b = 0; b < nq; b++)
        data.qscale[b] = 1.0f / 254.0f;
    data.tb = bench_alloc(rows * d * sizeof(uint16_t));
    data.t8 = bench_alloc(rows * d);
    data.row_scale = bench_alloc(rows * sizeof(float));
    data.row_sum = bench_alloc(rows * sizeof(int32_t));
    for (size_t r = 0; r < rows; r++) {
        int32_t sum = 0;
        for (size_t k = 0; k < d; k++) {
            float x = lcg(&s);
            uint32_t u;
            memcpy(&u, &x, sizeof u);
            data.tb[r * d + k] = (uint16_t)(u >> 16);
            data.t8[r * d + k] = (int8_t)(x * 254.0f);
            sum += data.t8[r * d + k];
        }
        data.row_scale[r] = 1.0f / 254.0f;
        data.row_sum[r] = sum;
    }
    data.ready = 1;
}

static void bench_lowp(nu_bench_state *st, void *arg)
{
    const lowp_case *c = arg;
    const lowp_shape s = c->s;
    ensure_data();
    uint32_t *ids = malloc(s.B * s.K * sizeof(uint32_t));
    float *scores = malloc(s.B * s.K * sizeof(float));
    if (!ids || !scores) {
        nu_bench_skip(st, "out of memory");
        free(ids);
        free(scores);
        return;
    }
    while (nu_bench_keep_running(st)) {
        if (c->i8)
            c->t->score_topk_i8(s.B, s.N, s.d, data.q8, s.d, data.qscale, data.t8, s.d,
                                data.row_scale, data.row_sum, 0, s.K, NULL, ids, scores);
        else
            c->t->score_topk_bf16(s.B, s.N, s.d, data.qf, s.d, data.tb, s.d, 0, s.K, NULL, ids,
                                  scores);
        nu_bench_do_not_optimize(ids);
        nu_bench_do_not_optimize(scores);
    }
    double table = c->i8 ? (double)s.N * ((double)s.d + 8.0) : (double)s.N * (double)s.d * 2.0;
    double queries = (double)s.B * (double)s.d * (c->i8 ? 1.0 : 4.0);
    nu_bench_report_work(st, 2.0 * (double)s.B * (double)s.N * (double)s.d, table + queries);
    free(ids);
    free(scores);
}

/* The tables to time: every ISA's own, plus the AVX-512 fallback paths. */
static nu_kernel_table extra[4];
static const char *extra_names[4];

static size_t tables(const nu_kernel_table **out, const char **names)
{
    size_t n = 0;
    for (int i = 0; i < NU_ISA_COUNT; i++) {
        const nu_kernel_table *t = nu_kernels_for((nu_isa)i);
        if (!t || !t->score_topk_bf16)
            continue;
        out[n] = t;
        names[n++] = t->name;
#if defined(__x86_64__)
        if (t->isa == NU_ISA_AVX512) {
            extra[0] = *t;
            nu_fill_score_lowp_avx512_variant(&extra[0], 0, 0);
            extra_names[0] = "avx512-widen";
            out[n] = &extra[0];
            names[n++] = extra_names[0];
        }
#endif
    }
    return n;
}

void nu_bench_register_score_lowp(void)
{
    static lowp_case cases[2 * MAX_TABLES * NSHAPES];
    const nu_kernel_table *t[MAX_TABLES];
    const char *names[MAX_TABLES];
    size_t nt = tables(t, names), n = 0;
    char name[128];
    for (int i8 = 0; i8 < 2; i8++)
        for (size_t i = 0; i < nt; i++)
            for (size_t j = 0; j < NSHAPES; j++) {
                const lowp_shape s = shapes[j];
                cases[n].t = t[i];
                cases[n].s = s;
                cases[n].i8 = i8;
                snprintf(name, sizeof name, "%s/%s/B%zu_N%zu_d%zu_K%zu",
                         i8 ? "score_topk_i8" : "score_topk_bf16", names[i], s.B, s.N, s.d, s.K);
                nu_bench_register(name, bench_lowp, &cases[n], 0);
                n++;
            }
}
