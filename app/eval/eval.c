/* Item cold-start evaluation: stages, recall, the model and the baselines
 * through one loop (see eval.h). */
#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model/feature_prior.h"
#include "eval/feature_popular.h"
#include "eval/lookalike_mf.h"
#include "kernels.h"
#include "engine/engine.h"
#include "retrieval/user_table.h"
#include "util/rng.h"

/* Queries searched together: bounds the id/score buffers. */
#define EVAL_CHUNK 256

static const char *const method_names[NU_EVAL_METHOD_COUNT] = {
    "model", "random", "popular", "lookalike-emb", "lookalike-cf", "lookalike-mf", "feature-popular"};

const char *nu_eval_method_name(nu_eval_method m)
{
    return (unsigned)m < NU_EVAL_METHOD_COUNT ? method_names[m] : "?";
}

int nu_eval_method_parse(const char *s, nu_eval_method *out)
{
    for (int i = 0; i < NU_EVAL_METHOD_COUNT; i++)
        if (strcmp(s, method_names[i]) == 0) {
            *out = (nu_eval_method)i;
            return 1;
        }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

double nu_recall_at_k(const uint32_t *ranked, size_t n_ranked, size_t k, const uint32_t *targets,
                      size_t n_targets)
{
    if (n_targets == 0)
        return 0;
    /* Distinct targets, sorted, so a repeated positive counts once. */
    uint32_t stackbuf[256], *t = n_targets <= 256 ? stackbuf : malloc(n_targets * sizeof *t);
    if (!t)
        return 0;
    memcpy(t, targets, n_targets * sizeof *t);
    qsort(t, n_targets, sizeof *t, cmp_u32);
    size_t nt = 0;
    for (size_t i = 0; i < n_targets; i++)
        if (i == 0 || t[i] != t[nt - 1])
            t[nt++] = t[i];
    size_t lim = k < n_ranked ? k : n_ranked, hit = 0;
    for (size_t j = 0; j < lim; j++) {
        if (ranked[j] == NU_TOPK_NONE)
            continue;
        int dup = 0; /* a ranked list should not repeat, but never count twice */
        for (size_t q = 0; q < j && !dup; q++)
            dup = ranked[q] == ranked[j];
        if (!dup && bsearch(&ranked[j], t, nt, sizeof *t, cmp_u32))
            hit++;
    }
    if (t != stackbuf)
        free(t);
    return (double)hit / (double)nt;
}

size_t nu_eval_stage_items(const nu_dataset *ds, nu_split split, size_t s, size_t *items)
{
    size_t n = 0;
    for (size_t i = 0; i < ds->num_items; i++)
        if (ds->split[i] == (uint8_t)split && nu_dataset_n_pos(ds, i) >= s + 1) {
            if (items)
                items[n] = i;
            n++;
        }
    return n;
}

void nu_eval_case(const nu_dataset *ds, size_t item, size_t s, const uint32_t **ctx,
                  const uint32_t **targets, size_t *n_targets)
{
    const uint32_t *u = ds->pos.user + ds->pos.off[item];
    *ctx = u;
    *targets = u + s;
    *n_targets = nu_dataset_n_pos(ds, item) - s;
}

typedef struct pop_entry {
    size_t count;
    uint32_t row;
} pop_entry;

static int cmp_pop(const void *a, const void *b)
{
    const pop_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

void nu_eval_popular_order(const nu_dataset *ds, uint32_t *order)
{
    size_t U = ds->cfg.num_users;
    pop_entry *e = calloc(U ? U : 1, sizeof *e);
    size_t *counts = malloc((U ? U : 1) * sizeof *counts);
    if (!e || !counts) { /* fall back to row order rather than fail a baseline */
        free(e);
        free(counts);
        for (size_t r = 0; r < U; r++)
            order[r] = (uint32_t)r;
        return;
    }
    nu_dataset_user_positives(ds, NU_SPLIT_TRAIN, counts);
    for (size_t r = 0; r < U; r++) {
        e[r].row = (uint32_t)r;
        e[r].count = counts[r];
    }
    free(counts);
    qsort(e, U, sizeof *e, cmp_pop);
    for (size_t r = 0; r < U; r++)
        order[r] = e[r].row;
    free(e);
}

static int in_list(const nu_id_list *l, uint32_t id)
{
    for (size_t i = 0; l && i < l->count; i++)
        if (l->ids[i] == id)
            return 1;
    return 0;
}

void nu_eval_take(const uint32_t *order, size_t n, const nu_id_list *excl, size_t k, uint32_t *out)
{
    size_t got = 0;
    for (size_t i = 0; i < n && got < k; i++)
        if (!in_list(excl, order[i]))
            out[got++] = order[i];
    while (got < k)
        out[got++] = NU_TOPK_NONE;
}

/* k users drawn uniformly without replacement, excluding excl: a partial
 * Fisher-Yates over perm (any permutation works as the start). */
static void random_take(nu_random *rng, uint32_t *perm, size_t n, const nu_id_list *excl, size_t k,
                        uint32_t *out)
{
    size_t got = 0;
    for (size_t i = 0; i < n && got < k; i++) {
        size_t r = i + (size_t)nu_random_below(rng, n - i);
        uint32_t tmp = perm[i];
        perm[i] = perm[r];
        perm[r] = tmp;
        if (!in_list(excl, perm[i]))
            out[got++] = perm[i];
    }
    while (got < k)
        out[got++] = NU_TOPK_NONE;
}

/* What one stage needs, for every method. */
typedef struct eval_ctx {
    const nu_dataset *ds;
    const nu_eval_opts *o;
    size_t U, kmax;
    uint32_t *pop;  /* popular order */
    uint32_t *perm; /* random */
    nu_random rng;
    nu_user_table table;
    int has_table;
    nu_model plain; /* lookalike-emb: the model without its serving priors */
    nu_engine eng;  /* over table: the model's serving path */
    nu_session ses;
    int has_engine;
    /* lookalike-cf: each user's train-split positive items (CSR), 1/sqrt of
     * their count, a score per user and the users scored (to reset). */
    size_t *u_off;
    uint32_t *u_items;
    float *inv_len, *score;
    uint32_t *scored;
    uint8_t *taken;
    int genre_field; /* multi-valued field used at stage 0, or -1 */
    nu_lookalike_mf mf;
    int has_mf;
    nu_feature_popular fp;
    int has_fp;
} eval_ctx;

/* Users with a score, best first (ties by lower row), then the popular order
 * for the slots left; never a context user. */
typedef struct scored_user {
    float score;
    uint32_t row;
} scored_user;

static int cmp_scored(const void *a, const void *b)
{
    const scored_user *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static void cf_rank(eval_ctx *c, size_t n_scored, const nu_id_list *excl, uint32_t *out)
{
    scored_user *su = malloc((n_scored + 1) * sizeof *su);
    size_t got = 0;
    if (su) {
        for (size_t i = 0; i < n_scored; i++) {
            su[i].row = c->scored[i];
            su[i].score = c->score[c->scored[i]];
        }
        qsort(su, n_scored, sizeof *su, cmp_scored);
        for (size_t i = 0; i < n_scored && got < c->kmax; i++)
            if (!in_list(excl, su[i].row)) {
                out[got++] = su[i].row;
                c->taken[su[i].row] = 1;
            }
    }
    for (size_t i = 0; i < c->U && got < c->kmax; i++)
        if (!c->taken[c->pop[i]] && !in_list(excl, c->pop[i]))
            out[got++] = c->pop[i];
    while (got < c->kmax)
        out[got++] = NU_TOPK_NONE;
    for (size_t i = 0; i < n_scored; i++) {
        c->score[c->scored[i]] = 0;
        c->taken[c->scored[i]] = 0;
    }
    free(su);
}

static void cf_add(eval_ctx *c, uint32_t v, float w, size_t *n_scored)
{
    if (c->score[v] == 0)
        c->scored[(*n_scored)++] = v;
    c->score[v] += w;
}

/* Jaccard similarity of two sorted-or-not small value lists. */
static float jaccard(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    if (na == 0 || nb == 0)
        return 0;
    size_t common = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (a[i] == b[j]) {
                common++;
                break;
            }
    return (float)common / (float)(na + nb - common);
}

#define CF_SIMILAR_ITEMS 20

/* Stage s >= 1: score(v) = sum over context users c of cos(c, v) over
 * train-split positives; stage 0: users of the CF_SIMILAR_ITEMS train items
 * most similar by genre, weighted by that similarity. */
static void cf_case(eval_ctx *c, size_t item, size_t s, const nu_id_list *excl, uint32_t *out)
{
    const nu_dataset *ds = c->ds;
    size_t n_scored = 0;
    if (s > 0) {
        for (size_t j = 0; j < s; j++) {
            uint32_t u = excl->ids[j];
            for (size_t a = c->u_off[u]; a < c->u_off[u + 1]; a++) {
                size_t it = c->u_items[a];
                for (size_t p = ds->pos.off[it]; p < ds->pos.off[it + 1]; p++) {
                    uint32_t v = ds->pos.user[p];
                    cf_add(c, v, c->inv_len[u] * c->inv_len[v], &n_scored);
                }
            }
        }
    } else if (c->genre_field >= 0) {
        size_t k = ds->cfg.n_prefix, f = (size_t)c->genre_field;
        const uint32_t *g = ds->feats.feat_vals + ds->feats.feat_off[item * k + f];
        size_t ng = ds->feats.feat_off[item * k + f + 1] - ds->feats.feat_off[item * k + f];
        size_t best[CF_SIMILAR_ITEMS];
        float bsim[CF_SIMILAR_ITEMS];
        size_t nb = 0;
        for (size_t it = 0; it < ds->num_items; it++) {
            if (ds->split[it] != NU_SPLIT_TRAIN)
                continue;
            const uint32_t *h = ds->feats.feat_vals + ds->feats.feat_off[it * k + f];
            size_t nh = ds->feats.feat_off[it * k + f + 1] - ds->feats.feat_off[it * k + f];
            float sim = jaccard(g, ng, h, nh);
            if (sim <= 0 || (nb == CF_SIMILAR_ITEMS && sim <= bsim[nb - 1]))
                continue;
            size_t pos = nb < CF_SIMILAR_ITEMS ? nb++ : nb - 1;
            while (pos > 0 && bsim[pos - 1] < sim) { /* keep sorted; ties: earlier item first */
                best[pos] = best[pos - 1];
                bsim[pos] = bsim[pos - 1];
                pos--;
            }
            best[pos] = it;
            bsim[pos] = sim;
        }
        for (size_t b = 0; b < nb; b++)
            for (size_t p = ds->pos.off[best[b]]; p < ds->pos.off[best[b] + 1]; p++)
                cf_add(c, ds->pos.user[p], bsim[b], &n_scored);
    }
    cf_rank(c, n_scored, excl, out);
}

static nu_status cf_setup(eval_ctx *c)
{
    const nu_dataset *ds = c->ds;
    size_t U = c->U;
    c->u_off = calloc(U + 1, sizeof *c->u_off);
    c->inv_len = calloc(U + 1, sizeof *c->inv_len);
    c->score = calloc(U + 1, sizeof *c->score);
    c->scored = malloc((U + 1) * sizeof *c->scored);
    c->taken = calloc(U + 1, 1);
    if (!c->u_off || !c->inv_len || !c->score || !c->scored || !c->taken)
        return nu_error(NU_ERR_NOMEM, "out of memory for lookalike-cf");
    nu_dataset_user_positives(ds, NU_SPLIT_TRAIN, c->u_off + 1); /* counts, then offsets */
    for (size_t u = 0; u < U; u++) {
        c->inv_len[u] = c->u_off[u + 1] ? 1.0f / sqrtf((float)c->u_off[u + 1]) : 0.0f;
        c->u_off[u + 1] += c->u_off[u];
    }
    c->u_items = malloc((c->u_off[U] + 1) * sizeof *c->u_items);
    size_t *fill = calloc(U + 1, sizeof *fill);
    if (!c->u_items || !fill) {
        free(fill);
        return nu_error(NU_ERR_NOMEM, "out of memory for lookalike-cf");
    }
    for (size_t i = 0; i < ds->num_items; i++)
        if (ds->split[i] == NU_SPLIT_TRAIN)
            for (size_t p = ds->pos.off[i]; p < ds->pos.off[i + 1]; p++) {
                uint32_t u = ds->pos.user[p];
                c->u_items[c->u_off[u] + fill[u]++] = (uint32_t)i;
            }
    free(fill);
    c->genre_field = -1;
    for (size_t f = 0; f < ds->cfg.n_prefix; f++)
        if (ds->cfg.prefix[f].kind == NU_FIELD_MULTI &&
            (c->genre_field < 0 || strcmp(ds->cfg.prefix[f].name, "genres") == 0))
            c->genre_field = (int)f;
    return NU_OK;
}

/* lookalike-emb's queries (cnt x d into Q), or the model's ranked lists
 * (the engine's recommend, the context left out) for cases [first, first +
 * cnt) of one stage. */
static nu_status model_queries(eval_ctx *c, const size_t *items, size_t first, size_t cnt, size_t s,
                               float *Q, uint32_t *ids, float *scores)
{
    const nu_dataset *ds = c->ds;
    const nu_model *m = c->o->model;
    size_t k = ds->cfg.n_prefix, dw = ds->feats.dense_width, d = m->cfg.d;
    if (c->o->method == NU_EVAL_LOOKALIKE_EMB) {
        /* Mean of the context users' (unit) table rows: cosine search
         * normalises it. */
        for (size_t q = 0; q < cnt; q++) {
            const uint32_t *ctx, *tg;
            size_t nt;
            nu_eval_case(ds, items[first + q], s, &ctx, &tg, &nt);
            float *row = Q + q * d;
            memset(row, 0, d * sizeof *row);
            for (size_t j = 0; j < s; j++)
                for (size_t e = 0; e < d; e++)
                    row[e] += c->table.f32[(size_t)ctx[j] * c->table.d + e] / (float)s;
        }
        return NU_OK;
    }
    nu_items it;
    nu_items_init(&it, &m->cfg);
    nu_status st = NU_OK;
    for (size_t q = 0; q < cnt && st == NU_OK; q++) {
        size_t item = items[first + q];
        size_t counts[NU_MAX_FIELDS];
        for (size_t f = 0; f < k; f++)
            counts[f] = ds->feats.feat_off[item * k + f + 1] - ds->feats.feat_off[item * k + f];
        st = nu_items_push(&it, &m->cfg, ds->items.names[item], ds->pos.user + ds->pos.off[item], s,
                           ds->feats.feat_vals + ds->feats.feat_off[item * k], counts,
                           dw ? ds->feats.dense + item * dw : NULL);
    }
    /* Each item's users are its context: the history recommend leaves out. */
    if (st == NU_OK)
        st = nu_engine_recommend(&c->ses, &it, 0, cnt, ids, scores);
    nu_items_free(&it);
    return st;
}

/* Ranked lists (cnt x kmax) for cases [first, first + cnt) of stage s. */
static nu_status rank_chunk(eval_ctx *c, const size_t *items, size_t first, size_t cnt, size_t s,
                            nu_id_list *excl, float *Q, uint32_t *ids, float *scores)
{
    nu_eval_method meth = c->o->method;
    if ((meth == NU_EVAL_LOOKALIKE_EMB || meth == NU_EVAL_LOOKALIKE_MF) && s == 0)
        meth = NU_EVAL_POPULAR; /* no context to average: the documented fallback */
    if (meth == NU_EVAL_LOOKALIKE_MF)
        return nu_lookalike_mf_rank(&c->mf, excl, cnt, c->kmax, c->o->threads, c->pop, ids);
    if (meth == NU_EVAL_FEATURE_POPULAR) {
        nu_status st = NU_OK;
        for (size_t q = 0; q < cnt && st == NU_OK; q++)
            st = nu_feature_popular_rank(&c->fp, items[first + q], &excl[q], c->kmax,
                                         ids + q * c->kmax);
        return st;
    }
    if (meth == NU_EVAL_LOOKALIKE_CF) {
        for (size_t q = 0; q < cnt; q++)
            cf_case(c, items[first + q], s, &excl[q], ids + q * c->kmax);
        return NU_OK;
    }
    if (meth == NU_EVAL_POPULAR || meth == NU_EVAL_RANDOM) {
        for (size_t q = 0; q < cnt; q++) {
            if (meth == NU_EVAL_POPULAR)
                nu_eval_take(c->pop, c->U, &excl[q], c->kmax, ids + q * c->kmax);
            else
                random_take(&c->rng, c->perm, c->U, &excl[q], c->kmax, ids + q * c->kmax);
        }
        return NU_OK;
    }
    nu_status st = model_queries(c, items, first, cnt, s, Q, ids, scores);
    if (st != NU_OK || meth == NU_EVAL_MODEL)
        return st;
    return nu_engine_search(&c->ses, Q, cnt, c->table.query_d, excl, ids, scores);
}

/* Room for one stage's per-item lists. */
static nu_status per_item_alloc(nu_eval_per_item *pi, size_t si, const size_t *items, size_t n,
                                size_t n_k)
{
    pi->count[si] = n;
    pi->item[si] = malloc((n + 1) * sizeof *pi->item[si]);
    pi->recall[si] = malloc((n * n_k + 1) * sizeof *pi->recall[si]);
    if (!pi->item[si] || !pi->recall[si])
        return nu_error(NU_ERR_NOMEM, "out of memory for per-item recall");
    memcpy(pi->item[si], items, n * sizeof *items);
    return NU_OK;
}

static nu_status run_stage(eval_ctx *c, size_t si, nu_eval_result *r, nu_eval_per_item *pi,
                           size_t *items, nu_id_list *excl, float *Q, uint32_t *ids, float *scores)
{
    const nu_dataset *ds = c->ds;
    size_t s = r->stages[si];
    size_t n = nu_eval_stage_items(ds, c->o->split, s, items);
    double sum[NU_EVAL_MAX_K] = {0};
    if (pi) {
        nu_status st = per_item_alloc(pi, si, items, n, r->n_k);
        if (st != NU_OK)
            return st;
    }
    for (size_t first = 0; first < n; first += EVAL_CHUNK) {
        size_t cnt = n - first < EVAL_CHUNK ? n - first : EVAL_CHUNK;
        for (size_t q = 0; q < cnt; q++) {
            const uint32_t *ctx, *tg;
            size_t nt;
            nu_eval_case(ds, items[first + q], s, &ctx, &tg, &nt);
            excl[q].ids = ctx;
            excl[q].count = s;
        }
        nu_status st = rank_chunk(c, items, first, cnt, s, excl, Q, ids, scores);
        if (st != NU_OK)
            return nu_error_context(st, "stage %zu: ", s);
        for (size_t q = 0; q < cnt; q++) {
            const uint32_t *ctx, *tg;
            size_t nt;
            nu_eval_case(ds, items[first + q], s, &ctx, &tg, &nt);
            for (size_t j = 0; j < r->n_k; j++) {
                double rec = nu_recall_at_k(ids + q * c->kmax, c->kmax, r->ks[j], tg, nt);
                sum[j] += rec;
                if (pi)
                    pi->recall[si][(first + q) * r->n_k + j] = rec;
            }
        }
    }
    r->items[si] = n;
    for (size_t j = 0; j < r->n_k; j++)
        r->recall[si][j] = n ? sum[j] / (double)n : 0.0;
    return NU_OK;
}

static nu_status check_opts(const nu_dataset *ds, const nu_eval_opts *o)
{
    if (o->n_stages == 0 || o->n_stages > NU_EVAL_MAX_STAGES || o->n_k == 0 || o->n_k > NU_EVAL_MAX_K)
        return nu_error(NU_ERR_INVALID_ARG, "1..%d stages and 1..%d values of K", NU_EVAL_MAX_STAGES,
                        NU_EVAL_MAX_K);
    for (size_t j = 0; j < o->n_k; j++)
        if (o->ks[j] == 0)
            return nu_error(NU_ERR_INVALID_ARG, "K must be at least 1");
    if ((unsigned)o->method >= NU_EVAL_METHOD_COUNT || (unsigned)o->split > NU_SPLIT_TEST)
        return nu_error(NU_ERR_INVALID_ARG, "unknown method or split");
    if (o->method == NU_EVAL_MODEL || o->method == NU_EVAL_LOOKALIKE_EMB) {
        if (!o->model)
            return nu_error(NU_ERR_INVALID_ARG, "%s needs a model", nu_eval_method_name(o->method));
        return nu_dataset_check_model(ds, o->model);
    }
    return NU_OK;
}

void nu_eval_per_item_free(nu_eval_per_item *pi)
{
    for (size_t si = 0; si < NU_EVAL_MAX_STAGES; si++) {
        free(pi->item[si]);
        free(pi->recall[si]);
    }
    memset(pi, 0, sizeof *pi);
}

nu_status nu_eval_run(const nu_dataset *ds, const nu_eval_opts *o, nu_eval_result *r)
{
    return nu_eval_run_per_item(ds, o, r, NULL);
}

/* The fitted state of the baselines that need one. */
static nu_status setup_method(eval_ctx *c)
{
    const nu_eval_opts *o = c->o;
    if (o->method == NU_EVAL_LOOKALIKE_CF)
        return cf_setup(c);
    if (o->method == NU_EVAL_LOOKALIKE_MF) {
        nu_als_params p;
        nu_als_defaults(&p);
        p.seed = o->seed;
        p.threads = o->threads;
        nu_status st = nu_lookalike_mf_build(c->ds, &p, &c->mf);
        c->has_mf = st == NU_OK;
        return st;
    }
    if (o->method == NU_EVAL_FEATURE_POPULAR) {
        nu_status st = nu_feature_popular_build(c->ds, c->pop, &c->fp);
        c->has_fp = st == NU_OK;
        return st;
    }
    return NU_OK;
}

nu_status nu_eval_run_per_item(const nu_dataset *ds, const nu_eval_opts *o, nu_eval_result *r,
                               nu_eval_per_item *pi)
{
    if (pi)
        memset(pi, 0, sizeof *pi);
    nu_status st = check_opts(ds, o);
    if (st != NU_OK)
        return st;
    memset(r, 0, sizeof *r);
    if (pi) {
        pi->n_stages = o->n_stages;
        pi->n_k = o->n_k;
    }
    r->n_stages = o->n_stages;
    r->n_k = o->n_k;
    memcpy(r->stages, o->stages, sizeof r->stages);
    memcpy(r->ks, o->ks, sizeof r->ks);
    eval_ctx c = {.ds = ds, .o = o, .U = ds->cfg.num_users, .rng = {o->seed}};
    for (size_t j = 0; j < o->n_k; j++)
        if (o->ks[j] > c.kmax)
            c.kmax = o->ks[j];
    size_t d = o->model ? nu_model_query_width(o->model) : 1, U1 = c.U ? c.U : 1;
    size_t *items = malloc((ds->num_items + 1) * sizeof *items);
    nu_id_list *excl = malloc(EVAL_CHUNK * sizeof *excl);
    float *Q = malloc(EVAL_CHUNK * d * sizeof *Q);
    uint32_t *ids = malloc(EVAL_CHUNK * c.kmax * sizeof *ids);
    float *scores = malloc(EVAL_CHUNK * c.kmax * sizeof *scores);
    c.pop = malloc(U1 * sizeof *c.pop);
    c.perm = malloc(U1 * sizeof *c.perm);
    if (!items || !excl || !Q || !ids || !scores || !c.pop || !c.perm) {
        st = nu_error(NU_ERR_NOMEM, "out of memory for the evaluation");
        goto done;
    }
    nu_eval_popular_order(ds, c.pop);
    for (size_t u = 0; u < c.U; u++)
        c.perm[u] = (uint32_t)u;
    if (o->method == NU_EVAL_MODEL || o->method == NU_EVAL_LOOKALIKE_EMB) {
        /* lookalike-emb is the cosine to the context's mean row alone: its
         * table carries none of the model's serving priors. */
        c.plain = *o->model;
        c.plain.cfg.prior_weight = c.plain.cfg.feature_prior_weight = 0;
        const nu_model *served = o->method == NU_EVAL_MODEL ? o->model : &c.plain;
        st = nu_user_table_build(served, 0, 0, &c.table);
        if (st != NU_OK)
            goto done;
        c.has_table = 1;
        nu_engine_opts eo = {.threads = o->threads, .max_batch = EVAL_CHUNK, .k = c.kmax,
                             .dtype = NU_TABLE_F32,
                             .gen = o->method == NU_EVAL_MODEL ? o->gen : NU_GEN_FP32};
        st = nu_engine_init(served, &c.table, &eo, &c.eng);
        if (st == NU_OK) {
            c.has_engine = 1;
            st = nu_session_init(&c.eng, &c.ses);
        }
        if (st != NU_OK)
            goto done;
    }
    st = setup_method(&c);
    for (size_t si = 0; si < o->n_stages && st == NU_OK; si++)
        st = run_stage(&c, si, r, pi, items, excl, Q, ids, scores);
done:
    if (c.has_mf)
        nu_lookalike_mf_free(&c.mf);
    if (c.has_fp)
        nu_feature_popular_free(&c.fp);
    free(c.u_off);
    free(c.u_items);
    free(c.inv_len);
    free(c.score);
    free(c.scored);
    free(c.taken);
    if (c.has_engine) {
        nu_session_release(&c.ses);
        nu_engine_release(&c.eng);
    }
    if (c.has_table)
        nu_user_table_free(&c.table);
    free(items);
    free(excl);
    free(Q);
    free(ids);
    free(scores);
    free(c.pop);
    free(c.perm);
    return st;
}
