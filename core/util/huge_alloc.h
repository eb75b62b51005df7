/* Large buffers that are streamed end to end. */
#ifndef NU_HUGE_ALLOC_H
#define NU_HUGE_ALLOC_H

#include <stddef.h>

/* bytes rounded up to 2 MiB, 2 MiB aligned, advised onto 2 MiB pages (where
 * the kernel grants them: they spare a scan the TLB misses of 4 KiB pages,
 * about a third of its time here).  Release with free(). */
void *nu_huge_alloc(size_t bytes);

#endif
