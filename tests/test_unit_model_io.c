/* Model files: safetensors validation (every corruption is a clear error,
 * never a crash), config validation naming the field, model directory round
 * trip, and atomic replacement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "kernel_test_util.h"
#include "model/model.h"

static char dir[256];

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

/* A safetensors file from a header string and `floats` data floats. */
static void write_st(const char *path, const char *header, size_t floats)
{
    size_t hl = strlen(header), total = 8 + hl + floats * 4;
    unsigned char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < floats; i++) {
        float v = (float)i;
        memcpy(buf + 8 + hl + 4 * i, &v, 4);
    }
    write_bytes(path, buf, total);
    free(buf);
}

static void expect_bad(const char *what, const char *header, size_t floats, const char *needle)
{
    char path[300];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    write_st(path, header, floats);
    nu_st_file f;
    nu_status s = nu_st_open(path, &f);
    NU_CHECK(s == NU_ERR_FORMAT, "%s: expected a format error, got %d", what, (int)s);
    NU_CHECK(strstr(nu_last_error(), needle) != NULL, "%s: message \"%s\" should mention \"%s\"",
             what, nu_last_error(), needle);
    if (s == NU_OK)
        nu_st_close(&f);
}

static void test_safetensors(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    write_st(path, "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                   "\"data_offsets\":[0,24]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]}}",
             7);
    nu_st_file f;
    NU_CHECK(nu_st_open(path, &f) == NU_OK, "valid file opens: %s", nu_last_error());
    const nu_st_tensor *a = nu_st_find(&f, "a"), *b = nu_st_find(&f, "b");
    float a5 = -1, b0 = -1; /* this header leaves the data unaligned: copy out */
    if (a && b) {
        memcpy(&a5, (const char *)a->raw + 20, 4);
        memcpy(&b0, b->raw, 4);
    }
    NU_CHECK(a && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a5 == 5.0f,
             "tensor a read back");
    NU_CHECK(b && b->nelem == 1 && b0 == 6.0f && a->data == NULL,
             "tensor b read back; no float pointer to unaligned data");
    NU_CHECK(nu_st_meta(&f, "k") && !strcmp(nu_st_meta(&f, "k"), "v"), "metadata read back");
    nu_st_close(&f);

    expect_bad("bad JSON", "{\"a\":{\"dtype\":\"F32\",", 4, "JSON");
    expect_bad("wrong dtype", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 1, "F16");
    expect_bad("bf16 size mismatch", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 1,
               "BF16");
    expect_bad("shape/size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 2,
               "\"a\"");
    expect_bad("offsets past the end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 2,
               "outside the data");
    expect_bad("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 3, "overlap");
    expect_bad("negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 1,
               "shape");
    expect_bad("missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 1, "data_offsets");
    expect_bad("metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0, "__metadata__");

    /* Header length larger than the file, and a file too short. */
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    unsigned char hdr[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(path, hdr, 10);
    NU_CHECK(nu_st_open(path, &f) == NU_ERR_FORMAT && strstr(nu_last_error(), "header length"),
             "huge header length refused: %s", nu_last_error());
    write_bytes(path, hdr, 3);
    NU_CHECK(nu_st_open(path, &f) == NU_ERR_FORMAT && strstr(nu_last_error(), "too short"),
             "short file refused: %s", nu_last_error());
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    NU_CHECK(nu_st_open(path, &f) == NU_ERR_IO, "missing file is an I/O error");

    /* Every truncation of a valid written file is refused cleanly. */
    float data[6] = {1, 2, 3, 4, 5, 6};
    nu_st_out_tensor t = {"w", 2, {2, 3, 0, 0}, data, NU_ST_F32, NULL};
    const char *mk[] = {"format"}, *mv[] = {"test"};
    snprintf(path, sizeof path, "%s/written.safetensors", dir);
    NU_CHECK(nu_st_write(path, &t, 1, mk, mv, 1) == NU_OK, "write: %s", nu_last_error());
    struct stat st;
    stat(path, &st);
    FILE *in = fopen(path, "rb");
    unsigned char *whole = malloc((size_t)st.st_size);
    if (fread(whole, 1, (size_t)st.st_size, in) != (size_t)st.st_size)
        exit(2);
    fclose(in);
    NU_CHECK(nu_st_open(path, &f) == NU_OK && nu_st_find(&f, "w")->data[4] == 5.0f,
             "written file reads back");
    nu_st_close(&f);
    int all_refused = 1;
    snprintf(path, sizeof path, "%s/trunc.safetensors", dir);
    for (off_t cut = 0; cut < st.st_size; cut++) {
        write_bytes(path, whole, (size_t)cut);
        nu_status s = nu_st_open(path, &f);
        if (s == NU_OK) {
            all_refused = 0;
            nu_st_close(&f);
        }
    }
    NU_CHECK(all_refused, "every truncation of a valid file is refused");
    free(whole);
}

static void expect_bad_config(const char *json, const char *needle)
{
    nu_model_config c;
    nu_status s = nu_config_parse(json, "cfg", &c);
    NU_CHECK(s != NU_OK && strstr(nu_last_error(), needle) != NULL,
             "config %s: expected an error mentioning \"%s\", got \"%s\"", json, needle,
             nu_last_error());
}

static void test_config(void)
{
    nu_model_config c;
    NU_CHECK(nu_config_parse("{\"num_users\": 5}", "cfg", &c) == NU_OK && c.d == 64 &&
                 c.heads == 4 && c.ffn == 256 && c.max_users == 50 && c.use_cls && !c.bidirectional,
             "defaults: %s", nu_last_error());
    expect_bad_config("{\"num_users\": 5, \"d\": 30, \"heads\": 4}", "divisible");
    expect_bad_config("{\"num_users\": 5, \"d\": 0}", "\"d\"");
    expect_bad_config("{\"num_users\": 0}", "num_users");
    expect_bad_config("{\"num_users\": 5, \"attention\": \"sideways\"}", "attention");
    expect_bad_config("{\"num_users\": 5, \"dd\": 3}", "unknown key \"dd\"");
    expect_bad_config("{\"num_users\": 5, \"heads\": 2.5}", "heads");
    expect_bad_config("{\"num_users\": 5, \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\"}]}",
                      "vocab");
    expect_bad_config("{\"num_users\": 5, \"prefix_fields\": [{\"name\": \"g\", \"kind\": \"blob\", \"vocab\": 3}]}",
                      "kind");
    expect_bad_config("{\"num_users\": 5, \"tau\": 0}", "tau");
    expect_bad_config("[1, 2]", "not a JSON object");
    /* Round trip through JSON. */
    NU_CHECK(nu_config_parse("{\"num_users\": 7, \"d\": 32, \"heads\": 2, \"use_cls\": false, "
                             "\"attention\": \"bidirectional\", \"prefix_fields\": [{\"name\": \"g\", "
                             "\"kind\": \"dense\", \"dim\": 5}]}",
                             "cfg", &c) == NU_OK,
             "parse: %s", nu_last_error());
    char *json = nu_config_to_json(&c);
    nu_model_config c2;
    NU_CHECK(json && nu_config_parse(json, "again", &c2) == NU_OK && c2.d == 32 && !c2.use_cls &&
                 c2.bidirectional && c2.n_prefix == 1 && c2.prefix[0].size == 5 &&
                 c2.prefix[0].kind == NU_FIELD_DENSE,
             "config JSON round trip");
    free(json);
}

static void test_model_dir(void)
{
    nu_model_config c;
    nu_config_parse("{\"num_users\": 20, \"d\": 16, \"heads\": 2, \"ffn\": 24, \"max_users\": 5, "
                    "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 4}, "
                    "{\"name\": \"x\", \"kind\": \"dense\", \"dim\": 3}]}",
                    "cfg", &c);
    nu_model *m, *m2;
    NU_CHECK(nu_model_create(&c, &m) == NU_OK, "create: %s", nu_last_error());
    nu_model_init_random(m, 42);
    char path[300], p2[320];
    snprintf(path, sizeof path, "%s/model", dir);
    NU_CHECK(nu_model_save(m, path) == NU_OK, "save: %s", nu_last_error());
    NU_CHECK(nu_model_load(path, &m2) == NU_OK, "load: %s", nu_last_error());
    NU_CHECK(m2->layout.total == m->layout.total &&
                 memcmp(m2->params, m->params, m->layout.total * sizeof(float)) == 0,
             "weights identical after round trip");
    NU_CHECK(m2->users.count == 20 && !strcmp(m2->users.names[3], "u3") &&
                 m2->vocab[0].count == 4 && !strcmp(m2->vocab[0].names[0], "<unk>"),
             "id maps round trip");
    nu_model_free(m2);
    /* Saving again replaces the directory whole; no temporary left behind. */
    nu_model_init_random(m, 43);
    NU_CHECK(nu_model_save(m, path) == NU_OK, "second save: %s", nu_last_error());
    NU_CHECK(nu_model_load(path, &m2) == NU_OK &&
                 memcmp(m2->params, m->params, m->layout.total * sizeof(float)) == 0,
             "second save visible");
    nu_model_free(m2);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c -e '\\.tmp\\.' -e '\\.old\\.' > /dev/null", dir);
    NU_CHECK(system(cmd) != 0, "no temporary or old directories left in %s", dir);
    /* A users.txt with the wrong count, a missing tensor: clear errors. */
    snprintf(p2, sizeof p2, "%s/users.txt", path);
    FILE *f = fopen(p2, "a");
    fputs("extra\n", f);
    fclose(f);
    NU_CHECK(nu_model_load(path, &m2) == NU_ERR_FORMAT && strstr(nu_last_error(), "users.txt"),
             "user count mismatch named: %s", nu_last_error());
    /* A model whose config disagrees with the tensors (d changed). */
    nu_model_config c3 = c;
    c3.ffn = 32;
    nu_model *m3;
    nu_model_create(&c3, &m3);
    nu_model_save(m3, path);
    nu_model_free(m3);
    snprintf(p2, sizeof p2, "%s/model.safetensors", path);
    /* Replace the file's tensors with the old model's: shapes then disagree. */
    nu_st_out_tensor *ts = calloc(m->layout.count, sizeof *ts);
    for (size_t i = 0; i < m->layout.count; i++) {
        ts[i].name = m->layout.specs[i].name;
        ts[i].ndim = m->layout.specs[i].ndim;
        ts[i].shape[0] = m->layout.specs[i].shape[0];
        ts[i].shape[1] = m->layout.specs[i].shape[1];
        ts[i].data = m->params + m->layout.specs[i].offset;
    }
    char *json = nu_config_to_json(&c3);
    const char *keys[] = {"format", "nextuser_config"}, *vals[] = {"nextuser-1", json};
    nu_st_write(p2, ts, m->layout.count, keys, vals, 2);
    NU_CHECK(nu_model_load(path, &m2) == NU_ERR_FORMAT && strstr(nu_last_error(), "ffn.w1"),
             "shape mismatch names the tensor: %s", nu_last_error());
    free(json);
    free(ts);
    nu_model_free(m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/nu_model_io_%ld", (long)getpid());
    mkdir(dir, 0777);
    test_safetensors();
    test_config();
    test_model_dir();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return nu_test_finish("unit_model_io");
}
