/* Issue 17, strict input and bounded resources in the parsers: each check
 * is one row of the table (or one case of "Strict input") and
 * failed before its fix.
 *   idmap: a NUL byte in users.txt / vocab lines, invalid UTF-8
 *   model: a tiny model file declaring a huge model is refused before the
 *          memory is allocated (< 10 MB); the config's limits
 *   safetensors: many tensors in linear time; a huge header refused before
 *          cJSON builds a tree of it; text after the header's JSON
 *   items: two objects on one line, text after a NUL, numeric ids that a
 *          double cannot hold, duplicate item ids
 *   config, data.json, items.jsonl, train_state.json: text after the JSON
 *   train_state.json: values out of range (Adam lr 1e300) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/idmap.h"
#include "data/items_jsonl.h"
#include "io/safetensors.h"
#include "hard_fixture.h"
#include "kernel_test_util.h"
#include "model/config.h"
#include "model/model.h"
#include "train/checkpoint.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A safetensors file: this header, then `data` zero bytes. */
static void write_st(const char *name, const char *header, size_t hl, size_t data)
{
    size_t total = 8 + hl + data;
    char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++)
        buf[i] = (char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    nu_hard_put_bytes(name, buf, total);
    free(buf);
}

/* ---- idmap ---- */

static void test_idmap(void)
{
    nu_idmap m;
    /* "ab" then "ab<NUL>x": before, the second line was cut at the NUL and
     * read as "ab" again, or read past the stored id. */
    nu_hard_put_bytes("ids_nul.txt", "ab\nab\0x\n", 8);
    nu_status s = nu_idmap_load(&m, nu_hard_in("ids_nul.txt"));
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("ids_nul.txt:2:") && nu_hard_says("NUL"),
             "an id line with a NUL byte is refused naming file:line: %d %s", (int)s,
             nu_last_error());
    if (s == NU_OK)
        nu_idmap_free(&m);
    nu_hard_put_bytes("ids_utf8.txt", "ok\n\xff\xfe\n", 6);
    s = nu_idmap_load(&m, nu_hard_in("ids_utf8.txt"));
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("ids_utf8.txt:2:") && nu_hard_says("UTF-8"),
             "an id line that is not UTF-8 is refused naming file:line: %d %s", (int)s,
             nu_last_error());
    if (s == NU_OK)
        nu_idmap_free(&m);
    /* Lookups compare lengths: "a" is not "a<NUL>". */
    nu_idmap_init(&m);
    NU_CHECK(nu_idmap_add(&m, "a", 1, NULL, 0) == NU_OK, "add");
    NU_CHECK(nu_idmap_find(&m, "a\0", 2) == NU_ID_NONE && nu_idmap_find(&m, "a", 1) == 0,
             "find compares the whole length");
    NU_CHECK(nu_idmap_add(&m, "b\0c", 3, NULL, 0) == NU_ERR_FORMAT,
             "an id with a NUL byte cannot be added");
    nu_idmap_free(&m);
}

/* ---- model files ---- */

static nu_model *small_model(void)
{
    nu_model_config c;
    nu_config_defaults(&c);
    c.d = 8;
    c.heads = 2;
    c.ffn = 16;
    c.enc_layers = 1;
    c.dec_layers = 1;
    c.max_users = 6;
    c.num_users = 4;
    nu_model *m = NULL;
    if (nu_model_create(&c, &m) != NU_OK) {
        fprintf(stderr, "nu_model_create: %s\n", nu_last_error());
        exit(2);
    }
    nu_model_init_random(m, 3);
    return m;
}

static nu_status load_model(void *dir)
{
    nu_model *m = NULL;
    nu_status s = nu_model_load(dir, &m);
    nu_model_free(m);
    return s;
}

static int refused(nu_status s, void *dir)
{
    (void)dir;
    return s != NU_OK;
}

static nu_status open_st(void *path)
{
    nu_st_file g;
    nu_status s = nu_st_open(path, &g);
    if (s == NU_OK)
        nu_st_close(&g);
    return s;
}

