/* Cold-start evaluation: Recall@K on hand-computed cases, the stage
 * construction (contexts, targets, items per stage) on a hand-made data
 * directory, the popular ranking (train positives only, ties by lower row)
 * and the baselines' recall end to end on the same directory, also item by
 * item.  lookalike-mf, feature-popular and the ALS: test_unit_eval_baselines.c
 * and test_unit_eval_als.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/eval.h"
#include "model/model.h"
#include "kernel_test_util.h"


static void rm_dir(const char *dir)
{
    static const char *const files[] = {"data.json", "users.txt", "vocab_g.txt", "items.jsonl"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_recall(void)
{
    /* targets {3, 5, 7, 9}; ranked 5 1 3 9 2: top-2 hits {5} -> 1/4, top-4
     * hits {5, 3, 9} -> 3/4, top-10 (list of 5) the same. */
    const uint32_t ranked[] = {5, 1, 3, 9, 2}, targets[] = {9, 3, 7, 5};
    NU_CHECK(nu_recall_at_k(ranked, 5, 2, targets, 4) == 0.25, "recall@2");
    NU_CHECK(nu_recall_at_k(ranked, 5, 4, targets, 4) == 0.75, "recall@4");
    NU_CHECK(nu_recall_at_k(ranked, 5, 10, targets, 4) == 0.75, "recall@10 past the list");
    NU_CHECK(nu_recall_at_k(ranked, 5, 0, targets, 4) == 0.0, "recall@0");
    NU_CHECK(nu_recall_at_k(ranked, 5, 5, targets, 0) == 0.0, "no targets");
    /* A repeated target counts once; NONE slots count nothing. */
    const uint32_t rep[] = {5, 5, 3}, r2[] = {5, NU_TOPK_NONE, NU_TOPK_NONE};
    NU_CHECK(nu_recall_at_k(r2, 3, 3, rep, 3) == 0.5, "repeated target / NONE");
    const uint32_t one[] = {4}, t1[] = {4};
    NU_CHECK(nu_recall_at_k(one, 1, 1, t1, 1) == 1.0, "single hit");
}

/* 6 users; train items T1 (u2 u3 u4), T2 (u3 u4), T3 (u4): popular order
 * u4 (3), u3 (2), u2 (1), then u0 u1 u5 (0, by row).  Val items:
 * V1 positives u0 u1 u2 u5 (4), V2 u5 u3 (2), V3 none, V4 u1 (1).
 * Test item X u0 u4 (val/test must not count for popular). */
static const char *const data_json =
    "{\"format\": \"nextuser-data-1\", \"num_users\": 6, \"num_items\": 8, \"seed\": 1, "
    "\"source\": \"hand\", \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 3}]}\n";
static const char *const items_jsonl =
    "{\"id\": \"T1\", \"split\": \"train\", \"features\": {\"g\": [\"v1\"]}, "
    "\"positives\": [[\"u2\", 1], [\"u3\", 2], [\"u4\", 3]]}\n"
    "{\"id\": \"T2\", \"split\": \"train\", \"positives\": [[\"u3\", 1], [\"u4\", 2]]}\n"
    "{\"id\": \"V1\", \"split\": \"val\", \"features\": {\"g\": [\"v2\"]}, "
    "\"positives\": [[\"u0\", 10], [\"u1\", 20], [\"u2\", 30], [\"u5\", 40]]}\n"
    "{\"id\": \"T3\", \"split\": \"train\", \"positives\": [[\"u4\", 5]]}\n"
    "{\"id\": \"V2\", \"split\": \"val\", \"positives\": [[\"u5\", 1], [\"u3\", 2]]}\n"
    "{\"id\": \"V3\", \"split\": \"val\"}\n"
    "{\"id\": \"V4\", \"split\": \"val\", \"positives\": [[\"u1\", 7]]}\n"
    "{\"id\": \"X\", \"split\": \"test\", \"positives\": [[\"u0\", 1], [\"u4\", 2], [\"u0\", 3], "
    "[\"u0\", 4], [\"u0\", 5], [\"u0\", 6]]}\n";

/* Means of a few exact fractions: equal up to rounding. */
static int close_to(double a, double b)
{
    return fabs(a - b) <= 1e-12;
}

