/* Top-K users for a batch of query vectors over a user table: the table is
 * split into one contiguous shard per thread (shards grouped by NUMA node,
 * each node's threads scoring the rows next to them), every thread keeps a
 * private top-K per query, and the lists are merged.  bf16 and int8 scans
 * return a larger candidate pool that is re-ranked in exact fp32. */
#ifndef NU_SEARCH_H
#define NU_SEARCH_H

#include "retrieval/user_table.h"
#include "runtime/placement.h"
#include "kernels.h"

/* A candidate: a row id of the whole table and its score. */
typedef nu_topk_pair nu_search_cand;

typedef struct nu_search_opts {
    size_t k;             /* results per query */
    nu_table_dtype dtype; /* which encoding to scan */
    int threads;          /* <= 0: one per core */
    size_t pool;          /* bf16/int8 candidates re-ranked in fp32 (0: max(4k, 256)) */
    int pin;              /* pin the team's threads to cores (nu_search only) */
} nu_search_opts;

typedef struct nu_search_stats {
    int threads, nodes;
    size_t *shard_lo, *shard_hi; /* [threads] rows of each thread */
    int *shard_node;             /* [threads] */
} nu_search_stats;

/* Queries Q (B x t->query_d, stride ldq) need not be normalised: scores are
 * cosines (the first t->unit_d columns are normalised here), plus the
 * model's popularity priors when the table carries them (user_table.h; the
 * query's last query_d - unit_d columns are the item's feature-prior
 * indicators, nu_model_query_tails).  A query with a NaN or Inf is an error
 * naming it.  exclude: NULL or B lists.  Output B x k ids (NU_TOPK_NONE
 * past the eligible users) and scores, best first, ties by lower id. */
nu_status nu_search(const nu_user_table *t, const nu_search_opts *o, const float *Q, size_t B,
                    size_t ldq, const nu_id_list *exclude, uint32_t *ids, float *scores,
                    nu_search_stats *stats /* may be NULL */);
void nu_search_stats_free(nu_search_stats *s);

/* A search plan: the placement of a thread count and each thread's rows of
 * the table, made once, read-only afterwards (shared by concurrent runs). */
typedef struct nu_search_plan {
    const nu_user_table *t;
    nu_placement pl;
    size_t *lo, *hi; /* [pl.threads] rows of each thread */
} nu_search_plan;

/* The buffers of searches of up to max_b queries at one k, dtype and pool:
 * one per concurrent caller. */
typedef struct nu_search_scratch {
    size_t max_b, k, pool;
    nu_table_dtype dtype;
    float *qn, *qscale, *tid_sc;
    int8_t *q8;
    uint32_t *tid_ids;
    void *merge;
    /* Threads a run starts (1 .. the plan's; 0: the plan's).  Fewer threads
     * scan the same shards in turn, so the result does not change. */
    int team;
} nu_search_scratch;

nu_status nu_search_plan_make(const nu_user_table *t, int threads, int pin, nu_search_plan *p);
void nu_search_plan_free(nu_search_plan *p);
nu_status nu_search_scratch_make(const nu_search_plan *p, const nu_search_opts *o, size_t max_b,
                                 nu_search_scratch *s);
void nu_search_scratch_free(nu_search_scratch *s);
/* nu_search on a plan and a scratch (B <= s->max_b; k, dtype and pool are
 * the scratch's). */
nu_status nu_search_run(const nu_search_plan *p, nu_search_scratch *s, const float *Q, size_t B,
                        size_t ldq, const nu_id_list *exclude, uint32_t *ids, float *scores);

/* The candidates of this table (a whole table or a row range) for a merge
 * with other shards' (search_merge.h): per query, the s->pool best rows by
 * the scanned encoding's score, best first with ties by lower id
 * (NU_TOPK_NONE and -inf past them), that score in approx and the exact
 * fp32 score in exact (the same for fp32, where the pool is k).  Outputs
 * B x s->pool. */
nu_status nu_search_run_pool(const nu_search_plan *p, nu_search_scratch *s, const float *Q,
                             size_t B, size_t ldq, const nu_id_list *exclude, uint32_t *ids,
                             float *approx, float *exact);

/* On a multi-node machine, moves each thread's shard of the table (every
 * encoding it holds) to the memory of that thread's node, so the scan reads
 * local memory.  Call once after loading, with the threads searches will use.
 * Returns how many shard ranges were bound (0 on one node). */
size_t nu_search_place_table(const nu_user_table *t, int threads);

#endif
