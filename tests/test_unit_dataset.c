/* Training data: the synthetic generator (determinism, planted structure),
 * the data directory reader (round trip, every malformed input named by
 * file:line), training windows, nearest-in-time negatives and batches
 * checked against values worked out by hand, and the seeded epoch order. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/synthetic.h"
#include "kernel_test_util.h"
#include "model/forward.h"
#include "util/arena.h"

static char base[128];


static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void rm_dir(const char *dir)
{
    static const char *const files[] = {".nextuser-dir", "data.json", "users.txt", "vocab_g.txt",
                                        "vocab_y.txt", "vocab_genres.txt", "vocab_year.txt",
                                        "vocab_tags.txt", "items.jsonl", "truth.json"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* ---- the hand-made directory ---- */

static const char *const hand_data =
    "{\"format\": \"nextuser-data-1\", \"num_users\": 9, \"num_items\": 5, \"seed\": 3, "
    "\"source\": \"hand\", \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 3}, "
    "{\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 2}, "
    "{\"name\": \"v\", \"kind\": \"dense\", \"dim\": 2}]}\n";
static const char *const hand_users = "u0\nu1\nu2\nu3\nu4\nu5\nu6\nu7\nu8\n";
/* A: 5 positives, negatives around them (one is u1, also a positive);
 * B: one positive; C: val; D: no positives; E: two positives. */
static const char *const hand_items =
    "{\"id\": \"A\", \"split\": \"train\", \"features\": {\"g\": [\"v2\", \"zz\"], \"y\": \"v1\", "
    "\"v\": [0.5, -2]}, \"positives\": [[\"u0\", 10], [\"u1\", 20], [\"u2\", 30], [\"u3\", 40], "
    "[\"u4\", 50]], \"negatives\": [[\"u5\", 5], [\"u6\", 22], [\"u7\", 28], [\"u1\", 41], "
    "[\"u8\", 60]]}\n"
    "\n"
    "{\"id\": \"B\", \"split\": \"train\", \"positives\": [[\"u3\", 100]]}\n"
    "{\"id\": \"C\", \"split\": \"val\", \"features\": {\"g\": [], \"y\": null}, "
    "\"positives\": [[\"u1\", 1], [\"u2\", 2]], \"negatives\": []}\n"
    "{\"id\": 7, \"split\": \"train\", \"features\": {\"g\": [\"v1\"]}, \"positives\": [], "
    "\"negatives\": [[\"u2\", 3]]}\n"
    "{\"id\": \"E\", \"split\": \"test\", \"positives\": [[\"u5\", 7], [\"u4\", 9], [\"u6\", 9]], "
    "\"negatives\": [[\"u0\", 8]]}\n";

static void make_hand(const char *dir)
{
    mkdir(dir, 0777);
    nu_test_put(dir, "data.json", hand_data);
    nu_test_put(dir, "users.txt", hand_users);
    nu_test_put(dir, "vocab_g.txt", "<unk>\nv1\nv2\n");
    nu_test_put(dir, "vocab_y.txt", "<unk>\nv1\n");
    nu_test_put(dir, "items.jsonl", hand_items);
}

