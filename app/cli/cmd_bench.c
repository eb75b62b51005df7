/* nextuser bench: the end-to-end workloads (infer, retrieve, train, serve)
 * with the machine's own FMA peak and read bandwidth measured at the start;
 * a table on stdout, Google Benchmark JSON with --json (docs/bench.md). */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "bench/bench.h"
#include "bench/shapes.h"
#include "bench/stats.h"
#include "bench/user_model.h"
#include "cli.h"
#include "table_residency.h"
#include "error.h"
#include "io/atomic_file.h"

static const char help[] =
    "usage: nextuser bench [--suite LIST] [--shape base|large] [--threads LIST] [--quick]\n"
    "                      [--json FILE] [options]\n"
    "       nextuser bench --model DIR [--items FILE] [--suite LIST] [--json FILE] [options]\n"
    "\n"
    "Measures this machine's FMA peak and streaming-read bandwidth (per thread\n"
    "count, with the best ISA the CPU has, whatever NU_ISA says), then runs the\n"
    "workloads with a warm-up and repetitions and reports medians, p50/p99 batch\n"
    "latency, items/s or queries/s, GFLOP/s, GB/s and the fraction of the\n"
    "measured peak.  Workloads, scenarios and the JSON are described in\n"
    "docs/bench.md.  A progress line goes to stderr.\n"
    "\n"
    "  --suite LIST        infer, retrieve, serve, train or all, comma-separated [all]\n"
    "  --shape S           base (d 64, h 4, Le 2, Ld 1) or large (d 128, h 8, Le 4, Ld 2) [base]\n"
    "  --threads LIST      thread counts, e.g. 1,2 [1,2, capped at the cores]\n"
    "  --quick             short runs (CI, about a minute on 2 cores): fewer repetitions,\n"
    "                      infer B 1,64, retrieve U 100k, serve U 100k, 0.5 s per rate\n"
    "  --json FILE         write the results (Google Benchmark JSON), atomically\n"
    "  --reps R            timed repetitions after one warm-up [5; quick 3]\n"
    "  --rep-seconds S     target length of one repetition [0.4; quick 0.2]\n"
    "  --seed S            seed of models, items, tables and arrivals [1]\n"
    "your own model (infer, retrieve and serve; names say 'model' where a shape goes):\n"
    "  --model DIR         a trained model directory: its weights, its users and its\n"
    "                      user_table.safetensors (built in memory when absent or stale)\n"
    "  --items FILE        your items (JSON lines, as nextuser retrieve --items): their\n"
    "                      context lengths and features, repeated in file order to fill\n"
    "                      the pools.  Without it: 4096 synthesised items, each a full\n"
    "                      window of max_users random users (the slowest case)\n"
    "  --table auto|map|copy  the table file copied into 2 MiB pages when it takes at\n"
    "                      most half the available memory, else mapped (as nextuser\n"
    "                      retrieve) [auto]; or always mapped, or always copied\n"
    "                      --dtypes defaults to the encodings the table file holds (fp32\n"
    "                      without one); --users, --serve-users and --shape do not apply\n"
    "infer:\n"
    "  --infer-batches L   batch sizes [1,64,1024; quick 1,64]\n"
    "  --gen-dtypes LIST   generator encodings, fp32 and/or bf16 [fp32], of the infer and\n"
    "                      serve rows; bf16 rows are named infer/SHAPE/B<b>/gen:bf16/...\n"
    "                      and serve/SHAPE/DTYPE/U<u>/gen:bf16/..., and are skipped,\n"
    "                      saying so, on a CPU without AVX512_BF16 (docs/encodings.md)\n"
    "retrieve:\n"
    "  --users LIST        user table sizes (k and M suffixes) [100k,1M; quick 100k]\n"
    "  --retrieve-batches L query batch sizes [1,16,256]\n"
    "  --dtypes LIST       fp32, bf16, int8 [all three]\n"
    "  --k K               results per query [100]\n"
    "  --pool P            bf16/int8 candidates re-ranked in exact fp32 [max(4K, 256)]\n"
    "train:\n"
    "  --train-steps S     timed steps after 2 warm-up steps [8; quick 3]\n"
    "  --train-batch B     items per step [256]\n"
    "  --negatives M       shared random negatives per step [1024]\n"
    "serve (generator + retrieval end to end):\n"
    "  --serve-users U     users in the table [1M; quick 100k]\n"
    "  --serve-dtype LIST  table encodings scanned, each a set of scenarios [fp32]\n"
    "  --batch B           offline scenario: items per batch [64]\n"
    "  --max-batch B       server scenario: largest batch the dispatcher forms [32]\n"
    "  --max-wait-ms W     server scenario: longest the oldest item waits for a batch [5]\n"
    "  --p99-ms L          latency bound of server_max [50]\n"
    "  --rate-seconds S    arrivals per offered rate [2; quick 0.5]\n"
    "\n"
    "Exit status: 0 done, 1 a workload or the JSON file failed, 2 bad usage\n"
    "(unknown option, suite, shape or dtype, bad list, NU_ISA the CPU lacks).\n";

