/* What nextuser retrieve and search share (retrieve_common.h). */
#include "retrieve_common.h"
#include "table_residency.h"
#include "util/line_reader.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "error.h"

int nu_cli_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of n sorted values. */
double nu_cli_percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[r ? r - 1 : 0];
}


/* Parses an option shared by retrieve and search; returns 1 if taken, 0 if
 * not ours, -1 on error. */
static int common_option(const char *cmd, int argc, char **argv, int *i, nu_cli_retrieval_opts *o)
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
        if (!strcmp(v, "map") || !strcmp(v, "copy") || !strcmp(v, "auto")) {
            o->resident = !strcmp(v, "auto") ? NU_TABLE_AUTO : !strcmp(v, "copy") ? NU_TABLE_COPY
                                                                                  : NU_TABLE_MAP;
            return 1;
        }
        fprintf(stderr, "nextuser %s: --table: \"%s\" is not auto, map or copy\n", cmd, v);
        return -1;
    }
    if (!strcmp(a, "--gen-dtype") && !strcmp(cmd, "retrieve"))
        return (v = nu_arg_value(cmd, argc, argv, i)) && nu_arg_gen_dtype(cmd, a, v, &o->gen_dtype)
                   ? 1
                   : -1;
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

int nu_cli_write_topk(FILE *f, const char *item, const uint32_t *ids, const float *sc, size_t k,
                      const nu_model *m)
{
    for (size_t j = 0; j < k && ids[j] != UINT32_MAX; j++)
        if (fprintf(f, "%s,%zu,%s,%.7g\n", item, j + 1, nu_model_user_id(m, ids[j]),
                    (double)sc[j]) < 0)
            return 0;
    return 1;
}

const char *nu_cli_table_origin(const nu_table *t)
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

void nu_cli_warn_k(const char *cmd, size_t k, size_t rows)
{
    if (k > rows)
        fprintf(stderr, "nextuser %s: --k %zu exceeds the %zu users: each item gets at most %zu "
                        "users (fewer after exclusions)\n",
                cmd, k, rows, rows);
}

/* The command line of retrieve and search: the common options plus one
 * input file (`input`, e.g. "--items").  Returns -1 when the command should
 * run, else its exit code (--help, or a usage error). */
int nu_cli_parse_retrieval(const char *cmd, const char *help, const char *input, const char **path,
                         int argc, char **argv, nu_cli_retrieval_opts *o)
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

/* A query line holds an id and d <= 4096 + 32 numbers as text: 1 MiB is
 * ample, and bounds what a file without newlines can make us allocate. */
#define QUERY_LINE_MAX ((size_t)1 << 20)

/* Reads "ID<TAB>v1 ... vd" lines (embed's output). */
/* extra: how many of the d values are feature-prior indicators (for the message). */
nu_status nu_cli_read_queries(const char *path, size_t d, size_t extra, char ***qids, float **q,
                              size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return nu_error(NU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    nu_line_reader lr;
    nu_line_reader_init(&lr, f, QUERY_LINE_MAX);
    size_t lineno = 0, count = 0, qcap = 0;
    int got;
    nu_status s = NU_OK;
    *qids = NULL;
    *q = NULL;
    while (s == NU_OK && (got = nu_line_reader_next(&lr)) > 0) {
        char *line = lr.line;
        lineno = lr.lineno;
        if (lr.too_long) {
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: a line longer than %zu bytes", path, lineno,
                         QUERY_LINE_MAX);
            break;
        }
        if (strlen(line) != lr.len) {
            s = nu_error(NU_ERR_FORMAT, "%s:%zu: a NUL byte in the line", path, lineno);
            break;
        }
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
    if (s == NU_OK && got < 0)
        s = nu_error(NU_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    nu_line_reader_free(&lr);
    fclose(f);
    *n = count;
    return s;
}

