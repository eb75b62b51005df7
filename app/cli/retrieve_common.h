/* What nextuser retrieve and search share, single process or sharded over
 * MPI ranks (app/mpi): the options, the query file, the output rows and
 * the summary's percentiles. */
#ifndef NU_CLI_RETRIEVE_COMMON_H
#define NU_CLI_RETRIEVE_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "nextuser/nextuser.h"

typedef struct nu_cli_retrieval_opts {
    int resident; /* --table: NU_TABLE_AUTO (set it before parsing), _MAP or _COPY
                     (table_residency.h) */
    const char *model_dir, *out;
    uint64_t k;
    nu_dtype dtype;
    nu_dtype gen_dtype; /* --gen-dtype (retrieve only: search runs no generator) */
    int threads;
    uint64_t batch, pool;
} nu_cli_retrieval_opts;

extern const char *const nu_cli_retrieve_help;
extern const char *const nu_cli_search_help;

int nu_cli_cmp_double(const void *a, const void *b);
/* Nearest-rank percentile of n sorted values. */
double nu_cli_percentile(const double *sorted, size_t n, double p);
/* The command line of retrieve and search: the common options plus one
 * input file (`input`, e.g. "--items").  Returns -1 when the command should
 * run, else its exit code (--help, or a usage error). */
int nu_cli_parse_retrieval(const char *cmd, const char *help, const char *input, const char **path,
                           int argc, char **argv, nu_cli_retrieval_opts *o);
/* CSV lines item,rank,user,score of one item's top k; 0 on a write error. */
int nu_cli_write_topk(FILE *f, const char *item, const uint32_t *ids, const float *sc, size_t k,
                      const nu_model *m);
/* Where a table's rows came from, for the summary line. */
const char *nu_cli_table_origin(const nu_table *t);
/* Warns when k exceeds the users. */
void nu_cli_warn_k(const char *cmd, size_t k, size_t rows);
/* Reads "ID<TAB>v1 ... vd" lines (embed's output); extra: how many of the d
 * values are feature-prior indicators (for the message). */
nu_status nu_cli_read_queries(const char *path, size_t d, size_t extra, char ***qids, float **q,
                              size_t *n);

#endif
