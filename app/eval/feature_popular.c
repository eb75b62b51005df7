/* feature-popular (see feature_popular.h): an inverted index from feature
 * value to the train items that hold it, so a new item touches only the
 * items it shares a value with; then a bounded heap picks the top k. */
#include "eval/feature_popular.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels.h"

/* Field f's values of item `item` (empty for dense fields). */
static const uint32_t *item_values(const nu_dataset *ds, size_t item, size_t f, size_t *n)
{
    size_t at = item * ds->cfg.n_prefix + f;
    *n = ds->feats.feat_off[at + 1] - ds->feats.feat_off[at];
    return ds->feats.feat_vals + ds->feats.feat_off[at];
}

static int counts_as_value(const nu_dataset *ds, size_t f, uint32_t v)
{
    return ds->cfg.prefix[f].kind != NU_FIELD_DENSE && v != 0 && v < ds->cfg.prefix[f].size;
}

void nu_feature_popular_free(nu_feature_popular *f)
{
    free(f->post_off);
    free(f->post_item);
    free(f->weight);
    free(f->touched);
    free(f->score);
    free(f->seen);
    free(f->in_ctx);
    memset(f, 0, sizeof *f);
}

/* Adds each train item (with positives) to the posting list of each of its
 * distinct values: counting on the first pass, filling on the second. */
static void index_values(nu_feature_popular *f, int fill, size_t *next)
{
    const nu_dataset *ds = f->ds;
    for (size_t i = 0; i < ds->num_items; i++) {
        if (ds->split[i] != NU_SPLIT_TRAIN || nu_dataset_n_pos(ds, i) == 0)
            continue;
        for (size_t fld = 0; fld < ds->cfg.n_prefix; fld++) {
            size_t n;
            const uint32_t *v = item_values(ds, i, fld, &n);
            for (size_t j = 0; j < n; j++) {
                if (!counts_as_value(ds, fld, v[j]))
                    continue;
                size_t g = f->value_base[fld] + v[j];
                if (f->seen[g] == (uint32_t)i + 1) /* a repeated value of this item */
                    continue;
                f->seen[g] = (uint32_t)i + 1;
                if (fill)
                    f->post_item[next[g]++] = (uint32_t)i;
                else
                    f->post_off[g + 1]++;
            }
        }
    }
    memset(f->seen, 0, f->n_values * sizeof *f->seen);
}

nu_status nu_feature_popular_build(const nu_dataset *ds, const uint32_t *pop, nu_feature_popular *f)
{
    memset(f, 0, sizeof *f);
    f->ds = ds;
    f->pop = pop;
    for (size_t fld = 0; fld < ds->cfg.n_prefix; fld++) {
        f->value_base[fld] = f->n_values;
        if (ds->cfg.prefix[fld].kind != NU_FIELD_DENSE)
            f->n_values += ds->cfg.prefix[fld].size;
    }
    size_t U = ds->cfg.num_users, V = f->n_values;
    f->post_off = calloc(V + 1, sizeof *f->post_off);
    f->seen = calloc(V + 1, sizeof *f->seen);
    f->weight = calloc(ds->num_items + 1, sizeof *f->weight);
    f->touched = malloc((ds->num_items + 1) * sizeof *f->touched);
    f->score = calloc(U + 1, sizeof *f->score);
    f->in_ctx = calloc(U + 1, 1);
    size_t *next = NULL;
    if (!f->post_off || !f->seen || !f->weight || !f->touched || !f->score || !f->in_ctx)
        goto nomem;
    index_values(f, 0, NULL);
    for (size_t g = 0; g < V; g++)
        f->post_off[g + 1] += f->post_off[g];
    f->post_item = malloc((f->post_off[V] + 1) * sizeof *f->post_item);
    next = malloc((V + 1) * sizeof *next);
    if (!f->post_item || !next)
        goto nomem;
    memcpy(next, f->post_off, (V + 1) * sizeof *next);
    index_values(f, 1, next);
    free(next);
    return NU_OK;
nomem:
    free(next);
    nu_feature_popular_free(f);
    return nu_error(NU_ERR_NOMEM, "out of memory for feature-popular");
}

