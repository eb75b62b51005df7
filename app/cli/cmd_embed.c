/* nextuser embed: û_next (or every decoder position) for a file of items. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "io/atomic_file.h"
#include "progress.h"

static const char *const embed_help =
    "usage: nextuser embed --model DIR --items ITEMS.jsonl --out FILE\n"
    "                      [--threads T] [--batch B] [--all-positions | --query]\n"
    "                      [--gen-dtype fp32|bf16]\n\n"
    "Runs the generator over every item of ITEMS.jsonl (one JSON object per\n"
    "line: {\"id\": ..., \"features\": {field: value}, \"users\": [oldest, ..., newest]};\n"
    "see docs/model-format.md) and writes, per item in input order, a line\n"
    "\"ID<TAB>v1 v2 ... vd\" with û_next.  With --all-positions it writes every\n"
    "decoder position j = 1..n+1 (training mode) as \"ID<TAB>j<TAB>values\".\n"
    "With --query each line is the search query 'nextuser search' takes: û_next,\n"
    "then, when the model weighs a feature prior, one 0/1 per feature-prior\n"
    "column (1: the item holds that column's value; docs/model-format.md).\n\n"
    "Input handling: unknown user ids are skipped, more than max_users users keep\n"
    "the most recent, unknown feature values map to <unk>; each is counted and\n"
    "reported on stderr.  A malformed line, or a feature the model does not have,\n"
    "stops the run with an error naming the line; no output file is written.\n\n"
    "  --threads T   OpenMP threads (default: one per core)\n"
    "  --batch B     items per batch (default 64)\n"
    NU_ARG_GEN_DTYPE_HELP
    "The output file is written atomically.\n";

static int write_output(const char *path, const nu_batch *items, const float *out, size_t d,
                        int all_positions)
{
    nu_atomic_file af;
    if (nu_atomic_open(path, &af) != NU_OK)
        return 0;
    size_t row = 0, count = nu_batch_count(items);
    for (size_t i = 0; i < count; i++) {
        size_t nq = all_positions ? nu_batch_item_users(items, i) + 1 : 1;
        for (size_t q = 0; q < nq; q++, row++) {
            fputs(nu_batch_item_id(items, i), af.fp);
            if (all_positions)
                fprintf(af.fp, "\t%zu", q + 1);
            fputc('\t', af.fp);
            for (size_t j = 0; j < d; j++)
                fprintf(af.fp, j ? " %.9g" : "%.9g", (double)out[row * d + j]);
            fputc('\n', af.fp);
        }
    }
    if (ferror(af.fp)) {
        nu_atomic_abort(&af);
        return 0;
    }
    return nu_atomic_commit(&af) == NU_OK;
}

int nu_cmd_embed(int argc, char **argv)
{
    const char *model_dir = NULL, *items_path = NULL, *out_path = NULL, *v;
    int threads = 0, all_positions = 0, query = 0;
    uint64_t batch = 64;
    nu_dtype gen = NU_DTYPE_FP32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(embed_help, stdout);
            return NU_EXIT_OK;
        } else if (!strcmp(a, "--model")) {
            if (!(model_dir = nu_arg_value("embed", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--items")) {
            if (!(items_path = nu_arg_value("embed", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--out")) {
            if (!(out_path = nu_arg_value("embed", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = nu_arg_value("embed", argc, argv, &i)) ||
                !nu_arg_int("embed", a, v, 1, 4096, &threads))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = nu_arg_value("embed", argc, argv, &i)) ||
                !nu_arg_u64("embed", a, v, 1, 1 << 20, &batch))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--gen-dtype")) {
            if (!(v = nu_arg_value("embed", argc, argv, &i)) ||
                !nu_arg_gen_dtype("embed", a, v, &gen))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--all-positions")) {
            all_positions = 1;
        } else if (!strcmp(a, "--query")) {
            query = 1;
        } else
            return nu_cli_usage_error("embed", "unknown option '%s'", a);
    }
    if (!model_dir || !items_path || !out_path)
        return nu_cli_usage_error("embed", "--model, --items and --out are required");
    if (query && all_positions)
        return nu_cli_usage_error("embed", "--query and --all-positions do not go together");
    if (nu_init() != NU_OK)
        return nu_cli_fail("embed");
    nu_model *m;
    if (nu_model_load(model_dir, &m) != NU_OK)
        return nu_cli_fail("embed");
    nu_batch *items = NULL;
    int rc = NU_EXIT_OK;
    float *out = NULL;
    if (nu_batch_create(m, &items) != NU_OK || nu_batch_read_jsonl(items, items_path) != NU_OK) {
        rc = nu_cli_fail("embed");
        goto done;
    }
    nu_cli_report_items("embed", items, nu_model_max_users(m));
    nu_embed_options opt;
    nu_embed_options_init(&opt);
    opt.kind = all_positions ? NU_EMBED_ALL_POSITIONS : query ? NU_EMBED_QUERY : NU_EMBED_NEXT;
    opt.threads = threads;
    opt.pin = 1; /* the CLI owns its process */
    opt.batch = (size_t)batch;
    opt.gen_dtype = gen;
    opt.progress = nu_progress_update;
    size_t rows = nu_embed_rows(items, opt.kind);
    size_t width = nu_embed_width(m, opt.kind);
    out = malloc((rows ? rows : 1) * width * sizeof(float));
    if (!out) {
        fprintf(stderr, "nextuser embed: out of memory for %zu output rows\n", rows);
        rc = NU_EXIT_FAIL;
        goto done;
    }
    nu_progress prog;
    nu_progress_start(&prog, "embed", "items");
    opt.progress_ctx = &prog;
    nu_run_report stats = {.size = sizeof stats};
    nu_status s = nu_embed(m, items, &opt, out, &stats);
    nu_progress_finish(&prog);
    if (s != NU_OK) {
        rc = nu_cli_fail("embed");
        goto done;
    }
    if (!write_output(out_path, items, out, width, all_positions)) {
        fprintf(stderr, "nextuser embed: %s: cannot write: %s\n", out_path,
                nu_last_error()[0] ? nu_last_error() : strerror(errno));
        rc = NU_EXIT_FAIL;
    } else {
        size_t count = nu_batch_count(items);
        char gen_text[96];
        fprintf(stderr, "nextuser embed: %zu items in %.3f s (%.0f items/s) on %d thread(s), "
                        "%d NUMA node(s), isa %s, generator %s\n",
                count, stats.seconds, stats.seconds > 0 ? (double)count / stats.seconds : 0.0,
                stats.threads, stats.nodes, nu_isa_active(),
                nu_arg_gen_summary(gen, stats.gen_dtype, gen_text, sizeof gen_text));
    }
done:
    free(out);
    nu_batch_free(items);
    nu_model_free(m);
    return rc;
}
