#include "bench/serve_engine.h"

#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "error.h"

/* The output rows and scores of a batch, once the engine is set up (s);
 * on any failure everything is freed. */
static nu_status with_outputs(nu_serve_engine *e, nu_status s)
{
    e->ids = malloc(e->max_batch * e->k * sizeof *e->ids);
    e->scores = malloc(e->max_batch * e->k * sizeof *e->scores);
    if (s == NU_OK && (!e->ids || !e->scores))
        s = nu_error(NU_ERR_NOMEM, "out of memory for the serving path");
    if (s != NU_OK)
        nu_serve_engine_free(e);
    return s;
}

nu_status nu_serve_engine_init(nu_serve_engine *e, const nu_model *m, const nu_items *items,
                               const nu_user_table *t, nu_table_dtype dtype, nu_gen_encoding gen,
                               size_t k, size_t pool, int threads, size_t max_batch)
{
    memset(e, 0, sizeof *e);
    e->items = items;
    e->k = k;
    e->max_batch = max_batch;
    /* Pinned as the CLI runs it. */
    nu_engine_opts o = {.threads = threads > 0 ? threads : 1, .max_batch = max_batch, .k = k,
                        .dtype = dtype, .pool = pool, .pin = 1, .gen = gen};
    nu_status s = nu_engine_init(m, t, &o, &e->engine);
    if (s == NU_OK)
        s = nu_session_init(&e->engine, &e->session);
    return with_outputs(e, s);
}

nu_status nu_serve_engine_init_public(nu_serve_engine *e, const nu_model *m, const nu_table *t,
                                      const nu_batch *b, nu_table_dtype dtype, nu_gen_encoding gen,
                                      size_t k, size_t pool, int threads, size_t max_batch)
{
    memset(e, 0, sizeof *e);
    e->items = &b->items; /* the pool's size, for the scenarios */
    e->batch = b;
    e->k = k;
    e->max_batch = max_batch;
    nu_engine_options o;
    nu_engine_options_init(&o);
    o.threads = threads > 0 ? threads : 1;
    o.max_batch = max_batch;
    o.k = k;
    o.dtype = (nu_dtype)dtype;
    o.pool = pool;
    o.pin = 1; /* as the CLI runs it */
    o.gen_dtype = gen == NU_GEN_BF16 ? NU_DTYPE_BF16 : NU_DTYPE_FP32;
    nu_status s = nu_engine_create(m, t, &o, &e->pub_engine);
    if (s == NU_OK)
        s = nu_session_create(e->pub_engine, &e->pub_session);
    return with_outputs(e, s);
}

nu_status nu_serve_engine_run(nu_serve_engine *e, size_t first, size_t n)
{
    if (n > e->max_batch || first + n > e->items->count)
        return nu_error(NU_ERR_INVALID_ARG, "serve batch [%zu, %zu) out of range", first, first + n);
    if (e->pub_session)
        return nu_session_recommend(e->pub_session, e->batch, first, n, e->ids, e->scores);
    return nu_engine_recommend(&e->session, e->items, first, n, e->ids, e->scores);
}

void nu_serve_engine_free(nu_serve_engine *e)
{
    if (e->pub_engine || e->pub_session) {
        nu_session_free(e->pub_session);
        nu_engine_free(e->pub_engine);
    } else {
        nu_session_release(&e->session);
        nu_engine_release(&e->engine);
    }
    free(e->ids);
    free(e->scores);
    memset(e, 0, sizeof *e);
}