/* Comma-separated whole numbers in [lo, hi], with k (1e3) and M (1e6)
 * suffixes; no duplicates.  Returns the count, or -1 after a message. */
static int parse_list(const char *opt, const char *text, size_t lo, size_t hi, size_t *out, int cap)
{
    int n = 0;
    const char *p = text;
    if (!*p)
        goto bad;
    for (;;) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9')
            goto bad;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p)
            goto bad;
        if (*end == 'k' || *end == 'K')
            v *= 1000ull, end++;
        else if (*end == 'M' || *end == 'm')
            v *= 1000000ull, end++;
        if (v < lo || v > hi || n == cap)
            goto bad;
        for (int i = 0; i < n; i++)
            if (out[i] == (size_t)v)
                goto bad;
        out[n++] = (size_t)v;
        if (*end == 0)
            return n;
        if (*end != ',')
            goto bad;
        p = end + 1;
    }
bad:
    fprintf(stderr,
            "nextuser bench: %s: \"%s\" is not a list of distinct whole numbers in [%zu, %zu] "
            "(at most %d, e.g. 1,2)\n",
            opt, text, lo, hi, cap);
    return -1;
}

static int parse_suites(const char *text, nu_bench_config *c, int *train_named)
{
    c->run_infer = c->run_retrieve = c->run_train = c->run_serve = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    int any = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        any = 1;
        if (!strcmp(tok, "all"))
            c->run_infer = c->run_retrieve = c->run_train = c->run_serve = 1;
        else if (!strcmp(tok, "infer"))
            c->run_infer = 1;
        else if (!strcmp(tok, "retrieve"))
            c->run_retrieve = 1;
        else if (!strcmp(tok, "train"))
            c->run_train = *train_named = 1;
        else if (!strcmp(tok, "serve"))
            c->run_serve = 1;
        else
            return nu_cli_usage_error("bench",
                                      "unknown suite '%s' (infer, retrieve, serve, train or all)", tok),
                   0;
    }
    if (!any)
        return nu_cli_usage_error("bench", "--suite needs a value"), 0;
    return 1;
}

/* A comma-separated list of names, each once, at most `max`: parse_one maps
 * a name to its value (0: it printed the usage error). */
static int parse_unique_list(const char *opt, const char *text, int max, const char *what,
                             int (*parse_one)(const char *opt, const char *tok, int *value),
                             int *values, int *n_values)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    int n = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v;
        if (!parse_one(opt, tok, &v))
            return 0;
        for (int i = 0; i < n; i++)
            if (values[i] == v)
                return nu_cli_usage_error("bench", "%s: '%s' given twice", opt, tok), 0;
        if (n == max)
            return nu_cli_usage_error("bench", "%s: at most %d values", opt, max), 0;
        values[n++] = v;
    }
    if (n == 0)
        return nu_cli_usage_error("bench", "%s needs %s", opt, what), 0;
    *n_values = n;
    return 1;
}

static int table_dtype_one(const char *opt, const char *tok, int *value)
{
    nu_table_dtype d;
    if (!nu_table_dtype_parse(tok, &d))
        return nu_cli_usage_error("bench", "%s: unknown dtype '%s' (fp32, bf16 or int8)", opt, tok),
               0;
    *value = (int)d;
    return 1;
}

static int gen_dtype_one(const char *opt, const char *tok, int *value)
{
    nu_dtype d;
    if (!nu_arg_gen_dtype("bench", opt, tok, &d))
        return 0;
    *value = d == NU_DTYPE_BF16 ? (int)NU_GEN_BF16 : (int)NU_GEN_FP32;
    return 1;
}