static int same_u32(const uint32_t *a, const uint32_t *b, size_t n)
{
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static void test_round_trip(const char *dir)
{
    nu_dataset ds;
    NU_CHECK(nu_dataset_load(dir, &ds) == NU_OK, "hand-made directory loads: %s", nu_last_error());
    NU_CHECK(ds.num_items == 5 && ds.cfg.num_users == 9 && ds.cfg.n_prefix == 3 &&
                 ds.cfg.prefix[2].kind == NU_FIELD_DENSE && ds.cfg.prefix[2].size == 2 &&
                 ds.seed == 3 && !strcmp(ds.source, "hand"),
             "data.json fields");
    NU_CHECK(!strcmp(ds.items.names[0], "A") && !strcmp(ds.items.names[3], "7") &&
                 !strcmp(ds.users.names[8], "u8"),
             "item ids (integers as text) and user rows");
    NU_CHECK(ds.split[0] == NU_SPLIT_TRAIN && ds.split[2] == NU_SPLIT_VAL &&
                 ds.split[4] == NU_SPLIT_TEST && ds.n_split[0] == 3 && ds.n_split[1] == 1 &&
                 ds.n_split[2] == 1,
             "splits");
    const nu_items *f = &ds.feats;
    /* A: g = [v2, <unk>] (zz unknown), y = v1, v = (0.5, -2). */
    NU_CHECK(f->feat_off[1] == 2 && f->feat_vals[0] == 2 && f->feat_vals[1] == 0 &&
                 f->feat_off[2] == 3 && f->feat_vals[2] == 1 && f->dense[0] == 0.5f &&
                 f->dense[1] == -2.0f && f->unknown_values == 1,
             "A's features mapped as in the items file");
    /* B: nothing; C: empty list and null; D: g = [v1]. */
    NU_CHECK(f->feat_off[3 * 2] == 3 && f->feat_off[3 * 3] == 3 && f->dense[2] == 0 &&
                 f->feat_off[3 * 3 + 1] == 4 && f->feat_vals[3] == 1,
             "missing, empty and null features");
    static const uint32_t pos_users[] = {0, 1, 2, 3, 4, 3, 1, 2, 5, 4, 6};
    static const int64_t pos_times[] = {10, 20, 30, 40, 50, 100, 1, 2, 7, 9, 9};
    NU_CHECK(ds.pos.len == 11 && same_u32(ds.pos.user, pos_users, 11) &&
                 !memcmp(ds.pos.time, pos_times, sizeof pos_times),
             "positives in order (ties by user row)");
    size_t want_off[] = {0, 5, 6, 8, 8, 11};
    NU_CHECK(!memcmp(ds.pos.off, want_off, sizeof want_off), "positive offsets");
    NU_CHECK(ds.neg.len == 7 && ds.neg.off[1] == 5 && ds.neg.off[3] == 5 && ds.neg.off[4] == 6 &&
                 ds.neg.user[3] == 1 && ds.neg.time[3] == 41 && ds.neg.user[5] == 2,
             "negatives");
    nu_dataset_free(&ds);
}

/* ---- malformed input: each names file:line and the fault ---- */

static void expect_items_error(const char *dir, const char *items, const char *where,
                               const char *needle)
{
    nu_test_put(dir, "items.jsonl", items);
    nu_dataset ds;
    nu_status s = nu_dataset_load(dir, &ds);
    NU_CHECK(s == NU_ERR_FORMAT && strstr(nu_last_error(), where) && strstr(nu_last_error(), needle),
             "expected an error with \"%s\" and \"%s\", got %d \"%s\"", where, needle, (int)s,
             nu_last_error());
}

static void expect_file_error(const char *dir, const char *file, const char *text,
                              const char *needle, nu_status want)
{
    size_t len;
    char *old = slurp(dir, file, &len);
    if (text)
        nu_test_put(dir, file, text);
    else {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        unlink(path);
    }
    nu_dataset ds;
    nu_status s = nu_dataset_load(dir, &ds);
    NU_CHECK(s == want && strstr(nu_last_error(), needle),
             "%s: expected an error with \"%s\", got %d \"%s\"", file, needle, (int)s,
             nu_last_error());
    if (old)
        nu_test_put(dir, file, old);
    free(old);
}

#define GOOD "{\"id\": \"a\", \"split\": \"train\"}\n"
/* Lines 1..4 (line 2 blank) hold three good items; the next line is 5. */
#define FOUR GOOD "\n{\"id\": \"a2\", \"split\": \"train\"}\n{\"id\": \"a3\", \"split\": \"train\"}\n"

static void test_malformed(const char *dir)
{
    char d5[] = "{\"format\": \"nextuser-data-1\", \"num_users\": 9, \"num_items\": 4, "
                "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 3}, "
                "{\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 2}, "
                "{\"name\": \"v\", \"kind\": \"dense\", \"dim\": 2}]}";
    nu_test_put(dir, "data.json", d5);
    static const struct { const char *line, *needle; } cases[] = {
        {"{\"id\": \"b\", \"split\": \"train\", oops}\n", "not valid JSON"},
        {"[1]\n", "not a JSON object"},
        {"{\"id\": \"b\", \"split\": \"dev\"}\n", "\"split\""},
        {"{\"id\": \"b\"}\n", "\"split\""},
        {"{\"split\": \"train\"}\n", "\"id\""},
        {"{\"id\": \"a\", \"split\": \"train\"}\n", "appears twice"},
        {"{\"id\": \"b\", \"split\": \"train\", \"label\": 1}\n", "unknown key \"label\""},
        {"{\"id\": \"b\", \"split\": \"train\", \"positives\": [[\"u99\", 1]]}\n",
         "unknown user \"u99\""},
        {"{\"id\": \"b\", \"split\": \"train\", \"positives\": [[\"u1\", 5], [\"u2\", 4]]}\n",
         "positives[1]: not sorted"},
        {"{\"id\": \"b\", \"split\": \"train\", \"negatives\": [[\"u2\", 5], [\"u1\", 5]]}\n",
         "negatives[1]: not sorted"},
        {"{\"id\": \"b\", \"split\": \"train\", \"positives\": [[\"u1\", 1.5]]}\n",
         "timestamp must be an integer"},
        {"{\"id\": \"b\", \"split\": \"train\", \"positives\": [[\"u1\"]]}\n", "[user, timestamp]"},
        {"{\"id\": \"b\", \"split\": \"train\", \"positives\": {}}\n", "\"positives\" must be"},
        {"{\"id\": \"b\", \"split\": \"train\", \"positives\": [[null, 1]]}\n", "string or an integer"},
        {"{\"id\": \"b\", \"split\": \"train\", \"features\": {\"colour\": \"red\"}}\n", "colour"},
        {"{\"id\": \"b\", \"split\": \"train\", \"features\": {\"y\": [\"v1\"]}}\n", "must be a string"},
        {"{\"id\": \"b\", \"split\": \"train\", \"features\": {\"g\": \"v1\"}}\n", "list of strings"},
        {"{\"id\": \"b\", \"split\": \"train\", \"features\": {\"v\": [1]}}\n", "list of 2 numbers"},
        {"{\"id\": \"b\", \"split\": \"train\", \"features\": [1]}\n", "must be an object"},
    };
    char buf[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", FOUR, cases[i].line);
        expect_items_error(dir, buf, "items.jsonl:5: ", cases[i].needle);
    }
    expect_items_error(dir, GOOD, "items.jsonl: 1 items", "num_items says 4");
    expect_items_error(dir, FOUR "{\"id\": \"z\", \"split\": \"test\"}\n{\"id\": \"zz\", \"split\": \"test\"}\n",
                       "items.jsonl:6: ", "more items than");
    nu_test_put(dir, "data.json", hand_data);
    nu_test_put(dir, "items.jsonl", hand_items);
    expect_file_error(dir, "data.json", "{\"format\": \"nextuser-data-2\", \"num_users\": 9}",
                      "\"format\"", NU_ERR_FORMAT);
    expect_file_error(dir, "data.json", "{\"format\": \"nextuser-data-1\", \"num_users\": 9, "
                      "\"num_items\": 5, \"extra\": 1}", "unknown key \"extra\"", NU_ERR_FORMAT);
    expect_file_error(dir, "data.json", "{\"format\": \"nextuser-data-1\", \"num_users\": 0, "
                      "\"num_items\": 5}", "num_users", NU_ERR_FORMAT);
    expect_file_error(dir, "data.json", "{\"format\": \"nextuser-data-1\", \"num_users\": 9, "
                      "\"num_items\": 5, \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"bag\"}]}",
                      "data.json: prefix_fields[0].kind", NU_ERR_FORMAT);
    expect_file_error(dir, "data.json", "{\"format\": ", "data.json: not valid JSON", NU_ERR_FORMAT);
    expect_file_error(dir, "users.txt", "u0\nu1\n", "users.txt: 2 lines, data.json needs 9",
                      NU_ERR_FORMAT);
    expect_file_error(dir, "users.txt", "u0\nu1\nu2\nu1\n", "users.txt:4:", NU_ERR_FORMAT);
    expect_file_error(dir, "vocab_g.txt", "v0\nv1\nv2\n", "vocab_g.txt:1: must be <unk>",
                      NU_ERR_FORMAT);
    expect_file_error(dir, "vocab_y.txt", NULL, "vocab_y.txt: cannot open", NU_ERR_IO);
    expect_file_error(dir, "items.jsonl", NULL, "items.jsonl: cannot open", NU_ERR_IO);
}

/* ---- windows, negatives, batches ---- */

static void test_examples(const char *dir)
{
    nu_dataset ds;
    if (nu_dataset_load(dir, &ds) != NU_OK) {
        NU_CHECK(0, "load: %s", nu_last_error());
        return;
    }
    nu_model_config c = ds.cfg;
    c.d = 8;
    c.heads = 2;
    c.ffn = 16;
    c.max_users = 2; /* windows of w = min(m, 3) */
    nu_examples ex;
    NU_CHECK(nu_examples_init(&ex, &ds, &c, NU_SPLIT_TRAIN, NU_WINDOWS_ALL, 2) == NU_OK,
             "examples: %s", nu_last_error());
    /* A (m = 5): windows 0, 1, 2; B (m = 1): window 3; C val, D empty, E test: none. */
    size_t want_off[] = {0, 3, 4, 4, 4, 4};
    NU_CHECK(ex.count == 4 && !memcmp(ex.win_off, want_off, sizeof want_off), "window offsets");
    size_t item, start;
    nu_examples_locate(&ex, 2, &item, &start);
    NU_CHECK(item == 0 && start == 2, "window 2 = A from positive 2");
    nu_examples_locate(&ex, 3, &item, &start);
    NU_CHECK(item == 1 && start == 0, "window 3 = B from positive 0");

    /* Nearest in time among A's negatives (5:u5, 22:u6, 28:u7, 41:u1, 60:u8). */
    uint32_t rows[8];
    size_t n = nu_nearest_negatives(&ds, 0, 25, 99, 2, rows);
    NU_CHECK(n == 2 && rows[0] == 6 && rows[1] == 7, "t=25: tie 22/28 -> earlier first");
    n = nu_nearest_negatives(&ds, 0, 41, 1, 3, rows);
    NU_CHECK(n == 3 && rows[0] == 7 && rows[1] == 6 && rows[2] == 8,
             "t=41 skipping u1: u7 (13), then the tie u6 (19, earlier) before u8 (19)");
    n = nu_nearest_negatives(&ds, 0, 1000, 99, 10, rows);
    NU_CHECK(n == 5 && rows[0] == 8 && rows[4] == 5, "all five, nearest first, from the end");
    NU_CHECK(nu_nearest_negatives(&ds, 1, 100, 99, 4, rows) == 0, "B has no negatives");

    nu_train_batch b;
    nu_train_batch_init(&b);
    size_t wins[] = {2, 3, 0};
    NU_CHECK(nu_train_batch_build(&b, &ex, wins, 3) == NU_OK, "batch: %s", nu_last_error());
    /* Window 2 = A's [u2, u3, u4]: context u2 u3; targets u2 u3 u4.
     * Window 3 = B's [u3]: no context; target u3.
     * Window 0 = A's [u0, u1, u2]: context u0 u1; targets u0 u1 u2. */
    static const uint32_t ctx[] = {2, 3, 0, 1}, tgt[] = {2, 3, 4, 3, 0, 1, 2};
    size_t want_pos[] = {0, 3, 4, 7};
    NU_CHECK(b.count == 3 && b.items.count == 3 && b.n_pos == 7 &&
                 !memcmp(b.pos_off, want_pos, sizeof want_pos) &&
                 nu_items_n_users(&b.items, 0) == 2 && nu_items_n_users(&b.items, 1) == 0 &&
                 same_u32(b.items.users, ctx, 4) && same_u32(b.target, tgt, 7),
             "batch contexts and targets");
    NU_CHECK(!strcmp(b.items.ids[0], "A") && !strcmp(b.items.ids[1], "B") &&
                 b.items.feat_off[3] == 3 && b.items.feat_vals[0] == 2 &&
                 b.items.feat_off[6] == 3 && b.items.dense[0] == 0.5f && b.items.dense[2] == 0,
             "batch features copied from the item");
    /* Per position (neg_per_pos 2), worked out by hand:
     * u2@30: 28 u7 (2), 22 u6 (8); u3@40: 41 u1 (1), 28 u7 (12); u4@50: 41 u1 (9), 60 u8 (10);
     * B u3@100: none; u0@10: 5 u5 (5), 22 u6 (12); u1@20: 22 u6 (2), 28 u7 (8) (41 is u1 itself);
     * u2@30: u7, u6. */
    static const uint32_t negs[] = {7, 6, 1, 7, 1, 8, 5, 6, 6, 7, 7, 6};
    size_t want_neg[] = {0, 2, 4, 6, 6, 8, 10, 12};
    NU_CHECK(!memcmp(b.neg_off, want_neg, sizeof want_neg) && same_u32(b.neg, negs, 12),
             "nearest-in-time negatives per position");
    NU_CHECK(b.window[0] == 2 && b.window[2] == 0, "window indices kept");

    /* The generator's TRAIN forward runs on the batch: one row per position. */
    nu_model *m;
    if (nu_init() == NU_OK && nu_model_create(&c, &m) == NU_OK) {
        nu_model_init_random(m, 7);
        NU_CHECK(nu_dataset_check_model(&ds, m) == NU_OK, "model matches the data: %s",
                 nu_last_error());
        nu_arena a;
        float *out = malloc(b.n_pos * c.d * sizeof *out);
        if (nu_arena_create(&a, nu_forward_scratch_bytes(&c, 3, NU_FORWARD_TRAIN))) {
            NU_CHECK(nu_forward_batch(&c, &m->w, &b.items, 0, 3, NU_FORWARD_TRAIN, &a, out) ==
                         NU_OK,
                     "TRAIN forward on the batch: %s", nu_last_error());
            nu_arena_destroy(&a);
        }
        free(out);
        nu_model other = *m; /* shallow: only its config changes */
        other.cfg.num_users = 8;
        NU_CHECK(nu_dataset_check_model(&ds, &other) != NU_OK && strstr(nu_last_error(), "users"),
                 "a model with other users is refused");
        nu_model_free(m);
    }
    /* Rebuilding reuses the batch; an empty batch is valid. */
    NU_CHECK(nu_train_batch_build(&b, &ex, wins + 1, 1) == NU_OK && b.n_pos == 1 && b.neg_off[1] == 0,
             "rebuild with B only");
    NU_CHECK(nu_train_batch_build(&b, &ex, wins, 0) == NU_OK && b.n_pos == 0 && b.items.count == 0,
             "empty batch");
    size_t bad = 4;
    NU_CHECK(nu_train_batch_build(&b, &ex, &bad, 1) == NU_ERR_INVALID_ARG, "window out of range");
    nu_train_batch_free(&b);
    nu_examples_free(&ex);

    /* Disjoint windows (the default): A (m = 5, w = 3) starts at 0 and, its
     * last window moved back to end at p_5, at 2; B at 0.  Every positive of
     * A is a target (positive 2 twice), none of them three times. */
    NU_CHECK(nu_examples_init(&ex, &ds, &c, NU_SPLIT_TRAIN, NU_WINDOWS_DISJOINT, 2) == NU_OK,
             "disjoint examples: %s", nu_last_error());
    size_t want_disjoint[] = {0, 2, 3, 3, 3, 3};
    NU_CHECK(ex.count == 3 && !memcmp(ex.win_off, want_disjoint, sizeof want_disjoint),
             "disjoint window offsets");
    nu_examples_locate(&ex, 0, &item, &start);
    NU_CHECK(item == 0 && start == 0, "disjoint window 0 = A from positive 0");
    nu_examples_locate(&ex, 1, &item, &start);
    NU_CHECK(item == 0 && start == 2, "disjoint window 1 = A from positive 2 (ends at p_5)");
    nu_examples_locate(&ex, 2, &item, &start);
    NU_CHECK(item == 1 && start == 0, "disjoint window 2 = B from positive 0");
    nu_examples_free(&ex);

    /* A long context: max_users 50 -> every item is one window of all positives. */
    c.max_users = 50;
    NU_CHECK(nu_examples_init(&ex, &ds, &c, NU_SPLIT_TRAIN, NU_WINDOWS_DISJOINT, 4) == NU_OK &&
                 ex.count == 2,
             "w = m when m <= max_users: one window per item with positives");
    nu_examples_free(&ex);
    NU_CHECK(nu_examples_init(&ex, &ds, &c, NU_SPLIT_TEST, NU_WINDOWS_ALL, 4) == NU_OK &&
                 ex.count == 1,
             "test split windows");
    nu_examples_free(&ex);
    c.n_prefix = 2;
    NU_CHECK(nu_examples_init(&ex, &ds, &c, NU_SPLIT_TRAIN, NU_WINDOWS_DISJOINT, 4) ==
                 NU_ERR_INVALID_ARG,
             "a config with other prefix fields is refused");
    nu_dataset_free(&ds);
}

/* ---- epoch order ---- */

static void test_order(void)
{
    nu_dataset ds;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/gen1", base);
    if (nu_dataset_load(dir, &ds) != NU_OK) {
        NU_CHECK(0, "load synthetic: %s", nu_last_error());
        return;
    }
    nu_model_config c = ds.cfg;
    nu_examples ex, ey;
    NU_CHECK(nu_examples_init(&ex, &ds, &c, NU_SPLIT_TRAIN, NU_WINDOWS_ALL, 4) == NU_OK &&
                 nu_examples_init(&ey, &ds, &c, NU_SPLIT_TRAIN, NU_WINDOWS_ALL, 4) == NU_OK &&
                 ex.count > 100,
             "synthetic windows: %zu", ex.count);
    nu_examples_shuffle(&ex, 5, 0);
    nu_examples_shuffle(&ey, 5, 0);
    NU_CHECK(!memcmp(ex.order, ey.order, ex.count * sizeof *ex.order), "same seed, same order");
    char *seen = calloc(ex.count, 1);
    int perm = 1, moved = 0;
    for (size_t k = 0; k < ex.count; k++) {
        perm &= ex.order[k] < ex.count && !seen[ex.order[k]];
        if (ex.order[k] < ex.count)
            seen[ex.order[k]] = 1;
        moved += ex.order[k] != k;
    }
    NU_CHECK(perm && moved > (int)ex.count / 2, "a permutation that moves most windows");
    free(seen);
    nu_examples_shuffle(&ey, 6, 0);
    NU_CHECK(memcmp(ex.order, ey.order, ex.count * sizeof *ex.order), "another seed differs");
    nu_examples_shuffle(&ey, 5, 1);
    NU_CHECK(memcmp(ex.order, ey.order, ex.count * sizeof *ex.order), "another epoch differs");
    /* A full epoch of batches covers every window once. */
    nu_train_batch b;
    nu_train_batch_init(&b);
    size_t total = 0, ok = 1;
    for (size_t k = 0; k < ex.count && ok; k += 64) {
        size_t B = ex.count - k < 64 ? ex.count - k : 64;
        ok = nu_train_batch_build(&b, &ex, ex.order + k, B) == NU_OK && b.items.count == B;
        for (size_t q = 0; ok && q < B; q++)
            ok = b.pos_off[q + 1] - b.pos_off[q] == nu_items_n_users(&b.items, q) + 1 &&
                 nu_items_n_users(&b.items, q) <= c.max_users;
        for (size_t p = 0; ok && p < b.n_pos; p++)
            ok = b.neg_off[p + 1] - b.neg_off[p] <= 4;
        total += b.count;
    }
    NU_CHECK(ok && total == ex.count, "an epoch of batches: %s", nu_last_error());
    nu_train_batch_free(&b);
    nu_examples_free(&ex);
    nu_examples_free(&ey);
    nu_dataset_free(&ds);
}

/* ---- the synthetic generator ---- */

static int *int_array(const cJSON *root, const char *key, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    *n = (size_t)cJSON_GetArraySize(a);
    int *v = malloc((*n + 1) * sizeof *v);
    size_t i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = x->valueint;
    return v;
}

static void test_synthetic(void)
{
    nu_synth_params p;
    nu_synth_defaults(&p);
    p.users = 3000;
    p.items = 1000;
    p.groups = 6;
    p.seed = 11;
    char d1[256], d2[256], d3[256];
    snprintf(d1, sizeof d1, "%s/gen1", base);
    snprintf(d2, sizeof d2, "%s/gen2", base);
    snprintf(d3, sizeof d3, "%s/gen3", base);
    nu_synth_summary s1;
    NU_CHECK(nu_synth_write(&p, d1, &s1) == NU_OK && nu_synth_write(&p, d2, NULL) == NU_OK,
             "generate twice: %s", nu_last_error());
    NU_CHECK(nu_synth_write(&p, d2, NULL) == NU_OK, "regenerate over an existing directory");
    p.seed = 12;
    NU_CHECK(nu_synth_write(&p, d3, NULL) == NU_OK, "generate with another seed");
    static const char *const files[] = {"data.json", "users.txt", "vocab_genres.txt",
                                        "vocab_year.txt", "vocab_tags.txt", "items.jsonl",
                                        "truth.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t n1 = 0, n2 = 0, n3 = 0;
        char *a = slurp(d1, files[i], &n1), *b = slurp(d2, files[i], &n2), *c = slurp(d3, files[i], &n3);
        NU_CHECK(a && b && n1 == n2 && !memcmp(a, b, n1), "%s identical for the same seed", files[i]);
        if (!strcmp(files[i], "items.jsonl") || !strcmp(files[i], "truth.json"))
            NU_CHECK(c && (n1 != n3 || memcmp(a, c, n1)), "%s differs for another seed", files[i]);
        free(a);
        free(b);
        free(c);
    }
    NU_CHECK(s1.split_items[0] == 700 && s1.split_items[1] == 100 && s1.split_items[2] == 200,
             "exact 70/10/20 split (%zu %zu %zu)", s1.split_items[0], s1.split_items[1],
             s1.split_items[2]);
    NU_CHECK(s1.empty_items > 10 && s1.long_items > 10, "heavy tail: %zu empty, %zu > max_users",
             s1.empty_items, s1.long_items);

    /* Planted structure, measured on what the reader reads. */
    nu_dataset ds;
    size_t len, nu, ni;
    char *truth = slurp(d1, "truth.json", &len);
    cJSON *t = truth ? cJSON_Parse(truth) : NULL;
    if (!t || nu_dataset_load(d1, &ds) != NU_OK) {
        NU_CHECK(0, "reload the synthetic data: %s", nu_last_error());
        free(truth);
        cJSON_Delete(t);
        return;
    }
    int *ug = int_array(t, "user_group", &nu), *ig = int_array(t, "item_group", &ni);
    NU_CHECK(nu == p.users && ni == p.items && ds.num_items == p.items &&
                 ds.pos.len == s1.positives && ds.neg.len == s1.negatives,
             "reader sees what the generator wrote");
    size_t own = 0, all = 0, items10 = 0, items70 = 0, neg_own = 0, ones = 0;
    size_t early_nb = 0, early = 0, late_nb = 0, late = 0;
    for (size_t i = 0; i < ds.num_items; i++) {
        int g = ig[i], nb = (g + 1) % (int)p.groups;
        size_t b = ds.pos.off[i], m = nu_dataset_n_pos(&ds, i), o = 0;
        ones += m == 1;
        for (size_t k = 0; k < m; k++) {
            int ug_k = ug[ds.pos.user[b + k]];
            o += ug_k == g;
            if (k < m / 2) {
                early++;
                early_nb += ug_k == nb;
            } else {
                late++;
                late_nb += ug_k == nb;
            }
        }
        own += o;
        all += m;
        if (m >= 10) {
            items10++;
            items70 += o * 10 >= 7 * m;
        }
        for (size_t k = ds.neg.off[i]; k < ds.neg.off[i + 1]; k++)
            neg_own += ug[ds.neg.user[k]] == g;
    }
    NU_CHECK(own >= 0.75 * (double)all, "positives in the item's group: %.3f", (double)own / (double)all);
    NU_CHECK(items70 >= 0.8 * (double)items10, "items (>= 10 positives) with >= 70%% in group: %zu / %zu",
             items70, items10);
    NU_CHECK((double)late_nb / (double)late > 2.0 * (double)early_nb / (double)early,
             "drift toward the neighbour group: early %.3f late %.3f",
             (double)early_nb / (double)early, (double)late_nb / (double)late);
    NU_CHECK(neg_own == 0 && ds.neg.len > 0, "exposed negatives come from other groups");
    NU_CHECK(ones > 5, "some items have exactly one positive (%zu)", ones);
    free(ug);
    free(ig);
    free(truth);
    cJSON_Delete(t);
    nu_dataset_free(&ds);

    p.groups = p.users + 1;
    NU_CHECK(nu_synth_write(&p, d3, NULL) == NU_ERR_INVALID_ARG && strstr(nu_last_error(), "groups"),
             "more groups than users is refused");
    rm_dir(d2);
    rm_dir(d3);
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/nu_dataset_%ld", (long)getpid());
    mkdir(base, 0777);
    char hand[256], bad[256];
    snprintf(hand, sizeof hand, "%s/hand", base);
    snprintf(bad, sizeof bad, "%s/bad", base);
    make_hand(hand);
    make_hand(bad);
    test_round_trip(hand);
    test_malformed(bad);
    test_examples(hand);
    test_synthetic();
    test_order();
    rm_dir(hand);
    rm_dir(bad);
    char gen1[256];
    snprintf(gen1, sizeof gen1, "%s/gen1", base);
    rm_dir(gen1);
    rmdir(base);
    return nu_test_finish("unit_dataset");
}
