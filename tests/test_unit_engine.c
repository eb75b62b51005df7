/* The engine (label retrieve): recommend equals forward + search done by
 * hand; one engine shared by 8 threads, each with its own session, gives
 * exactly the serial results; no thread is pinned unless the options ask,
 * and a caller asking for pinning gets its own binding back after each call;
 * batch limits and mismatched tables are refused. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "kernel_test_util.h"
#include "model/feature_prior.h"

enum { USERS = 2000, ITEMS = 24, K = 20, THREADS = 8, ROUNDS = 3 };

static nu_model *make_model(void)
{
    nu_model_config c;
    const char *json = "{\"num_users\": 2000, \"d\": 32, \"heads\": 2, \"ffn\": 64, \"max_users\": 8,"
                       " \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 6}]}";
    nu_model *m = NULL;
    if (nu_config_parse(json, "t", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_model_init_random(m, 7);
    return m;
}

static void make_items(const nu_model *m, nu_items *it)
{
    nu_items_init(it, &m->cfg);
    nu_rng r = {21};
    for (size_t i = 0; i < ITEMS; i++) {
        uint32_t users[12], vals[2] = {1 + (uint32_t)(i % 5), 1 + (uint32_t)((i * 3) % 5)};
        size_t n = i % 12, counts[1] = {1 + i % 2};
        for (size_t j = 0; j < n; j++)
            users[j] = (uint32_t)(nu_rng_next(&r) % USERS);
        char id[16];
        snprintf(id, sizeof id, "i%zu", i);
        if (nu_items_push(it, &m->cfg, id, users, n, vals, counts, NULL) != NU_OK)
            exit(2);
    }
}

typedef struct worker {
    const nu_engine *e;
    const nu_items *items;
    const uint32_t *want_ids;
    const float *want_sc;
    int offset, mismatches, failed, affinity_changed;
} worker;

static int same_affinity(const cpu_set_t *a, const cpu_set_t *b)
{
    return CPU_EQUAL(a, b);
}

static void *work(void *arg)
{
    worker *w = arg;
    cpu_set_t before, after;
    pthread_getaffinity_np(pthread_self(), sizeof before, &before);
    nu_session s;
    if (nu_session_init(w->e, &s) != NU_OK) {
        w->failed = 1;
        return NULL;
    }
    uint32_t ids[3 * K];
    float sc[3 * K];
    for (int round = 0; round < ROUNDS; round++)
        for (size_t k = 0; k < ITEMS; k += 3) {
            /* Each thread walks the items from its own offset, in threes. */
            size_t first = (k + (size_t)w->offset * 3) % ITEMS;
            if (nu_engine_recommend(&s, w->items, first, 3, ids, sc) != NU_OK) {
                w->failed = 1;
                break;
            }
            w->mismatches += memcmp(ids, w->want_ids + first * K, sizeof ids) != 0 ||
                             memcmp(sc, w->want_sc + first * K, sizeof sc) != 0;
        }
    nu_session_release(&s);
    pthread_getaffinity_np(pthread_self(), sizeof after, &after);
    w->affinity_changed = !same_affinity(&before, &after);
    return NULL;
}

