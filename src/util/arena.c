#include "arena.h"

#include <stdlib.h>
#include <string.h>

int nu_arena_create(nu_arena *a, size_t bytes)
{
    bytes = (bytes + 63) & ~(size_t)63;
    a->base = aligned_alloc(64, bytes ? bytes : 64);
    a->cap = a->base ? bytes : 0;
    a->used = 0;
    return a->base != NULL;
}

void nu_arena_destroy(nu_arena *a)
{
    free(a->base);
    memset(a, 0, sizeof *a);
}
