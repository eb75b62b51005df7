/* Benchmarks of the fused scoring + top-K kernel, per ISA and shape.
 * Work per call: 2 B N d FLOPs; bytes: the table read once (N d floats) plus
 * the queries -- the B = 1 case is bound by that read. */
#include <stdio.h>
#include <stdlib.h>

#include "dispatch.h"
#include "gbench.h"
#include "util/huge_alloc.h"

typedef struct score_shape {
    size_t B, N, d, K;
    size_t offset; /* bytes the table starts past a page boundary */
} score_shape;

/* B = 1 also with the table 64 bytes off the page boundary: the scan must
 * not depend on where the table starts. */
static const score_shape shapes[] = {
    {1, 1000000, 64, 100, 0},
    {1, 1000000, 64, 100, 64},
    {1, 1000000, 64, 1000, 0},
    {16, 1000000, 64, 100, 0},
    {256, 100000, 64, 100, 0},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

typedef struct score_case {
    const nu_kernel_table *t;
    score_shape s;
} score_case;

/* One shared table and query set (the largest shape), made on first use, in
 * 2 MiB pages and page-aligned as the user tables are (a table 64 bytes off
 * a page boundary once hid a 1.6x slower B = 1 scan, results/bench.md). */
static float *bench_floats(size_t n, unsigned seed)
{
    float *x = nu_huge_alloc(n * sizeof(float));
    if (!x) {
        fprintf(stderr, "bench_score: out of memory\n");
        exit(2);
    }
    uint32_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) * (1.0f / 16777216.0f) - 0.5f;
    }
    return x;
}

static const float *table_data, *query_data;
static size_t table_floats, query_floats;

static void ensure_data(void)
{
    if (table_data)
        return;
    for (size_t i = 0; i < NSHAPES; i++) {
        if (shapes[i].N * shapes[i].d + shapes[i].offset / sizeof(float) > table_floats)
            table_floats = shapes[i].N * shapes[i].d + shapes[i].offset / sizeof(float);
        if (shapes[i].B * shapes[i].d > query_floats)
            query_floats = shapes[i].B * shapes[i].d;
    }
    table_data = bench_floats(table_floats, 1);
    query_data = bench_floats(query_floats, 2);
}

static void bench_score_topk(nu_bench_state *st, void *arg)
{
    const score_case *c = arg;
    const score_shape s = c->s;
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
        c->t->score_topk(s.B, s.N, s.d, query_data, s.d, table_data + s.offset / sizeof(float),
                         s.d, 0, s.K, NULL, ids, scores);
        nu_bench_do_not_optimize(ids);
        nu_bench_do_not_optimize(scores);
    }
    nu_bench_report_work(st, 2.0 * (double)s.B * (double)s.N * (double)s.d,
                         (double)(s.N + s.B) * (double)s.d * sizeof(float));
    free(ids);
    free(scores);
}

void nu_bench_register_score(void)
{
    static score_case cases[NU_ISA_COUNT * NSHAPES];
    char name[128];
    size_t n = 0;
    for (int i = 0; i < NU_ISA_COUNT; i++) {
        const nu_kernel_table *t = nu_kernels_for((nu_isa)i);
        if (!t || !t->score_topk)
            continue;
        for (size_t j = 0; j < NSHAPES; j++) {
            const score_shape s = shapes[j];
            cases[n].t = t;
            cases[n].s = s;
            int w = snprintf(name, sizeof name, "score_topk/%s/B%zu_N%zu_d%zu_K%zu", t->name,
                             s.B, s.N, s.d, s.K);
            if (s.offset && w > 0 && (size_t)w < sizeof name)
                snprintf(name + w, sizeof name - (size_t)w, "_off%zu", s.offset);
            nu_bench_register(name, bench_score_topk, &cases[n], 0);
            n++;
        }
    }
}
