#include "search.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "error.h"
#include "runtime/placement.h"

typedef nu_search_cand cand;

void nu_search_stats_free(nu_search_stats *s)
{
    free(s->shard_lo);
    free(s->shard_hi);
    free(s->shard_node);
    memset(s, 0, sizeof *s);
}

/* Rows of each thread: node n gets rows in proportion to its threads, and
 * its threads split them evenly. */
static void plan_shards(const nu_placement *pl, size_t rows, size_t *lo, size_t *hi)
{
    size_t before = 0;
    for (int n = 0; n < pl->nodes; n++) {
        size_t mine = (size_t)pl->node_threads[n];
        size_t nlo = rows * before / (size_t)pl->threads;
        size_t nhi = rows * (before + mine) / (size_t)pl->threads;
        size_t k = 0;
        for (int t = 0; t < pl->threads; t++) {
            if (pl->thread_node[t] != n)
                continue;
            lo[t] = nlo + (nhi - nlo) * k / mine;
            hi[t] = nlo + (nhi - nlo) * (k + 1) / mine;
            k++;
        }
        before += mine;
    }
}

/* Queries of width qd into rows of width d: the first ud columns
 * normalised; when the table carries prior columns (d = qd + 1) a 1 picks up
 * the global prior, and the qd - ud feature-prior indicators follow as given. */
static nu_status normalise_queries(const float *Q, size_t B, size_t ldq, size_t ud, size_t qd,
                                   size_t d, float *out)
{
    for (size_t b = 0; b < B; b++) {
        const float *q = Q + b * ldq;
        float *o = out + b * d;
        double ss = 0;
        for (size_t k = 0; k < qd; k++) {
            if (!isfinite(q[k]))
                return nu_error(NU_ERR_INVALID_ARG, "query %zu holds a NaN or Inf at %zu", b, k);
            if (k < ud)
                ss += (double)q[k] * q[k];
        }
        float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
        for (size_t k = 0; k < ud; k++)
            o[k] = q[k] * inv;
        if (d > qd)
            o[ud] = 1.0f;
        for (size_t k = ud; k < qd; k++)
            o[k + (d - qd)] = q[k];
    }
    return NU_OK;
}

static size_t pool_of(const nu_search_opts *o)
{
    size_t k = o->k;
    size_t pool = o->dtype == NU_TABLE_F32 ? k : (o->pool ? o->pool : (4 * k > 256 ? 4 * k : 256));
    return pool < k ? k : pool;
}

nu_status nu_search_plan_make(const nu_user_table *t, int threads, int pin, nu_search_plan *p)
{
    memset(p, 0, sizeof *p);
    nu_status st = nu_init();
    if (st == NU_OK)
        st = nu_placement_plan(threads, &p->pl);
    if (st != NU_OK)
        return st;
    p->pl.pin = pin;
    p->t = t;
    /* Fewer rows than threads: extra threads get empty shards. */
    p->lo = calloc((size_t)p->pl.threads, sizeof *p->lo);
    p->hi = calloc((size_t)p->pl.threads, sizeof *p->hi);
    if (!p->lo || !p->hi) {
        nu_search_plan_free(p);
        return nu_error(NU_ERR_NOMEM, "out of memory planning the search");
    }
    plan_shards(&p->pl, t->rows, p->lo, p->hi);
    return NU_OK;
}

void nu_search_plan_free(nu_search_plan *p)
{
    free(p->lo);
    free(p->hi);
    nu_placement_free(&p->pl);
    memset(p, 0, sizeof *p);
}

