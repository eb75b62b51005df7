/* The engine's per-call overhead (results/engine.md): at B = 1 over 100k
 * users, one thread, on the best ISA,
 *   engine/forward    the generator alone on one item (nu_forward_batch),
 *   engine/scan       the fused score + top-K kernel alone on one query,
 *   engine/recommend  nu_engine_recommend of the same item: the two plus
 *                     everything the engine adds (query tails, exclusions,
 *                     normalising, the merge),
 * measured in the same run so that recommend / (forward + scan) is a
 * same-run ratio;
 *   engine/recommend_cold  the same call after 128 MiB of other data went
 *                     through the caches (untimed): a service at light
 *                     load, whose table and weights are cold every call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "engine/engine.h"
#include "gbench.h"

enum { USERS = 100000, CONTEXT = 50, K = 100 };

typedef struct engine_fixture {
    nu_model *m;
    nu_items items;
    nu_user_table table;
    nu_engine engine;
    nu_session session;
    nu_arena arena;
    float *uhat;
    int ready;
} engine_fixture;

static engine_fixture fx;

static int ensure_fixture(void)
{
    if (fx.ready)
        return fx.ready > 0;
    fx.ready = -1;
    nu_model_config c;
    const char *json = "{\"num_users\": 100000, \"prefix_fields\": [{\"name\": \"genre\", "
                       "\"kind\": \"multi\", \"vocab\": 20}, {\"name\": \"year\", "
                       "\"kind\": \"categorical\", \"vocab\": 12}]}";
    if (nu_config_parse(json, "bench", &c) != NU_OK || nu_model_create(&c, &fx.m) != NU_OK)
        return 0;
    nu_model_init_random(fx.m, 1);
    nu_items_init(&fx.items, &fx.m->cfg);
    uint32_t users[CONTEXT], vals[3] = {2, 7, 5};
    size_t counts[2] = {2, 1};
    for (size_t i = 0; i < CONTEXT; i++)
        users[i] = (uint32_t)((i * 7919u) % USERS);
    nu_engine_opts o = {.threads = 1, .max_batch = 1, .k = K, .dtype = NU_TABLE_F32};
    if (nu_items_push(&fx.items, &fx.m->cfg, "item", users, CONTEXT, vals, counts, NULL) != NU_OK ||
        nu_user_table_build(fx.m, 0, 0, &fx.table) != NU_OK ||
        nu_engine_init(fx.m, &fx.table, &o, &fx.engine) != NU_OK ||
        nu_session_init(&fx.engine, &fx.session) != NU_OK ||
        !nu_arena_create(&fx.arena, nu_forward_scratch_bytes(&fx.m->cfg, 1, NU_FORWARD_INFER)))
        return 0;
    fx.uhat = malloc(fx.m->cfg.d * sizeof *fx.uhat);
    fx.ready = fx.uhat ? 1 : -1;
    return fx.ready > 0;
}

static void bench_forward(nu_bench_state *st, void *arg)
{
    (void)arg;
    if (!ensure_fixture()) {
        nu_bench_skip(st, "setup failed");
        return;
    }
    while (nu_bench_keep_running(st)) {
        fx.arena.used = 0;
        nu_forward_batch(&fx.m->cfg, &fx.m->w, &fx.items, 0, 1, NU_FORWARD_INFER, &fx.arena, fx.uhat);
        nu_bench_do_not_optimize(fx.uhat);
    }
}

static void bench_scan(nu_bench_state *st, void *arg)
{
    (void)arg;
    if (!ensure_fixture()) {
        nu_bench_skip(st, "setup failed");
        return;
    }
    const nu_kernel_table *k = nu_kernels();
    size_t d = fx.table.d;
    float *q = calloc(d, sizeof *q);
    uint32_t ids[K];
    float sc[K];
    for (size_t j = 0; q && j < d; j++)
        q[j] = 1.0f / (float)(j + 1);
    while (q && nu_bench_keep_running(st)) {
        k->score_topk(1, USERS, d, q, d, fx.table.f32, d, 0, K, NULL, ids, sc);
        nu_bench_do_not_optimize(ids);
    }
    free(q);
}

/* Untimed: reads a buffer far above the last-level cache. */
static void evict_caches(void)
{
    enum { EVICT_BYTES = 128 << 20 };
    static unsigned char *junk;
    if (!junk && !(junk = malloc(EVICT_BYTES)))
        return;
    for (size_t i = 0; i < EVICT_BYTES; i += 64)
        junk[i] = (unsigned char)(junk[i] + 1);
    nu_bench_do_not_optimize(junk);
}

/* arg non-NULL: evict the caches (untimed) before every call. */
static void bench_recommend(nu_bench_state *st, void *arg)
{
    if (!ensure_fixture()) {
        nu_bench_skip(st, "setup failed");
        return;
    }
    uint32_t ids[K];
    float sc[K];
    while (nu_bench_keep_running(st)) {
        if (arg) {
            nu_bench_pause(st);
            evict_caches();
            nu_bench_resume(st);
        }
        nu_engine_recommend(&fx.session, &fx.items, 0, 1, ids, sc);
        nu_bench_do_not_optimize(ids);
    }
}

void nu_bench_register_engine(void)
{
    nu_bench_register("engine/forward/B1_users50", bench_forward, NULL, 0);
    nu_bench_register("engine/scan/B1_N100000_d64_K100", bench_scan, NULL, 0);
    nu_bench_register("engine/recommend/B1_N100000_d64_K100", bench_recommend, NULL, 0);
    static int cold = 1;
    nu_bench_register("engine/recommend_cold/B1_N100000_d64_K100", bench_recommend, &cold, 0);
}
