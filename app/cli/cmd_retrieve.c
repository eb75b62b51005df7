/* nextuser retrieve: generator + scoring end to end for a file of items;
 * nextuser search: top-K users for query vectors (embed's output). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "error.h"
#include "io/atomic_file.h"
#include "progress.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values. */
static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[r ? r - 1 : 0];
}

typedef struct common_opts {
    int resident; /* --table copy: private copy instead of the mapping */
    const char *model_dir, *out;
    uint64_t k;
    nu_dtype dtype;
    int threads;
    uint64_t batch, pool;
} common_opts;

/* Parses an option shared by retrieve and search; returns 1 if taken, 0 if
 * not ours, -1 on error. */
static int common_option(const char *cmd, int argc, char **argv, int *i, common_opts *o)
{
    const char *a = argv[*i], *v;
    if (!strcmp(a, "--model"))
        return (o->model_dir = nu_arg_value(cmd, argc, argv, i)) ? 1 : -1;
    if (!strcmp(a, "--out"))
        return (o->out = nu_arg_value(cmd, argc, argv, i)) ? 1 : -1;
    if (!strcmp(a, "--k"))
        return (v = nu_arg_value(cmd, argc, argv, i)) && nu_arg_u64(cmd, a, v, 1, 100000, &o->k) ? 1 : -1;
    if (!strcmp(a, "--pool"))
        return (v = nu_arg_value(cmd, argc, argv, i)) && nu_arg_u64(cmd, a, v, 1, 1000000, &o->pool) ? 1 : -1;
    if (!strcmp(a, "--threads"))
        return (v = nu_arg_value(cmd, argc, argv, i)) && nu_arg_int(cmd, a, v, 1, 4096, &o->threads) ? 1 : -1;
    if (!strcmp(a, "--batch"))
        return (v = nu_arg_value(cmd, argc, argv, i)) && nu_arg_u64(cmd, a, v, 1, 1 << 20, &o->batch) ? 1 : -1;
    if (!strcmp(a, "--table")) {
        if (!(v = nu_arg_value(cmd, argc, argv, i)))
            return -1;
        if (!strcmp(v, "map") || !strcmp(v, "copy")) {
            o->resident = !strcmp(v, "copy");
            return 1;
        }
        fprintf(stderr, "nextuser %s: --table: \"%s\" is not map or copy\n", cmd, v);
        return -1;
    }
    if (!strcmp(a, "--dtype")) {
        if (!(v = nu_arg_value(cmd, argc, argv, i)))
            return -1;
        if (nu_dtype_parse(v, &o->dtype) == NU_OK)
            return 1;
        fprintf(stderr, "nextuser %s: --dtype: \"%s\" is not fp32, bf16 or int8\n", cmd, v);
        return -1;
    }
    return 0;
}

static int write_rows(FILE *f, const char *item, const uint32_t *ids, const float *sc, size_t k,
                      const nu_model *m)
{
    for (size_t j = 0; j < k && ids[j] != UINT32_MAX; j++)
        if (fprintf(f, "%s,%zu,%s,%.7g\n", item, j + 1, nu_model_user_id(m, ids[j]),
                    (double)sc[j]) < 0)
            return 0;
    return 1;
}

/* Where the scanned table came from, for the summary line. */
static const char *table_origin(const nu_table *t)
{
    switch (nu_table_source(t)) {
    case NU_TABLE_MAPPED:
        return "memory-mapped";
    case NU_TABLE_COPIED:
        return "copied from its file";
    default:
        return "built in memory";
    }
}

/* The engine of retrieve and search.  The CLI owns its process: it pins its
 * threads (a library caller's are never pinned unless it asks). */
static nu_status open_engine(const nu_model *m, nu_table *t, const common_opts *o, size_t B,
                             nu_engine **e, nu_session **ses)
{
    nu_engine_options eo;
    nu_engine_options_init(&eo);
    eo.threads = o->threads;
    eo.max_batch = B;
    eo.k = (size_t)o->k;
    eo.dtype = o->dtype;
    eo.pool = (size_t)o->pool;
    eo.pin = 1;
    nu_status s = nu_engine_create(m, t, &eo, e);
    return s == NU_OK ? nu_session_create(*e, ses) : s;
}

