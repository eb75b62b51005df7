/* `nextuser bench`: end-to-end workloads (infer, retrieve, train, serve)
 * measured against this machine's own FMA peak and read bandwidth, with
 * results in Google Benchmark's JSON schema (docs/bench.md). */
#ifndef NU_BENCH_H
#define NU_BENCH_H

#include <stddef.h>
#include <stdio.h>

#include "nextuser/nextuser.h"
#include "model/packed_weights.h"
#include "retrieval/user_table.h"

#define NU_BENCH_MAX_LIST 16
#define NU_BENCH_MAX_COUNTERS 14

/* One result row: a workload name, its median latency and its counters. */
typedef struct nu_bench_counter {
    const char *name; /* a string literal */
    double value;
} nu_bench_counter;

typedef struct nu_bench_result {
    char name[160];
    int threads;
    size_t iterations;  /* batches (or steps) timed, over all repetitions */
    int repetitions;
    double real_time_ms; /* median batch (or step) latency */
    size_t n_counters;
    nu_bench_counter counters[NU_BENCH_MAX_COUNTERS];
} nu_bench_result;

typedef struct nu_bench_results {
    nu_bench_result *v;
    size_t n, cap;
} nu_bench_results;

/* Appends a zeroed row named `name` (printf-style); NULL when out of memory. */
nu_bench_result *nu_bench_add(nu_bench_results *r, int threads, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void nu_bench_set(nu_bench_result *e, const char *counter, double value);
/* A row's timing: repetitions, iterations (n), real_time (the median) and
 * the p50_ms / p99_ms counters, from n latencies in seconds sorted ascending. */
void nu_bench_set_latency(nu_bench_result *e, int reps, const double *sorted_s, size_t n);
/* The counter's value, or `missing` when the row has none. */
double nu_bench_get(const nu_bench_result *e, const char *counter, double missing);
void nu_bench_results_free(nu_bench_results *r);

/* The machine's roofline, per thread count. */
typedef struct nu_bench_peaks {
    int n;
    int threads[NU_BENCH_MAX_LIST];
    double fma_gflops[NU_BENCH_MAX_LIST];
    double read_gbps[NU_BENCH_MAX_LIST];
    const char *fma_isa, *read_isa; /* the kernel tables that reached them */
} nu_bench_peaks;

struct nu_bench_user_model;

/* What to run. */
typedef struct nu_bench_config {
    int run_infer, run_retrieve, run_train, run_serve;
    const char *shape;  /* "base" or "large"; "model" with a user model */
    /* --model: the user's model, table and items replace the synthetic
     * ones in infer, retrieve and serve (NULL: synthetic). */
    const struct nu_bench_user_model *user;
    int quick;
    int threads[NU_BENCH_MAX_LIST];
    int n_threads;
    int reps;           /* timed repetitions (after one warm-up) */
    double rep_seconds; /* target length of one repetition */
    /* infer */
    size_t infer_batches[NU_BENCH_MAX_LIST];
    int n_infer_batches;
    /* generator encodings: fp32 rows keep their names, others add /gen:NAME */
    nu_gen_encoding gen_dtypes[2];
    int n_gen_dtypes;
    /* retrieve */
    size_t users[NU_BENCH_MAX_LIST];
    int n_users;
    size_t retrieve_batches[NU_BENCH_MAX_LIST];
    int n_retrieve_batches;
    nu_table_dtype dtypes[3];
    int n_dtypes;
    size_t k;
    size_t pool; /* bf16/int8 candidates re-ranked in fp32 (0: the search default) */
    /* train */
    size_t train_batch, train_negatives, train_steps;
    /* serve */
    size_t serve_users;
    nu_table_dtype serve_dtypes[3];
    int n_serve_dtypes;
    size_t serve_batch, max_batch;
    double max_wait_ms, p99_ms, rate_seconds;
    unsigned long long seed;
    size_t read_bytes; /* bandwidth probe buffer */
} nu_bench_config;

/* Defaults for a quick or a full run (the CLI overrides from options). */
void nu_bench_config_defaults(nu_bench_config *c, int quick);

/* A progress line on stderr: redrawn in place on a terminal, one line per
 * step otherwise.  `done` ends the line. */
void nu_bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 when generator encoding gen runs as itself at this kernel level; else
 * says that `suite`'s gen rows are skipped and returns 0. */
int nu_bench_gen_runs(nu_gen_encoding gen, const char *suite);
void nu_bench_progress_done(void);

/* Each appends its rows to `out`; the message of a failure is in nu_last_error(). */
nu_status nu_bench_measure_peaks(const nu_bench_config *c, nu_bench_peaks *p, nu_bench_results *out);
/* Probes again (at the end of a run) and keeps the better figures: on a
 * shared machine one probe may meet a busy core. */
nu_status nu_bench_remeasure_peaks(const nu_bench_config *c, nu_bench_peaks *p);
/* Writes the peak rows and recomputes every frac_peak / frac_bw from them. */
void nu_bench_apply_peaks(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *r);
double nu_bench_peak_fma(const nu_bench_peaks *p, int threads);  /* GFLOP/s, 0 when unknown */
double nu_bench_peak_read(const nu_bench_peaks *p, int threads); /* GB/s, 0 when unknown */

nu_status nu_bench_infer(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out);
/* The largest of the run's thread counts (at least 1). */
int nu_bench_max_threads(const nu_bench_config *c);
/* Items the infer workload cycles through: two of its largest batch per
 * thread, at least 8192. */
size_t nu_bench_infer_pool(const nu_bench_config *c);
nu_status nu_bench_retrieve(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out);
/* Query vectors the retrieve workload reads: max(256 for recall, largest batch). */
size_t nu_bench_retrieve_queries(const nu_bench_config *c);
nu_status nu_bench_train(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out);
nu_status nu_bench_serve(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *out);

/* Output: the human table on `f`, the JSON file written atomically. */
void nu_bench_print_table(FILE *f, const nu_bench_results *r);
nu_status nu_bench_write_json(const char *path, const nu_bench_config *c, const nu_bench_peaks *p,
                              const nu_bench_results *r, const char *command);

#endif
