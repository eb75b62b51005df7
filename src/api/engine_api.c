/* The public API's engine and sessions: heap handles over engine.h. */
#include <stdlib.h>
#include <string.h>

#include "api/handles.h"
#include "error.h"
#include "model/feature_prior.h"

void nu_engine_options_init_sized(nu_engine_options *o, size_t size)
{
    if (!o || size < sizeof(size_t))
        return;
    nu_engine_options d;
    memset(&d, 0, sizeof d);
    d.size = size < sizeof d ? size : sizeof d;
    d.max_batch = 64;
    d.k = 100;
    d.dtype = NU_DTYPE_FP32;
    d.gen_dtype = NU_DTYPE_FP32;
    memcpy(o, &d, d.size);
}

/* A caller's options, however old its struct: fields past its size keep
 * their defaults. */
static nu_status read_options(const nu_engine_options *given, nu_engine_opts *o)
{
    nu_engine_options full;
    nu_engine_options_init_sized(&full, sizeof full);
    if (given) {
        if (given->size < sizeof(size_t) || given->size > sizeof full)
            return nu_error(NU_ERR_INVALID_ARG, "nu_engine_options.size is %zu: call "
                            "nu_engine_options_init first", given->size);
        memcpy(&full, given, given->size);
    }
    if (full.dtype != NU_DTYPE_FP32 && full.dtype != NU_DTYPE_BF16 && full.dtype != NU_DTYPE_INT8)
        return nu_error(NU_ERR_INVALID_ARG, "unknown dtype %d", (int)full.dtype);
    nu_gen_encoding gen;
    nu_status st = nu_api_gen_encoding(full.gen_dtype, "nu_engine_options.gen_dtype", &gen);
    if (st != NU_OK)
        return st;
    if (full.k == 0 || full.k > 100000)
        return nu_error(NU_ERR_INVALID_ARG, "k must be in 1..100000, got %zu", full.k);
    if (full.max_batch == 0 || full.max_batch > (1u << 20))
        return nu_error(NU_ERR_INVALID_ARG, "max_batch must be in 1..1048576, got %zu",
                        full.max_batch);
    *o = (nu_engine_opts){.threads = full.threads, .max_batch = full.max_batch, .k = full.k,
                          .dtype = (nu_table_dtype)full.dtype, .pool = full.pool,
                          .pin = full.pin != 0, .gen = gen};
    return NU_OK;
}

nu_status nu_engine_create(const nu_model *m, const nu_table *t, const nu_engine_options *o,
                           nu_engine **out)
{
    if (!m || !t || !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_engine_create: model, table and out are required");
    if (t->model != m)
        return nu_error(NU_ERR_INVALID_ARG, "nu_engine_create: the table was opened for another "
                        "model");
    nu_engine_opts eo;
    nu_status s = read_options(o, &eo);
    if (s != NU_OK)
        return s;
    nu_engine *e = calloc(1, sizeof *e);
    if (!e)
        return nu_error(NU_ERR_NOMEM, "out of memory for an engine");
    s = nu_engine_init(m, &t->table, &eo, e);
    if (s != NU_OK) {
        free(e);
        return s;
    }
    *out = e;
    return NU_OK;
}

void nu_engine_free(nu_engine *e)
{
    if (!e)
        return;
    nu_engine_release(e);
    free(e);
}

nu_status nu_session_create(const nu_engine *e, nu_session **out)
{
    if (!e || !out)
        return nu_error(NU_ERR_INVALID_ARG, "nu_session_create: engine and out are required");
    nu_session *s = calloc(1, sizeof *s);
    if (!s)
        return nu_error(NU_ERR_NOMEM, "out of memory for a session");
    nu_status st = nu_session_init(e, s);
    if (st != NU_OK) {
        free(s);
        return st;
    }
    *out = s;
    return NU_OK;
}

void nu_session_free(nu_session *s)
{
    if (!s)
        return;
    nu_session_release(s);
    free(s);
}

nu_status nu_session_set_threads(nu_session *s, int threads)
{
    if (!s)
        return nu_error(NU_ERR_INVALID_ARG, "nu_session_set_threads: a session is required");
    nu_session_use_threads(s, threads);
    return NU_OK;
}

static nu_status check_batch(const nu_session *s, const nu_batch *b)
{
    if (!s || !b)
        return nu_error(NU_ERR_INVALID_ARG, "a session and a batch are required");
    if (b->model != s->e->m)
        return nu_error(NU_ERR_INVALID_ARG, "the batch was made for another model");
    return NU_OK;
}

nu_status nu_session_recommend(nu_session *s, const nu_batch *b, size_t first, size_t n,
                               uint32_t *rows, float *scores)
{
    nu_status st = check_batch(s, b);
    if (st == NU_OK && n && (!rows || !scores))
        st = nu_error(NU_ERR_INVALID_ARG, "nu_session_recommend: rows and scores are required");
    return st == NU_OK ? nu_engine_recommend(s, &b->items, first, n, rows, scores) : st;
}

nu_status nu_session_embed(nu_session *s, const nu_batch *b, size_t first, size_t n, float *out)
{
    nu_status st = check_batch(s, b);
    if (st == NU_OK && n && !out)
        st = nu_error(NU_ERR_INVALID_ARG, "nu_session_embed: out is required");
    return st == NU_OK ? nu_engine_embed(s, &b->items, first, n, out) : st;
}

nu_status nu_session_query(nu_session *s, const nu_batch *b, size_t first, size_t n, float *out)
{
    nu_status st = check_batch(s, b);
    if (st == NU_OK && n && !out)
        st = nu_error(NU_ERR_INVALID_ARG, "nu_session_query: out is required");
    if (st == NU_OK)
        st = nu_engine_embed(s, &b->items, first, n, out);
    if (st == NU_OK)
        nu_model_query_tails(s->e->m, &b->items, first, out, n);
    return st;
}

nu_status nu_session_search(nu_session *s, const float *queries, size_t n, size_t ldq,
                            uint32_t *rows, float *scores)
{
    if (!s || (n && (!queries || !rows || !scores)))
        return nu_error(NU_ERR_INVALID_ARG, "nu_session_search: session, queries, rows and scores "
                        "are required");
    return nu_engine_search(s, queries, n, ldq, NULL, rows, scores);
}
