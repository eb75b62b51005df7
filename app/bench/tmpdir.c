#define _XOPEN_SOURCE 700
#include "bench/tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

nu_status nu_bench_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if ((size_t)snprintf(out, cap, "%s/nu-bench-XXXXXX", base) >= cap)
        return nu_error(NU_ERR_INVALID_ARG, "TMPDIR too long");
    if (!mkdtemp(out))
        return nu_error(NU_ERR_IO, "%s: cannot create a temporary directory: %s", out, strerror(errno));
    return NU_OK;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void nu_bench_rmtree(const char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}
