#include "bench/serve_engine.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

nu_status nu_serve_engine_init(nu_serve_engine *e, const nu_model *m, const nu_items *items,
                               const nu_user_table *t, nu_table_dtype dtype, size_t k, size_t pool,
                               int threads, size_t max_batch)
{
    memset(e, 0, sizeof *e);
    e->items = items;
    e->k = k;
    e->max_batch = max_batch;
    /* Pinned as the CLI runs it. */
    nu_engine_opts o = {.threads = threads > 0 ? threads : 1, .max_batch = max_batch, .k = k,
                        .dtype = dtype, .pool = pool, .pin = 1};
    nu_status s = nu_engine_init(m, t, &o, &e->engine);
    if (s == NU_OK)
        s = nu_session_init(&e->engine, &e->session);
    e->ids = malloc(max_batch * k * sizeof *e->ids);
    e->scores = malloc(max_batch * k * sizeof *e->scores);
    if (s == NU_OK && (!e->ids || !e->scores))
        s = nu_error(NU_ERR_NOMEM, "out of memory for the serving path");
    if (s != NU_OK)
        nu_serve_engine_free(e);
    return s;
}

nu_status nu_serve_engine_run(nu_serve_engine *e, size_t first, size_t n)
{
    if (n > e->max_batch || first + n > e->items->count)
        return nu_error(NU_ERR_INVALID_ARG, "serve batch [%zu, %zu) out of range", first, first + n);
    return nu_engine_recommend(&e->session, e->items, first, n, e->ids, e->scores);
}

void nu_serve_engine_free(nu_serve_engine *e)
{
    nu_session_release(&e->session);
    nu_engine_release(&e->engine);
    free(e->ids);
    free(e->scores);
    memset(e, 0, sizeof *e);
}