static int refused_format(nu_status s, void *path)
{
    (void)path;
    return s == NU_ERR_FORMAT;
}

/* Runs nu_model_load(d) in a child; 1 when it was refused with a memory
 * peak below `limit_kb` above the child's start. */
static int refused_within(const char *d, long limit_kb, long *grew)
{
    return nu_hard_refused_within(load_model, refused, (void *)d, limit_kb, grew);
}

static void test_model_alloc(void)
{
    /* The file: a config of 262144 users of width 1024 (1.09 GB of
     * weights) and no tensors at all. */
    char d[400];
    snprintf(d, sizeof d, "%s", nu_hard_in("huge_model"));
    mkdir(d, 0777);
    const char *keys[] = {"format", "nextuser_config"};
    const char *vals[] = {"nextuser-1", "{\"num_users\":262144,\"d\":1024,\"heads\":8}"};
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", d);
    NU_CHECK(nu_st_write(path, NULL, 0, keys, vals, 2) == NU_OK, "write the tiny model file");
    struct stat st;
    NU_CHECK(stat(path, &st) == 0 && st.st_size < 1024, "the model file is under 1 KB");
    long grew = 0;
    NU_CHECK(refused_within(d, 10 * 1024, &grew),
             "a 1 KB model file declaring 1 GB of weights is refused within 10 MB (grew %ld KB)",
             grew);

    /* The config's limits. */
    nu_model_config c;
    const char *bad[] = {
        "{\"num_users\":4,\"d\":8192,\"heads\":8}",   /* d above 4096 */
        "{\"num_users\":4,\"ffn\":65536}",            /* ffn above 16384 */
        "{\"num_users\":2147483647,\"d\":4096,\"heads\":8}", /* 8.8e12 parameters */
        "{\"num_users\":4,\"enc_layers\":65}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        NU_CHECK(nu_config_parse(bad[i], "cfg", &c) == NU_ERR_INVALID_ARG,
                 "config refused: %s (%s)", bad[i], nu_last_error());
    NU_CHECK(nu_config_parse("{\"num_users\":1000000,\"d\":256,\"heads\":8}", "cfg", &c) == NU_OK,
             "a large but sane config is accepted: %s", nu_last_error());
}

/* ---- safetensors ---- */

