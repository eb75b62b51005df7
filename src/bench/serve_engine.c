#include "bench/serve_engine.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model/feature_prior.h"
#include "model/forward.h"
#include "retrieval/search.h"

nu_status nu_serve_engine_init(nu_serve_engine *e, const nu_model *m, const nu_items *items,
                               const nu_user_table *t, nu_table_dtype dtype, size_t k, int threads,
                               size_t max_batch)
{
    memset(e, 0, sizeof *e);
    e->m = m;
    e->items = items;
    e->table = t;
    e->dtype = dtype;
    e->k = k;
    e->threads = threads > 0 ? threads : 1;
    e->max_batch = max_batch;
    e->arenas = calloc((size_t)e->threads, sizeof *e->arenas);
    e->uhat = malloc(max_batch * nu_model_query_width(m) * sizeof *e->uhat);
    e->ids = malloc(max_batch * k * sizeof *e->ids);
    e->scores = malloc(max_batch * k * sizeof *e->scores);
    e->exclude = calloc(max_batch, sizeof *e->exclude);
    if (!e->arenas || !e->uhat || !e->ids || !e->scores || !e->exclude) {
        nu_serve_engine_free(e);
        return nu_error(NU_ERR_NOMEM, "out of memory for the serving path");
    }
    size_t per = (max_batch + (size_t)e->threads - 1) / (size_t)e->threads;
    size_t bytes = nu_forward_scratch_bytes(&m->cfg, per, NU_FORWARD_INFER);
    for (int i = 0; i < e->threads; i++)
        if (!nu_arena_create(&e->arenas[i], bytes)) {
            nu_serve_engine_free(e);
            return nu_error(NU_ERR_NOMEM, "out of memory for thread scratch (%zu bytes)", bytes);
        }
    return NU_OK;
}

nu_status nu_serve_engine_run(nu_serve_engine *e, size_t first, size_t n)
{
    if (n == 0)
        return NU_OK;
    if (n > e->max_batch || first + n > e->items->count)
        return nu_error(NU_ERR_INVALID_ARG, "serve batch [%zu, %zu) out of range", first, first + n);
    const nu_model *m = e->m;
    size_t d = m->cfg.d;
    int T = e->threads;
    nu_status st[256];
    int used = T < 256 ? T : 256;
#pragma omp parallel num_threads(used) if (used > 1)
    {
        size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        e->arenas[t].used = 0;
        st[t] = hi > lo ? nu_forward_batch(&m->cfg, &m->w, e->items, first + lo, hi - lo, NU_FORWARD_INFER,
                                           &e->arenas[t], e->uhat + lo * d)
                        : NU_OK;
    }
    for (int t = 0; t < used; t++)
        if (st[t] != NU_OK)
            return st[t];
    for (size_t i = 0; i < n; i++) {
        size_t it = first + i;
        e->exclude[i].ids = e->items->hist + e->items->hist_off[it];
        e->exclude[i].count = nu_items_n_hist(e->items, it);
    }
    nu_search_opts o = {.k = e->k, .dtype = e->dtype, .threads = T, .pool = e->pool};
    nu_model_query_tails(m, e->items, first, e->uhat, n);
    return nu_search(e->table, &o, e->uhat, n, nu_model_query_width(m), e->exclude, e->ids,
                     e->scores, NULL);
}

void nu_serve_engine_free(nu_serve_engine *e)
{
    for (int i = 0; e->arenas && i < e->threads; i++)
        nu_arena_destroy(&e->arenas[i]);
    free(e->arenas);
    free(e->uhat);
    free(e->ids);
    free(e->scores);
    free(e->exclude);
    memset(e, 0, sizeof *e);
}
