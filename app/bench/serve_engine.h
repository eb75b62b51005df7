/* The serving path of one batch of new items, end to end, as `nextuser
 * retrieve` ships it: nu_engine_recommend (the generator, then the search
 * leaving out each item's own users) on an engine made once.  Used by the
 * offline and server scenarios. */
#ifndef NU_BENCH_SERVE_ENGINE_H
#define NU_BENCH_SERVE_ENGINE_H

#include "engine/engine.h"

typedef struct nu_serve_engine {
    const nu_items *items;
    size_t k, max_batch;
    nu_engine engine;
    nu_session session;
    /* A user model is served through the public calls a deployment makes
     * (nu_engine_create, nu_session_recommend on its batch) instead. */
    nu_engine *pub_engine;
    nu_session *pub_session;
    const nu_batch *batch;
    uint32_t *ids; /* max_batch x k */
    float *scores;
} nu_serve_engine;

/* pool: the bf16/int8 re-rank pool (0: the search default); gen: the
 * generator's weight encoding. */
nu_status nu_serve_engine_init(nu_serve_engine *e, const nu_model *m, const nu_items *items,
                               const nu_user_table *t, nu_table_dtype dtype, nu_gen_encoding gen,
                               size_t k, size_t pool, int threads, size_t max_batch);
/* The same over public handles: table t and batch b of model m. */
nu_status nu_serve_engine_init_public(nu_serve_engine *e, const nu_model *m, const nu_table *t,
                                      const nu_batch *b, nu_table_dtype dtype, nu_gen_encoding gen,
                                      size_t k, size_t pool, int threads, size_t max_batch);
/* Serves items [first, first + n), n <= max_batch. */
nu_status nu_serve_engine_run(nu_serve_engine *e, size_t first, size_t n);
void nu_serve_engine_free(nu_serve_engine *e);

#endif