nu_status nu_search_scratch_make(const nu_search_plan *p, const nu_search_opts *o, size_t max_b,
                                 nu_search_scratch *s)
{
    memset(s, 0, sizeof *s);
    if (o->k == 0 || o->k > 100000)
        return nu_error(NU_ERR_INVALID_ARG, "k must be in 1..100000, got %zu", o->k);
    size_t T = (size_t)p->pl.threads, d = p->t->d, B = max_b ? max_b : 1, pool = pool_of(o);
    s->max_b = B;
    s->k = o->k;
    s->pool = pool;
    s->dtype = o->dtype;
    s->qn = malloc((B * d + 1) * sizeof *s->qn);
    s->q8 = o->dtype == NU_TABLE_I8 ? malloc(B * d + 1) : NULL;
    s->qscale = o->dtype == NU_TABLE_I8 ? malloc((B + 1) * sizeof *s->qscale) : NULL;
    s->tid_ids = malloc(T * B * pool * sizeof *s->tid_ids + 4);
    s->tid_sc = malloc(T * B * pool * sizeof *s->tid_sc + 4);
    s->merge = malloc((T * pool + 1) * B * sizeof(cand));
    if (!s->qn || !s->tid_ids || !s->tid_sc || !s->merge ||
        (o->dtype == NU_TABLE_I8 && (!s->q8 || !s->qscale))) {
        nu_search_scratch_free(s);
        return nu_error(NU_ERR_NOMEM, "out of memory for a search of %zu queries", B);
    }
    return NU_OK;
}

void nu_search_scratch_free(nu_search_scratch *s)
{
    free(s->qn);
    free(s->q8);
    free(s->qscale);
    free(s->tid_ids);
    free(s->tid_sc);
    free(s->merge);
    memset(s, 0, sizeof *s);
}

/* Threads of one run: the plan's, or fewer when the session asks. */
static int run_team(const nu_search_plan *p, const nu_search_scratch *s)
{
    int T = p->pl.threads;
    return s->team > 0 && s->team < T ? s->team : T;
}

/* Shard `part` of the plan (the rows thread `part` owns) into its own
 * top-pool lists. */
static void scan_shard(const nu_search_plan *p, nu_search_scratch *s, size_t B, int part,
                       const nu_id_list *exclude)
{
    const nu_kernel_table *K = nu_kernels();
    const nu_user_table *t = p->t;
    size_t d = t->d, pool = s->pool;
    size_t r0 = p->lo[part], n = p->hi[part] - p->lo[part];
    /* Ids are the whole table's: a row range starts at first_row. */
    uint32_t id0 = (uint32_t)(t->first_row + r0);
    uint32_t *ti = s->tid_ids + (size_t)part * B * pool;
    float *ts = s->tid_sc + (size_t)part * B * pool;
    if (s->dtype == NU_TABLE_F32)
        K->score_topk(B, n, d, s->qn, d, t->f32 + r0 * d, d, id0, pool, exclude, ti, ts);
    else if (s->dtype == NU_TABLE_BF16)
        K->score_topk_bf16(B, n, d, s->qn, d, t->bf16 + r0 * d, d, id0, pool, exclude, ti, ts);
    else
        K->score_topk_i8(B, n, d, s->q8, d, s->qscale, t->i8 + r0 * d, d, t->i8_scale + r0,
                         t->i8_sum + r0, id0, pool, exclude, ti, ts);
}

/* Normalises (and for int8 quantises) the queries, then the run's threads
 * scan every shard into its own top-pool lists (tid_ids, tid_sc). */
static nu_status scan(const nu_search_plan *p, nu_search_scratch *s, const float *Q, size_t B,
                      size_t ldq, const nu_id_list *exclude)
{
    const nu_user_table *t = p->t;
    if (!nu_user_table_has(t, s->dtype))
        return nu_error(NU_ERR_INVALID_ARG, "the user table holds no %s encoding",
                        nu_table_dtype_name(s->dtype));
    if (B > s->max_b)
        return nu_error(NU_ERR_INVALID_ARG, "%zu queries in one search, the scratch holds %zu", B,
                        s->max_b);
    const nu_placement *pl = &p->pl;
    size_t d = t->d, qd = t->query_d;
    int T = pl->threads;
    nu_status st = normalise_queries(Q, B, ldq, t->unit_d ? t->unit_d : qd, qd, d, s->qn);
    if (st != NU_OK)
        return st;
    if (s->q8)
        for (size_t b = 0; b < B; b++)
            nu_quantize_i8(s->qn + b * d, d, s->q8 + b * d, &s->qscale[b]);
    int team = run_team(p, s);
    void *caller = nu_placement_save_caller(pl);
#pragma omp parallel num_threads(team) if (team > 1)
    {
        nu_placement_bind_thread(pl, omp_get_thread_num());
        for (int tid = omp_get_thread_num(); tid < T; tid += team)
            scan_shard(p, s, B, tid, exclude);
    }
    nu_placement_restore_caller(pl, caller);
    return NU_OK;
}

