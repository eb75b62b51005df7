#include "retrieval/search_merge.h"

#include <math.h>

/* The merge selects instead of sorting every candidate: the shards' lists
 * hold parts x pool candidates, and only k of them are wanted in order. */

size_t nu_search_merge_scratch_bytes(size_t parts, size_t pool)
{
    /* The candidates by one score, then those of the pool by the other. */
    return (2 * parts * pool + 1) * sizeof(nu_topk_pair);
}

/* a ranks at or before b: best first is a higher score, then a lower id. */
static int ranks_before(nu_topk_pair a, nu_topk_pair b)
{
    return a.score > b.score || (a.score == b.score && a.id <= b.id);
}

void nu_search_merge(nu_table_dtype dtype, size_t parts, size_t pool, size_t stride,
                     const uint32_t *ids, const float *approx, const float *exact, size_t k,
                     void *scratch, uint32_t *out_ids, float *out_scores)
{
    nu_topk_pair *c = scratch, *e = c + parts * pool;
    size_t m = 0;
    for (size_t p = 0; p < parts; p++)
        for (size_t j = 0; j < pool && ids[p * stride + j] != NU_TOPK_NONE; j++)
            c[m++] = (nu_topk_pair){approx[p * stride + j], ids[p * stride + j]};
    if (dtype != NU_TABLE_F32) {
        /* The whole table's pool by the scanned score: every candidate that
         * ranks at or before the pool-th best (ids are unique, so the order
         * is total and exactly `pool` do), with its exact score. */
        size_t n = 0;
        int cut = m > pool;
        nu_topk_pair last = {0};
        if (cut) {
            nu_topk_select_best(c, m, pool);
            last = c[pool - 1];
        }
        for (size_t p = 0; p < parts; p++)
            for (size_t j = 0; j < pool && ids[p * stride + j] != NU_TOPK_NONE; j++) {
                size_t at = p * stride + j;
                if (!cut || ranks_before((nu_topk_pair){approx[at], ids[at]}, last))
                    e[n++] = (nu_topk_pair){exact[at], ids[at]};
            }
        c = e;
        m = n;
    }
    /* The best k by the (exact) score, then only those sorted. */
    if (m > k) {
        nu_topk_select_best(c, m, k);
        m = k;
    }
    nu_topk_sort_best_first(c, m);
    for (size_t j = 0; j < k; j++) {
        out_ids[j] = j < m ? c[j].id : NU_TOPK_NONE;
        out_scores[j] = j < m ? c[j].score : -INFINITY;
    }
}