static void test_safetensors(void)
{
    /* Many tensors: open and find each, in linear time.  Before: every
     * lookup scanned the list (60k tensors: ~1.8e9 name compares). */
    size_t n = 60000, cap = n * 80 + 64, hl = 0;
    char *h = malloc(cap);
    hl += (size_t)snprintf(h + hl, cap - hl, "{");
    for (size_t i = 0; i < n; i++)
        hl += (size_t)snprintf(h + hl, cap - hl,
                               "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                               i ? "," : "", i);
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    write_st("many.safetensors", h, hl, 0);
    double t0 = now();
    nu_st_file f;
    nu_status s = nu_st_open(nu_hard_in("many.safetensors"), &f);
    size_t found = 0;
    if (s == NU_OK) {
        char name[32];
        for (size_t i = 0; i < n; i++) {
            snprintf(name, sizeof name, "t%zu", (i * 7919) % n);
            found += nu_st_find(&f, name) != NULL;
        }
        found += nu_st_find(&f, "t60000") == NULL;
        nu_st_close(&f);
    }
    double secs = now() - t0;
    NU_CHECK(s == NU_OK && found == n + 1, "60k tensors open and are found: %s", nu_last_error());
    NU_CHECK(secs < 3.0, "60k tensors: open + 60k lookups in %.2f s (< 3 s)", secs);

    /* More tensors than the limit: refused. */
    n = 70000;
    free(h);
    cap = n * 80 + 64;
    h = malloc(cap);
    hl = (size_t)snprintf(h, cap, "{");
    for (size_t i = 0; i < n; i++)
        hl += (size_t)snprintf(h + hl, cap - hl,
                               "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                               i ? "," : "", i);
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    write_st("toomany.safetensors", h, hl, 0);
    s = nu_st_open(nu_hard_in("toomany.safetensors"), &f);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("tensors"), "70000 tensors are refused: %d %s", (int)s,
             nu_last_error());
    if (s == NU_OK)
        nu_st_close(&f);
    free(h);

    /* A 15 MB header of one long shape array: refused before cJSON builds
     * 7.5M nodes (844 MB at 20 MB before). */
    size_t dims = 7500000;
    cap = dims * 2 + 128;
    h = malloc(cap);
    hl = (size_t)snprintf(h, cap, "{\"t\":{\"dtype\":\"F32\",\"shape\":[");
    for (size_t i = 0; i < dims; i++) {
        h[hl++] = i ? ',' : '1';
        if (i)
            h[hl++] = '1';
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[0,4]}}");
    write_st("long_shape.safetensors", h, hl, 4);
    free(h);
    long grew = -1;
    int ok = nu_hard_refused_within(open_st, refused_format, (void *)nu_hard_in("long_shape.safetensors"),
                                    64 * 1024, &grew);
    if (!ok)
        fprintf(stderr, "long shape header: grew %ld KB\n", grew);
    NU_CHECK(ok,
             "a 15 MB header of 7.5M values is refused within 64 MB (the mapping included)");

    /* Text after the header's JSON (spaces are the padding, allowed). */
    const char *tail = "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x      ";
    write_st("tail.safetensors", tail, strlen(tail), 4);
    s = nu_st_open(nu_hard_in("tail.safetensors"), &f);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("after the JSON"), "text after the header: %d %s", (int)s,
             nu_last_error());
    if (s == NU_OK)
        nu_st_close(&f);
}

/* ---- items ---- */

static nu_status parse(nu_model *m, nu_items *it, const char *line, size_t len)
{
    nu_items_free(it);
    nu_items_init(it, &m->cfg);
    return nu_items_parse_line(line, len, m, it);
}

