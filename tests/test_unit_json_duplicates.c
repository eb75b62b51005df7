/* Duplicate JSON keys in every file nextuser reads are clean format errors
 * naming the file (and line) and the key: safetensors headers (a second
 * "__metadata__" once overran a heap buffer), tensor entries, model configs,
 * items lines, data.json, items.jsonl, training state and bench results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/items_jsonl.h"
#include "io/safetensors.h"
#include "kernel_test_util.h"
#include "model/config.h"
#include "plan/plan_results.h"
#include "train/checkpoint.h"

static char dir[256];

static void put(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static void put_text(const char *d, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", d, name);
    put(path, text, strlen(text));
}

/* A safetensors file with this header and `data_bytes` zero bytes of data. */
static void write_st(const char *path, const char *header, size_t data_bytes)
{
    size_t hl = strlen(header), total = 8 + hl + data_bytes;
    char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++)
        buf[i] = (char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    put(path, buf, total);
    free(buf);
}

static int has(const char *needle) { return strstr(nu_last_error(), needle) != NULL; }

static void expect_st_error(const char *what, const char *header, size_t data_bytes,
                            const char *key)
{
    char path[300];
    snprintf(path, sizeof path, "%s/dup.safetensors", dir);
    write_st(path, header, data_bytes);
    nu_st_file f;
    nu_status s = nu_st_open(path, &f);
    NU_CHECK(s == NU_ERR_FORMAT && has("dup.safetensors") && has(key),
             "%s: want a format error naming the file and \"%s\", got %d \"%s\"", what, key,
             (int)s, nu_last_error());
    if (s == NU_OK)
        nu_st_close(&f);
}

