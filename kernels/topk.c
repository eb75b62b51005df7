/* Bounded top-K min-heap kept in the caller's output slots; see topk.h. */
#include "topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline int worse(float s1, uint32_t i1, float s2, uint32_t i2)
{
    return s1 < s2 || (s1 == s2 && i1 > i2);
}

/* worse() as 0/1 without a branch: which child is worse is a coin toss
 * for the branch predictor, so as a branch it missed at every level. */
static inline size_t worse_bit(float s1, uint32_t i1, float s2, uint32_t i2)
{
    return (size_t)((s1 < s2) | ((s1 == s2) & (i1 > i2)));
}

/* Restores the heap below slot `at` (the worst entry must rise to the root). */
static void sift_down(float *score, uint32_t *id, size_t n, size_t at)
{
    float s = score[at];
    uint32_t i = id[at];
    size_t c;
    /* Both children exist: pick the worse one by arithmetic, not a jump.  An
     * entry offered to a full heap is barely better than the root, so it
     * mostly sinks to the bottom and the loop's exit stays predictable. */
    while ((c = 2 * at + 1) + 1 < n) {
        c += worse_bit(score[c + 1], id[c + 1], score[c], id[c]);
        float sc = score[c];
        uint32_t ic = id[c];
        if (!worse(sc, ic, s, i))
            break;
        score[at] = sc;
        id[at] = ic;
        at = c;
    }
    if (c + 1 == n && worse(score[c], id[c], s, i)) { /* a lone last child */
        score[at] = score[c];
        id[at] = id[c];
        at = c;
    }
    score[at] = s;
    id[at] = i;
}

void nu_topk_init(float *score, uint32_t *id, size_t k)
{
    /* All equal, so already a valid heap. */
    for (size_t j = 0; j < k; j++) {
        score[j] = -INFINITY;
        id[j] = NU_TOPK_NONE;
    }
}

int nu_topk_offer(float *score, uint32_t *id, size_t k, float s, uint32_t i)
{
    if (k == 0 || !worse(score[0], id[0], s, i))
        return 0;
    score[0] = s;
    id[0] = i;
    sift_down(score, id, k, 0);
    return 1;
}

void nu_topk_finish(float *score, uint32_t *id, size_t k)
{
    /* Pop the worst to the back repeatedly: the front ends best-first. */
    for (size_t n = k; n > 1; n--) {
        float s = score[0];
        uint32_t i = id[0];
        score[0] = score[n - 1];
        id[0] = id[n - 1];
        score[n - 1] = s;
        id[n - 1] = i;
        sift_down(score, id, n - 1, 0);
    }
}

/* ---- buffered selection (topk.h) ---- */

typedef nu_topk_pair cand_pair;

typedef nu_topk_buffer topk_buffer;

/* The order of the output: higher score, then lower id.  Ids are unique
 * within a query, so this is a strict total order. */
static inline int better(cand_pair a, cand_pair b)
{
    return a.score > b.score || (a.score == b.score && a.id < b.id);
}

static inline void swap_pair(cand_pair *a, cand_pair *b)
{
    cand_pair t = *a;
    *a = *b;
    *b = t;
}

/* 1 when x goes before the pivot (is better), as 0/1 without a branch:
 * whether an entry beats the pivot is a coin toss, and as a branch it
 * missed about every other entry. */
static inline size_t goes_before(cand_pair x, cand_pair pivot)
{
    return (size_t)((x.score > pivot.score) | ((x.score == pivot.score) & (x.id < pivot.id)));
}

/* Entries per block of the block partition: offsets fit a byte. */
#define PART_BLOCK 32

/* Moves the entries of e[lo..hi) better than the pivot to the front of the
 * range; returns where the rest begins.  Blocks from both ends first: the
 * offsets of the misplaced entries of a block are written without a branch,
 * then misplaced pairs are swapped (the scheme of BlockQuicksort, Edelkamp
 * and Weiss), so no load waits on a compare.  The rest, under two blocks,
 * by Lomuto with an unconditional swap, whose every load waits on the last
 * compare. */
