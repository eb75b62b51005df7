/* Bounded top-K min-heap kept in the caller's output slots; see topk.h. */
#include "topk.h"

#include <math.h>

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

/* L2-sized row blocks: every query group re-reads a block from L2. */
#define DRIVE_BLOCK_BYTES ((size_t)256 * 1024)

void nu_topk_drive(size_t B, size_t N, size_t K, size_t row_bytes, uint32_t *ids,
                   float *scores, const void *ctx, nu_topk_pass_fn single,
                   nu_topk_pass_fn lanes, size_t lanes_min, size_t lanes_max)
{
    const nu_topk_passes p = {lanes, lanes_min, lanes_max, NULL, 0, single};
    nu_topk_drive_passes(B, N, K, row_bytes, ids, scores, ctx, &p);
}

void nu_topk_drive_passes(size_t B, size_t N, size_t K, size_t row_bytes, uint32_t *ids,
                          float *scores, const void *ctx, const nu_topk_passes *p)
{
    if (K == 0 || B == 0)
        return;
    for (size_t b = 0; b < B; b++)
        nu_topk_init(scores + b * K, ids + b * K, K);
    /* One block for B = 1 would do; blocks keep the code path the same. */
    size_t rb = DRIVE_BLOCK_BYTES / (row_bytes ? row_bytes : 1);
    rb = rb < 64 ? 64 : rb / 64 * 64;
    for (size_t r0 = 0; r0 < N; r0 += rb) {
        size_t r1 = N - r0 < rb ? N : r0 + rb;
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
    for (size_t b = 0; b < B; b++)
        nu_topk_finish(scores + b * K, ids + b * K, K);
}