/* A user in the heap: its score and its place in the Popular order. */
typedef struct ranked {
    uint64_t score;
    uint32_t rank;
} ranked;

/* a ranks below b: lower score, or the same score later in Popular order. */
static int below(ranked a, ranked b)
{
    return a.score < b.score || (a.score == b.score && a.rank > b.rank);
}

/* Min-heap on `below`: h[0] is the weakest of the kept users. */
static void sift_down(ranked *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && below(h[l], h[m]))
            m = l;
        if (r < n && below(h[r], h[m]))
            m = r;
        if (m == i)
            return;
        ranked t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(ranked *h, size_t i)
{
    while (i > 0 && below(h[i], h[(i - 1) / 2])) {
        ranked t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* Scores every user for the new item (f->score). */
static void score_users(nu_feature_popular *f, size_t item)
{
    const nu_dataset *ds = f->ds;
    size_t n_touched = 0;
    if (++f->stamp == 0) { /* wrapped: start the marks afresh */
        memset(f->seen, 0, f->n_values * sizeof *f->seen);
        f->stamp = 1;
    }
    for (size_t fld = 0; fld < ds->cfg.n_prefix; fld++) {
        size_t n;
        const uint32_t *v = item_values(ds, item, fld, &n);
        for (size_t j = 0; j < n; j++) {
            if (!counts_as_value(ds, fld, v[j]))
                continue;
            size_t g = f->value_base[fld] + v[j];
            if (f->seen[g] == f->stamp) /* count each distinct value once */
                continue;
            f->seen[g] = f->stamp;
            for (size_t p = f->post_off[g]; p < f->post_off[g + 1]; p++) {
                uint32_t i = f->post_item[p];
                if (f->weight[i]++ == 0)
                    f->touched[n_touched++] = i;
            }
        }
    }
    for (size_t t = 0; t < n_touched; t++) {
        uint32_t i = f->touched[t];
        for (size_t p = ds->pos.off[i]; p < ds->pos.off[i + 1]; p++)
            f->score[ds->pos.user[p]] += f->weight[i];
        f->weight[i] = 0;
    }
}

nu_status nu_feature_popular_rank(nu_feature_popular *f, size_t item, const nu_id_list *ctx,
                                  size_t k, uint32_t *out)
{
    size_t U = f->ds->cfg.num_users, n = 0;
    ranked *heap = malloc((k + 1) * sizeof *heap);
    if (!heap)
        return nu_error(NU_ERR_NOMEM, "out of memory for feature-popular");
    score_users(f, item);
    for (size_t j = 0; ctx && j < ctx->count; j++)
        f->in_ctx[ctx->ids[j]] = 1;
    for (size_t r = 0; r < U; r++) {
        uint32_t u = f->pop[r];
        ranked c = {f->score[u], (uint32_t)r};
        f->score[u] = 0;
        if (f->in_ctx[u] || k == 0)
            continue;
        if (n < k) {
            heap[n] = c;
            sift_up(heap, n++);
        } else if (below(heap[0], c)) {
            heap[0] = c;
            sift_down(heap, n, 0);
        }
    }
    for (size_t j = 0; ctx && j < ctx->count; j++)
        f->in_ctx[ctx->ids[j]] = 0;
    /* Pop the weakest first: the list fills from its end. */
    for (size_t j = k; j-- > n;)
        out[j] = NU_TOPK_NONE;
    for (size_t m = n; m > 0; m--) {
        out[m - 1] = f->pop[heap[0].rank];
        heap[0] = heap[m - 1];
        sift_down(heap, m - 1, 0);
    }
    free(heap);
    return NU_OK;
}
