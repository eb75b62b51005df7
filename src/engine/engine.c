/* The engine (engine.h): plans once, runs many batches. */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model/feature_prior.h"

nu_status nu_engine_init(const nu_model *m, const nu_user_table *t, const nu_engine_opts *o,
                           nu_engine *e)
{
    memset(e, 0, sizeof *e);
    e->m = m;
    e->t = t;
    e->o = *o;
    if (!e->o.max_batch)
        e->o.max_batch = 64;
    if (!e->o.k)
        e->o.k = 100;
    e->query_w = nu_model_query_width(m);
    /* A row range of the model's table (nu_user_table_open_rows) serves its rows. */
    size_t total = nu_user_table_total_rows(t);
    if (t->query_d != e->query_w || total != m->cfg.num_users || t->first_row + t->rows > total)
        return nu_error(NU_ERR_INVALID_ARG,
                        "the user table (%zu rows, queries of %zu) is not this model's (%zu users, "
                        "queries of %zu)",
                        total, t->query_d, m->cfg.num_users, e->query_w);
    if (!nu_user_table_has(t, o->dtype))
        return nu_error(NU_ERR_INVALID_ARG, "the user table holds no %s encoding",
                        nu_table_dtype_name(o->dtype));
    nu_status st = nu_forward_plan_make(m, o->threads, o->pin, o->gen, 0, &e->fwd);
    if (st == NU_OK)
        st = nu_search_plan_make(t, o->threads, o->pin, &e->search);
    if (st != NU_OK)
        nu_engine_release(e);
    return st;
}

void nu_engine_release(nu_engine *e)
{
    nu_forward_plan_free(&e->fwd);
    nu_search_plan_free(&e->search);
    memset(e, 0, sizeof *e);
}

nu_status nu_session_init(const nu_engine *e, nu_session *s)
{
    memset(s, 0, sizeof *s);
    s->e = e;
    size_t B = e->o.max_batch;
    nu_search_opts so = {.k = e->o.k, .dtype = e->o.dtype, .pool = e->o.pool};
    nu_status st = nu_forward_arenas_make(&e->fwd, B, NU_FORWARD_INFER, &s->arenas);
    if (st == NU_OK)
        st = nu_search_scratch_make(&e->search, &so, B, &s->scratch);
    s->q = malloc(B * e->query_w * sizeof *s->q);
    s->exclude = calloc(B, sizeof *s->exclude);
    if (st == NU_OK && (!s->q || !s->exclude))
        st = nu_error(NU_ERR_NOMEM, "out of memory for a session of %zu items", B);
    if (st != NU_OK)
        nu_session_release(s);
    return st;
}

void nu_session_release(nu_session *s)
{
    if (s->e)
        nu_forward_arenas_free(&s->e->fwd, s->arenas);
    nu_search_scratch_free(&s->scratch);
    free(s->q);
    free(s->exclude);
    memset(s, 0, sizeof *s);
}

void nu_session_use_threads(nu_session *s, int threads)
{
    int all = s->e->fwd.pl.threads;
    s->team = threads <= 0 || threads >= all ? 0 : threads;
    s->scratch.team = s->team;
}

static nu_status check_range(const nu_session *s, const nu_items *items, size_t first, size_t n)
{
    if (n > s->e->o.max_batch)
        return nu_error(NU_ERR_INVALID_ARG, "%zu items in one call, the engine takes at most %zu",
                        n, s->e->o.max_batch);
    if (first > items->count || n > items->count - first)
        return nu_error(NU_ERR_INVALID_ARG, "items [%zu, %zu) outside the %zu items", first,
                        first + n, items->count);
    return NU_OK;
}

nu_status nu_engine_embed(nu_session *s, const nu_items *items, size_t first, size_t n, float *out)
{
    nu_status st = check_range(s, items, first, n);
    if (st != NU_OK || n == 0)
        return st;
    /* Batches of the forward's slice, spread over the engine's threads. */
    size_t T = (size_t)s->e->fwd.pl.threads, per = (n + T - 1) / T;
    nu_run_options ro = {.batch_items = per < 64 ? per : 64, .mode = NU_FORWARD_INFER,
                         .first = first, .count = n, .team = s->team};
    return nu_forward_run(&s->e->fwd, s->arenas, items, &ro, out, NULL);
}

nu_status nu_engine_search(nu_session *s, const float *q, size_t n, size_t ldq,
                           const nu_id_list *exclude, uint32_t *ids, float *scores)
{
    if (ldq < s->e->query_w)
        return nu_error(NU_ERR_INVALID_ARG, "query stride %zu below the query width %zu", ldq,
                        s->e->query_w);
    return nu_search_run(&s->e->search, &s->scratch, q, n, ldq, exclude, ids, scores);
}

nu_status nu_engine_recommend(nu_session *s, const nu_items *items, size_t first, size_t n,
                              uint32_t *ids, float *scores)
{
    nu_status st = nu_engine_embed(s, items, first, n, s->q);
    if (st != NU_OK || n == 0)
        return st;
    nu_model_query_tails(s->e->m, items, first, s->q, n);
    for (size_t i = 0; i < n; i++) {
        s->exclude[i].ids = items->hist + items->hist_off[first + i];
        s->exclude[i].count = nu_items_n_hist(items, first + i);
    }
    return nu_search_run(&s->e->search, &s->scratch, s->q, n, s->e->query_w, s->exclude, ids,
                         scores);
}
