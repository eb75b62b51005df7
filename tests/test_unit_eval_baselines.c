/* The feature-popular and lookalike-mf baselines on hand-made data
 * directories where the answer is known: feature-popular's exact ranking and
 * recall (computed by hand below), lookalike-mf separating two user
 * communities that Popular mixes up, its fallbacks (stage 0, a context of
 * users without train positives, those users ranked last), and per-item
 * recall in the same item order for every method. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/eval.h"
#include "eval/feature_popular.h"
#include "eval/lookalike_mf.h"
#include "kernel_test_util.h"


static const char *const written[] = {"data.json", "users.txt", "vocab_g.txt", "vocab_y.txt",
                                      "items.jsonl"};

static void rm_dir(const char *dir)
{
    char path[512];
    for (size_t i = 0; i < sizeof written / sizeof written[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, written[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Writes a data directory (fields g: multi, y: categorical) and loads it. */
static int load(const char *tag, const char *users, const char *items, size_t n_users,
                size_t n_items, nu_dataset *ds)
{
    char dir[128], json[512];
    snprintf(dir, sizeof dir, "/tmp/nu_test_eval_%s_%d", tag, (int)getpid());
    mkdir(dir, 0777);
    snprintf(json, sizeof json,
             "{\"format\": \"nextuser-data-1\", \"num_users\": %zu, \"num_items\": %zu, \"seed\": 1, "
             "\"source\": \"hand\", \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", "
             "\"vocab\": 4}, {\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 3}]}\n",
             n_users, n_items);
    nu_test_put(dir, "data.json", json);
    nu_test_put(dir, "users.txt", users);
    nu_test_put(dir, "vocab_g.txt", "<unk>\naction\ncomedy\ndrama\n");
    nu_test_put(dir, "vocab_y.txt", "<unk>\n1990s\n2000s\n");
    nu_test_put(dir, "items.jsonl", items);
    nu_status s = nu_dataset_load(dir, ds);
    NU_CHECK(s == NU_OK, "load %s: %s", tag, nu_last_error());
    rm_dir(dir);
    return s == NU_OK;
}

static int close_to(double a, double b)
{
    return fabs(a - b) <= 1e-12;
}

/* Users u0..u5.  Train items (values; positives):
 *   T1 action comedy, 1990s; u0 u1
 *   T2 drama, 2000s;         u2 u3 u4
 *   T3 action action, 2000s; u1 u5      (a repeated value counts once)
 *   T4 no features;          u2 u4 u5
 *   T5 <unk> (unknown "zzz"); u0        (<unk> never shared)
 * Train positives: u0 2, u1 2, u2 2, u3 1, u4 2, u5 2, so Popular is
 * u0 u1 u2 u4 u5 u3.
 * Val N: action drama zzz, 2000s; positives u3 u4 u0.  Shared values:
 * T1 1 (action), T2 2 (drama, 2000s), T3 2 (action, 2000s), T4 0, T5 0.
 * Scores: u0 1 (T1), u1 1 + 2 = 3, u2 2, u3 2, u4 2, u5 2 (T3).
 * Ranking: u1 (3); u2 u4 u5 u3 (2, in Popular order); u0 (1).
 *   stage 0, targets {u3 u4 u0}: K1 u1 -> 0; K3 u1 u2 u4 -> 1/3;
 *            K5 + u5 u3 -> 2/3.
 *   stage 1, context u3, targets {u4 u0}: u1 u2 u4 u5 u0 -> K1 0, K3 1/2,
 *            K5 1.
 * Val E: no features (Popular); positives u5 u3.
 *   stage 0, targets {u5 u3}: u0 u1 u2 u4 u5 -> K1 0, K3 0, K5 1/2.
 *   stage 1, context u5, target {u3}: u0 u1 u2 u4 u3 -> K1 0, K3 0, K5 1.
 * Means: stage 0: 0, 1/6, 7/12; stage 1: 0, 1/4, 1. */
static const char *const fp_items =
    "{\"id\": \"T1\", \"split\": \"train\", \"features\": {\"g\": [\"action\", \"comedy\"], "
    "\"y\": \"1990s\"}, \"positives\": [[\"u0\", 1], [\"u1\", 2]]}\n"
    "{\"id\": \"N\", \"split\": \"val\", \"features\": {\"g\": [\"action\", \"drama\", \"zzz\"], "
    "\"y\": \"2000s\"}, \"positives\": [[\"u3\", 1], [\"u4\", 2], [\"u0\", 3]]}\n"
    "{\"id\": \"T2\", \"split\": \"train\", \"features\": {\"g\": [\"drama\"], \"y\": \"2000s\"}, "
    "\"positives\": [[\"u2\", 1], [\"u3\", 2], [\"u4\", 3]]}\n"
    "{\"id\": \"T3\", \"split\": \"train\", \"features\": {\"g\": [\"action\", \"action\"], "
    "\"y\": \"2000s\"}, \"positives\": [[\"u1\", 1], [\"u5\", 2]]}\n"
    "{\"id\": \"T4\", \"split\": \"train\", \"positives\": [[\"u2\", 1], [\"u4\", 2], [\"u5\", 3]]}\n"
    "{\"id\": \"T5\", \"split\": \"train\", \"features\": {\"g\": [\"qqq\"]}, "
    "\"positives\": [[\"u0\", 1]]}\n"
    "{\"id\": \"E\", \"split\": \"val\", \"positives\": [[\"u5\", 1], [\"u3\", 2]]}\n";

