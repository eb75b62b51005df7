/* nextuser init: a deterministic random model from a config. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "data/random_model.h"

static const char *const init_help =
    "usage: nextuser init --config CONFIG.json --out DIR [--seed S] [--users N]\n\n"
    "Writes a model directory (model.safetensors, users.txt, vocab_<field>.txt)\n"
    "with weights drawn deterministically from the seed (default 1).  The config\n"
    "is JSON with the keys of docs/model-format.md; missing keys take defaults.\n"
    "--users N overrides num_users; users are named u0..u{N-1} and vocabularies\n"
    "<unk>, v1, v2, ...  The directory is replaced atomically.\n"
    "An existing DIR is replaced only if nextuser wrote it (marker .nextuser-dir)\n"
    "or it is empty; anything else, or a symbolic link, is refused.\n";

int nu_cmd_init(int argc, char **argv)
{
    const char *config = NULL, *out = NULL, *v;
    uint64_t seed = 1, users = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(init_help, stdout);
            return NU_EXIT_OK;
        } else if (!strcmp(a, "--config")) {
            if (!(config = nu_arg_value("init", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--out")) {
            if (!(out = nu_arg_value("init", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = nu_arg_value("init", argc, argv, &i)) ||
                !nu_arg_u64("init", a, v, 0, UINT64_MAX, &seed))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--users")) {
            if (!(v = nu_arg_value("init", argc, argv, &i)) ||
                !nu_arg_u64("init", a, v, 1, 0xfffffffeu, &users))
                return NU_EXIT_USAGE;
        } else
            return nu_cli_usage_error("init", "unknown option '%s'", a);
    }
    if (!config || !out)
        return nu_cli_usage_error("init", "--config and --out are required");
    nu_model *m;
    if (nu_random_model_from_config(config, users, seed, &m) != NU_OK)
        return nu_cli_fail("init");
    nu_status s = nu_model_save(m, out);
    if (s == NU_OK)
        printf("wrote %s: %zu parameters (%zu users x d %zu), seed %llu\n", out,
               nu_model_num_parameters(m), nu_model_num_users(m), nu_model_dim(m),
               (unsigned long long)seed);
    nu_model_free(m);
    return s == NU_OK ? NU_EXIT_OK : nu_cli_fail("init");
}