/* Table encodings (--dtypes, --serve-dtype): fp32, bf16, int8, each once. */
static int parse_dtypes(const char *opt, const char *text, nu_table_dtype *dtypes, int *n_dtypes)
{
    int v[3], n = 0;
    if (!parse_unique_list(opt, text, 3, "fp32, bf16 or int8", table_dtype_one, v, &n))
        return 0;
    for (int i = 0; i < n; i++)
        dtypes[i] = (nu_table_dtype)v[i];
    *n_dtypes = n;
    return 1;
}

/* --gen-dtypes: fp32 and/or bf16, each once. */
static int parse_gen_dtypes(const char *text, nu_gen_encoding *gens, int *n_gens)
{
    int v[2], n = 0;
    if (!parse_unique_list("--gen-dtypes", text, 2, "fp32 and/or bf16", gen_dtype_one, v, &n))
        return 0;
    for (int i = 0; i < n; i++)
        gens[i] = (nu_gen_encoding)v[i];
    *n_gens = n;
    return 1;
}

/* "nextuser bench ARGS..." for the JSON context. */
static char *command_line(int argc, char **argv)
{
    size_t len = 16;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 3;
    char *s = malloc(len);
    if (!s)
        return NULL;
    strcpy(s, "nextuser");
    for (int i = 0; i < argc; i++) {
        strcat(s, " ");
        int quote = strchr(argv[i], ' ') != NULL || !argv[i][0];
        if (quote)
            strcat(s, "'");
        strcat(s, argv[i]);
        if (quote)
            strcat(s, "'");
    }
    return s;
}

/* Checks early that the JSON can be written, so a long run does not end
 * in an error. */
static int json_writable(const char *path)
{
    nu_atomic_file af;
    if (nu_atomic_open(path, &af) != NU_OK)
        return 0;
    nu_atomic_abort(&af);
    return 1;
}

/* --model: the model, its table with the encodings the run scans, and the
 * items repeated to fill the infer and serve pools. */
static nu_status load_user(nu_bench_config *c, const char *dir, const char *items, int table_copy,
                           int dtypes_given, nu_bench_user_model *u)
{
    nu_bench_user_request q = {.dir = dir, .items_path = items, .table_copy = table_copy,
                               .threads = nu_bench_max_threads(c), .seed = c->seed};
    /* As many items as the synthetic runs cycle through, at least. */
    q.pool_min = nu_bench_infer_pool(c);
    if (q.pool_min < 2 * c->serve_batch)
        q.pool_min = 2 * c->serve_batch;
    if (c->run_retrieve) {
        q.queries = nu_bench_retrieve_queries(c);
        if (dtypes_given)
            for (int i = 0; i < c->n_dtypes; i++)
                q.dtypes |= NU_DTYPE_BIT(c->dtypes[i]);
        else
            q.file_dtypes = 1;
    }
    if (c->run_serve)
        for (int i = 0; i < c->n_serve_dtypes; i++)
            q.dtypes |= NU_DTYPE_BIT(c->serve_dtypes[i]);
    nu_bench_progress("loading the model %s%s%s", dir, items ? " and the items " : "", items ? items : "");
    nu_status s = nu_bench_user_load(&q, u);
    if (s != NU_OK)
        return s;
    if (c->run_retrieve && !dtypes_given) { /* the encodings its table file holds */
        c->n_dtypes = 0;
        for (int d = NU_TABLE_F32; d <= NU_TABLE_I8; d++)
            if (u->table_dtypes & NU_DTYPE_BIT(d))
                c->dtypes[c->n_dtypes++] = (nu_table_dtype)d;
    }
    return NU_OK;
}

static void print_user(const nu_bench_user_model *u)
{
    printf("model %s: %zu users, d %zu, table %s; items %s: %zu, users per item mean %.1f "
           "(min %zu, median %zu, max %zu)\n",
           u->dir, nu_model_num_users(u->model), nu_model_dim(u->model),
           u->table_copied ? "copied" : u->table_from_file ? "mapped" : "built in memory",
           u->items_path ? u->items_path : "synthesised", u->items, u->users_mean, u->users_min,
           u->users_p50, u->users_max);
    if (u->unknown_users || u->unknown_values)
        printf("  (the items named %zu users and %zu feature values the model does not know)\n",
               u->unknown_users, u->unknown_values);
}

