/* `nextuser bench --model DIR [--items FILE]`: the user's own trained model,
 * its user table and its item traffic, loaded through the public API (as a
 * deployment loads them) for the infer, retrieve and serve workloads in
 * place of the synthetic shapes (docs/bench.md, "Benchmark your own model"). */
#ifndef NU_BENCH_USER_MODEL_H
#define NU_BENCH_USER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "data/items.h"
#include "nextuser/nextuser.h"
#include "retrieval/user_table.h"

/* The shape token of a user model's workload names: infer/model/B64/... */
#define NU_BENCH_USER_SHAPE "model"

typedef struct nu_bench_user_model {
    const char *dir, *items_path; /* items_path NULL: items synthesised */
    nu_model *model;
    nu_table *table;
    int table_from_file; /* user_table.safetensors (else built in memory) */
    unsigned table_dtypes; /* NU_DTYPE_BIT of the encodings the table holds */
    int table_copied;    /* --table copy: made resident */
    nu_batch *pool;      /* the items, repeated in file order to fill the pool */
    size_t items;        /* items in the file (or synthesised) */
    /* The context lengths the generator reads (users per item) over the items. */
    double users_mean;
    size_t users_min, users_p50, users_max;
    size_t unknown_users, unknown_values, truncated_items;
    float *queries; /* n_queries x query_dim: the search queries of the pool's first items */
    size_t n_queries, query_dim;
} nu_bench_user_model;

/* What to load and how much of it the workloads need. */
typedef struct nu_bench_user_request {
    const char *dir, *items_path;
    unsigned dtypes;   /* NU_DTYPE_BIT set the workloads scan (fp32 always) */
    int file_dtypes;   /* 1: also every encoding the model's table file holds */
    int table_copy;    /* --table: NU_TABLE_AUTO, _MAP or _COPY (cli/table_residency.h) */
    size_t pool_min;   /* items the workloads cycle through, at least */
    size_t queries;    /* query vectors the retrieve workload needs */
    int threads;       /* threads to embed the queries */
    uint64_t seed;     /* synthesised items */
} nu_bench_user_request;

/* Loads the model, its table (the file's when it holds every asked dtype,
 * else built in memory with them) and the items; a message naming the
 * directory or file on failure (items for another model included). */
nu_status nu_bench_user_load(const nu_bench_user_request *q, nu_bench_user_model *out);
void nu_bench_user_free(nu_bench_user_model *u);

/* The library's views the infer and retrieve drivers run on (the structures
 * the public handles wrap: nu_embed's runner and the engine's search plan);
 * serve takes the public handles themselves (serve_engine.h). */
const nu_items *nu_bench_user_items_of(const nu_bench_user_model *u);
const nu_user_table *nu_bench_user_table_of(const nu_bench_user_model *u);

#endif