static void warn_k(const char *cmd, size_t k, size_t rows)
{
    if (k > rows)
        fprintf(stderr, "nextuser %s: --k %zu exceeds the %zu users: each item gets at most %zu "
                        "users (fewer after exclusions)\n",
                cmd, k, rows, rows);
}

/* The command line of retrieve and search: the common options plus one
 * input file (`input`, e.g. "--items").  Returns -1 when the command should
 * run, else its exit code (--help, or a usage error). */
static int parse_command(const char *cmd, const char *help, const char *input, const char **path,
                         int argc, char **argv, common_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return NU_EXIT_OK;
        }
        int r = common_option(cmd, argc, argv, &i, o);
        if (r < 0)
            return NU_EXIT_USAGE;
        if (r > 0)
            continue;
        if (strcmp(a, input) != 0)
            return nu_cli_usage_error(cmd, "unknown option '%s'", a);
        if (!(*path = nu_arg_value(cmd, argc, argv, &i)))
            return NU_EXIT_USAGE;
    }
    if (!o->model_dir || !*path || !o->out)
        return nu_cli_usage_error(cmd, "--model, %s and --out are required", input);
    return -1;
}

static const char *const retrieve_help =
    "usage: nextuser retrieve --model DIR --items ITEMS.jsonl --out TOPK.csv [--k K]\n"
    "                         [--dtype fp32|bf16|int8] [--threads T] [--batch B] [--pool P]\n\n"
    "For each new item of ITEMS.jsonl (the format of 'nextuser embed'), generates\n"
    "the next-user embedding and scores every user of the model by cosine\n"
    "similarity, leaving out the users already in the item's history, and writes\n"
    "the top K (default 100) as CSV lines item,rank,user,score (with a header).\n\n"
    "  --dtype   user table encoding scanned: fp32 (exact, default), bf16 or int8;\n"
    "            bf16/int8 scan a pool of candidates (--pool, default max(4K, 256))\n"
    "            and re-rank it in exact fp32.  DIR/user_table.safetensors (from\n"
    "            'nextuser table') is memory-mapped when present, else the table\n"
    "            is built in memory.\n"
    "  --table   map (default: share the page cache, nothing copied) or copy (a\n"
    "            private copy in 2 MiB pages: faster scans for long-running use)\n"
    "  --batch   items per batch (default 256): the unit of the latency figures\n"
    "  --threads threads (default: one per core)\n"
    "A progress bar goes to stderr on a terminal; a summary (items/s, p50 and p99\n"
    "batch latency) at the end.  The output is written atomically.\n";