static void test_items(void)
{
    nu_model *m = small_model();
    nu_items it;
    nu_items_init(&it, &m->cfg);
    const char two[] = "{\"id\":\"a\"}{\"id\":\"b\"}";
    nu_status s = parse(m, &it, two, strlen(two));
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("after the JSON"),
             "two objects on one line are refused (was: only a): %d %s", (int)s, nu_last_error());
    const char nul[] = "{\"id\":\"a\"}\0{\"id\":\"b\"}";
    s = parse(m, &it, nul, sizeof nul - 1);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("NUL"), "text after a NUL is refused: %d %s", (int)s,
             nu_last_error());
    const char esc[] = "{\"id\":\"a\\u0000b\"}";
    s = parse(m, &it, esc, strlen(esc));
    NU_CHECK(s == NU_ERR_FORMAT, "an id with \\u0000 is refused: %d", (int)s);
    const char bad8[] = "{\"id\":\"a\xc0\xaf\"}";
    s = parse(m, &it, bad8, strlen(bad8));
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("UTF-8"), "an overlong UTF-8 form is refused: %d %s",
             (int)s, nu_last_error());

    /* Numeric ids: kept exactly as written, or refused. */
    const char big[] = "{\"id\":9007199254740993}";
    s = parse(m, &it, big, strlen(big));
    NU_CHECK((s == NU_OK && it.count == 1 && !strcmp(it.ids[0], "9007199254740993")) ||
                 s == NU_ERR_FORMAT,
             "id 9007199254740993 is kept exactly or refused: %d %s", (int)s,
             s == NU_OK ? it.ids[0] : nu_last_error());
    const char *refused[] = {"{\"id\":1e300}", "{\"id\":1e999}", "{\"id\":1.5}", "{\"id\":-1e2}"};
    for (size_t i = 0; i < 4; i++) {
        s = parse(m, &it, refused[i], strlen(refused[i]));
        NU_CHECK(s == NU_ERR_FORMAT, "%s is refused: %d %s", refused[i], (int)s,
                 s == NU_OK ? it.ids[0] : "");
    }
    const char plain[] = "{\"id\":42,\"users\":[\"u1\"]}";
    s = parse(m, &it, plain, strlen(plain));
    NU_CHECK(s == NU_OK && !strcmp(it.ids[0], "42"), "a plain integer id reads as its digits");

    /* Numeric user ids: 2^53 + 1 is not 2^53. */
    nu_idmap_free(&m->users);
    nu_idmap_init(&m->users);
    nu_idmap_add(&m->users, "9007199254740992", 16, NULL, 0);
    nu_idmap_add(&m->users, "9007199254740993", 16, NULL, 0);
    nu_idmap_add(&m->users, "7", 1, NULL, 0);
    nu_idmap_add(&m->users, "8", 1, NULL, 0);
    const char uline[] = "{\"id\":\"x\",\"users\":[9007199254740993, 7]}";
    s = parse(m, &it, uline, strlen(uline));
    NU_CHECK((s == NU_OK && it.users_len == 2 && it.users[0] == 1 && it.users[1] == 2) ||
                 s == NU_ERR_FORMAT,
             "user 9007199254740993 is row 1 (not 0) or refused: %d", (int)s);

    /* Duplicate item ids in an items file. */
    nu_hard_put_bytes("dup_items.jsonl", "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"a\"}\n", 33);
    nu_items_free(&it);
    nu_items_init(&it, &m->cfg);
    s = nu_items_read_jsonl(nu_hard_in("dup_items.jsonl"), m, &it);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("dup_items.jsonl:3:") && nu_hard_says("\"a\""),
             "a duplicate item id is refused naming file:line: %d %s", (int)s, nu_last_error());
    nu_items_free(&it);
    nu_model_free(m);
}

/* ---- text after the JSON: config, data directory, training state ---- */

static void test_trailing(void)
{
    nu_model_config c;
    nu_status s = nu_config_parse("{\"num_users\":4} {\"d\":8}", "cfg", &c);
    NU_CHECK(s != NU_OK && nu_hard_says("after the JSON"), "config: text after the JSON: %s",
             nu_last_error());

    char d[400];
    snprintf(d, sizeof d, "%s", nu_hard_in("data"));
    mkdir(d, 0777);
    const char *good_json = "{\"format\":\"nextuser-data-1\",\"num_users\":2,\"num_items\":1}";
    const char *item = "{\"id\":\"a\",\"split\":\"train\",\"positives\":[[\"u1\",1]]}\n";
    nu_test_put(d, "users.txt", "u1\nu2\n");
    nu_test_put(d, "data.json", good_json);
    nu_test_put(d, "items.jsonl", item);
    nu_dataset ds;
    s = nu_dataset_load(d, &ds);
    NU_CHECK(s == NU_OK, "the small data directory loads: %s", nu_last_error());
    if (s == NU_OK)
        nu_dataset_free(&ds);
    char text[512];
    snprintf(text, sizeof text, "%s\n{\"num_items\":9}", good_json);
    nu_test_put(d, "data.json", text);
    s = nu_dataset_load(d, &ds);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("data.json") && nu_hard_says("after the JSON"),
             "data.json: text after the JSON: %d %s", (int)s, nu_last_error());
    if (s == NU_OK)
        nu_dataset_free(&ds);
    nu_test_put(d, "data.json", good_json);
    nu_test_put(d, "items.jsonl",
                "{\"id\":\"a\",\"split\":\"train\",\"positives\":[[\"u1\",1]]}{\"id\":\"b\"}\n");
    s = nu_dataset_load(d, &ds);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("items.jsonl:1:"), "items.jsonl: two objects on a line: %d %s",
             (int)s, nu_last_error());
    if (s == NU_OK)
        nu_dataset_free(&ds);
    char line[256];
    size_t n = (size_t)snprintf(line, sizeof line, "%s", item);
    line[n - 1] = 0; /* the newline becomes a NUL, then more text */
    n += (size_t)snprintf(line + n, sizeof line - n, "junk\n");
    nu_hard_put_bytes("data/items.jsonl", line, n);
    s = nu_dataset_load(d, &ds);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("items.jsonl:1:") && nu_hard_says("NUL"),
             "items.jsonl: text after a NUL: %d %s", (int)s, nu_last_error());
    if (s == NU_OK)
        nu_dataset_free(&ds);
}

