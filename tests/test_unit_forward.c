/* Forward-pass invariants: an item's output is bit-identical whatever the
 * thread count, batch size, batch neighbours, item order or NUMA layout
 * (hwloc synthetic topologies); training mode's last position equals the
 * inference output; the causal mask hides later users; n = 0 works; and
 * batches are processed by the threads of the node they were given to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/items_jsonl.h"
#include "kernel_test_util.h"
#include "runtime/runner.h"

static nu_model *make_model(int bidirectional, int use_cls)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"num_users\": 300, \"d\": 32, \"heads\": 4, \"ffn\": 48, \"enc_layers\": 2, "
             "\"dec_layers\": 2, \"max_users\": 12, \"attention\": \"%s\", \"use_cls\": %s, "
             "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 9}, "
             "{\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 5}, "
             "{\"name\": \"x\", \"kind\": \"dense\", \"dim\": 3}]}",
             bidirectional ? "bidirectional" : "causal", use_cls ? "true" : "false");
    nu_model_config c;
    nu_model *m = NULL;
    if (nu_config_parse(json, "test", &c) != NU_OK || nu_model_create(&c, &m) != NU_OK) {
        fprintf(stderr, "model: %s\n", nu_last_error());
        exit(2);
    }
    nu_model_init_random(m, 7);
    return m;
}

/* Random items with n in {0, 1, 5, 12, 20 (truncated to 12)} and random features. */
static void make_items(const nu_model *m, nu_items *items, size_t count, uint64_t seed, int reverse)
{
    nu_rng r = {seed};
    uint32_t *users = malloc(count * 20 * sizeof *users);
    uint32_t *vals = malloc(count * 8 * sizeof *vals);
    size_t *counts = malloc(count * 3 * sizeof *counts);
    float *dense = malloc(count * 3 * sizeof *dense);
    static const size_t ns[] = {0, 1, 5, 12, 20};
    for (size_t i = 0; i < count; i++) {
        for (size_t u = 0; u < 20; u++)
            users[i * 20 + u] = (uint32_t)nu_rng_range(&r, 0, 299);
        counts[i * 3 + 0] = nu_rng_range(&r, 0, 3);
        counts[i * 3 + 1] = nu_rng_range(&r, 0, 1);
        counts[i * 3 + 2] = 0;
        for (size_t v = 0; v < 4; v++)
            vals[i * 8 + v] = (uint32_t)nu_rng_range(&r, 0, 4);
        nu_rng_fill(&r, dense + i * 3, 3, -1, 1);
    }
    nu_items_init(items, &m->cfg);
    for (size_t k = 0; k < count; k++) {
        size_t i = reverse ? count - 1 - k : k;
        char id[32];
        snprintf(id, sizeof id, "i%zu", i);
        nu_items_push(items, &m->cfg, id, users + i * 20, ns[i % 5], vals + i * 8, counts + i * 3,
                      dense + i * 3);
    }
    free(users);
    free(vals);
    free(counts);
    free(dense);
}

static float *run(const nu_model *m, const nu_items *items, int threads, size_t batch,
                  nu_forward_mode mode, nu_run_stats *stats)
{
    size_t rows = nu_run_output_rows(items, mode);
    float *out = malloc((rows + 1) * m->cfg.d * sizeof(float));
    nu_run_options opt = {.threads = threads, .batch_items = batch, .mode = mode};
    nu_run_stats local;
    nu_status s = nu_run_forward(m, items, &opt, out, stats ? stats : &local);
    NU_CHECK(s == NU_OK, "run: %s", nu_last_error());
    if (!stats && s == NU_OK)
        nu_run_stats_free(&local);
    return out;
}

static void test_invariance(int bidirectional, int use_cls)
{
    nu_model *m = make_model(bidirectional, use_cls);
    size_t count = 53, d = m->cfg.d;
    nu_items items, rev;
    make_items(m, &items, count, 11, 0);
    make_items(m, &rev, count, 11, 1);
    float *ref = run(m, &items, 1, 64, NU_FORWARD_INFER, NULL);
    int finite = 1;
    for (size_t i = 0; i < count * d; i++)
        finite &= ref[i] == ref[i] && ref[i] - ref[i] == 0;
    NU_CHECK(finite, "outputs are finite");
    struct { int threads; size_t batch; } cfgs[] = {{2, 64}, {2, 7}, {3, 1}, {1, 5}, {4, 16}};
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        float *o = run(m, &items, cfgs[k].threads, cfgs[k].batch, NU_FORWARD_INFER, NULL);
        NU_CHECK(memcmp(o, ref, count * d * sizeof(float)) == 0,
                 "bit-identical with %d threads, batch %zu (bidirectional %d, cls %d)",
                 cfgs[k].threads, cfgs[k].batch, bidirectional, use_cls);
        free(o);
    }
    float *o = run(m, &rev, 2, 9, NU_FORWARD_INFER, NULL);
    int same = 1;
    for (size_t k = 0; k < count; k++)
        same &= memcmp(o + k * d, ref + (count - 1 - k) * d, d * sizeof(float)) == 0;
    NU_CHECK(same, "bit-identical with the items reversed (other neighbours)");
    free(o);
    /* Training mode: position n+1 of each item is the inference output, up to
     * rounding (attention kernels may tile several queries together, which
     * changes the summation order but not the value beyond ~1e-6). */
    float *tr = run(m, &items, 2, 8, NU_FORWARD_TRAIN, NULL);
    size_t row = 0;
    float worst = 0;
    for (size_t i = 0; i < count; i++) {
        row += nu_items_n_users(&items, i) + 1;
        for (size_t j = 0; j < d; j++) {
            float diff = tr[(row - 1) * d + j] - ref[i * d + j];
            worst = diff < 0 ? (-diff > worst ? -diff : worst) : (diff > worst ? diff : worst);
        }
    }
    NU_CHECK(worst <= 1e-5f, "training mode's last position equals inference within 1e-5, got %g "
             "(bidirectional %d)", (double)worst, bidirectional);
    free(tr);
    free(ref);
    nu_items_free(&items);
    nu_items_free(&rev);
    nu_model_free(m);
}

