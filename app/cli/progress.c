#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void nu_progress_start(nu_progress *p, const char *what, const char *unit)
{
    const char *env = getenv("NU_PROGRESS");
    p->what = what;
    p->unit = unit;
    p->start = p->last = nu_now_seconds();
    p->enabled = env ? strcmp(env, "1") == 0 : isatty(2);
    p->drawn = 0;
}

void nu_progress_update(size_t done, size_t total, void *ctx)
{
    nu_progress *p = ctx;
    double now = nu_now_seconds();
    if (!p->enabled || (now - p->last < 0.5 && done < total))
        return;
    p->last = now;
    double el = now - p->start, rate = el > 0 ? (double)done / el : 0;
    int width = 30, fill = total ? (int)((double)width * (double)done / (double)total) : width;
    fprintf(stderr, "\r%s [", p->what);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %zu/%zu %s  %.0f %s/s  ", done, total, p->unit, rate, p->unit);
    if (rate > 0 && done < total)
        fprintf(stderr, "eta %.0fs ", (double)(total - done) / rate);
    fflush(stderr);
    p->drawn = 1;
}

void nu_progress_finish(nu_progress *p)
{
    if (p->drawn)
        fputc('\n', stderr);
    p->drawn = 0;
}
