/* Portable bounded top-K heap shared by every ISA's score_topk (no intrinsics).
 *
 * The heap of one query lives in that query's own output slots (K scores and
 * K ids), so a kernel needs no scratch whatever B is.  It starts full of
 * sentinels (-INFINITY, NU_TOPK_NONE): a real row always beats a sentinel
 * (higher score, or the same -inf score with a lower id), and sentinels left
 * at the end are exactly the required padding.
 *
 * Order: (s1, i1) is better than (s2, i2) when s1 > s2, or s1 == s2 and
 * i1 < i2.  The root (slot 0) is the worst kept entry, i.e. the threshold.
 *
 * Filtering rule used by the vector kernels: rows are visited in increasing
 * id order, so a new row tying the root's score has a higher id than every
 * kept row and cannot enter -- except when the root is a sentinel (score
 * -inf).  Hence "candidate" = s > root, or s == root == -inf; nu_topk_offer
 * re-checks exactly, so a looser filter is never wrong, only slower. */
#ifndef NU_SIMD_TOPK_H
#define NU_SIMD_TOPK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* Fills k slots with sentinels. */
void nu_topk_init(float *score, uint32_t *id, size_t k);

/* Replaces the root by (s, i) when strictly better; returns 1 when it did. */
int nu_topk_offer(float *score, uint32_t *id, size_t k, float s, uint32_t i);

/* Heap-sorts the k slots into the output order: best first. */
void nu_topk_finish(float *score, uint32_t *id, size_t k);

/* 1 when id is in the list (list may be NULL). */
static inline int nu_topk_excluded(const nu_id_list *ex, uint32_t id)
{
    if (!ex)
        return 0;
    for (size_t j = 0; j < ex->count; j++)
        if (ex->ids[j] == id)
            return 1;
    return 0;
}

/* ---- buffered selection (the driver's mode) ----
 * A heap insertion is log2(k) dependent steps; early in a scan, when the
 * threshold is still low, thousands of rows pass it.  The driver therefore
 * runs each query buffered when it can: a candidate is appended to a
 * buffer of the query's own, and when the buffer fills, its best k are
 * kept (a selection in linear time) and the k-th best becomes the new
 * threshold.  The kernels see no difference: slot 0 of the query's output
 * holds the threshold (score, id) as the heap root would, and they offer
 * rows through nu_topk_consider.  Slot 1 tells the modes apart (a NaN
 * score, which a heap never holds, and the buffer's address in ids 1-2),
 * so it needs k >= NU_TOPK_BUFFER_MIN_K; smaller k keep the heap. */
#define NU_TOPK_BUFFER_MIN_K 3

static inline int nu_topk_is_buffered(const float *score, size_t k)
{
    return k >= NU_TOPK_BUFFER_MIN_K && score[1] != score[1];
}

/* One query's buffer: its candidates since the last cut.  A cut keeps the
 * best `keep` (K, or fewer in the driver's sample pre-pass, topk.c). */
typedef struct nu_topk_buffer {
    size_t n, cap, keep;
    nu_topk_pair *e;
    int guessed; /* the sample pre-pass set a guessed threshold */
} nu_topk_buffer;

/* Cuts a full buffer to its best `keep` and sets slot 0 to the keep-th
 * best (the new threshold); returns 1. */
int nu_topk_buffer_cut(float *score, uint32_t *id, nu_topk_buffer *q);

/* Appends (s, i) to the query's buffer; returns 1 when the threshold in
 * slot 0 rose (the buffer was full and was cut).  Inline: a call from a
 * kernel's loop would make it save and reload its vector registers, and
 * nearly every offer is a plain append. */
static inline int nu_topk_buffer_add(float *score, uint32_t *id, size_t k, float s, uint32_t i)
{
    (void)k;
    nu_topk_buffer *q;
    memcpy(&q, id + 1, sizeof q);
    q->e[q->n++] = (nu_topk_pair){s, i};
    return q->n < q->cap ? 0 : nu_topk_buffer_cut(score, id, q);
}

/* Full consideration of one row for one query: NaN and excluded rows are
 * dropped, the rest offered.  Returns 1 when the threshold (slot 0) changed. */
