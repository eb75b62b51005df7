/* 2 MiB-page buffers for streamed tables and the bandwidth probe. */
#include "util/huge_alloc.h"

#include <stdlib.h>
#include <sys/mman.h>

void *nu_huge_alloc(size_t bytes)
{
    size_t align = (size_t)2 << 20, size = (bytes + align - 1) / align * align;
    if (size == 0)
        size = align;
    void *p = aligned_alloc(align, size);
    if (p)
        madvise(p, size, MADV_HUGEPAGE); /* advice only: failure is harmless */
    return p;
}
