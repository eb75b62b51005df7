/* The progress line of `nextuser bench` on stderr: on a terminal (or with
 * NU_PROGRESS=1) one line redrawn in place, else one plain line per step,
 * so CI logs stay readable. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/stats.h"

static double start;
static int drawn;

static int on_terminal(void)
{
    const char *env = getenv("NU_PROGRESS");
    return env ? strcmp(env, "1") == 0 : isatty(2);
}

void nu_bench_progress(const char *fmt, ...)
{
    if (start == 0)
        start = nu_bench_now();
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (on_terminal()) {
        fprintf(stderr, "\r[bench %6.1f s] %-90.90s", nu_bench_now() - start, msg);
        drawn = 1;
    } else {
        fprintf(stderr, "[bench %6.1f s] %s\n", nu_bench_now() - start, msg);
    }
    fflush(stderr);
}

void nu_bench_progress_done(void)
{
    if (drawn)
        fputc('\n', stderr);
    drawn = 0;
}
