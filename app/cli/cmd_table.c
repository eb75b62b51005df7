/* nextuser table: write the scoring table of a model;
 * nextuser synth: a deterministic synthetic model and table at any scale. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "data/random_model.h"
#include "util/path.h"

/* The encodings of a --dtypes list as NU_DTYPE_BIT flags (fp32 always). */
static int parse_dtypes(const char *cmd, const char *text, unsigned *dtypes)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", text);
    *dtypes = NU_DTYPE_BIT(NU_DTYPE_FP32);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        nu_dtype t;
        if (!strcmp(tok, "all")) {
            *dtypes |= NU_DTYPE_BIT(NU_DTYPE_BF16) | NU_DTYPE_BIT(NU_DTYPE_INT8);
        } else if (nu_dtype_parse(tok, &t) == NU_OK) {
            *dtypes |= NU_DTYPE_BIT(t);
        } else {
            fprintf(stderr, "nextuser %s: --dtypes: unknown encoding \"%s\" (fp32, bf16, int8, all)\n",
                    cmd, tok);
            return 0;
        }
    }
    return 1;
}

static int write_table(const char *cmd, const nu_model *m, const char *dir, unsigned dtypes)
{
    nu_table *t;
    char path[NU_PATH_MAX];
    if (nu_path_join(path, sizeof path, dir, "user_table.safetensors") != NU_OK ||
        nu_table_build(m, dtypes, &t) != NU_OK)
        return nu_cli_fail(cmd);
    nu_status s = nu_table_save(t, dir);
    if (s == NU_OK)
        printf("wrote %s: %zu users x %zu (fp32%s%s)\n", path, nu_table_rows(t), nu_table_width(t),
               nu_table_has(t, NU_DTYPE_BF16) ? ", bf16" : "",
               nu_table_has(t, NU_DTYPE_INT8) ? ", int8" : "");
    nu_table_free(t);
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
    unsigned mask;
    if (!parse_dtypes("table", dtypes, &mask))
        return NU_EXIT_USAGE;
    nu_model *m;
    if (nu_model_load(dir, &m) != NU_OK)
        return nu_cli_fail("table");
    int rc = write_table("table", m, dir, mask);
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
    unsigned mask;
    if (!parse_dtypes("synth", dtypes, &mask))
        return NU_EXIT_USAGE;
    nu_model *m;
    if (nu_synthetic_model(config, users, dim, seed, &m) != NU_OK)
        return nu_cli_fail("synth");
    int rc = NU_EXIT_OK;
    if (nu_model_save(m, out) != NU_OK)
        rc = nu_cli_fail("synth");
    else {
        printf("wrote %s: %llu users x d %llu, seed %llu\n", out, (unsigned long long)users,
               (unsigned long long)dim, (unsigned long long)seed);
        rc = write_table("synth", m, out, mask);
    }
    nu_model_free(m);
    return rc;
}
