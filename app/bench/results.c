/* The result rows of a run. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/stats.h"

nu_bench_result *nu_bench_add(nu_bench_results *r, int threads, const char *fmt, ...)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 64;
        nu_bench_result *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return NULL;
        r->v = v;
        r->cap = cap;
    }
    nu_bench_result *e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->threads = threads;
    e->repetitions = 1;
    return e;
}

void nu_bench_set(nu_bench_result *e, const char *counter, double value)
{
    for (size_t i = 0; i < e->n_counters; i++)
        if (!strcmp(e->counters[i].name, counter)) {
            e->counters[i].value = value;
            return;
        }
    if (e->n_counters < NU_BENCH_MAX_COUNTERS)
        e->counters[e->n_counters++] = (nu_bench_counter){counter, value};
}

double nu_bench_get(const nu_bench_result *e, const char *counter, double missing)
{
    for (size_t i = 0; i < e->n_counters; i++)
        if (!strcmp(e->counters[i].name, counter))
            return e->counters[i].value;
    return missing;
}

void nu_bench_results_free(nu_bench_results *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

void nu_bench_set_latency(nu_bench_result *e, int reps, const double *sorted_s, size_t n)
{
    e->repetitions = reps;
    e->iterations = n;
    e->real_time_ms = 1e3 * nu_bench_percentile(sorted_s, n, 50);
    nu_bench_set(e, "p50_ms", e->real_time_ms);
    nu_bench_set(e, "p99_ms", 1e3 * nu_bench_percentile(sorted_s, n, 99));
}
