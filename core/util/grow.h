/* Growing a heap array by doubling: the one helper every flat-array
 * builder (items, datasets, batches) uses. */
#ifndef NU_GROW_H
#define NU_GROW_H

#include <stddef.h>

/* Makes *p hold at least `need` elements of `elem` bytes (capacity in *cap,
 * doubled from 64); returns 0 when out of memory (*p is then unchanged). */
int nu_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif
