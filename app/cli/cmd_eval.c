/* nextuser eval: item cold-start Recall@K by stage (docs/evaluation.md) for
 * the model or a baseline, on a data directory's val or test items. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "eval/eval.h"
#include "io/atomic_file.h"

static const char *const eval_help =
    "usage: nextuser eval --data DIR (--model DIR | --baseline B) [--k 20,50]\n"
    "                     [--stages 0,1,5,10,20] [--split val|test] [--seed S]\n"
    "                     [--json FILE] [--threads T] [--gen-dtype fp32|bf16]\n"
    "  B = random|popular|lookalike-emb|lookalike-cf|lookalike-mf|feature-popular\n\n"
    "Item cold start: for each item of the split with at least s+1 positives, at\n"
    "stage s the context is its first s positive users (time order) and the\n"
    "targets are all its later positives.  Every user is scored, the context users\n"
    "are left out, and Recall@K = |top-K and targets| / |targets| is averaged over\n"
    "items.  Prints a table stage x K with the number of items per stage.\n\n"
    "  --model     the generator (must match the data: users, prefix fields); it\n"
    "              sees the most recent max_users of the context, while the whole\n"
    "              context is left out of the ranking\n"
    "  --baseline  random (seeded by --seed), popular (users ranked by their number\n"
    "              of train-split positives, ties by lower row), lookalike-emb (mean\n"
    "              of the context users' rows of --model's user table, scored like\n"
    "              the model; stage 0 falls back to popular), lookalike-cf (users\n"
    "              ranked by their summed cosine similarity, over train-split\n"
    "              positives, to the context users; stage 0: users of the 20 train\n"
    "              items most similar by genre; remaining slots: popular),\n"
    "              lookalike-mf (user factors of implicit-feedback ALS, Hu, Koren\n"
    "              and Volinsky 2008, fitted on the train-split positives only:\n"
    "              confidence 1 + 40 r (r = the pair's positives), preference 1\n"
    "              on positives and 0 elsewhere, 64 factors, 15 iterations,\n"
    "              L2 weight 0.1 times the row's positives (ALS-WR), per-row\n"
    "              Cholesky in double, initialised from --seed; fixed defaults,\n"
    "              not tuned to any data set.  Users ranked by cosine of their\n"
    "              factor to the mean of the context users' unit factors, ties\n"
    "              by lower row; users without train positives (no factor) come\n"
    "              last, in row order; stage 0, or no context user with a\n"
    "              factor: popular), feature-popular (every stage, the context\n"
    "              unused but left out: score(u) = sum over u's positives on\n"
    "              train items i of the number of distinct feature values i\n"
    "              shares with the new item, over its categorical and multi\n"
    "              prefix fields, <unk> never shared; most first, ties and\n"
    "              score 0 in popular order)\n"
    "  --split     val (default: tune here) or test (report once)\n"
    "  --gen-dtype with --model: the generator's weights in fp32 (default) or bf16\n"
    "              (weights packed once in bf16, activations rounded to bf16 at each\n"
    "              matmul, fp32 sums; AVX512_BF16 only, fp32 elsewhere, stderr says\n"
    "              which ran; û within 1% of fp32's norm, docs/encodings.md)\n"
    "  --json      also write the numbers to FILE (atomically); each stage also\n"
    "              holds \"per_item\": {\"items\": [item ids], \"recall\": {\"K\":\n"
    "              [Recall@K of each item]}}, whose means are the stage's recall.\n"
    "              The items are those of the split with at least s+1 positives\n"
    "              in data-file order: the same list, in the same order, for\n"
    "              every method on the same data, split and stage, so methods\n"
    "              can be compared item by item (paired bootstrap)\n";

/* Parses "a,b,c" into at most `most` values in [lo, hi]. */
static int parse_list(const char *opt, const char *text, uint64_t lo, uint64_t hi, size_t most,
                      size_t *out, size_t *n)
{
    char buf[256];
    if (strlen(text) >= sizeof buf || !text[0]) {
        fprintf(stderr, "nextuser eval: %s: \"%s\" is not a comma-separated list\n", opt, text);
        return 0;
    }
    strcpy(buf, text);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (*n == most) {
            fprintf(stderr, "nextuser eval: %s: at most %zu values\n", opt, most);
            return 0;
        }
        if (!nu_arg_u64("eval", opt, tok, lo, hi, &v))
            return 0;
        out[(*n)++] = (size_t)v;
    }
    if (*n == 0) {
        fprintf(stderr, "nextuser eval: %s: no values\n", opt);
        return 0;
    }
    return 1;
}

static void print_table(FILE *f, const char *what, const char *split, const nu_eval_result *r)
{
    fprintf(f, "%s on %s items\n%-6s %8s", what, split, "stage", "items");
    for (size_t j = 0; j < r->n_k; j++)
        fprintf(f, "  Recall@%-4zu", r->ks[j]);
    fputc('\n', f);
    for (size_t i = 0; i < r->n_stages; i++) {
        fprintf(f, "%-6zu %8zu", r->stages[i], r->items[i]);
        for (size_t j = 0; j < r->n_k; j++)
            fprintf(f, "  %-11.4f", r->recall[i][j]);
        fputc('\n', f);
    }
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* "per_item" of stage si: item ids in evaluation order, Recall@K of each. */
static void write_per_item(FILE *f, const nu_dataset *ds, const nu_eval_per_item *pi, size_t si,
                           const nu_eval_result *r)
{
    fputs(", \"per_item\": {\"items\": [", f);
    for (size_t q = 0; q < pi->count[si]; q++) {
        if (q)
            fputs(", ", f);
        json_string(f, ds->items.names[pi->item[si][q]]);
    }
    fputs("], \"recall\": {", f);
    for (size_t j = 0; j < r->n_k; j++) {
        fprintf(f, "%s\"%zu\": [", j ? ", " : "", r->ks[j]);
        for (size_t q = 0; q < pi->count[si]; q++)
            fprintf(f, "%s%.10g", q ? ", " : "", pi->recall[si][q * r->n_k + j]);
        fputc(']', f);
    }
    fputs("}}", f);
}

static void write_json(FILE *f, const char *method, const char *split, uint64_t seed,
                       const char *data, const char *model, const nu_eval_result *r,
                       const nu_dataset *ds, const nu_eval_per_item *pi)
{
    /* Paths are written as given, escaped. */
    fprintf(f, "{\"method\": \"%s\", \"split\": \"%s\", \"seed\": %llu, \"data\": ", method, split,
            (unsigned long long)seed);
    json_string(f, data);
    fputs(", \"model\": ", f);
    if (model)
        json_string(f, model);
    else
        fputs("null", f);
    fputs(", \"k\": [", f);
    for (size_t j = 0; j < r->n_k; j++)
        fprintf(f, "%s%zu", j ? ", " : "", r->ks[j]);
    fputs("], \"stages\": [", f);
    for (size_t i = 0; i < r->n_stages; i++) {
        fprintf(f, "%s{\"stage\": %zu, \"items\": %zu, \"recall\": {", i ? ", " : "", r->stages[i],
                r->items[i]);
        for (size_t j = 0; j < r->n_k; j++)
            fprintf(f, "%s\"%zu\": %.6f", j ? ", " : "", r->ks[j], r->recall[i][j]);
        fputc('}', f);
        write_per_item(f, ds, pi, i, r);
        fputc('}', f);
    }
    fputs("]}\n", f);
}

int nu_cmd_eval(int argc, char **argv)
{
    const char *data = NULL, *model_dir = NULL, *baseline = NULL, *json = NULL, *v;
    nu_eval_opts o = {.split = NU_SPLIT_VAL, .n_stages = 5, .stages = {0, 1, 5, 10, 20},
                      .n_k = 2, .ks = {20, 50}};
    int gen_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(eval_help, stdout);
            return NU_EXIT_OK;
        }
        if (!strcmp(a, "--data") || !strcmp(a, "--model") || !strcmp(a, "--baseline") ||
            !strcmp(a, "--json")) {
            if (!(v = nu_arg_value("eval", argc, argv, &i)))
                return NU_EXIT_USAGE;
            *(!strcmp(a, "--data") ? &data : !strcmp(a, "--model") ? &model_dir
                                          : !strcmp(a, "--baseline") ? &baseline : &json) = v;
        } else if (!strcmp(a, "--k")) {
            if (!(v = nu_arg_value("eval", argc, argv, &i)) ||
                !parse_list(a, v, 1, 1000000, NU_EVAL_MAX_K, o.ks, &o.n_k))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--stages")) {
            if (!(v = nu_arg_value("eval", argc, argv, &i)) ||
                !parse_list(a, v, 0, 1000000, NU_EVAL_MAX_STAGES, o.stages, &o.n_stages))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = nu_arg_value("eval", argc, argv, &i)) ||
                !nu_arg_u64("eval", a, v, 0, UINT64_MAX, &o.seed))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = nu_arg_value("eval", argc, argv, &i)) || !nu_arg_int("eval", a, v, 1, 4096, &o.threads))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--gen-dtype")) {
            nu_dtype g;
            if (!(v = nu_arg_value("eval", argc, argv, &i)) || !nu_arg_gen_dtype("eval", a, v, &g))
                return NU_EXIT_USAGE;
            o.gen = g == NU_DTYPE_BF16 ? NU_GEN_BF16 : NU_GEN_FP32;
            gen_given = 1;
        } else if (!strcmp(a, "--split")) {
            if (!(v = nu_arg_value("eval", argc, argv, &i)))
                return NU_EXIT_USAGE;
            if (!strcmp(v, "val"))
                o.split = NU_SPLIT_VAL;
            else if (!strcmp(v, "test"))
                o.split = NU_SPLIT_TEST;
            else
                return nu_cli_usage_error("eval", "--split: \"%s\" is not val or test", v);
        } else
            return nu_cli_usage_error("eval", "unknown option '%s'", a);
    }
    if (!data)
        return nu_cli_usage_error("eval", "--data is required");
    o.method = NU_EVAL_MODEL;
    if (baseline && (!nu_eval_method_parse(baseline, &o.method) || o.method == NU_EVAL_MODEL))
        return nu_cli_usage_error("eval", "--baseline: \"%s\" is not random, popular, lookalike-emb, "
                                  "lookalike-cf, lookalike-mf or feature-popular", baseline);
    if (!baseline && !model_dir)
        return nu_cli_usage_error("eval", "--model or --baseline is required");
    if (o.method == NU_EVAL_LOOKALIKE_EMB && !model_dir)
        return nu_cli_usage_error("eval", "--baseline lookalike-emb needs --model (its user table)");
    if (gen_given && o.method != NU_EVAL_MODEL)
        return nu_cli_usage_error("eval", "--gen-dtype applies to --model only (--baseline %s "
                                  "runs no generator)", baseline);
    if (model_dir && o.method != NU_EVAL_MODEL && o.method != NU_EVAL_LOOKALIKE_EMB)
        fprintf(stderr, "nextuser eval: --model is not used by --baseline %s\n", baseline);
    if (nu_init() != NU_OK)
        return nu_cli_fail("eval");
    nu_dataset ds;
    if (nu_dataset_load(data, &ds) != NU_OK)
        return nu_cli_fail("eval");
    nu_model *m = NULL;
    int rc = NU_EXIT_OK;
    nu_eval_result r;
    nu_eval_per_item pi = {0};
    const char *split = o.split == NU_SPLIT_TEST ? "test" : "val";
    if (model_dir && (o.method == NU_EVAL_MODEL || o.method == NU_EVAL_LOOKALIKE_EMB)) {
        if (nu_model_load(model_dir, &m) != NU_OK) {
            rc = nu_cli_fail("eval");
            goto done;
        }
        o.model = m;
    }
    if (nu_eval_run_per_item(&ds, &o, &r, json ? &pi : NULL) != NU_OK) {
        rc = nu_cli_fail("eval");
        goto done;
    }
    const char *what = nu_eval_method_name(o.method);
    if (gen_given) {
        char gen_text[96];
        nu_dtype asked = o.gen == NU_GEN_BF16 ? NU_DTYPE_BF16 : NU_DTYPE_FP32;
        fprintf(stderr, "nextuser eval: generator %s\n",
                nu_arg_gen_summary(asked, nu_gen_dtype_effective(asked), gen_text, sizeof gen_text));
    }
    print_table(stdout, what, split, &r);
    if (json) {
        nu_atomic_file af = {0};
        if (nu_atomic_open(json, &af) != NU_OK) {
            rc = nu_cli_fail("eval");
            goto done;
        }
        write_json(af.fp, what, split, o.seed, data, m ? model_dir : NULL, &r, &ds, &pi);
        if (nu_atomic_commit(&af) != NU_OK)
            rc = nu_cli_fail("eval");
    }
done:
    nu_eval_per_item_free(&pi);
    if (m)
        nu_model_free(m);
    nu_dataset_free(&ds);
    return rc;
}