/* Query b's candidates from every thread's list, cut to the pool's best
 * by the scanned score (bf16, int8), and sorted best first if `sorted`;
 * returns how many. */
static size_t gather_query(const nu_search_plan *p, nu_search_scratch *s, size_t B, size_t b,
                           cand *c, int sorted)
{
    size_t m = 0, pool = s->pool;
    for (int th = 0; th < p->pl.threads; th++)
        for (size_t j = 0; j < pool; j++) {
            size_t at = ((size_t)th * B + b) * pool + j;
            if (s->tid_ids[at] == NU_TOPK_NONE)
                break;
            c[m].id = s->tid_ids[at];
            c[m].score = s->tid_sc[at];
            m++;
        }
    if (s->dtype != NU_TABLE_F32 && m > pool) {
        nu_topk_select_best(c, m, pool);
        m = pool;
    }
    if (sorted)
        nu_topk_sort_best_first(c, m);
    return m;
}

/* Asks for the fp32 row of candidate `id` ahead of its scoring: on a cold
 * table each row is a cache miss, and one at a time they do not overlap. */
static void prefetch_row(const nu_user_table *t, uint32_t id)
{
    const char *row = (const char *)(t->f32 + ((size_t)id - t->first_row) * t->d);
    for (size_t off = 0; off < t->d * sizeof(float); off += 64)
        __builtin_prefetch(row + off);
}

/* Rows asked for ahead of the one being scored. */
enum { RERANK_AHEAD = 16 };

/* The exact fp32 score of row `id` (a global id) for normalised query qn. */
static float exact_score(const nu_user_table *t, const float *qn, uint32_t id)
{
    float sc;
    nu_kernels()->dot_rows(1, t->d, qn, t->f32 + ((size_t)id - t->first_row) * t->d, t->d, &sc);
    return sc;
}

/* Replaces the scanned scores of m candidates by their exact fp32 scores. */
static void rescore(const nu_user_table *t, const float *qn, cand *c, size_t m)
{
    for (size_t j = 0; j < m && j < RERANK_AHEAD; j++)
        prefetch_row(t, c[j].id);
    for (size_t j = 0; j < m; j++) {
        if (j + RERANK_AHEAD < m)
            prefetch_row(t, c[j + RERANK_AHEAD].id);
        c[j].score = exact_score(t, qn, c[j].id);
    }
}

nu_status nu_search_run(const nu_search_plan *p, nu_search_scratch *s, const float *Q, size_t B,
                        size_t ldq, const nu_id_list *exclude, uint32_t *ids, float *scores)
{
    if (B == 0)
        return nu_user_table_has(p->t, s->dtype) ? NU_OK : scan(p, s, Q, 0, ldq, exclude);
    nu_status st = scan(p, s, Q, B, ldq, exclude);
    if (st != NU_OK)
        return st;
    int team = run_team(p, s);
    size_t k = s->k, d = p->t->d;
    /* Merge the per-thread lists, then (bf16, int8) re-rank in fp32. */
#pragma omp parallel for num_threads(team) if (team > 1 && B > 1) schedule(static)
    for (size_t b = 0; b < B; b++) {
        cand *c = (cand *)s->merge + b * ((size_t)p->pl.threads * s->pool + 1);
        size_t m = gather_query(p, s, B, b, c, 0);
        if (s->dtype != NU_TABLE_F32)
            rescore(p->t, s->qn + b * d, c, m);
        /* The best k by the (exact) score, then only those sorted. */
        if (m > k) {
            nu_topk_select_best(c, m, k);
            m = k;
        }
        nu_topk_sort_best_first(c, m);
        for (size_t j = 0; j < k; j++) {
            ids[b * k + j] = j < m ? c[j].id : NU_TOPK_NONE;
            scores[b * k + j] = j < m ? c[j].score : -INFINITY;
        }
    }
    return NU_OK;
}