static size_t partition(cand_pair *e, size_t lo, size_t hi, cand_pair pivot)
{
    unsigned char offl[PART_BLOCK], offr[PART_BLOCK];
    size_t l = lo, r = hi, nl = 0, nr = 0, sl = 0, sr = 0;
    /* [lo, l) goes before, [r, hi) after; a block with misplaced entries
     * left (nl or nr > 0) stays pending at its end. */
    while (r - l >= 2 * PART_BLOCK) {
        if (nl == 0) {
            sl = 0;
            for (size_t i = 0; i < PART_BLOCK; i++) {
                offl[nl] = (unsigned char)i;
                nl += 1 - goes_before(e[l + i], pivot);
            }
        }
        if (nr == 0) {
            sr = 0;
            for (size_t i = 0; i < PART_BLOCK; i++) {
                offr[nr] = (unsigned char)i;
                nr += goes_before(e[r - 1 - i], pivot);
            }
        }
        size_t n = nl < nr ? nl : nr;
        for (size_t j = 0; j < n; j++)
            swap_pair(&e[l + offl[sl + j]], &e[r - 1 - offr[sr + j]]);
        nl -= n;
        nr -= n;
        sl += n;
        sr += n;
        if (nl == 0)
            l += PART_BLOCK;
        if (nr == 0)
            r -= PART_BLOCK;
    }
    size_t store = l;
    for (size_t i = l; i < r; i++) {
        cand_pair x = e[i];
        e[i] = e[store];
        e[store] = x;
        store += goes_before(x, pivot);
    }
    return store;
}

/* Entries of a pivot sample, and the ranges that take one. */
#define PIVOT_SAMPLE 31
#define SAMPLED_PIVOT_MIN 192

/* Moves to e[hi - 1] the entry of a sample of e[lo..hi) whose rank in the
 * sample is nth's in the range, so the partition lands near nth: the
 * median of three halves a range per step, where the selections here want
 * a rank far from the middle (400 of ~1,250, 100 of 400).  The sample is
 * sorted at the front of the range, which a partition may reorder. */
static void sampled_pivot(cand_pair *e, size_t lo, size_t hi, size_t nth)
{
    size_t n = hi - lo, stride = n / PIVOT_SAMPLE;
    for (size_t i = 1; i < PIVOT_SAMPLE; i++)
        swap_pair(&e[lo + i], &e[lo + i * stride]);
    for (size_t i = lo + 1; i < lo + PIVOT_SAMPLE; i++) {
        cand_pair x = e[i];
        size_t j = i;
        for (; j > lo && better(x, e[j - 1]); j--)
            e[j] = e[j - 1];
        e[j] = x;
    }
    swap_pair(&e[lo + (nth - lo) * PIVOT_SAMPLE / n], &e[hi - 1]);
}

/* Quickselect (kernels.h): pivots from a sample on large ranges, the
 * median of three on small ones. */
void nu_topk_select_best(cand_pair *e, size_t n, size_t k)
{
    size_t lo = 0, hi = n, nth = k - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (hi - lo > SAMPLED_PIVOT_MIN) {
            sampled_pivot(e, lo, hi, nth);
        } else { /* the median of three to the last slot, as the pivot */
            if (better(e[mid], e[lo]))
                swap_pair(&e[mid], &e[lo]);
            if (better(e[last], e[lo]))
                swap_pair(&e[last], &e[lo]);
            if (better(e[mid], e[last]))
                swap_pair(&e[mid], &e[last]);
        }
        size_t at = partition(e, lo, last, e[last]);
        swap_pair(&e[at], &e[last]); /* the pivot in its place */
        if (nth == at)
            return;
        if (nth < at)
            hi = at;
        else
            lo = at + 1;
    }
}

int nu_topk_buffer_cut(float *score, uint32_t *id, topk_buffer *q)
{
    size_t keep = q->keep;
    nu_topk_select_best(q->e, q->n, keep);
    q->n = keep;
    score[0] = q->e[keep - 1].score; /* the keep-th best: the new threshold */
    id[0] = q->e[keep - 1].id;
    return 1;
}

/* Buffers of B queries (NULL when K is too small or memory is short: the
 * queries then run as heaps).  A buffer holds 4K candidates: each cut then
 * costs about as much as the appends since the last one. */
/* A buffered query's threshold slot at its sentinel: any non-NaN row passes. */
static void open_threshold(float *score, uint32_t *id)
{
    score[0] = -INFINITY;
    id[0] = NU_TOPK_NONE;
}

