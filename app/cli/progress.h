/* A progress line on stderr for long runs: redrawn at most twice a second,
 * only when stderr is a terminal (or NU_PROGRESS=1), so logs stay clean. */
#ifndef NU_PROGRESS_H
#define NU_PROGRESS_H

#include <stddef.h>

#include "util/clock.h"

typedef struct nu_progress {
    const char *what, *unit;
    double start, last;
    int enabled, drawn;
} nu_progress;

void nu_progress_start(nu_progress *p, const char *what, const char *unit);
/* Matches nu_run_options.progress. */
void nu_progress_update(size_t done, size_t total, void *p);
void nu_progress_finish(nu_progress *p);

#endif
