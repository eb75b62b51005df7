/* The capacity plan of `nextuser plan`: from measured per-core figures of a
 * `nextuser bench` result file to cores, shards, servers and memory.  The
 * arithmetic (docs/plan.md) is kept in one place so the command can print
 * every step and the tests can check it by hand. */
#ifndef NU_PLAN_H
#define NU_PLAN_H

#include <stddef.h>

#include "nextuser/nextuser.h"
#include "plan/plan_results.h"

#define NU_PLAN_NAME_MAX 128

/* What the user asks for. */
typedef struct nu_plan_request {
    double items_per_sec; /* new items to serve per second */
    double users;         /* rows of the user table */
    size_t k;             /* top-K per item */
    double p99_ms;        /* latency bound per item, from its arrival */
    int cores_per_server, nodes_per_server;
    double headroom; /* spare share of capacity, 0.3: run at most 70 % busy */
    char shape[16], dtype[8];
    char gen_dtype[8]; /* the generator's weight encoding: "fp32" or "bf16" (its rows /gen:bf16) */
    /* Shape "model" (results of `nextuser bench --model`): the user's model
     * as the file's context describes it (nu_plan_user_model); 0 otherwise. */
    double model_d, model_table_width, model_query_dim, model_weights_bytes, model_scratch_bytes;
    /* The weights re-packed for the generator encoding, per node (0: none, or
     * a results file from before bench wrote it). */
    double model_packed_bytes;
} nu_plan_request;

/* The figures taken from the results, each with the workload it came from. */
typedef struct nu_plan_measured {
    char server_max[NU_PLAN_NAME_MAX], infer[NU_PLAN_NAME_MAX], retrieve[NU_PLAN_NAME_MAX],
        offline1[NU_PLAN_NAME_MAX], offlineT[NU_PLAN_NAME_MAX];
    double serve_users;       /* U of the serve runs */
    double retrieve_users;    /* U of the retrieve run */
    size_t batch;             /* max_batch of server_max */
    double wait_ms;           /* max_wait_ms of server_max */
    double bound_ms;          /* p99_bound_ms of server_max */
    double max_rate;          /* max_rate_per_second of server_max (threads:1) */
    double p99_at_max_ms;     /* its p99 */
    size_t infer_batch;       /* B of the infer run used */
    double infer_ips;         /* items/s, threads:1 */
    size_t retrieve_batch;    /* B of the retrieve run used */
    double retrieve_qps;      /* queries/s, threads:1 */
    double offline_ips1;      /* serve offline items/s, threads:1 */
    int threads_T;            /* the largest thread count with an offline run (1: none) */
    double offline_ipsT;
} nu_plan_measured;

/* Finds the figures for shape/dtype and the generator encoding gen ("fp32",
 * or "bf16": the infer and serve rows named .../gen:bf16/...).  On a missing
 * workload returns NU_ERR_INVALID_ARG with a message naming every missing
 * one and the bench command that writes it. */
nu_status nu_plan_measure(const nu_plan_results *r, const char *shape, const char *dtype,
                          const char *gen, nu_plan_measured *m);

/* Every intermediate value of the plan, in the order docs/plan.md explains. */
typedef struct nu_plan {
    /* per item on one core */
    double gen_s;              /* g: generator seconds per item */
    double score_s_per_user;   /* s: scoring seconds per item per user (scaled to the model's d) */
    double dim_scale;          /* model d / 64 (bench tables are d 64) */
    double predicted_measured; /* g + s * U_serve */
    double offline_item_s;     /* 1 / offline items/s at U_serve */
    double overhead;           /* f = max(1, measured / predicted) */
    double item_s;             /* t = f (g + s U) */
    double scaling;            /* e: per-core efficiency at T threads (<= 1) */
    double latency_share_measured; /* server_max rate / offline items/s (<= 1) */
    double measured_batch_ms;  /* a batch of the serving size on one core, as measured */
    int latency_share_applies; /* measured batch time within the budget: same regime */
    double latency_share;      /* r: the measured share when it applies, else 1 */
    double per_core_ips;       /* P = e r / t */
    /* latency: shards of the table so one batch fits the bound */
    double budget_ms;          /* (p99 - wait) / 2 */
    double batch_gen_ms, batch_score1_ms; /* a batch's generator and one-shard scoring ms */
    size_t shards_min;         /* k: the fewest shards that meet the bound */
    size_t shards;             /* shards per replica in the plan (>= k) */
    double batch_ms;           /* service time of a batch with that many shards */
    /* throughput */
    double cores_busy;         /* X / P */
    size_t cores_provisioned;  /* ceil(X / ((1 - h) P)) */
    size_t servers_for_throughput, replicas, servers;
    double utilisation;        /* X / (servers C P) */
    /* memory per NUMA node */
    double rows_per_server, table_row_bytes, table_node_bytes, user_emb_node_bytes,
        weights_node_bytes, scratch_thread_bytes, threads_per_node, total_node_bytes;
} nu_plan;

/* Fills *p; NU_ERR_INVALID_ARG when the bound cannot be met at any shard
 * count (the message says why). */
nu_status nu_plan_compute(const nu_plan_request *q, const nu_plan_measured *m, nu_plan *p);

/* Model bytes: the dense weights (one copy per node, with their copy packed
 * for the generator encoding), the user embeddings the generator looks up,
 * and one thread's scratch for a batch. */
nu_status nu_plan_model_bytes(const nu_plan_request *q, size_t batch, double *weights,
                              double *user_emb, double *scratch_per_thread);
/* Bytes one user row of the table takes in memory, for the dtype scanned
 * (bf16 and int8 keep the fp32 row for the exact re-rank too). */
double nu_plan_row_bytes(const char *dtype, double d);
/* Bytes of the generator's weights packed once per node for q->gen_dtype
 * (bf16: every encoder and decoder linear in bf16 pairs). */
double nu_plan_packed_bytes(const nu_plan_request *q);
/* The model width of a bench shape (base 64, large 128), 0 if unknown
 * ("model" is known to nu_plan_user_model only). */
size_t nu_plan_shape_dim(const char *shape);
/* The request's generator width d, the floats of a table row (d, plus the
 * prior columns a user model's table carries) and of a query. */
double nu_plan_dim(const nu_plan_request *q);
double nu_plan_row_width(const nu_plan_request *q);
double nu_plan_query_width(const nu_plan_request *q);
/* Shape "model": the user model's figures from the results' context (written
 * by `nextuser bench --model`); NU_ERR_INVALID_ARG naming what is missing. */
nu_status nu_plan_user_model(const nu_plan_results *r, nu_plan_request *q);

#endif