static int same(const uint32_t *a, const uint32_t *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

static void test_feature_popular(void)
{
    nu_dataset ds;
    if (!load("fp", "u0\nu1\nu2\nu3\nu4\nu5\n", fp_items, 6, 7, &ds))
        return;
    uint32_t pop[6], out[7];
    nu_eval_popular_order(&ds, pop);
    const uint32_t want_pop[] = {0, 1, 2, 4, 5, 3};
    NU_CHECK(same(pop, want_pop, 6), "popular order");
    nu_feature_popular fp;
    NU_CHECK(nu_feature_popular_build(&ds, pop, &fp) == NU_OK, "build: %s", nu_last_error());
    /* N is item 1, E item 6. */
    const uint32_t want_n[] = {1, 2, 4, 5, 3, 0, NU_TOPK_NONE};
    NU_CHECK(nu_feature_popular_rank(&fp, 1, NULL, 7, out) == NU_OK && same(out, want_n, 7),
             "N ranked %u %u %u %u %u %u", out[0], out[1], out[2], out[3], out[4], out[5]);
    const uint32_t ctx_ids[] = {3};
    nu_id_list ctx = {ctx_ids, 1};
    const uint32_t want_n1[] = {1, 2, 4, 5, 0};
    NU_CHECK(nu_feature_popular_rank(&fp, 1, &ctx, 5, out) == NU_OK && same(out, want_n1, 5),
             "N without u3: %u %u %u %u %u", out[0], out[1], out[2], out[3], out[4]);
    NU_CHECK(nu_feature_popular_rank(&fp, 6, NULL, 6, out) == NU_OK && same(out, want_pop, 6),
             "E (no features) is Popular");
    NU_CHECK(nu_feature_popular_rank(&fp, 1, NULL, 2, out) == NU_OK && out[0] == 1 && out[1] == 2,
             "top 2 of N");
    nu_feature_popular_free(&fp);
    nu_eval_opts o = {.method = NU_EVAL_FEATURE_POPULAR, .split = NU_SPLIT_VAL, .stages = {0, 1},
                      .n_stages = 2, .ks = {1, 3, 5}, .n_k = 3};
    nu_eval_result r;
    NU_CHECK(nu_eval_run(&ds, &o, &r) == NU_OK, "feature-popular run: %s", nu_last_error());
    NU_CHECK(r.items[0] == 2 && r.items[1] == 2, "items per stage");
    NU_CHECK(r.recall[0][0] == 0 && close_to(r.recall[0][1], 1.0 / 6) &&
                 close_to(r.recall[0][2], 7.0 / 12),
             "stage 0: %g %g %g", r.recall[0][0], r.recall[0][1], r.recall[0][2]);
    NU_CHECK(r.recall[1][0] == 0 && close_to(r.recall[1][1], 0.25) && r.recall[1][2] == 1.0,
             "stage 1: %g %g %g", r.recall[1][0], r.recall[1][1], r.recall[1][2]);
    nu_dataset_free(&ds);
}

/* Two communities: A = u0..u3 like the A items, B = u4..u7 the B items
 * (more of them: B users are the popular ones); u8 has no train positive.
 * Popular: u4 u5 u6 u7 (4), u1 u2 (3), u0 u3 (2), u8 (0).
 * Val V: u0 u1 u2 u3 (an A item); W: u8 u4; Z: u0 u8. */
static const char *const mf_items =
    "{\"id\": \"A1\", \"split\": \"train\", \"positives\": [[\"u0\", 1], [\"u1\", 2], [\"u2\", 3], "
    "[\"u3\", 4]]}\n"
    "{\"id\": \"A2\", \"split\": \"train\", \"positives\": [[\"u0\", 1], [\"u1\", 2], [\"u2\", 3]]}\n"
    "{\"id\": \"A3\", \"split\": \"train\", \"positives\": [[\"u1\", 1], [\"u2\", 2], [\"u3\", 3]]}\n"
    "{\"id\": \"B1\", \"split\": \"train\", \"positives\": [[\"u4\", 1], [\"u5\", 2], [\"u6\", 3], "
    "[\"u7\", 4]]}\n"
    "{\"id\": \"B2\", \"split\": \"train\", \"positives\": [[\"u4\", 1], [\"u5\", 2], [\"u6\", 3], "
    "[\"u7\", 4]]}\n"
    "{\"id\": \"B3\", \"split\": \"train\", \"positives\": [[\"u4\", 1], [\"u5\", 2], [\"u6\", 3], "
    "[\"u7\", 4]]}\n"
    "{\"id\": \"B4\", \"split\": \"train\", \"positives\": [[\"u7\", 1], [\"u6\", 2], [\"u5\", 3], "
    "[\"u4\", 4]]}\n"
    "{\"id\": \"V\", \"split\": \"val\", \"positives\": [[\"u0\", 1], [\"u1\", 2], [\"u2\", 3], "
    "[\"u3\", 4]]}\n"
    "{\"id\": \"W\", \"split\": \"val\", \"positives\": [[\"u8\", 1], [\"u4\", 2]]}\n"
    "{\"id\": \"Z\", \"split\": \"val\", \"positives\": [[\"u0\", 1], [\"u8\", 2]]}\n";

static int all_in(const uint32_t *ids, size_t n, uint32_t lo, uint32_t hi)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < lo || ids[i] > hi)
            return 0;
    return 1;
}