#define TENSOR_T "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_safetensors(void)
{
    /* The fuzzer's case: a small first __metadata__, a large second one. */
    char header[4096];
    size_t n = (size_t)snprintf(header, sizeof header, "{\"__metadata__\":{\"a\":\"1\"},"
                                                       "\"__metadata__\":{");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(header + n, sizeof header - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(header + n, sizeof header - n, "}," TENSOR_T "}");
    expect_st_error("second __metadata__", header, 8, "__metadata__");
    expect_st_error("duplicate tensor",
                    "{" TENSOR_T ",\"t\":{\"dtype\":\"F32\",\"shape\":[2],"
                    "\"data_offsets\":[8,16]}}",
                    16, "\"t\"");
    expect_st_error("key twice inside __metadata__",
                    "{\"__metadata__\":{\"format\":\"a\",\"format\":\"b\"}," TENSOR_T "}", 8,
                    "format");
    expect_st_error("key twice inside a tensor entry",
                    "{\"t\":{\"dtype\":\"F32\",\"dtype\":\"I8\",\"shape\":[2],"
                    "\"data_offsets\":[0,8]}}",
                    8, "dtype");
}

/* 40k keys: the check sorts each object's keys, it does not compare all
 * pairs, so this takes milliseconds. */
static void test_many_keys(void)
{
    enum { KEYS = 40000 };
    size_t cap = (size_t)KEYS * 64, n = 1;
    char *header = malloc(cap);
    header[0] = '{';
    for (int i = 0; i < KEYS; i++)
        n += (size_t)snprintf(header + n, cap - n,
                              "%s\"w%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                              i ? "," : "", i);
    snprintf(header + n, cap - n, "}");
    char path[300];
    snprintf(path, sizeof path, "%s/many.safetensors", dir);
    write_st(path, header, 0);
    nu_st_file f;
    nu_status s = nu_st_open(path, &f);
    NU_CHECK(s == NU_OK && f.count == KEYS, "%d distinct tensors open: %s", KEYS, nu_last_error());
    if (s == NU_OK)
        nu_st_close(&f);
    snprintf(header + n, cap - n,
             ",\"w17\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}");
    expect_st_error("the same name after 40k others", header, 0, "\"w17\"");
    free(header);
}

static void test_config(void)
{
    nu_model_config c;
    nu_status s = nu_config_parse("{\"num_users\": 4, \"d\": 8, \"d\": 16, \"heads\": 2}",
                                  "cfg.json", &c);
    NU_CHECK(s == NU_ERR_FORMAT && has("cfg.json") && has("\"d\""),
             "config with \"d\" twice: got %d \"%s\"", (int)s, nu_last_error());
    s = nu_config_parse("{\"num_users\": 4, \"d\": 8, \"heads\": 2, \"prefix_fields\": "
                        "[{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 3, \"vocab\": 9}]}",
                        "cfg.json", &c);
    NU_CHECK(s == NU_ERR_FORMAT && has("cfg.json") && has("vocab"),
             "prefix field with \"vocab\" twice: got %d \"%s\"", (int)s, nu_last_error());
}

static void test_items_line(void)
{
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse("{\"num_users\": 4, \"d\": 8, \"heads\": 2, \"max_users\": 3, "
                        "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", "
                        "\"vocab\": 3}]}",
                        "t", &c) != NU_OK ||
        nu_model_create(&c, &m) != NU_OK)
        exit(2);
    char path[300];
    snprintf(path, sizeof path, "%s/items.jsonl", dir);
    const char *lines = "{\"id\": \"a\", \"users\": [\"u1\"]}\n"
                        "{\"id\": \"b\", \"users\": [\"u1\"], \"id\": \"c\"}\n";
    put(path, lines, strlen(lines));
    nu_items it;
    nu_items_init(&it, &m->cfg);
    nu_status s = nu_items_read_jsonl(path, m, &it);
    NU_CHECK(s == NU_ERR_FORMAT && has("items.jsonl:2") && has("\"id\""),
             "items line with \"id\" twice: got %d \"%s\"", (int)s, nu_last_error());
    nu_items_free(&it);
    nu_items_init(&it, &m->cfg);
    const char *nested = "{\"id\": \"a\", \"features\": {\"g\": [\"v1\"], \"g\": [\"v2\"]}}";
    s = nu_items_parse_line(nested, strlen(nested), m, &it);
    NU_CHECK(s == NU_ERR_FORMAT && has("\"g\""), "feature \"g\" twice: got %d \"%s\"", (int)s,
             nu_last_error());
    nu_items_free(&it);
    nu_model_free(m);
}

static const char *const data_json =
    "{\"format\": \"nextuser-data-1\", \"num_users\": 2, \"num_items\": 1, \"seed\": 1, "
    "\"source\": \"t\", \"prefix_fields\": []}\n";

static void expect_dataset_error(const char *d, const char *where, const char *key)
{
    nu_dataset ds;
    nu_status s = nu_dataset_load(d, &ds);
    NU_CHECK(s == NU_ERR_FORMAT && has(where) && has(key),
             "dataset: want a format error with \"%s\" and \"%s\", got %d \"%s\"", where, key,
             (int)s, nu_last_error());
    if (s == NU_OK)
        nu_dataset_free(&ds);
}

static void test_dataset(void)
{
    char d[300];
    snprintf(d, sizeof d, "%s/data", dir);
    mkdir(d, 0777);
    put_text(d, "users.txt", "u0\nu1\n");
    put_text(d, "items.jsonl", "{\"id\": \"a\", \"split\": \"train\"}\n");
    put_text(d, "data.json", data_json);
    nu_dataset ds;
    NU_CHECK(nu_dataset_load(d, &ds) == NU_OK, "the hand-made data loads: %s", nu_last_error());
    nu_dataset_free(&ds);
    put_text(d, "data.json",
             "{\"format\": \"nextuser-data-1\", \"num_users\": 2, \"num_items\": 1, \"seed\": 1, "
             "\"source\": \"t\", \"prefix_fields\": [], \"num_items\": 5}\n");
    expect_dataset_error(d, "data.json", "num_items");
    put_text(d, "data.json", data_json);
    put_text(d, "items.jsonl", "{\"id\": \"a\", \"split\": \"train\", \"split\": \"test\"}\n");
    expect_dataset_error(d, "items.jsonl:1", "split");
    put_text(d, "items.jsonl", "{\"id\": \"a\", \"split\": \"train\", \"positives\": "
                               "[[\"u0\", 1]], \"positives\": [[\"u1\", 2]]}\n");
    expect_dataset_error(d, "items.jsonl:1", "positives");
}

static void test_checkpoint(void)
{
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse("{\"num_users\": 5, \"d\": 8, \"heads\": 2, \"max_users\": 3}", "t", &c) !=
            NU_OK ||
        nu_model_create(&c, &m) != NU_OK)
        exit(2);
    nu_adam_config ac;
    nu_adam_defaults(&ac);
    nu_adam a;
    nu_adam_init(&a, &m->layout, &ac);
    nu_train_state st = {3, 1, 2, 42, 7, 0, -1, 0, 0};
    char d[300];
    snprintf(d, sizeof d, "%s/ckpt", dir);
    NU_CHECK(nu_checkpoint_save(d, m, &a, &st) == NU_OK, "save: %s", nu_last_error());
    /* The saved state with its "step" written twice. */
    char path[400];
    snprintf(path, sizeof path, "%s/train_state.json", d);
    FILE *f = fopen(path, "rb");
    char text[4096] = {0};
    size_t len = f ? fread(text, 1, sizeof text - 64, f) : 0;
    if (f)
        fclose(f);
    char *brace = strchr(text, '{');
    NU_CHECK(len > 0 && brace, "train_state.json readable");
    if (brace) {
        char edited[4200];
        snprintf(edited, sizeof edited, "{\"step\": \"99\", %s", brace + 1);
        put(path, edited, strlen(edited));
        nu_model *m2 = NULL;
        nu_adam a2;
        nu_train_state st2;
        nu_status s = nu_checkpoint_load(d, &m2, &a2, &st2);
        NU_CHECK(s == NU_ERR_FORMAT && has("train_state.json") && has("step"),
                 "state with \"step\" twice: got %d \"%s\"", (int)s, nu_last_error());
        if (s == NU_OK) {
            nu_model_free(m2);
            nu_adam_free(&a2);
        }
    }
    nu_adam_free(&a);
    nu_model_free(m);
}

static void test_plan_results(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/results.json", dir);
    const char *text = "{\"benchmarks\": [{\"name\": \"a\", \"name\": \"b\", "
                       "\"items_per_second\": 1}]}";
    put(path, text, strlen(text));
    nu_plan_results r;
    nu_status s = nu_plan_results_load(path, &r);
    NU_CHECK(s == NU_ERR_FORMAT && has("results.json") && has("\"name\""),
             "bench results with \"name\" twice: got %d \"%s\"", (int)s, nu_last_error());
    if (s == NU_OK)
        nu_plan_results_free(&r);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/nu_json_dup_%ld", (long)getpid());
    mkdir(dir, 0777);
    test_safetensors();
    test_many_keys();
    test_config();
    test_items_line();
    test_dataset();
    test_checkpoint();
    test_plan_results();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return nu_test_finish("unit_json_duplicates");
}
