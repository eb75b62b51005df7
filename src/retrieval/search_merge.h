/* The global top-K of one query from the candidates of several shards of
 * a table (nu_search_run_pool on each), equal bit for bit to a search of
 * the whole table: for fp32 the best k of the union; for bf16 and int8 the
 * best `pool` of the union by the scanned score (the whole table's pool,
 * since each shard sent its own best pool), then ordered by the exact
 * score.  Ties by lower id, as everywhere. */
#ifndef NU_SEARCH_MERGE_H
#define NU_SEARCH_MERGE_H

#include "retrieval/search.h"

/* Bytes of the scratch of a merge of parts lists of pool candidates. */
size_t nu_search_merge_scratch_bytes(size_t parts, size_t pool);
/* parts lists of `pool` candidates each, part i at ids[i * stride] (and
 * approx, exact likewise; exact is not read for fp32).  Writes k ids
 * (NU_TOPK_NONE past the candidates) and scores (-inf there). */
void nu_search_merge(nu_table_dtype dtype, size_t parts, size_t pool, size_t stride,
                     const uint32_t *ids, const float *approx, const float *exact, size_t k,
                     void *scratch, uint32_t *out_ids, float *out_scores);

#endif