nu_status nu_search_run_pool(const nu_search_plan *p, nu_search_scratch *s, const float *Q,
                             size_t B, size_t ldq, const nu_id_list *exclude, uint32_t *ids,
                             float *approx, float *exact)
{
    nu_status st = scan(p, s, Q, B, ldq, exclude);
    if (st != NU_OK || B == 0)
        return st;
    int team = run_team(p, s);
    size_t pool = s->pool, d = p->t->d;
#pragma omp parallel for num_threads(team) if (team > 1 && B > 1) schedule(static)
    for (size_t b = 0; b < B; b++) {
        cand *c = (cand *)s->merge + b * ((size_t)p->pl.threads * pool + 1);
        size_t m = gather_query(p, s, B, b, c, 1);
        for (size_t j = 0; j < pool; j++) {
            ids[b * pool + j] = j < m ? c[j].id : NU_TOPK_NONE;
            approx[b * pool + j] = j < m ? c[j].score : -INFINITY;
        }
        if (s->dtype != NU_TABLE_F32)
            rescore(p->t, s->qn + b * d, c, m);
        for (size_t j = 0; j < pool; j++)
            exact[b * pool + j] = j < m ? c[j].score : -INFINITY;
    }
    return NU_OK;
}

nu_status nu_search(const nu_user_table *t, const nu_search_opts *o, const float *Q, size_t B,
                    size_t ldq, const nu_id_list *exclude, uint32_t *ids, float *scores,
                    nu_search_stats *stats)
{
    nu_search_plan p;
    nu_search_scratch sc;
    nu_status st = nu_search_plan_make(t, o->threads, o->pin, &p);
    if (st != NU_OK)
        return st;
    st = nu_search_scratch_make(&p, o, B, &sc);
    if (st == NU_OK)
        st = nu_search_run(&p, &sc, Q, B, ldq, exclude, ids, scores);
    if (st == NU_OK && stats) {
        int T = p.pl.threads;
        stats->threads = T;
        stats->nodes = p.pl.nodes;
        stats->shard_lo = p.lo;
        stats->shard_hi = p.hi;
        stats->shard_node = malloc((size_t)T * sizeof(int));
        if (stats->shard_node)
            memcpy(stats->shard_node, p.pl.thread_node, (size_t)T * sizeof(int));
        p.lo = p.hi = NULL;
    }
    nu_search_scratch_free(&sc);
    nu_search_plan_free(&p);
    return st;
}

size_t nu_search_place_table(const nu_user_table *t, int threads)
{
    nu_search_plan p;
    if (nu_search_plan_make(t, threads, 0, &p) != NU_OK)
        return 0;
    size_t bound = 0, d = t->d;
    for (int th = 0; p.pl.nodes > 1 && th < p.pl.threads; th++) {
        size_t r0 = p.lo[th], n = p.hi[th] - p.lo[th];
        int node = p.pl.thread_node[th];
        bound += (size_t)nu_placement_bind_area(&p.pl, node, t->f32 + r0 * d, n * d * sizeof(float));
        if (t->bf16)
            bound += (size_t)nu_placement_bind_area(&p.pl, node, t->bf16 + r0 * d, n * d * 2);
        if (t->i8)
            bound += (size_t)nu_placement_bind_area(&p.pl, node, t->i8 + r0 * d, n * d);
    }
    nu_search_plan_free(&p);
    return bound;
}
