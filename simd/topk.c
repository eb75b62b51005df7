/* Bounded top-K min-heap kept in the caller's output slots; see topk.h. */
#include "topk.h"

#include <math.h>

static inline int worse(float s1, uint32_t i1, float s2, uint32_t i2)
{
    return s1 < s2 || (s1 == s2 && i1 > i2);
}

/* Restores the heap below slot `at` (the worst entry must rise to the root). */
static void sift_down(float *score, uint32_t *id, size_t n, size_t at)
{
    float s = score[at];
    uint32_t i = id[at];
    for (;;) {
        size_t c = 2 * at + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worse(score[c + 1], id[c + 1], score[c], id[c]))
            c++;
        if (!worse(score[c], id[c], s, i))
            break;
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
