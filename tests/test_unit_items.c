/* Items JSON Lines: every documented behaviour for imperfect input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/items_jsonl.h"
#include "kernel_test_util.h"

static nu_model *model(void)
{
    nu_model_config c;
    nu_model *m;
    if (nu_config_parse("{\"num_users\": 10, \"d\": 8, \"heads\": 2, \"max_users\": 3, "
                        "\"prefix_fields\": [{\"name\": \"g\", \"kind\": \"multi\", \"vocab\": 4}, "
                        "{\"name\": \"y\", \"kind\": \"categorical\", \"vocab\": 3}, "
                        "{\"name\": \"x\", \"kind\": \"dense\", \"dim\": 2}]}",
                        "t", &c) != NU_OK ||
        nu_model_create(&c, &m) != NU_OK)
        exit(2);
    return m;
}

static nu_status parse(nu_model *m, nu_items *it, const char *line)
{
    return nu_items_parse_line(line, strlen(line), m, it);
}

static void expect_error(nu_model *m, const char *line, const char *needle)
{
    nu_items it;
    nu_items_init(&it, &m->cfg);
    nu_status s = parse(m, &it, line);
    NU_CHECK(s == NU_ERR_FORMAT && strstr(nu_last_error(), needle),
             "%s -> expected an error with \"%s\", got %d \"%s\"", line, needle, (int)s,
             nu_last_error());
    NU_CHECK(it.count == 0, "nothing added on error");
    nu_items_free(&it);
}

int main(void)
{
    nu_model *m = model();
    nu_items it;
    nu_items_init(&it, &m->cfg);
    NU_CHECK(parse(m, &it, "{\"id\": \"a\", \"features\": {\"g\": [\"v1\", \"v3\", \"zz\"], \"y\": \"v2\", "
                           "\"x\": [0.5, -1]}, \"users\": [\"u1\", \"u2\", \"nobody\", \"u3\", \"u4\"]}") == NU_OK,
             "full item parses: %s", nu_last_error());
    NU_CHECK(it.count == 1 && nu_items_n_users(&it, 0) == 3, "3 users kept (max_users)");
    NU_CHECK(it.users[0] == 2 && it.users[1] == 3 && it.users[2] == 4,
             "the most recent users kept, in order (got %u %u %u)", it.users[0], it.users[1], it.users[2]);
    NU_CHECK(it.unknown_users == 1 && it.truncated_items == 1 && it.unknown_values == 1,
             "counts: unknown users %zu, truncated %zu, unknown values %zu", it.unknown_users,
             it.truncated_items, it.unknown_values);
    NU_CHECK(it.feat_off[1] - it.feat_off[0] == 3 && it.feat_vals[0] == 1 && it.feat_vals[1] == 3 &&
                 it.feat_vals[2] == 0,
             "multi values mapped, unknown to <unk>");
    NU_CHECK(it.feat_off[2] - it.feat_off[1] == 1 && it.feat_vals[3] == 2, "categorical value mapped");
    NU_CHECK(it.dense[0] == 0.5f && it.dense[1] == -1.0f, "dense values read");
    NU_CHECK(parse(m, &it, "{\"id\": 7, \"users\": [1, 2]}") == NU_OK, "integer ids: %s", nu_last_error());
    NU_CHECK(it.count == 2 && !strcmp(it.ids[1], "7") && nu_items_n_users(&it, 1) == 0 &&
                 it.unknown_users == 3,
             "integer user ids are looked up as text (\"1\" is not \"u1\")");
    NU_CHECK(parse(m, &it, "{\"id\": \"empty\"}") == NU_OK && it.count == 3 &&
                 it.dense[2 * 2] == 0.0f && it.feat_off[3 * 3] == it.feat_off[2 * 3],
             "no users and no features: n = 0, zeros, <unk>");
    /* null means missing, for the object and for a field, as in a data
     * directory's items.jsonl (one parser: data/features_json.c). */
    NU_CHECK(parse(m, &it, "{\"id\": \"n1\", \"features\": null}") == NU_OK &&
                 parse(m, &it, "{\"id\": \"n2\", \"features\": {\"g\": null, \"x\": null}}") == NU_OK &&
                 it.count == 5 && it.feat_off[5 * 3] == it.feat_off[3 * 3],
             "\"features\": null and null fields read as missing: %s", nu_last_error());
    nu_items_free(&it);

    expect_error(m, "{\"id\": \"a\", \"features\": {\"colour\": \"red\"}}", "colour");
    expect_error(m, "{\"id\": \"a\", \"features\": [1]}", "must be an object");
    expect_error(m, "{\"id\": \"a\", \"features\": {\"x\": [1]}}", "list of 2 numbers");
    expect_error(m, "{\"id\": \"a\", \"features\": {\"y\": [\"v1\"]}}", "must be a string");
    expect_error(m, "{\"id\": \"a\", \"features\": {\"g\": \"v1\"}}", "list of strings");
    expect_error(m, "{\"id\": \"a\", \"users\": \"u1\"}", "\"users\"");
    expect_error(m, "{\"id\": \"a\", \"users\": [null]}", "users");
    expect_error(m, "{\"users\": []}", "\"id\"");
    expect_error(m, "{\"id\": \"a\", \"user\": []}", "unknown key \"user\"");
    expect_error(m, "{\"id\": \"a\", \"users\": [", "not valid JSON");
    expect_error(m, "[1, 2, 3]", "not a JSON object");

    /* The file reader names the line. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/nu_items_%ld.jsonl", (long)getpid());
    FILE *f = fopen(path, "w");
    fputs("{\"id\": \"a\"}\n\n{\"id\": \"b\", \"users\": [\"u1\"]}\n{\"id\": \"c\", oops}\n", f);
    fclose(f);
    nu_items_init(&it, &m->cfg);
    NU_CHECK(nu_items_read_jsonl(path, m, &it) == NU_ERR_FORMAT && strstr(nu_last_error(), ":4: "),
             "error names line 4: %s", nu_last_error());
    nu_items_free(&it);
    unlink(path);
    nu_items_init(&it, &m->cfg);
    NU_CHECK(nu_items_read_jsonl("/nonexistent/items.jsonl", m, &it) == NU_ERR_IO,
             "missing file is an I/O error");
    nu_items_free(&it);
    nu_model_free(m);
    return nu_test_finish("unit_items");
}