static int same(const uint32_t *a, const uint32_t *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void test_stages(const nu_dataset *ds)
{
    size_t items[8];
    /* Val items with >= s+1 positives, in file order (V1=2, V2=4, V4=6). */
    NU_CHECK(nu_eval_stage_items(ds, NU_SPLIT_VAL, 0, items) == 3 && items[0] == 2 && items[1] == 4 &&
                 items[2] == 6,
             "stage 0 items");
    NU_CHECK(nu_eval_stage_items(ds, NU_SPLIT_VAL, 1, items) == 2 && items[0] == 2 && items[1] == 4,
             "stage 1 items");
    NU_CHECK(nu_eval_stage_items(ds, NU_SPLIT_VAL, 2, NULL) == 1, "stage 2 count");
    NU_CHECK(nu_eval_stage_items(ds, NU_SPLIT_VAL, 3, NULL) == 1, "stage 3 count");
    NU_CHECK(nu_eval_stage_items(ds, NU_SPLIT_VAL, 4, NULL) == 0, "stage 4 count");
    NU_CHECK(nu_eval_stage_items(ds, NU_SPLIT_TRAIN, 2, items) == 1 && items[0] == 0, "train stage 2");
    NU_CHECK(nu_eval_stage_items(ds, NU_SPLIT_TEST, 5, items) == 1 && items[0] == 7, "test stage 5");
    const uint32_t *ctx, *tg;
    size_t nt;
    nu_eval_case(ds, 2, 0, &ctx, &tg, &nt);
    const uint32_t v1_all[] = {0, 1, 2, 5}, v1_s1_t[] = {1, 2, 5};
    NU_CHECK(nt == 4 && same(tg, v1_all, 4), "V1 stage 0 targets");
    nu_eval_case(ds, 2, 1, &ctx, &tg, &nt);
    NU_CHECK(ctx[0] == 0 && nt == 3 && same(tg, v1_s1_t, 3), "V1 stage 1");
    nu_eval_case(ds, 2, 3, &ctx, &tg, &nt);
    NU_CHECK(same(ctx, v1_all, 3) && nt == 1 && tg[0] == 5, "V1 stage 3");
    nu_eval_case(ds, 4, 1, &ctx, &tg, &nt);
    NU_CHECK(ctx[0] == 5 && nt == 1 && tg[0] == 3, "V2 stage 1");
}

static void test_popular(const nu_dataset *ds)
{
    uint32_t order[6];
    nu_eval_popular_order(ds, order);
    const uint32_t want[] = {4, 3, 2, 0, 1, 5};
    NU_CHECK(same(order, want, 6), "popular order %u %u %u %u %u %u", order[0], order[1], order[2],
             order[3], order[4], order[5]);
    uint32_t out[6];
    const uint32_t ex_ids[] = {3, 0};
    nu_id_list ex = {ex_ids, 2};
    nu_eval_take(order, 6, &ex, 6, out);
    const uint32_t want_take[] = {4, 2, 1, 5, NU_TOPK_NONE, NU_TOPK_NONE};
    NU_CHECK(same(out, want_take, 6), "take with exclusions, padded");
}

static void test_run_baselines(const nu_dataset *ds)
{
    /* Popular on val, K = 1, 3, stages 0, 1, 3.  Ranked (after excluding
     * the context) from 4 3 2 0 1 5:
     *  s0: V1 {0,1,2,5}: top1 4 -> 0, top3 4 3 2 -> 1/4.  V2 {5,3}: top1 0,
     *      top3 -> 1/2.  V4 {1}: 0, 0.  Means: 0 and 0.25.
     *  s1: V1 ctx {0} targets {1,2,5}: top3 4 3 2 -> 1/3.  V2 ctx {5}
     *      targets {3}: top1 4 -> 0; top3 -> 1.  Means: 0 and 2/3.
     *  s3: V1 ctx {0,1,2} target {5}: the order minus the context is
     *      4 3 5: K1 0, K3 1. */
    nu_eval_opts o = {.method = NU_EVAL_POPULAR, .split = NU_SPLIT_VAL, .stages = {0, 1, 3},
                      .n_stages = 3, .ks = {1, 3}, .n_k = 2};
    nu_eval_result r;
    NU_CHECK(nu_eval_run(ds, &o, &r) == NU_OK, "popular run: %s", nu_last_error());
    NU_CHECK(r.items[0] == 3 && r.items[1] == 2 && r.items[2] == 1, "items per stage");
    NU_CHECK(r.recall[0][0] == 0 && close_to(r.recall[0][1], 0.25), "popular s0 %g %g",
             r.recall[0][0], r.recall[0][1]);
    NU_CHECK(r.recall[1][0] == 0 && close_to(r.recall[1][1], (1.0 / 3 + 1) / 2),
             "popular s1 %g %g", r.recall[1][0], r.recall[1][1]);
    NU_CHECK(r.recall[2][0] == 0 && r.recall[2][1] == 1.0, "popular s3 %g %g", r.recall[2][0],
             r.recall[2][1]);
    /* The same run item by item: stage 0, K = 3 gives V1 1/4, V2 1/2, V4 0
     * (val items 2, 4, 6 in file order), and the result is unchanged. */
    nu_eval_result rpi;
    nu_eval_per_item pi;
    NU_CHECK(nu_eval_run_per_item(ds, &o, &rpi, &pi) == NU_OK && memcmp(&r, &rpi, sizeof r) == 0,
             "per-item run: %s", nu_last_error());
    NU_CHECK(pi.n_stages == 3 && pi.n_k == 2 && pi.count[0] == 3 && pi.item[0][0] == 2 &&
                 pi.item[0][1] == 4 && pi.item[0][2] == 6,
             "per-item: the stage-0 items in file order");
    NU_CHECK(pi.recall[0][1] == 0.25 && pi.recall[0][3] == 0.5 && pi.recall[0][5] == 0 &&
                 pi.count[2] == 1 && pi.recall[2][0] == 0 && pi.recall[2][1] == 1.0,
             "per-item recall %g %g %g", pi.recall[0][1], pi.recall[0][3], pi.recall[0][5]);
    nu_eval_per_item_free(&pi);
    /* Random with K = all users: every eligible user is listed, so recall
     * is 1 wherever the targets are outside the context; seeded runs agree. */
    nu_eval_opts ro = {.method = NU_EVAL_RANDOM, .split = NU_SPLIT_VAL, .seed = 7, .stages = {0, 1},
                       .n_stages = 2, .ks = {6, 2}, .n_k = 2};
    nu_eval_result a, b;
    NU_CHECK(nu_eval_run(ds, &ro, &a) == NU_OK && nu_eval_run(ds, &ro, &b) == NU_OK, "random run");
    NU_CHECK(a.recall[0][0] == 1.0 && a.recall[1][0] == 1.0, "random, K = all");
    NU_CHECK(memcmp(&a, &b, sizeof a) == 0, "random is seeded");
    /* lookalike-cf, val, stage 3: V1's context {u0, u1, u2}; only u2 has
     * train positives (T1 = u2 u3 u4), so u3 scores 1/sqrt(1*2) and u4
     * 1/sqrt(1*3): ranked u3, u4, then the popular order fills (u5), so the
     * target u5 is found at K = 3, not at K = 1. */
    nu_eval_opts co = {.method = NU_EVAL_LOOKALIKE_CF, .split = NU_SPLIT_VAL, .stages = {3},
                       .n_stages = 1, .ks = {1, 3}, .n_k = 2};
    NU_CHECK(nu_eval_run(ds, &co, &r) == NU_OK, "lookalike-cf run: %s", nu_last_error());
    NU_CHECK(r.items[0] == 1 && r.recall[0][0] == 0 && r.recall[0][1] == 1.0, "lookalike-cf s3 %g %g",
             r.recall[0][0], r.recall[0][1]);
    nu_eval_opts bad = {.method = NU_EVAL_MODEL, .split = NU_SPLIT_VAL, .stages = {0}, .n_stages = 1,
                        .ks = {1}, .n_k = 1};
    NU_CHECK(nu_eval_run(ds, &bad, &r) == NU_ERR_INVALID_ARG, "model without a model");
}

/* A model for the hand-made data (users u0.., vocabulary v1.. as
 * nu_model_create names them) with user rows set by hand (d = 8):
 * u0 = e1, u1 = e1 + 0.2 e2, u2 = e2, u3 = e0 + 0.1 e2, u4 = e4, u5 = e0. */
static nu_model *hand_model(const nu_dataset *ds, size_t users)
{
    nu_model_config c = ds->cfg;
    c.d = 8;
    c.heads = 1;
    c.ffn = 16;
    c.enc_layers = c.dec_layers = 1;
    c.max_users = 2;
    c.num_users = users;
    nu_model *m;
    if (nu_model_create(&c, &m) != NU_OK)
        return NULL;
    nu_model_init_random(m, 3);
    memset(m->w.user_emb, 0, users * 8 * sizeof(float));
    static const int hot[6][2] = {{1, 9}, {1, 2}, {2, 9}, {0, 2}, {4, 9}, {0, 9}};
    static const float second[6] = {0, 0.2f, 0, 0.1f, 0, 0};
    for (size_t u = 0; u < users && u < 6; u++) {
        m->w.user_emb[u * 8 + (size_t)hot[u][0]] = 1;
        if (hot[u][1] < 8)
            m->w.user_emb[u * 8 + (size_t)hot[u][1]] = second[u];
    }
    return m;
}

static void test_run_model(const nu_dataset *ds)
{
    nu_model *m = hand_model(ds, 6), *wrong = hand_model(ds, 7);
    NU_CHECK(m && wrong, "models: %s", nu_last_error());
    if (!m || !wrong)
        return;
    /* Lookalike (embedding mean), K = 1: stage 1, V1 ctx u0 = e1 -> u1
     * (cos 0.98), a target of 3 -> 1/3; V2 ctx u5 = e0 -> u3 (0.995), its
     * one target -> 1.  Stage 0 falls back to popular (recall@1 0). */
    nu_eval_opts o = {.method = NU_EVAL_LOOKALIKE_EMB, .model = m, .split = NU_SPLIT_VAL,
                      .stages = {0, 1}, .n_stages = 2, .ks = {1}, .n_k = 1, .threads = 1};
    nu_eval_result r, r2;
    NU_CHECK(nu_eval_run(ds, &o, &r) == NU_OK, "lookalike-emb: %s", nu_last_error());
    NU_CHECK(r.items[0] == 3 && r.items[1] == 2 && r.recall[0][0] == 0 &&
                 close_to(r.recall[1][0], (1.0 / 3 + 1) / 2),
             "lookalike-emb %g %g", r.recall[0][0], r.recall[1][0]);
    /* The model: runs, counts the same items, recall in [0, 1], and with
     * K = all users recall 1 (nothing but the context is left out). */
    o.method = NU_EVAL_MODEL;
    o.ks[0] = 6;
    NU_CHECK(nu_eval_run(ds, &o, &r) == NU_OK && nu_eval_run(ds, &o, &r2) == NU_OK, "model: %s",
             nu_last_error());
    NU_CHECK(r.items[0] == 3 && r.items[1] == 2 && r.recall[0][0] == 1.0 && r.recall[1][0] == 1.0,
             "model, K = all: %g %g", r.recall[0][0], r.recall[1][0]);
    o.ks[0] = 2;
    NU_CHECK(nu_eval_run(ds, &o, &r) == NU_OK && nu_eval_run(ds, &o, &r2) == NU_OK &&
                 memcmp(&r, &r2, sizeof r) == 0 && r.recall[1][0] >= 0 && r.recall[1][0] <= 1,
             "model deterministic");
    o.model = wrong;
    NU_CHECK(nu_eval_run(ds, &o, &r) != NU_OK, "a model of other users is refused");
    nu_model_free(m);
    nu_model_free(wrong);
}

int main(void)
{
    test_recall();
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/nu_test_eval_%d", (int)getpid());
    mkdir(dir, 0777);
    nu_test_put(dir, "data.json", data_json);
    nu_test_put(dir, "users.txt", "u0\nu1\nu2\nu3\nu4\nu5\n");
    nu_test_put(dir, "vocab_g.txt", "<unk>\nv1\nv2\n");
    nu_test_put(dir, "items.jsonl", items_jsonl);
    nu_dataset ds;
    nu_status s = nu_dataset_load(dir, &ds);
    NU_CHECK(s == NU_OK, "load: %s", nu_last_error());
    if (s == NU_OK) {
        test_stages(&ds);
        test_popular(&ds);
        test_run_baselines(&ds);
        if (nu_init() == NU_OK)
            test_run_model(&ds);
        else
            NU_CHECK(0, "nu_init: %s", nu_last_error());
        nu_dataset_free(&ds);
    }
    rm_dir(dir);
    return nu_test_finish("unit_eval");
}