static void test_lookalike_mf(void)
{
    nu_dataset ds;
    if (!load("mf", "u0\nu1\nu2\nu3\nu4\nu5\nu6\nu7\nu8\n", mf_items, 9, 10, &ds))
        return;
    uint32_t pop[9], out[8];
    nu_eval_popular_order(&ds, pop);
    nu_als_params p;
    nu_als_defaults(&p);
    nu_lookalike_mf mf;
    NU_CHECK(nu_lookalike_mf_build(&ds, &p, &mf) == NU_OK, "build: %s", nu_last_error());
    NU_CHECK(mf.n_embedded == 8 && mf.index_of[8] == NU_TOPK_NONE, "u8 has no embedding");
    /* Context u0: the other A users, then the B users, then u8. */
    const uint32_t c0[] = {0}, c8[] = {8};
    nu_id_list ctx[2] = {{c0, 1}, {c8, 1}};
    NU_CHECK(nu_lookalike_mf_rank(&mf, ctx, 1, 8, 1, pop, out) == NU_OK, "rank: %s", nu_last_error());
    NU_CHECK(all_in(out, 3, 1, 3) && all_in(out + 3, 4, 4, 7) && out[7] == 8,
             "context u0 ranks A above B above u8: %u %u %u | %u %u %u %u | %u", out[0], out[1],
             out[2], out[3], out[4], out[5], out[6], out[7]);
    uint32_t out2[16];
    NU_CHECK(nu_lookalike_mf_rank(&mf, ctx, 2, 8, 2, pop, out2) == NU_OK && same(out2, out, 8),
             "the same ranking in a batch, on 2 threads");
    const uint32_t pop_but_8[] = {4, 5, 6, 7, 1, 2, 0, 3};
    NU_CHECK(same(out2 + 8, pop_but_8, 8), "a context without embeddings: Popular");
    nu_lookalike_mf_free(&mf);
    /* End to end, K = 3, 7, 8, stage 1:
     *   V: context u0, targets u1 u2 u3: the top 3 -> 1, 1, 1 (Popular: 0).
     *   W: context u8 (no factor): Popular minus u8 -> u4 first: 1, 1, 1.
     *   Z: context u0, target u8, ranked 8th of 8: 0, 0, 1. */
    nu_eval_opts o = {.method = NU_EVAL_LOOKALIKE_MF, .split = NU_SPLIT_VAL, .stages = {0, 1},
                      .n_stages = 2, .ks = {3, 7, 8}, .n_k = 3, .threads = 1};
    nu_eval_result r, rp;
    nu_eval_per_item pi, pp;
    NU_CHECK(nu_eval_run_per_item(&ds, &o, &r, &pi) == NU_OK, "lookalike-mf run: %s",
             nu_last_error());
    NU_CHECK(r.items[1] == 3 && close_to(r.recall[1][0], 2.0 / 3) &&
                 close_to(r.recall[1][1], 2.0 / 3) && r.recall[1][2] == 1.0,
             "stage 1: %g %g %g", r.recall[1][0], r.recall[1][1], r.recall[1][2]);
    NU_CHECK(pi.count[1] == 3 && pi.recall[1][0] == 1 && pi.recall[1][3] == 1 && pi.recall[1][6] == 0 &&
                 pi.recall[1][8] == 1,
             "stage 1 per item: V %g, W %g, Z %g / %g", pi.recall[1][0], pi.recall[1][3],
             pi.recall[1][6], pi.recall[1][8]);
    /* Stage 0 is Popular exactly, item by item; the items come in the same
     * order for both methods. */
    o.method = NU_EVAL_POPULAR;
    NU_CHECK(nu_eval_run_per_item(&ds, &o, &rp, &pp) == NU_OK, "popular run");
    NU_CHECK(r.items[0] == rp.items[0] && r.recall[0][0] == rp.recall[0][0] &&
                 r.recall[0][1] == rp.recall[0][1] && r.recall[0][2] == rp.recall[0][2] &&
                 !memcmp(pi.recall[0], pp.recall[0], pi.count[0] * 3 * sizeof(double)),
             "stage 0 equals Popular");
    int same_items = 1;
    for (size_t si = 0; si < 2; si++)
        same_items &= pi.count[si] == pp.count[si] &&
                      !memcmp(pi.item[si], pp.item[si], pi.count[si] * sizeof(size_t));
    NU_CHECK(same_items, "the same items in the same order for both methods");
    NU_CHECK(rp.recall[1][0] < r.recall[1][0], "Popular misses what lookalike-mf finds");
    /* Seeded: the same result again, on 2 threads. */
    nu_eval_result r2;
    o.method = NU_EVAL_LOOKALIKE_MF;
    o.threads = 2;
    NU_CHECK(nu_eval_run(&ds, &o, &r2) == NU_OK && !memcmp(&r, &r2, sizeof r), "deterministic");
    nu_eval_per_item_free(&pi);
    nu_eval_per_item_free(&pp);
    nu_dataset_free(&ds);
}