static topk_buffer *buffers_start(size_t B, size_t K, uint32_t *ids, float *scores)
{
    if (K < NU_TOPK_BUFFER_MIN_K)
        return NULL;
    size_t cap = 4 * K;
    if (cap / 4 != K || B > SIZE_MAX / sizeof(topk_buffer) ||
        cap > (SIZE_MAX - B * sizeof(topk_buffer)) / sizeof(cand_pair) / B)
        return NULL;
    topk_buffer *q = malloc(B * sizeof *q + B * cap * sizeof(cand_pair));
    if (!q)
        return NULL;
    cand_pair *e = (cand_pair *)(q + B);
    for (size_t b = 0; b < B; b++) {
        q[b] = (topk_buffer){0, cap, K, e + b * cap, 0};
        float *hs = scores + b * K;
        uint32_t *hi = ids + b * K;
        open_threshold(hs, hi);
        hs[1] = NAN; /* the mark of a buffered query */
        topk_buffer *p = &q[b];
        memcpy(hi + 1, &p, sizeof p);
    }
    return q;
}

/* Writes each query's best K, best first, padded with sentinels. */
static void buffers_finish(topk_buffer *q, size_t B, size_t K, uint32_t *ids, float *scores)
{
    for (size_t b = 0; b < B; b++) {
        size_t n = q[b].n;
        if (n > K) {
            nu_topk_select_best(q[b].e, n, K);
            n = K;
        }
        nu_topk_sort_best_first(q[b].e, n);
        for (size_t j = 0; j < K; j++) {
            scores[b * K + j] = j < n ? q[b].e[j].score : -INFINITY;
            ids[b * K + j] = j < n ? q[b].e[j].id : NU_TOPK_NONE;
        }
    }
    free(q);
}

/* ---- the sample pre-pass ----
 * With a running threshold (the K-th best of the rows seen so far), a scan
 * of N rows in random order still offers about K (1 + ln(N / K)) rows,
 * most of them early, and at d = 64 an offer and its share of the cuts
 * cost more than scoring the row (int8, 100k rows, K = 400: 5,100 offers
 * and 4-5 cuts of 4K per query).  So the driver first scores a sample of
 * n0 rows keeping only their best SAMPLE_KEEP, and the SAMPLE_KEEP-th best
 * score becomes a guessed threshold for the real scan of all N rows.  n0 is
 * chosen so that about SAMPLE_MEAN of its rows belong to the final top K;
 * SAMPLE_KEEP leaves 4 standard deviations above that.
 * The sample is SAMPLE_CHUNK rows at n0 / SAMPLE_CHUNK evenly spaced places,
 * so that an ordered table (its best rows first, as a table sorted by
 * popularity may be for many queries) is sampled as fairly as a shuffled
 * one: with chunks below SAMPLE_KEEP rows, even a table sorted best first
 * puts fewer than SAMPLE_KEEP sample rows in the top K.  (A sample of the
 * first rows made such tables fail nearly every guess, and the rescans cost
 * 2.5-6x.)  The sample rows are scored twice: 16 / K of the table, so the
 * pre-pass runs from K = SAMPLE_MIN_K.
 * The guess is checked: the real scan keeps only rows scoring above it, so
 * when it ends with K candidates, every row it rejected is worse than all
 * of them and the answer is exact; with fewer the query is scanned again
 * without a guess (rescan).  The guess is not tightened from the real
 * scan's first rows (that was ~5% faster on shuffled tables, but on a
 * table sorted best first it failed nearly every query). */
#define SAMPLE_MEAN 16
#define SAMPLE_KEEP 36 /* SAMPLE_MEAN + 4 sqrt(SAMPLE_MEAN) + 4 */
#define SAMPLE_CHUNK 24
#define SAMPLE_MIN_K 256

/* Rows of the sample: 0 when K or N is too small for it to pay. */
static size_t sample_rows(size_t N, size_t K)
{
    if (K < SAMPLE_MIN_K)
        return 0;
    size_t n0 = N / K * SAMPLE_MEAN / SAMPLE_CHUNK * SAMPLE_CHUNK;
    return n0 >= 4 * SAMPLE_KEEP && n0 <= N / 8 ? n0 : 0;
}

static void sample_start(topk_buffer *q)
{
    q->keep = SAMPLE_KEEP;
    q->cap = 4 * SAMPLE_KEEP;
}

/* Ends the sample of one query: an empty buffer for the real scan, with the
 * guess as its threshold (its id 0 makes a row that ties it lose, as the
 * kernels' strict compare does).  Fewer than SAMPLE_KEEP candidates: no
 * guess, the scan starts as without a sample. */
static void sample_end(topk_buffer *q, float *score, uint32_t *id, size_t K)
{
    size_t n = q->n;
    q->keep = K;
    q->cap = 4 * K;
    q->n = 0;
    open_threshold(score, id);
    if (n < SAMPLE_KEEP)
        return;
    nu_topk_select_best(q->e, n, SAMPLE_KEEP);
    q->guessed = 1;
    score[0] = q->e[SAMPLE_KEEP - 1].score;
    id[0] = 0;
}