int nu_cmd_retrieve(int argc, char **argv)
{
    common_opts o = {.k = 100, .batch = 256};
    const char *items_path = NULL;
    int parsed = parse_command("retrieve", retrieve_help, "--items", &items_path, argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    if (nu_init() != NU_OK)
        return nu_cli_fail("retrieve");
    nu_model *m;
    if (nu_model_load(o.model_dir, &m) != NU_OK)
        return nu_cli_fail("retrieve");
    int rc = NU_EXIT_OK;
    nu_batch *items = NULL;
    nu_table *table = NULL;
    nu_engine *eng = NULL;
    nu_session *ses = NULL;
    float *scores = NULL;
    uint32_t *ids = NULL;
    double *lat = NULL;
    nu_atomic_file af = {0};
    if (nu_batch_create(m, &items) != NU_OK || nu_batch_read_jsonl(items, items_path) != NU_OK ||
        nu_table_open(m, o.model_dir, o.dtype, &table) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    nu_cli_report_items("retrieve", items, nu_model_max_users(m));
    if (o.resident && nu_table_make_resident(table) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    warn_k("retrieve", o.k, nu_table_rows(table));
    nu_table_place(table, o.threads);
    size_t count = nu_batch_count(items), B = o.batch, nb = (count + B - 1) / B;
    if (open_engine(m, table, &o, B, &eng, &ses) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    ids = malloc(B * o.k * sizeof *ids);
    scores = malloc(B * o.k * sizeof *scores);
    lat = malloc((nb + 1) * sizeof *lat);
    if (!ids || !scores || !lat) {
        fprintf(stderr, "nextuser retrieve: out of memory\n");
        rc = NU_EXIT_FAIL;
        goto done;
    }
    if (nu_atomic_open(o.out, &af) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    fputs("item,rank,user,score\n", af.fp);
    nu_progress prog;
    nu_progress_start(&prog, "retrieve", "items");
    double t_start = nu_now_seconds();
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * B, cnt = first + B <= count ? B : count - first;
        double t0 = nu_now_seconds();
        nu_status s = nu_session_recommend(ses, items, first, cnt, ids, scores);
        lat[b] = nu_now_seconds() - t0;
        if (s != NU_OK) {
            nu_progress_finish(&prog);
            rc = nu_cli_fail("retrieve");
            goto done;
        }
        for (size_t i = 0; i < cnt; i++)
            if (!write_rows(af.fp, nu_batch_item_id(items, first + i), ids + i * o.k,
                            scores + i * o.k, o.k, m)) {
                rc = NU_EXIT_FAIL;
                fprintf(stderr, "nextuser retrieve: %s: write failed: %s\n", o.out, strerror(errno));
                goto done;
            }
        nu_progress_update(first + cnt, count, &prog);
    }
    nu_progress_finish(&prog);
    double total = nu_now_seconds() - t_start;
    if (nu_atomic_commit(&af) != NU_OK) {
        rc = nu_cli_fail("retrieve");
        goto done;
    }
    qsort(lat, nb, sizeof *lat, cmp_double);
    fprintf(stderr,
            "nextuser retrieve: %zu items in %.3f s (%.0f items/s); batch of %zu: p50 %.2f ms, "
            "p99 %.2f ms; %zu users, %s table (%s), k %llu, isa %s\n",
            count, total, total > 0 ? (double)count / total : 0.0, (size_t)B,
            1e3 * percentile(lat, nb, 50), 1e3 * percentile(lat, nb, 99), nu_table_rows(table),
            nu_dtype_name(o.dtype), table_origin(table), (unsigned long long)o.k, nu_isa_active());
done:
    if (af.fp)
        nu_atomic_abort(&af);
    free(ids);
    free(scores);
    free(lat);
    nu_session_free(ses);
    nu_engine_free(eng);
    nu_table_free(table);
    nu_batch_free(items);
    nu_model_free(m);
    return rc;
}

/* ---- search ---- */

/* Reads "ID<TAB>v1 ... vd" lines (embed's output). */
/* extra: how many of the d values are feature-prior indicators (for the message). */
static nu_status read_queries(const char *path, size_t d, size_t extra, char ***qids, float **q,
                              size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0, count = 0, qcap = 0;
    ssize_t len;
    nu_status s = NU_OK;
    *qids = NULL;
    *q = NULL;
    while (s == NU_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *tab = strchr(line, '\t');
        if (!tab) {
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: expected ID<TAB>values", path, lineno);
            break;
        }
        if (count == qcap) {
            qcap = qcap ? 2 * qcap : 256;
            char **ni = realloc(*qids, qcap * sizeof *ni);
            float *nq = realloc(*q, qcap * d * sizeof *nq);
            if (ni)
                *qids = ni;
            if (nq)
                *q = nq;
            if (!ni || !nq) {
                s = nu_error(NU_ERR_NOMEM, "out of memory reading queries");
                break;
            }
        }
        *tab = 0;
        char *p = tab + 1, *end;
        size_t j = 0;
        for (; j < d; j++) {
            errno = 0;
            float v = strtof(p, &end);
            if (end == p || errno == ERANGE)
                break;
            (*q)[count * d + j] = v;
            p = end;
        }
        while (*p == ' ' || *p == '\n' || *p == '\r')
            p++;
        if (j != d || *p) {
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: expected %zu numbers after the id%s", path, lineno,
                         d, extra ? " (the model weighs a feature prior: write the queries with "
                                    "'nextuser embed --query')" : "");
            break;
        }
        (*qids)[count] = strdup(line);
        if (!(*qids)[count]) {
            s = nu_error(NU_ERR_NOMEM, "out of memory reading queries");
            break;
        }
        count++;
    }
    free(line);
    fclose(f);
    *n = count;
    return s;
}

static const char *const search_help =
    "usage: nextuser search --model DIR --queries Q.tsv --out TOPK.csv [--k K]\n"
    "                       [--dtype fp32|bf16|int8] [--threads T] [--batch B] [--pool P]\n\n"
    "Scores query vectors (lines \"ID<TAB>v1 ... vd\", the output of 'nextuser embed';\n"
    "'nextuser embed --query' when the model weighs a feature prior, whose\n"
    "indicators follow the d values) against the model's user table by cosine\n"
    "similarity, plus the model's priors, and writes the top K\n"
    "(default 100) as CSV item,rank,user,score.  Nothing is excluded.  Batches of\n"
    "B queries (default 1) are searched together; the summary gives queries/s and\n"
    "the p50/p99 batch latency of the search alone (loading excluded).\n"
    "--table map|copy as for 'nextuser retrieve'.\n";

int nu_cmd_search(int argc, char **argv)
{
    common_opts o = {.k = 100, .batch = 1};
    const char *qpath = NULL;
    int parsed = parse_command("search", search_help, "--queries", &qpath, argc, argv, &o);
    if (parsed >= 0)
        return parsed;
    if (nu_init() != NU_OK)
        return nu_cli_fail("search");
    nu_model *m;
    if (nu_model_load(o.model_dir, &m) != NU_OK)
        return nu_cli_fail("search");
    int rc = NU_EXIT_OK;
    nu_table *table = NULL;
    nu_engine *eng = NULL;
    nu_session *ses = NULL;
    char **qids = NULL;
    float *q = NULL, *scores = NULL;
    uint32_t *ids = NULL;
    double *lat = NULL;
    size_t nq = 0, d = nu_model_query_dim(m);
    nu_atomic_file af = {0};
    if (read_queries(qpath, d, d - nu_model_dim(m), &qids, &q, &nq) != NU_OK ||
        nu_table_open(m, o.model_dir, o.dtype, &table) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    if (o.resident && nu_table_make_resident(table) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    warn_k("search", o.k, nu_table_rows(table));
    nu_table_place(table, o.threads);
    size_t B = o.batch, nb = (nq + B - 1) / B;
    ids = malloc((B * o.k + 1) * sizeof *ids);
    scores = malloc((B * o.k + 1) * sizeof *scores);
    lat = malloc((nb + 1) * sizeof *lat);
    if (!ids || !scores || !lat || open_engine(m, table, &o, B, &eng, &ses) != NU_OK ||
        nu_atomic_open(o.out, &af) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    fputs("item,rank,user,score\n", af.fp);
    double busy = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * B, cnt = first + B <= nq ? B : nq - first;
        double t0 = nu_now_seconds();
        nu_status s = nu_session_search(ses, q + first * d, cnt, d, ids, scores);
        lat[b] = nu_now_seconds() - t0;
        busy += lat[b];
        if (s != NU_OK) {
            nu_error_context(s, "%s: queries %zu..%zu: ", qpath, first + 1, first + cnt);
            rc = nu_cli_fail("search");
            goto done;
        }
        for (size_t i = 0; i < cnt; i++)
            write_rows(af.fp, qids[first + i], ids + i * o.k, scores + i * o.k, o.k, m);
    }
    if (nu_atomic_commit(&af) != NU_OK) {
        rc = nu_cli_fail("search");
        goto done;
    }
    qsort(lat, nb, sizeof *lat, cmp_double);
    fprintf(stderr,
            "nextuser search: %zu queries in %.3f s (%.1f queries/s); batch of %zu: p50 %.3f ms, "
            "p99 %.3f ms; %zu users, %s table (%s), k %llu, isa %s\n",
            nq, busy, busy > 0 ? (double)nq / busy : 0.0, (size_t)B, 1e3 * percentile(lat, nb, 50),
            1e3 * percentile(lat, nb, 99), nu_table_rows(table), nu_dtype_name(o.dtype),
            table_origin(table), (unsigned long long)o.k, nu_isa_active());
done:
    if (af.fp)
        nu_atomic_abort(&af);
    for (size_t i = 0; qids && i < nq; i++)
        free(qids[i]);
    free(qids);
    free(q);
    free(ids);
    free(scores);
    free(lat);
    nu_session_free(ses);
    nu_engine_free(eng);
    nu_table_free(table);
    nu_model_free(m);
    return rc;
}