/* ---- the training state ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = calloc(1, 1 << 16);
    size_t n = fread(b, 1, (1 << 16) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static void replace_in_state(const char *ck, const char *from, const char *to)
{
    char path[512];
    snprintf(path, sizeof path, "%s/train_state.json", ck);
    char *t = slurp(path);
    char *at = t ? strstr(t, from) : NULL;
    if (!at) {
        fprintf(stderr, "%s: no \"%s\"\n", path, from);
        exit(2);
    }
    char *out = malloc(strlen(t) + strlen(to) + 1);
    size_t pre = (size_t)(at - t);
    memcpy(out, t, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    FILE *f = fopen(path, "wb");
    fputs(out, f);
    fclose(f);
    free(out);
    free(t);
}

static void test_train_state(void)
{
    nu_model *m = small_model();
    nu_adam a;
    nu_adam_config ac;
    nu_adam_defaults(&ac);
    NU_CHECK(nu_adam_init(&a, &m->layout, &ac) == NU_OK, "adam");
    nu_train_state st = {5, 0, 3, 1, 99, 1, -1, 0, 0};
    const char *cases[][2] = {
        {"\"lr\":\t0.001", "\"lr\":\t1e300"},
        {"\"beta1\":\t0.9", "\"beta1\":\t1.5"},
        {"\"eps\":\t1e-08", "\"eps\":\t-1"},
        {"\"min_lr_ratio\":\t0.1", "\"min_lr_ratio\":\t7"},
        {"\"clip_norm\":\t1", "\"clip_norm\":\t1e999"},
    };
    char ck[400];
    snprintf(ck, sizeof ck, "%s", nu_hard_in("ckpt"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        NU_CHECK(nu_checkpoint_save(ck, m, &a, &st) == NU_OK, "save: %s", nu_last_error());
        replace_in_state(ck, cases[i][0], cases[i][1]);
        nu_model *m2 = NULL;
        nu_adam a2;
        nu_train_state st2;
        nu_status s = nu_checkpoint_load(ck, &m2, &a2, &st2);
        NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("train_state.json"),
                 "train_state.json with %s is refused: %d %s", cases[i][1], (int)s, nu_last_error());
        if (s == NU_OK) {
            nu_adam_free(&a2);
            nu_model_free(m2);
        }
    }
    NU_CHECK(nu_checkpoint_save(ck, m, &a, &st) == NU_OK, "save: %s", nu_last_error());
    char path[512];
    snprintf(path, sizeof path, "%s/train_state.json", ck);
    FILE *f = fopen(path, "ab");
    fputs("{}", f);
    fclose(f);
    nu_model *m2 = NULL;
    nu_adam a2;
    nu_train_state st2;
    nu_status s = nu_checkpoint_load(ck, &m2, &a2, &st2);
    NU_CHECK(s == NU_ERR_FORMAT && nu_hard_says("after the JSON"), "train_state.json: text after the JSON: %s",
             nu_last_error());
    if (s == NU_OK) {
        nu_adam_free(&a2);
        nu_model_free(m2);
    }
    nu_adam_free(&a);
    nu_model_free(m);
}

int main(void)
{
    nu_hard_dir_make("nu_hard_parsers");
    test_idmap();
    test_model_alloc();
    test_safetensors();
    test_items();
    test_trailing();
    test_train_state();
    return nu_hard_finish("hardening parsers");
}