static inline int nu_topk_consider(float *score, uint32_t *id, size_t k,
                                   const nu_id_list *ex, float s, uint32_t i)
{
    float root = score[0];
    /* Cheap rejection first; NaN fails both comparisons. */
    if (!(s > root || (s == root && i < id[0])))
        return 0;
    if (nu_topk_excluded(ex, i))
        return 0;
    if (nu_topk_is_buffered(score, k))
        return nu_topk_buffer_add(score, id, k, s, i);
    return nu_topk_offer(score, id, k, s, i);
}

/* The exclusion list of query b (NULL when there is none). */
static inline const nu_id_list *nu_topk_list(const nu_id_list *exclude, size_t b)
{
    return exclude ? &exclude[b] : NULL;
}

/* Offers the rows whose bits are set in m (bit j: score sc[j], id id0 + j)
 * to query b's heap; returns the new threshold (the root score). */
static inline float nu_topk_consider_mask(float *score, uint32_t *id, size_t k,
                                          const nu_id_list *ex, const float *sc,
                                          uint32_t m, uint32_t id0)
{
    while (m) {
        unsigned j = (unsigned)__builtin_ctz(m);
        m &= m - 1;
        nu_topk_consider(score, id, k, ex, sc[j], id0 + j);
    }
    return score[0];
}

/* Offers one row (id `row`) to the queries whose lanes are set in m: lane l
 * is query b0 + l with score sc[l] (scores, ids: the outputs of all queries,
 * K slots each; exclude as in score_topk).  Returns 1 when a threshold
 * changed. */
static inline int nu_topk_consider_lanes(float *scores, uint32_t *ids, size_t k,
                                         const nu_id_list *exclude, size_t b0,
                                         const float *sc, uint32_t m, uint32_t row)
{
    int changed = 0;
    while (m) {
        unsigned l = (unsigned)__builtin_ctz(m);
        m &= m - 1;
        size_t b = b0 + l;
        changed |= nu_topk_consider(scores + b * k, ids + b * k, k, nu_topk_list(exclude, b),
                                    sc[l], row);
    }
    return changed;
}

/* ---- shared driver of the scoring kernels ----
 * A pass scores queries [b0, b0 + nq) against rows [r0, r1) and offers
 * candidates to their heaps (heaps already initialised).  nu_topk_drive
 * initialises the B heaps, walks the table in L2-sized row blocks (so it
 * streams from memory once for all queries), hands each block to `lanes`
 * for groups of lanes_min..lanes_max queries (when lanes is not NULL) and
 * to `single` (nq = 1) for the rest, then sorts the heaps.  ctx is passed
 * through untouched.  K == 0 or B == 0 touch nothing.  The queries run
 * buffered (above) when K >= NU_TOPK_BUFFER_MIN_K and the buffers could be
 * allocated, else as heaps: the output is the same.  Buffered, with K and
 * N large enough, a sample of rows spread over the table is scored first
 * for a guessed threshold, checked at the end (topk.c): passes see those
 * rows twice and may see a threshold no row has reached yet, and `single`
 * may scan a query's rows a second time. */
typedef void (*nu_topk_pass_fn)(const void *ctx, size_t b0, size_t nq, size_t r0,
                                size_t r1);
void nu_topk_drive(size_t B, size_t N, size_t K, size_t row_bytes, uint32_t *ids,
                   float *scores, const void *ctx, nu_topk_pass_fn single,
                   nu_topk_pass_fn lanes, size_t lanes_min, size_t lanes_max);

/* The passes of a scoring kernel, tried in this order for the queries left
 * in a row block: `lanes` for groups of lanes_min..lanes_max queries, `tile`
 * for exactly tile_q, `single` for one (lanes, tile may be NULL). */
typedef struct nu_topk_passes {
    nu_topk_pass_fn lanes;
    size_t lanes_min, lanes_max;
    nu_topk_pass_fn tile;
    size_t tile_q;
    nu_topk_pass_fn single;
} nu_topk_passes;

/* nu_topk_drive with a tile pass between the lanes and the single passes. */
void nu_topk_drive_passes(size_t B, size_t N, size_t K, size_t row_bytes, uint32_t *ids,
                          float *scores, const void *ctx, const nu_topk_passes *p);

#endif
