/* nextuser table: write the scoring table of a model;
 * nextuser synth: a deterministic synthetic model and table at any scale. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "retrieval/user_table.h"
#include "util/path.h"

static int parse_dtypes(const char *cmd, const char *text, int *bf16, int *i8)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text);
    *bf16 = *i8 = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        nu_table_dtype t;
        if (!strcmp(tok, "all")) {
            *bf16 = *i8 = 1;
        } else if (nu_table_dtype_parse(tok, &t)) {
            *bf16 |= t == NU_TABLE_BF16;
            *i8 |= t == NU_TABLE_I8;
        } else {
            fprintf(stderr, "nextuser %s: --dtypes: unknown encoding \"%s\" (fp32, bf16, int8, all)\n",
                    cmd, tok);
            return 0;
        }
    }
    return 1;
}

static int write_table(const char *cmd, const nu_model *m, const char *dir, int bf16, int i8)
{
    nu_user_table t;
    char path[NU_PATH_MAX];
    if (nu_path_join(path, sizeof path, dir, "user_table.safetensors") != NU_OK ||
        nu_user_table_build(m, bf16, i8, &t) != NU_OK)
        return nu_cli_fail(cmd);
    nu_status s = nu_user_table_save(&t, path, dir);
    if (s == NU_OK)
        printf("wrote %s: %zu users x %zu (fp32%s%s)\n", path, t.rows, t.d, bf16 ? ", bf16" : "",
               i8 ? ", int8" : "");
    nu_user_table_free(&t);
    return s == NU_OK ? NU_EXIT_OK : nu_cli_fail(cmd);
}

static const char *const table_help =
    "usage: nextuser table --model DIR [--dtypes LIST]\n\n"
    "Writes DIR/user_table.safetensors: the model's user embeddings L2-normalised\n"
    "in fp32, plus the encodings in LIST (comma-separated: fp32, bf16, int8, all;\n"
    "default all).  retrieve and search memory-map it instead of converting the\n"
    "table on every start; a table made from an older model file is refused as\n"
    "stale.  Written atomically.\n";

int nu_cmd_table(int argc, char **argv)
{
    const char *dir = NULL, *dtypes = "all";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(table_help, stdout);
            return NU_EXIT_OK;
        } else if (!strcmp(a, "--model")) {
            if (!(dir = nu_arg_value("table", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--dtypes")) {
            if (!(dtypes = nu_arg_value("table", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else
            return nu_cli_usage_error("table", "unknown option '%s'", a);
    }
    if (!dir)
        return nu_cli_usage_error("table", "--model is required");
    int bf16, i8;
    if (!parse_dtypes("table", dtypes, &bf16, &i8))
        return NU_EXIT_USAGE;
    nu_model *m;
    if (nu_model_load(dir, &m) != NU_OK)
        return nu_cli_fail("table");
    int rc = write_table("table", m, dir, bf16, i8);
    nu_model_free(m);
    return rc;
}

static const char *const synth_help =
    "usage: nextuser synth --users N --dim D --out DIR [--seed S] [--config C]\n"
    "                      [--dtypes LIST]\n\n"
    "Writes a deterministic synthetic model with N users of width D (heads D/16,\n"
    "the other values from the config C or the defaults, with four prefix fields:\n"
    "genres, year, tags, content) and its user table (all encodings unless\n"
    "--dtypes says otherwise), for benchmarks at scale (1M users and more).\n"
    "An existing DIR is replaced only if nextuser wrote it (marker .nextuser-dir)\n"
    "or it is empty; anything else, or a symbolic link, is refused.\n";

int nu_cmd_synth(int argc, char **argv)
{
    const char *out = NULL, *config = NULL, *dtypes = "all", *v;
    uint64_t users = 0, dim = 0, seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(synth_help, stdout);
            return NU_EXIT_OK;
        } else if (!strcmp(a, "--users")) {
            if (!(v = nu_arg_value("synth", argc, argv, &i)) ||
                !nu_arg_u64("synth", a, v, 1, 0xfffffffeu, &users))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--dim")) {
            if (!(v = nu_arg_value("synth", argc, argv, &i)) || !nu_arg_u64("synth", a, v, 1, 4096, &dim))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = nu_arg_value("synth", argc, argv, &i)) ||
                !nu_arg_u64("synth", a, v, 0, UINT64_MAX, &seed))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--out")) {
            if (!(out = nu_arg_value("synth", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--config")) {
            if (!(config = nu_arg_value("synth", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--dtypes")) {
            if (!(dtypes = nu_arg_value("synth", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else
            return nu_cli_usage_error("synth", "unknown option '%s'", a);
    }
    if (!users || !dim || !out)
        return nu_cli_usage_error("synth", "--users, --dim and --out are required");
    int bf16, i8;
    if (!parse_dtypes("synth", dtypes, &bf16, &i8))
        return NU_EXIT_USAGE;
    nu_model_config c;
    if (config) {
        if (nu_config_load_unchecked(config, &c) != NU_OK)
            return nu_cli_fail("synth");
    } else {
        nu_config_defaults(&c);
        static const struct { const char *name; nu_field_kind kind; size_t size; } fields[] = {
            {"genres", NU_FIELD_MULTI, 20}, {"year", NU_FIELD_CATEGORICAL, 12},
            {"tags", NU_FIELD_MULTI, 200}, {"content", NU_FIELD_DENSE, 16}};
        c.n_prefix = 4;
        for (size_t f = 0; f < 4; f++) {
            snprintf(c.prefix[f].name, sizeof c.prefix[f].name, "%s", fields[f].name);
            c.prefix[f].kind = fields[f].kind;
            c.prefix[f].size = fields[f].size;
        }
    }
    c.num_users = (size_t)users;
    c.d = (size_t)dim;
    c.heads = dim % 16 == 0 ? dim / 16 : 1;
    c.ffn = 4 * c.d;
    if (nu_config_validate(&c, "synth") != NU_OK)
        return nu_cli_fail("synth");
    nu_model *m;
    if (nu_model_create(&c, &m) != NU_OK)
        return nu_cli_fail("synth");
    nu_model_init_random(m, seed);
    int rc = NU_EXIT_OK;
    if (nu_model_save(m, out) != NU_OK)
        rc = nu_cli_fail("synth");
    else {
        printf("wrote %s: %llu users x d %llu, seed %llu\n", out, (unsigned long long)users,
               (unsigned long long)dim, (unsigned long long)seed);
        rc = write_table("synth", m, out, bf16, i8);
    }
    nu_model_free(m);
    return rc;
}