int main(void)
{
    if (nu_init() != NU_OK)
        return 2;
    nu_model *m = make_model();
    nu_items items;
    make_items(m, &items);
    nu_user_table t;
    NU_CHECK(nu_user_table_build(m, 1, 0, &t) == NU_OK, "table: %s", nu_last_error());

    cpu_set_t before, after;
    pthread_getaffinity_np(pthread_self(), sizeof before, &before);
    nu_engine e;
    nu_engine_opts o = {.threads = 2, .max_batch = 4, .k = K, .dtype = NU_TABLE_F32};
    NU_CHECK(nu_engine_init(m, &t, &o, &e) == NU_OK, "engine: %s", nu_last_error());
    nu_session s;
    NU_CHECK(nu_session_init(&e, &s) == NU_OK, "session: %s", nu_last_error());

    /* By hand, item by item: the forward, then the search leaving out the
     * item's history; recommend of one item must equal it bit for bit. */
    float q[ITEMS * 32];
    nu_run_options ro = {.threads = 1, .mode = NU_FORWARD_INFER};
    NU_CHECK(nu_run_forward(m, &items, &ro, q, NULL) == NU_OK, "forward");
    nu_search_opts so = {.k = K, .dtype = NU_TABLE_F32, .threads = 1};
    int differ = 0;
    uint32_t ids[ITEMS * K], one_ids[K];
    float sc[ITEMS * K], one_sc[K];
    for (size_t i = 0; i < ITEMS; i++) {
        nu_id_list excl = {items.hist + items.hist_off[i], nu_items_n_hist(&items, i)};
        NU_CHECK(nu_search(&t, &so, q + i * 32, 1, 32, &excl, ids, sc, NULL) == NU_OK, "search");
        NU_CHECK(nu_engine_recommend(&s, &items, i, 1, one_ids, one_sc) == NU_OK,
                 "recommend %zu: %s", i, nu_last_error());
        differ += memcmp(ids, one_ids, sizeof one_ids) != 0 || memcmp(sc, one_sc, sizeof one_sc) != 0;
    }
    NU_CHECK(differ == 0, "recommend = forward + search with the history left out, bit for bit "
             "(%d items differ)", differ);
    /* Embed alone gives the forward's û, whatever the batch. */
    float u[4 * 32];
    NU_CHECK(nu_engine_embed(&s, &items, 0, 4, u) == NU_OK && !memcmp(u, q, sizeof u),
             "embed = the forward");

    /* The serial reference of the calls the threads make: batches of 3. */
    uint32_t *want_ids = malloc(ITEMS * K * sizeof *want_ids);
    float *want_sc = malloc(ITEMS * K * sizeof *want_sc);
    for (size_t i = 0; i < ITEMS; i += 3)
        NU_CHECK(nu_engine_recommend(&s, &items, i, 3, want_ids + i * K, want_sc + i * K) == NU_OK,
                 "recommend %zu: %s", i, nu_last_error());
    /* Batching changes no user (scores may differ in the last bit between
     * batch sizes: the scan kernel blocks queries). */
    uint32_t single[ITEMS * K];
    for (size_t i = 0; i < ITEMS; i++)
        nu_engine_recommend(&s, &items, i, 1, single + i * K, sc);
    NU_CHECK(!memcmp(single, want_ids, sizeof single), "batches of 3 rank as single items");

    /* Eight threads, one engine, a session each. */
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.e = &e, .items = &items, .want_ids = want_ids, .want_sc = want_sc, .offset = i};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int mismatches = 0, failed = 0, moved = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        mismatches += w[i].mismatches;
        failed += w[i].failed;
        moved += w[i].affinity_changed;
    }
    NU_CHECK(!failed && mismatches == 0, "8 threads sharing the engine: %d calls differ from the "
             "serial results, %d threads failed", mismatches, failed);
    NU_CHECK(moved == 0, "no caller thread pinned by the engine (%d were)", moved);
    pthread_getaffinity_np(pthread_self(), sizeof after, &after);
    NU_CHECK(same_affinity(&before, &after), "the main thread's affinity is untouched (pin off)");

    /* Pinning asked for: the caller still gets its own binding back. */
    nu_engine ep;
    nu_engine_opts op = o;
    op.pin = 1;
    NU_CHECK(nu_engine_init(m, &t, &op, &ep) == NU_OK, "pinned engine");
    nu_session sp;
    NU_CHECK(nu_session_init(&ep, &sp) == NU_OK, "pinned session");
    NU_CHECK(nu_engine_recommend(&sp, &items, 0, 4, ids, sc) == NU_OK &&
                 !memcmp(ids, want_ids, 4 * K * sizeof *ids),
             "pinned: the same results");
    pthread_getaffinity_np(pthread_self(), sizeof after, &after);
    NU_CHECK(same_affinity(&before, &after), "pin on: the caller's binding restored after the call");
    nu_session_release(&sp);
    nu_engine_release(&ep);

    /* A session told to use fewer threads than its engine runs the same
     * batches and table shards in turn: bit for bit the same answers, for
     * every encoding and call size. */
    nu_user_table tq;
    NU_CHECK(nu_user_table_build(m, 1, 1, &tq) == NU_OK, "table with bf16/int8: %s",
             nu_last_error());
    int team_differ = 0;
    for (int dt = NU_TABLE_F32; dt <= NU_TABLE_I8; dt++) {
        nu_engine e3;
        nu_engine_opts o3 = {.threads = 3, .max_batch = 4, .k = K, .dtype = (nu_table_dtype)dt};
        NU_CHECK(nu_engine_init(m, &tq, &o3, &e3) == NU_OK, "3-thread engine: %s",
                 nu_last_error());
        nu_session full, fewer;
        NU_CHECK(nu_session_init(&e3, &full) == NU_OK && nu_session_init(&e3, &fewer) == NU_OK,
                 "sessions");
        for (int team = 1; team <= 4; team++) {
            nu_session_use_threads(&fewer, team);
            for (size_t n = 1; n <= 4; n += 3) {
                uint32_t a_ids[4 * K], b_ids[4 * K];
                float a_sc[4 * K], b_sc[4 * K], a_u[4 * 32], b_u[4 * 32];
                NU_CHECK(nu_engine_recommend(&full, &items, 1, n, a_ids, a_sc) == NU_OK &&
                             nu_engine_recommend(&fewer, &items, 1, n, b_ids, b_sc) == NU_OK &&
                             nu_engine_embed(&full, &items, 2, n, a_u) == NU_OK &&
                             nu_engine_embed(&fewer, &items, 2, n, b_u) == NU_OK,
                         "calls with %d threads: %s", team, nu_last_error());
                team_differ += memcmp(a_ids, b_ids, n * K * sizeof *a_ids) != 0 ||
                               memcmp(a_sc, b_sc, n * K * sizeof *a_sc) != 0 ||
                               memcmp(a_u, b_u, n * 32 * sizeof *a_u) != 0;
            }
        }
        nu_session_release(&full);
        nu_session_release(&fewer);
        nu_engine_release(&e3);
    }
    NU_CHECK(team_differ == 0, "a session on 1 or 2 of its engine's 3 threads answers as the "
             "engine (%d calls differ)", team_differ);
    nu_user_table_free(&tq);

    /* Refusals. */
    NU_CHECK(nu_engine_recommend(&s, &items, 0, 5, ids, sc) == NU_ERR_INVALID_ARG,
             "more than max_batch items refused");
    NU_CHECK(nu_engine_recommend(&s, &items, ITEMS - 1, 2, ids, sc) == NU_ERR_INVALID_ARG,
             "items past the end refused");
    nu_engine bad;
    nu_engine_opts oi = o;
    oi.dtype = NU_TABLE_I8;
    NU_CHECK(nu_engine_init(m, &t, &oi, &bad) == NU_ERR_INVALID_ARG &&
                 strstr(nu_last_error(), "int8"),
             "an encoding the table lacks refused: %s", nu_last_error());
    nu_user_table small = t;
    small.rows = USERS - 1;
    NU_CHECK(nu_engine_init(m, &small, &o, &bad) == NU_ERR_INVALID_ARG,
             "another model's table refused: %s", nu_last_error());

    nu_session_release(&s);
    nu_engine_release(&e);
    free(want_ids);
    free(want_sc);
    nu_user_table_free(&t);
    nu_items_free(&items);
    nu_model_free(m);
    return nu_test_finish("unit_engine");
}
