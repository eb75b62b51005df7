/* Deterministic random numbers (splitmix64): the same sequence on every
 * platform and thread count, for initialisation, sampling and synthetic data. */
#ifndef NU_RNG_H
#define NU_RNG_H

#include <stdint.h>

typedef struct nu_random { uint64_t state; } nu_random;

static inline uint64_t nu_random_next(nu_random *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double nu_random_unit(nu_random *r)
{
    return (double)(nu_random_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n) (n >= 1), without modulo bias worth noting for n << 2^64. */
static inline uint64_t nu_random_below(nu_random *r, uint64_t n)
{
    return (uint64_t)(nu_random_unit(r) * (double)n) % n;
}

/* Standard normal (Box-Muller, one value per call). */
double nu_random_normal(nu_random *r);

#endif
