/* lookalike-mf (see lookalike_mf.h): ALS user factors as a searchable table
 * of unit rows, one mean query per context. */
#include "eval/lookalike_mf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "eval/eval.h"
#include "retrieval/search.h"

void nu_lookalike_mf_free(nu_lookalike_mf *m)
{
    free(m->emb);
    free(m->user_of);
    free(m->index_of);
    memset(m, 0, sizeof *m);
}

/* The train positives as (user row, train item column) pairs; columns number
 * the train items with positives in file order. */
static nu_status train_pairs(const nu_dataset *ds, nu_als_data *out)
{
    size_t n = 0, cols = 0;
    for (size_t i = 0; i < ds->num_items; i++)
        if (ds->split[i] == NU_SPLIT_TRAIN)
            n += nu_dataset_n_pos(ds, i);
    uint32_t *row = malloc((n + 1) * sizeof *row), *col = malloc((n + 1) * sizeof *col);
    if (!row || !col) {
        free(row);
        free(col);
        return nu_error(NU_ERR_NOMEM, "out of memory for lookalike-mf");
    }
    n = 0;
    for (size_t i = 0; i < ds->num_items; i++) {
        if (ds->split[i] != NU_SPLIT_TRAIN || nu_dataset_n_pos(ds, i) == 0)
            continue;
        for (size_t p = ds->pos.off[i]; p < ds->pos.off[i + 1]; p++) {
            row[n] = ds->pos.user[p];
            col[n++] = (uint32_t)cols;
        }
        cols++;
    }
    nu_status st = nu_als_data_from_pairs(ds->cfg.num_users, cols, row, col, n, out);
    free(row);
    free(col);
    return st;
}

nu_status nu_lookalike_mf_build(const nu_dataset *ds, const nu_als_params *p, nu_lookalike_mf *m)
{
    memset(m, 0, sizeof *m);
    nu_als_data data;
    nu_status st = train_pairs(ds, &data);
    if (st != NU_OK)
        return st;
    nu_als_factors f;
    st = nu_als_fit(&data, p, &f, NULL);
    nu_als_data_free(&data);
    if (st != NU_OK)
        return nu_error_context(st, "lookalike-mf: ");
    size_t U = ds->cfg.num_users, d = p->dim;
    m->num_users = U;
    m->dim = d;
    m->emb = malloc((U * d + 1) * sizeof *m->emb);
    m->user_of = malloc((U + 1) * sizeof *m->user_of);
    m->index_of = malloc((U + 1) * sizeof *m->index_of);
    if (!m->emb || !m->user_of || !m->index_of) {
        nu_als_factors_free(&f);
        nu_lookalike_mf_free(m);
        return nu_error(NU_ERR_NOMEM, "out of memory for lookalike-mf");
    }
    /* A user without train positives has the zero factor: no direction. */
    for (size_t u = 0; u < U; u++) {
        const double *x = f.X + u * d;
        double norm2 = 0;
        for (size_t e = 0; e < d; e++)
            norm2 += x[e] * x[e];
        m->index_of[u] = NU_TOPK_NONE;
        if (!(norm2 > 0) || !isfinite(norm2))
            continue;
        double inv = 1.0 / sqrt(norm2);
        float *row = m->emb + m->n_embedded * d;
        for (size_t e = 0; e < d; e++)
            row[e] = (float)(x[e] * inv);
        m->index_of[u] = (uint32_t)m->n_embedded;
        m->user_of[m->n_embedded++] = (uint32_t)u;
    }
    nu_als_factors_free(&f);
    m->table.rows = m->n_embedded;
    m->table.d = m->table.query_d = m->table.unit_d = d;
    m->table.f32 = m->emb;
    return NU_OK;
}

static int in_ctx(const nu_id_list *ctx, uint32_t u)
{
    for (size_t j = 0; j < ctx->count; j++)
        if (ctx->ids[j] == u)
            return 1;
    return 0;
}

/* Completes one ranked list of `got` users: users without an embedding in
 * row order, then NU_TOPK_NONE. */
static void fill_unembedded(const nu_lookalike_mf *m, const nu_id_list *ctx, size_t got, size_t k,
                            uint32_t *out)
{
    for (size_t u = 0; u < m->num_users && got < k; u++)
        if (m->index_of[u] == NU_TOPK_NONE && !in_ctx(ctx, (uint32_t)u))
            out[got++] = (uint32_t)u;
    while (got < k)
        out[got++] = NU_TOPK_NONE;
}

nu_status nu_lookalike_mf_rank(const nu_lookalike_mf *m, const nu_id_list *ctx, size_t cnt,
                               size_t k, int threads, const uint32_t *pop, uint32_t *out)
{
    size_t d = m->dim, n_ids = 0;
    for (size_t q = 0; q < cnt; q++)
        n_ids += ctx[q].count;
    float *Q = calloc(cnt * d + 1, sizeof *Q), *scores = malloc((cnt * k + 1) * sizeof *scores);
    uint32_t *ids = malloc((cnt * k + 1) * sizeof *ids);
    uint32_t *excl_ids = malloc((n_ids + 1) * sizeof *excl_ids);
    nu_id_list *excl = malloc((cnt + 1) * sizeof *excl);
    size_t *query_of = malloc((cnt + 1) * sizeof *query_of); /* searched query -> q */
    nu_status st = NU_OK;
    if (!Q || !scores || !ids || !excl_ids || !excl || !query_of)
        st = nu_error(NU_ERR_NOMEM, "out of memory for lookalike-mf");
    /* Queries: the sum (same direction as the mean) of the embedded context
     * users' unit rows; their embedded indices are left out of the search. */
    size_t n_search = 0;
    n_ids = 0;
    for (size_t q = 0; q < cnt && st == NU_OK; q++) {
        float *row = Q + n_search * d;
        nu_id_list *ex = &excl[n_search];
        ex->ids = excl_ids + n_ids;
        ex->count = 0;
        double norm2 = 0;
        for (size_t j = 0; j < ctx[q].count; j++) {
            uint32_t e = m->index_of[ctx[q].ids[j]];
            if (e == NU_TOPK_NONE)
                continue;
            excl_ids[n_ids + ex->count++] = e;
            for (size_t a = 0; a < d; a++)
                row[a] += m->emb[(size_t)e * d + a];
        }
        for (size_t a = 0; a < d; a++)
            norm2 += (double)row[a] * row[a];
        if (norm2 > 0) {
            query_of[n_search++] = q;
            n_ids += ex->count;
        } else { /* no embedded context user: Popular */
            memset(row, 0, d * sizeof *row);
            nu_eval_take(pop, m->num_users, &ctx[q], k, out + q * k);
        }
    }
    if (st == NU_OK && n_search > 0) {
        nu_search_opts so = {.k = k, .dtype = NU_TABLE_F32, .threads = threads};
        st = nu_search(&m->table, &so, Q, n_search, d, excl, ids, scores, NULL);
    }
    for (size_t b = 0; b < n_search && st == NU_OK; b++) {
        size_t q = query_of[b], got = 0;
        uint32_t *o = out + q * k;
        for (size_t j = 0; j < k && ids[b * k + j] != NU_TOPK_NONE; j++)
            o[got++] = m->user_of[ids[b * k + j]];
        fill_unembedded(m, &ctx[q], got, k, o);
    }
    free(Q);
    free(scores);
    free(ids);
    free(excl_ids);
    free(excl);
    free(query_of);
    return st;
}
