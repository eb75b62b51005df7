/* A scratch directory for a benchmark's files, removed with everything in it. */
#ifndef NU_BENCH_TMPDIR_H
#define NU_BENCH_TMPDIR_H

#include <stddef.h>

#include "nextuser/nextuser.h"

/* Creates $TMPDIR/nu-bench-XXXXXX (or under /tmp) into out. */
nu_status nu_bench_tmpdir(char *out, size_t cap);
void nu_bench_rmtree(const char *dir);

#endif