int nu_cmd_bench(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return NU_EXIT_OK;
        }
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
    }
    nu_bench_config c;
    nu_bench_config_defaults(&c, quick);
    int cores = omp_get_num_procs();
    if (cores < 2)
        c.n_threads = 1;
    const char *json = NULL, *v, *model_dir = NULL, *items_path = NULL;
    int train_named = 0, table_copy = NU_TABLE_AUTO, dtypes_given = 0;
    const char *synthetic_only = NULL; /* an option of the synthetic models only */
    size_t list[NU_BENCH_MAX_LIST];
    int n;
    uint64_t u;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quick"))
            continue;
        if (!strcmp(a, "--suite")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !parse_suites(v, &c, &train_named))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--shape")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)))
                return NU_EXIT_USAGE;
            if (!nu_bench_shape_known(v))
                return nu_cli_usage_error("bench", "unknown shape '%s' (base or large)", v);
            c.shape = v;
            synthetic_only = a;
        } else if (!strcmp(a, "--model")) {
            if (!(model_dir = nu_arg_value("bench", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--items")) {
            if (!(items_path = nu_arg_value("bench", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--table")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)))
                return NU_EXIT_USAGE;
            if (strcmp(v, "map") && strcmp(v, "copy") && strcmp(v, "auto"))
                return nu_cli_usage_error("bench", "--table: '%s' is not auto, map or copy", v);
            table_copy = !strcmp(v, "auto") ? NU_TABLE_AUTO : !strcmp(v, "copy") ? NU_TABLE_COPY
                                                                                 : NU_TABLE_MAP;
        } else if (!strcmp(a, "--threads")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                (n = parse_list(a, v, 1, 1024, list, NU_BENCH_MAX_LIST)) < 0)
                return NU_EXIT_USAGE;
            for (int k = 0; k < n; k++)
                c.threads[k] = (int)list[k];
            c.n_threads = n;
        } else if (!strcmp(a, "--json")) {
            if (!(json = nu_arg_value("bench", argc, argv, &i)))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--reps")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_int("bench", a, v, 1, 1000, &c.reps))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--rep-seconds")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                !nu_arg_double("bench", a, v, 0.001, 600, &c.rep_seconds))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--seed")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 0, 1ull << 48, &u))
                return NU_EXIT_USAGE;
            c.seed = u;
        } else if (!strcmp(a, "--infer-batches")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                (n = parse_list(a, v, 1, 65536, c.infer_batches, NU_BENCH_MAX_LIST)) < 0)
                return NU_EXIT_USAGE;
            c.n_infer_batches = n;
        } else if (!strcmp(a, "--gen-dtypes")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                !parse_gen_dtypes(v, c.gen_dtypes, &c.n_gen_dtypes))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--users")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                (n = parse_list(a, v, 1, 0xfffffffeu, c.users, NU_BENCH_MAX_LIST)) < 0)
                return NU_EXIT_USAGE;
            c.n_users = n;
            synthetic_only = a;
        } else if (!strcmp(a, "--retrieve-batches")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                (n = parse_list(a, v, 1, 65536, c.retrieve_batches, NU_BENCH_MAX_LIST)) < 0)
                return NU_EXIT_USAGE;
            c.n_retrieve_batches = n;
        } else if (!strcmp(a, "--dtypes")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !parse_dtypes("--dtypes", v, c.dtypes, &c.n_dtypes))
                return NU_EXIT_USAGE;
            dtypes_given = 1;
        } else if (!strcmp(a, "--k")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 1, 10000, &u))
                return NU_EXIT_USAGE;
            c.k = u;
        } else if (!strcmp(a, "--pool")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 1, 100000, &u))
                return NU_EXIT_USAGE;
            c.pool = u;
        } else if (!strcmp(a, "--train-steps")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 2, 100000, &u))
                return NU_EXIT_USAGE;
            c.train_steps = u;
        } else if (!strcmp(a, "--train-batch")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 1, 65536, &u))
                return NU_EXIT_USAGE;
            c.train_batch = u;
        } else if (!strcmp(a, "--negatives")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 1, 1u << 20, &u))
                return NU_EXIT_USAGE;
            c.train_negatives = u;
        } else if (!strcmp(a, "--serve-users")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || (n = parse_list(a, v, 1, 0xfffffffeu, list, 1)) < 0)
                return NU_EXIT_USAGE;
            c.serve_users = list[0];
            synthetic_only = a;
        } else if (!strcmp(a, "--serve-dtype")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                !parse_dtypes("--serve-dtype", v, c.serve_dtypes, &c.n_serve_dtypes))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--batch")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 1, 4096, &u))
                return NU_EXIT_USAGE;
            c.serve_batch = u;
        } else if (!strcmp(a, "--max-batch")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_u64("bench", a, v, 1, 4096, &u))
                return NU_EXIT_USAGE;
            c.max_batch = u;
        } else if (!strcmp(a, "--max-wait-ms")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                !nu_arg_double("bench", a, v, 0, 10000, &c.max_wait_ms))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--p99-ms")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) || !nu_arg_double("bench", a, v, 0.001, 1e6, &c.p99_ms))
                return NU_EXIT_USAGE;
        } else if (!strcmp(a, "--rate-seconds")) {
            if (!(v = nu_arg_value("bench", argc, argv, &i)) ||
                !nu_arg_double("bench", a, v, 0.05, 600, &c.rate_seconds))
                return NU_EXIT_USAGE;
        } else {
            return nu_cli_usage_error("bench", "unknown option '%s'", a);
        }
    }
    if (c.serve_batch > SIZE_MAX / 2 || c.serve_users > 0xfffffffeu)
        return nu_cli_usage_error("bench", "serve sizes out of range");
    if (items_path && !model_dir)
        return nu_cli_usage_error("bench", "--items needs --model (the items are a model's)");
    if (model_dir) {
        if (synthetic_only)
            return nu_cli_usage_error("bench", "%s does not apply with --model (the model is its own "
                                      "shape, its table its own users)", synthetic_only);
        if (train_named)
            return nu_cli_usage_error("bench", "--model runs infer, retrieve and serve; train "
                                      "benchmarks the synthetic shapes");
        c.run_train = 0;
        c.shape = NU_BENCH_USER_SHAPE;
    }
    if (nu_init() != NU_OK)
        return nu_cli_fail("bench");
    if (json && !json_writable(json)) {
        fprintf(stderr, "nextuser bench: --json %s: cannot write there: %s\n", json, nu_last_error());
        return NU_EXIT_FAIL;
    }
    for (int i = 0; i < c.n_threads; i++)
        if (c.threads[i] > cores)
            fprintf(stderr, "nextuser bench: warning: %d threads on %d cores (oversubscribed)\n",
                    c.threads[i], cores);

    double t0 = nu_bench_now();
    nu_bench_user_model user;
    if (model_dir) {
        if (load_user(&c, model_dir, items_path, table_copy, dtypes_given, &user) != NU_OK)
            return nu_cli_fail("bench");
        c.user = &user;
    }
    nu_bench_results res = {0};
    nu_bench_peaks peaks;
    nu_status s = nu_bench_measure_peaks(&c, &peaks, &res);
    if (s == NU_OK && c.run_infer)
        s = nu_bench_infer(&c, &peaks, &res);
    if (s == NU_OK && c.run_retrieve)
        s = nu_bench_retrieve(&c, &peaks, &res);
    if (s == NU_OK && c.run_train)
        s = nu_bench_train(&c, &peaks, &res);
    if (s == NU_OK && c.run_serve)
        s = nu_bench_serve(&c, &peaks, &res);
    if (s == NU_OK)
        s = nu_bench_remeasure_peaks(&c, &peaks);
    if (s == NU_OK)
        nu_bench_apply_peaks(&c, &peaks, &res);
    nu_bench_progress("done in %.1f s", nu_bench_now() - t0);
    nu_bench_progress_done();
    int rc = NU_EXIT_OK;
    if (s != NU_OK) {
        rc = nu_cli_fail("bench");
    } else {
        printf("nextuser bench: isa %s, shape %s%s; peak measured with %s (FMA) and %s (read)\n",
               nu_isa_active(), c.shape, c.quick ? ", quick" : "", peaks.fma_isa ? peaks.fma_isa : "?",
               peaks.read_isa ? peaks.read_isa : "?");
        if (c.user)
            print_user(&user);
        nu_bench_print_table(stdout, &res);
        char *cmd = command_line(argc, argv);
        if (json && (s = nu_bench_write_json(json, &c, &peaks, &res, cmd ? cmd : "nextuser bench")) != NU_OK)
            rc = nu_cli_fail("bench");
        else if (json)
            fprintf(stderr, "nextuser bench: wrote %s (%zu results) in %.1f s\n", json, res.n,
                    nu_bench_now() - t0);
        free(cmd);
    }
    nu_bench_results_free(&res);
    if (c.user)
        nu_bench_user_free(&user);
    return rc;
}
