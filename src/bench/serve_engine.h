/* The serving path of one batch of new items, end to end: the generator
 * (the batch split over the threads, each with its own scratch arena)
 * gives each item's query vector, then nu_search scores them against the
 * user table (split over the same threads), leaving out each item's own
 * users.  Used by the offline and server scenarios. */
#ifndef NU_BENCH_SERVE_ENGINE_H
#define NU_BENCH_SERVE_ENGINE_H

#include "data/items.h"
#include "kernels.h"
#include "model/model.h"
#include "retrieval/user_table.h"
#include "util/arena.h"

typedef struct nu_serve_engine {
    const nu_model *m;
    const nu_items *items;
    const nu_user_table *table;
    nu_table_dtype dtype;
    size_t k, max_batch;
    size_t pool; /* bf16/int8 re-rank pool (0: the search default) */
    int threads;
    nu_arena *arenas; /* one per thread */
    float *uhat;      /* max_batch x d */
    uint32_t *ids;    /* max_batch x k */
    float *scores;
    nu_id_list *exclude;
} nu_serve_engine;

nu_status nu_serve_engine_init(nu_serve_engine *e, const nu_model *m, const nu_items *items,
                               const nu_user_table *t, nu_table_dtype dtype, size_t k, int threads,
                               size_t max_batch);
/* Serves items [first, first + n), n <= max_batch. */
nu_status nu_serve_engine_run(nu_serve_engine *e, size_t first, size_t n);
void nu_serve_engine_free(nu_serve_engine *e);

#endif