/* Per-item lists: their means are the stage's recall, and every method
 * lists the same items in the same order (the stage's items in file order). */
static void test_per_item(void)
{
    nu_dataset ds;
    if (!load("pi", "u0\nu1\nu2\nu3\nu4\nu5\n", fp_items, 6, 7, &ds))
        return;
    nu_eval_method methods[] = {NU_EVAL_POPULAR, NU_EVAL_RANDOM, NU_EVAL_LOOKALIKE_CF,
                                NU_EVAL_LOOKALIKE_MF, NU_EVAL_FEATURE_POPULAR};
    size_t want_items[8];
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        nu_eval_opts o = {.method = methods[m], .split = NU_SPLIT_VAL, .stages = {0, 1, 2},
                          .n_stages = 3, .ks = {1, 4}, .n_k = 2, .seed = 3};
        nu_eval_result r;
        nu_eval_per_item pi;
        const char *name = nu_eval_method_name(methods[m]);
        NU_CHECK(nu_eval_run_per_item(&ds, &o, &r, &pi) == NU_OK, "%s: %s", name, nu_last_error());
        for (size_t si = 0; si < 3; si++) {
            size_t n = nu_eval_stage_items(&ds, NU_SPLIT_VAL, o.stages[si], want_items);
            NU_CHECK(pi.count[si] == n && n == r.items[si] &&
                         !memcmp(pi.item[si], want_items, n * sizeof *want_items),
                     "%s stage %zu: the stage's items in file order", name, o.stages[si]);
            for (size_t j = 0; j < 2; j++) {
                double sum = 0;
                for (size_t q = 0; q < n; q++)
                    sum += pi.recall[si][q * 2 + j];
                NU_CHECK(n ? sum / (double)n == r.recall[si][j] : r.recall[si][j] == 0,
                         "%s stage %zu K %zu: mean of items = recall", name, o.stages[si], o.ks[j]);
            }
        }
        nu_eval_per_item_free(&pi);
    }
    NU_CHECK(!strcmp(nu_eval_method_name(NU_EVAL_LOOKALIKE_MF), "lookalike-mf") &&
                 !strcmp(nu_eval_method_name(NU_EVAL_FEATURE_POPULAR), "feature-popular"),
             "names");
    nu_eval_method m;
    NU_CHECK(nu_eval_method_parse("lookalike-mf", &m) && m == NU_EVAL_LOOKALIKE_MF &&
                 nu_eval_method_parse("feature-popular", &m) && m == NU_EVAL_FEATURE_POPULAR &&
                 !nu_eval_method_parse("lookalike-bpr", &m),
             "parse");
    nu_dataset_free(&ds);
}

int main(void)
{
    if (nu_init() != NU_OK) {
        NU_CHECK(0, "nu_init: %s", nu_last_error());
        return nu_test_finish("unit_eval_baselines");
    }
    test_feature_popular();
    test_lookalike_mf();
    test_per_item();
    return nu_test_finish("unit_eval_baselines");
}
