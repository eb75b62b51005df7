/* The engine: what serving a model does, set up once and run many times.
 * Created from a model and its user table with options, it plans thread
 * placement, copies the weights to each NUMA node and shards the table
 * once; then any number of batches run through it: embed (û_next),
 * search (top-K users for query vectors) and recommend (embed, leave out
 * each item's known users, search).  The CLI's retrieve and search,
 * `nextuser bench` and the evaluation all run through it.
 *
 * Thread safety: an engine is read-only after creation and may be shared
 * by any number of threads; each calling thread uses its own session (the
 * scratch of one call at a time).  Calls on different sessions run
 * concurrently; calls on one session must not.  Threads are pinned only
 * when the options ask for it, and a caller's own thread gets its binding
 * back after every call. */
#ifndef NU_ENGINE_H
#define NU_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "data/items.h"
#include "model/model.h"
#include "retrieval/search.h"
#include "runtime/runner.h"

typedef struct nu_engine_opts {
    int threads;          /* threads per call (<= 0: one per core) */
    size_t max_batch;     /* most items (or queries) per call (0: 64) */
    size_t k;             /* users per item (0: 100) */
    nu_table_dtype dtype; /* the table encoding to scan */
    size_t pool;          /* bf16/int8 candidates re-ranked in fp32 (0: max(4k, 256)) */
    int pin;              /* pin each call's threads to cores (0: never) */
    nu_gen_encoding gen;  /* the generator weights' encoding asked for (fwd.gen: what runs) */
} nu_engine_opts;

typedef struct nu_engine {
    const nu_model *m;
    const nu_user_table *t;
    nu_engine_opts o;
    size_t query_w; /* search query width: d + feature-prior indicators */
    nu_forward_plan fwd;
    nu_search_plan search;
} nu_engine;

typedef struct nu_session {
    const nu_engine *e;
    nu_arena *arenas;       /* one per planned thread */
    float *q;               /* max_batch x query_w */
    nu_id_list *exclude;    /* max_batch */
    nu_search_scratch scratch;
    int team; /* threads of this session's calls (0: the engine's) */
} nu_session;

/* m and t must outlive the engine; t must be the model's table
 * (nu_user_table_for_model). */
nu_status nu_engine_init(const nu_model *m, const nu_user_table *t, const nu_engine_opts *o,
                           nu_engine *e);
void nu_engine_release(nu_engine *e);
nu_status nu_session_init(const nu_engine *e, nu_session *s);
void nu_session_release(nu_session *s);

/* Threads of s's next calls: 1 .. the engine's (<= 0: the engine's).
 * Results do not change: the same batches and shards run, in turn. */
void nu_session_use_threads(nu_session *s, int threads);

/* û_next of items [first, first + n) into out (n x d).  n <= max_batch. */
nu_status nu_engine_embed(nu_session *s, const nu_items *items, size_t first, size_t n,
                          float *out);
/* Top k users of n query vectors (n x e->query_w, stride ldq; see
 * nu_search); exclude may be NULL.  Outputs n x k, best first. */
nu_status nu_engine_search(nu_session *s, const float *q, size_t n, size_t ldq,
                           const nu_id_list *exclude, uint32_t *ids, float *scores);
/* Top k users for items [first, first + n), leaving out every known user of
 * each item (its history, before the max_users cut).  Outputs n x k. */
nu_status nu_engine_recommend(nu_session *s, const nu_items *items, size_t first, size_t n,
                              uint32_t *ids, float *scores);

#endif
