/* Sorting candidates best first (kernels.h): a radix sort on one 64-bit key
 * per candidate, and a quicksort by selection where no scratch can be had.
 *
 * Why not the quicksort alone: on Zen 5 it cost ~43 ns per candidate at
 * 400 candidates (each partition step's load waits on the compare before
 * it, and the insertion sorts at the leaves mispredict), ~17 us per query
 * of the int8 pool; the radix passes wait on no compare. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static inline int better(nu_topk_pair a, nu_topk_pair b)
{
    return a.score > b.score || (a.score == b.score && a.id < b.id);
}

static void insertion_sort(nu_topk_pair *e, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        nu_topk_pair x = e[i];
        size_t j = i;
        for (; j > 0 && better(x, e[j - 1]); j--)
            e[j] = e[j - 1];
        e[j] = x;
    }
}

/* Quicksort by selection of the better half, insertion sort below 16. */
static void sort_by_selection(nu_topk_pair *e, size_t n)
{
    while (n > 16) {
        size_t k = n / 2;
        nu_topk_select_best(e, n, k); /* e[0..k) better than e[k..n) */
        /* Recurse into the smaller part, loop on the larger. */
        sort_by_selection(e, k);
        e += k;
        n -= k;
    }
    insertion_sort(e, n);
}

/* The key whose ascending order is the output order: the score's bits made
 * monotonic and inverted (higher first), then the id (lower first).  -0 is
 * keyed as +0: they compare equal, so the id decides, as in better().  (No
 * candidate is NaN.) */
static inline uint64_t sort_key(nu_topk_pair x)
{
    float s = x.score == 0.0f ? 0.0f : x.score;
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    u = u & 0x80000000u ? ~u : u | 0x80000000u; /* ascending with the score */
    return (uint64_t)~u << 32 | x.id;
}

typedef struct keyed {
    uint64_t key;
    nu_topk_pair v;
} keyed;

/* Below this many, insertion sort is cheaper than clearing 8 histograms. */
#define SMALL_SORT 24

/* LSD radix sort, 8 passes of 8 bits (stable), passes over a byte every
 * key shares skipped (the high bytes of ids, mostly). */
void nu_topk_sort_best_first(nu_topk_pair *e, size_t n)
{
    if (n <= SMALL_SORT) {
        insertion_sort(e, n);
        return;
    }
    keyed *mem = n <= UINT32_MAX ? malloc(2 * n * sizeof *mem) : NULL;
    if (!mem) {
        sort_by_selection(e, n);
        return;
    }
    keyed *a = mem, *b = mem + n;
    uint32_t count[8][256];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = sort_key(e[i]);
        a[i] = (keyed){k, e[i]};
        for (int p = 0; p < 8; p++)
            count[p][k >> (8 * p) & 255]++;
    }
    for (int p = 0; p < 8; p++) {
        uint32_t *c = count[p];
        if (c[a[0].key >> (8 * p) & 255] == n)
            continue;
        uint32_t sum = 0;
        for (int d = 0; d < 256; d++) {
            uint32_t t = c[d];
            c[d] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++)
            b[c[a[i].key >> (8 * p) & 255]++] = a[i];
        keyed *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < n; i++)
        e[i] = a[i].v;
    free(mem);
}
