#include "retrieval/search_merge.h"

#include <math.h>
#include <stdlib.h>

/* A candidate with both its scores: sorted by `score` (the scanned one,
 * then the exact one) best first, as every result (nu_topk_pair's order,
 * kernels.h). */
typedef struct cand2 {
    float score, exact;
    uint32_t id;
} cand2;

static int cand2_cmp(const void *a, const void *b)
{
    const cand2 *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

size_t nu_search_merge_scratch_bytes(size_t parts, size_t pool)
{
    return (parts * pool + 1) * sizeof(cand2);
}

void nu_search_merge(nu_table_dtype dtype, size_t parts, size_t pool, size_t stride,
                     const uint32_t *ids, const float *approx, const float *exact, size_t k,
                     void *scratch, uint32_t *out_ids, float *out_scores)
{
    cand2 *c = scratch;
    size_t m = 0;
    int f32 = dtype == NU_TABLE_F32;
    for (size_t p = 0; p < parts; p++)
        for (size_t j = 0; j < pool && ids[p * stride + j] != NU_TOPK_NONE; j++) {
            c[m].id = ids[p * stride + j];
            c[m].score = approx[p * stride + j];
            c[m].exact = f32 ? c[m].score : exact[p * stride + j];
            m++;
        }
    qsort(c, m, sizeof *c, cand2_cmp);
    if (!f32) {
        /* The whole table's pool by the scanned score, ordered by the exact one. */
        if (m > pool)
            m = pool;
        for (size_t j = 0; j < m; j++)
            c[j].score = c[j].exact;
        qsort(c, m, sizeof *c, cand2_cmp);
    }
    for (size_t j = 0; j < k; j++) {
        out_ids[j] = j < m ? c[j].id : NU_TOPK_NONE;
        out_scores[j] = j < m ? c[j].score : -INFINITY;
    }
}
