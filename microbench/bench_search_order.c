/* nu_search over a table whose rows come in an order the scores follow
 * (results/bench.md, "Ordered tables"): 100k rows of d 64 with a shared
 * "popularity" direction v, the queries leaning on v, the rows either
 * shuffled or sorted by their v component (best first, as a table sorted
 * by popularity would be for such queries).  The scoring kernels' driver
 * guesses each query's threshold from a sample (kernels/topk.c); this is
 * where a sample of the first rows failed and every query was scanned
 * twice.  Names: search_order/<shuffled|sorted>/<dtype>/B<b>. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gbench.h"
#include "model/model.h"
#include "retrieval/search.h"
#include "retrieval/user_table.h"
#include "util/rng.h"

enum { ROWS = 100000, DIM = 64, K = 100 };

typedef struct order_case {
    int sorted;
    nu_table_dtype dtype;
    size_t B;
} order_case;

static nu_user_table tables[2];
static float lean[DIM]; /* the shared direction v, unit length */
static int ready;       /* 0 not yet, 1 built, -1 failed */

static float along_lean(const float *row)
{
    float s = 0;
    for (int i = 0; i < DIM; i++)
        s += row[i] * lean[i];
    return s;
}

static int by_lean_desc(const void *a, const void *b)
{
    float x = along_lean(a), y = along_lean(b);
    return x > y ? -1 : x < y;
}

/* Both tables: every row noise plus a random multiple of v. */
static int build(void)
{
    if (ready)
        return ready > 0;
    ready = -1;
    nu_random r = {3};
    double n = 0;
    for (int i = 0; i < DIM; i++) {
        lean[i] = (float)nu_random_normal(&r);
        n += lean[i] * lean[i];
    }
    for (int i = 0; i < DIM; i++)
        lean[i] /= (float)sqrt(n);
    char json[128];
    snprintf(json, sizeof json, "{\"num_users\": %d, \"d\": %d, \"heads\": 1}", ROWS, DIM);
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse(json, "bench", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        return 0;
    float *e = m->w.user_emb;
    for (size_t u = 0; u < ROWS; u++) {
        double pop = nu_random_normal(&r);
        for (int i = 0; i < DIM; i++)
            e[u * DIM + i] = (float)(nu_random_normal(&r) / 8 + 0.5 * pop * lean[i]);
    }
    int ok = nu_user_table_build(m, 1, 1, &tables[0]) == NU_OK;
    qsort(e, ROWS, DIM * sizeof *e, by_lean_desc);
    ok = ok && nu_user_table_build(m, 1, 1, &tables[1]) == NU_OK;
    nu_model_free(m);
    ready = ok ? 1 : -1;
    return ok;
}

static void bench_order(nu_bench_state *st, void *arg)
{
    const order_case *oc = arg;
    if (!build()) {
        nu_bench_skip(st, "setup failed");
        return;
    }
    nu_random r = {7};
    float *q = malloc(oc->B * DIM * sizeof *q);
    uint32_t *ids = malloc(oc->B * K * sizeof *ids);
    float *sc = malloc(oc->B * K * sizeof *sc);
    for (size_t i = 0; q && i < oc->B * DIM; i++)
        q[i] = (float)(0.5 * lean[i % DIM] + nu_random_normal(&r) / 8);
    nu_search_opts o = {.k = K, .dtype = oc->dtype, .threads = 1};
    while (q && ids && sc && nu_bench_keep_running(st)) {
        nu_search(&tables[oc->sorted], &o, q, oc->B, DIM, NULL, ids, sc, NULL);
        nu_bench_do_not_optimize(ids);
    }
    nu_bench_set_items_processed(st, nu_bench_iterations(st) * (int64_t)oc->B);
    free(q);
    free(ids);
    free(sc);
}

void nu_bench_register_search_order(void)
{
    static const size_t bs[] = {1, 16, 256};
    static order_case cases[2 * 3 * 3];
    size_t n = 0;
    for (int sorted = 0; sorted < 2; sorted++)
        for (int dt = 0; dt < 3; dt++)
            for (size_t i = 0; i < 3; i++) {
                order_case *c = &cases[n++];
                *c = (order_case){sorted, (nu_table_dtype)dt, bs[i]};
                char name[96];
                snprintf(name, sizeof name, "search_order/%s/%s/B%zu", sorted ? "sorted" : "shuffled",
                         nu_table_dtype_name(c->dtype), c->B);
                nu_bench_register(name, bench_order, c, 0);
            }
}