/* Under the causal mask, decoder position j sees only users before j:
 * changing the last user changes only position n+1. */
static void test_causality(void)
{
    nu_model *m = make_model(0, 1);
    size_t d = m->cfg.d;
    uint32_t users[6] = {3, 14, 15, 92, 65, 35}, vals[1] = {2};
    size_t counts[3] = {1, 0, 0};
    nu_items a, b;
    nu_items_init(&a, &m->cfg);
    nu_items_init(&b, &m->cfg);
    nu_items_push(&a, &m->cfg, "a", users, 6, vals, counts, NULL);
    users[5] = 200;
    nu_items_push(&b, &m->cfg, "b", users, 6, vals, counts, NULL);
    float *oa = run(m, &a, 1, 4, NU_FORWARD_TRAIN, NULL), *ob = run(m, &b, 1, 4, NU_FORWARD_TRAIN, NULL);
    NU_CHECK(memcmp(oa, ob, 6 * d * sizeof(float)) == 0, "positions 1..n unchanged by the last user");
    NU_CHECK(memcmp(oa + 6 * d, ob + 6 * d, d * sizeof(float)) != 0, "position n+1 sees the last user");
    free(oa);
    free(ob);
    nu_items_free(&a);
    nu_items_free(&b);
    nu_model_free(m);
}

/* Synthetic two-node topology: node copies of the weights give the same
 * bits, each node gets a contiguous share of the batches, and every batch
 * runs on a thread of the node it was given to. */
static void test_numa_assignment(void)
{
    nu_model *m = make_model(0, 1);
    nu_items items;
    make_items(m, &items, 40, 5, 0);
    float *ref = run(m, &items, 1, 4, NU_FORWARD_INFER, NULL);
    setenv("HWLOC_SYNTHETIC", "pack:2 [numa] core:4 pu:1", 1);
    nu_run_stats st;
    float *o = run(m, &items, 8, 4, NU_FORWARD_INFER, &st);
    NU_CHECK(st.nodes == 2 && st.threads == 8, "synthetic topology seen: %d nodes, %d threads",
             st.nodes, st.threads);
    NU_CHECK(memcmp(o, ref, items.count * m->cfg.d * sizeof(float)) == 0,
             "bit-identical on two nodes with per-node weight copies");
    int ordered = 1, on_node = 1;
    for (size_t b = 0; b < st.batches; b++) {
        ordered &= st.batch_node[b] == (b < st.batches / 2 ? 0 : 1);
        /* Threads alternate across nodes: even tids on node 0, odd on node 1. */
        on_node &= st.batch_thread[b] % 2 == st.batch_node[b];
    }
    NU_CHECK(ordered, "node 0 took the first half of the batches, node 1 the second");
    NU_CHECK(on_node, "every batch ran on a thread of its node");
    nu_run_stats_free(&st);
    free(o);
    /* Three nodes, uneven cores: shares follow the threads per node. */
    setenv("HWLOC_SYNTHETIC", "numa:3 core:2 pu:2", 1);
    o = run(m, &items, 6, 1, NU_FORWARD_INFER, &st);
    int per_node[3] = {0, 0, 0};
    for (size_t b = 0; b < st.batches; b++)
        per_node[st.batch_node[b]]++;
    NU_CHECK(st.nodes == 3 && per_node[0] >= 13 && per_node[1] >= 13 && per_node[2] >= 13,
             "three nodes share 40 batches evenly (%d %d %d)", per_node[0], per_node[1], per_node[2]);
    NU_CHECK(memcmp(o, ref, items.count * m->cfg.d * sizeof(float)) == 0,
             "bit-identical on three nodes");
    nu_run_stats_free(&st);
    free(o);
    setenv("HWLOC_SYNTHETIC", "not a topology", 1);
    nu_run_options opt = {.threads = 2, .batch_items = 4, .mode = NU_FORWARD_INFER};
    float tmp[64 * 40];
    NU_CHECK(nu_run_forward(m, &items, &opt, tmp, NULL) == NU_ERR_INVALID_ARG &&
                 strstr(nu_last_error(), "HWLOC_SYNTHETIC"),
             "a bad synthetic topology is a clear error: %s", nu_last_error());
    unsetenv("HWLOC_SYNTHETIC");
    free(ref);
    nu_items_free(&items);
    nu_model_free(m);
}

int main(void)
{
    if (nu_init() != NU_OK) {
        fprintf(stderr, "%s\n", nu_last_error());
        return 2;
    }
    printf("isa %s\n", nu_isa_active());
    for (int bi = 0; bi < 2; bi++)
        for (int cls = 0; cls < 2; cls++)
            test_invariance(bi, cls);
    test_causality();
    test_numa_assignment();
    return nu_test_finish("unit_forward");
}
