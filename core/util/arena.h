/* A bump allocator over one block allocated once per thread: the hot loop
 * takes scratch from it and resets it, never calling malloc. */
#ifndef NU_ARENA_H
#define NU_ARENA_H

#include <stddef.h>

typedef struct nu_arena {
    char *base;
    size_t cap, used;
} nu_arena;

/* 64-byte aligned floats; NULL when the arena is exhausted (a sizing bug). */
static inline float *nu_arena_floats(nu_arena *a, size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (a->used + bytes > a->cap)
        return NULL;
    float *p = (float *)(void *)(a->base + a->used);
    a->used += bytes;
    return p;
}

static inline void *nu_arena_bytes(nu_arena *a, size_t n)
{
    size_t bytes = (n + 63) & ~(size_t)63;
    if (a->used + bytes > a->cap)
        return NULL;
    void *p = a->base + a->used;
    a->used += bytes;
    return p;
}

int nu_arena_create(nu_arena *a, size_t bytes); /* 1 on success */
void nu_arena_destroy(nu_arena *a);

#endif