/* Every query over the sample: SAMPLE_CHUNK rows at each of n0 /
 * SAMPLE_CHUNK evenly spaced places in [0, N). */
static void scan_sample(size_t B, size_t N, size_t n0, const void *ctx, const nu_topk_passes *p);

/* 1 when the query's result is exact: no guess, or K candidates kept. */
static int guess_held(const topk_buffer *q, size_t K)
{
    return !q->guessed || q->n >= K;
}

/* L2-sized row blocks: every query group re-reads a block from L2. */
#define DRIVE_BLOCK_BYTES ((size_t)256 * 1024)

void nu_topk_drive(size_t B, size_t N, size_t K, size_t row_bytes, uint32_t *ids,
                   float *scores, const void *ctx, nu_topk_pass_fn single,
                   nu_topk_pass_fn lanes, size_t lanes_min, size_t lanes_max)
{
    const nu_topk_passes p = {lanes, lanes_min, lanes_max, NULL, 0, single};
    nu_topk_drive_passes(B, N, K, row_bytes, ids, scores, ctx, &p);
}

/* Every query over rows [lo, hi), in blocks of rb rows. */
static void scan_rows(size_t B, size_t lo, size_t hi, size_t rb, const void *ctx,
                      const nu_topk_passes *p)
{
    for (size_t r0 = lo; r0 < hi; r0 += rb) {
        size_t r1 = hi - r0 < rb ? hi : r0 + rb;
        size_t b = 0;
        while (b < B) {
            size_t left = B - b;
            if (p->lanes && left >= p->lanes_min) {
                size_t nq = left < p->lanes_max ? left : p->lanes_max;
                p->lanes(ctx, b, nq, r0, r1);
                b += nq;
            } else if (p->tile && left >= p->tile_q) {
                p->tile(ctx, b, p->tile_q, r0, r1);
                b += p->tile_q;
            } else {
                p->single(ctx, b, 1, r0, r1);
                b++;
            }
        }
    }
}

static void scan_sample(size_t B, size_t N, size_t n0, const void *ctx, const nu_topk_passes *p)
{
    size_t chunks = n0 / SAMPLE_CHUNK;
    for (size_t c = 0; c < chunks; c++) {
        size_t r0 = N / chunks * c;
        scan_rows(B, r0, r0 + SAMPLE_CHUNK, SAMPLE_CHUNK, ctx, p);
    }
}

/* Query b again over all N rows, as if there had been no guess. */
static void rescan(topk_buffer *q, size_t b, size_t N, size_t K, size_t rb, uint32_t *ids,
                   float *scores, const void *ctx, const nu_topk_passes *p)
{
    q->n = 0;
    q->guessed = 0;
    open_threshold(scores + b * K, ids + b * K);
    for (size_t r0 = 0; r0 < N; r0 += rb)
        p->single(ctx, b, 1, r0, N - r0 < rb ? N : r0 + rb);
}

void nu_topk_drive_passes(size_t B, size_t N, size_t K, size_t row_bytes, uint32_t *ids,
                          float *scores, const void *ctx, const nu_topk_passes *p)
{
    if (K == 0 || B == 0)
        return;
    topk_buffer *buffers = buffers_start(B, K, ids, scores);
    if (!buffers)
        for (size_t b = 0; b < B; b++)
            nu_topk_init(scores + b * K, ids + b * K, K);
    /* One block for B = 1 would do; blocks keep the code path the same. */
    size_t rb = DRIVE_BLOCK_BYTES / (row_bytes ? row_bytes : 1);
    rb = rb < 64 ? 64 : rb / 64 * 64;
    size_t n0 = buffers ? sample_rows(N, K) : 0;
    if (n0) {
        for (size_t b = 0; b < B; b++)
            sample_start(&buffers[b]);
        scan_sample(B, N, n0, ctx, p);
        for (size_t b = 0; b < B; b++)
            sample_end(&buffers[b], scores + b * K, ids + b * K, K);
    }
    scan_rows(B, 0, N, rb, ctx, p);
    if (buffers) {
        for (size_t b = 0; b < B; b++)
            if (!guess_held(&buffers[b], K))
                rescan(&buffers[b], b, N, K, rb, ids, scores, ctx, p);
        buffers_finish(buffers, B, K, ids, scores);
    } else
        for (size_t b = 0; b < B; b++)
            nu_topk_finish(scores + b * K, ids + b * K, K);
}
