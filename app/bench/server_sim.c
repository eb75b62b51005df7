#include "bench/server_sim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/stats.h"
#include "error.h"
#include "util/rng.h"

/* Sleeps until monotonic time `at` (seconds). */
static void sleep_until(double at)
{
    struct timespec ts;
    ts.tv_sec = (time_t)at;
    ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Poisson arrival times in [0, seconds): exponential gaps of mean 1/rate. */
static double *arrivals(double rate, double seconds, uint64_t seed, size_t *n)
{
    size_t cap = (size_t)(rate * seconds * 1.5) + 64, k = 0;
    double *t = malloc(cap * sizeof *t), now = 0;
    nu_random r = {seed};
    for (;;) {
        now += -log(1.0 - nu_random_unit(&r)) / rate;
        if (now >= seconds || !t)
            break;
        if (k == cap) {
            cap *= 2;
            double *g = realloc(t, cap * sizeof *t);
            if (!g) {
                free(t);
                return NULL;
            }
            t = g;
        }
        t[k++] = now;
    }
    *n = k;
    return t;
}

nu_status nu_server_simulate(nu_serve_engine *e, double rate, double seconds, size_t max_batch,
                             double max_wait_s, uint64_t seed, nu_server_run *out)
{
    memset(out, 0, sizeof *out);
    out->offered = rate;
    if (!(rate > 0) || max_batch == 0 || max_batch > e->max_batch)
        return nu_error(NU_ERR_INVALID_ARG, "server scenario: bad rate or batch");
    size_t n = 0;
    double *arr = arrivals(rate, seconds, seed, &n);
    if (!arr)
        return nu_error(NU_ERR_NOMEM, "out of memory for arrivals");
    double *lat = malloc((n ? n : 1) * sizeof *lat);
    if (!lat) {
        free(arr);
        return nu_error(NU_ERR_NOMEM, "out of memory for latencies");
    }
    size_t pool = e->items->count, head = 0, arrived = 0;
    nu_status s = NU_OK;
    double start = nu_bench_now() + 1e-3, last_done = 0;
    while (head < n && s == NU_OK) {
        double now = nu_bench_now() - start;
        if (now > 3 * seconds + 1) {
            /* Far behind (offered far above capacity): what is still
             * queued is at least this late; stop rather than drain. */
            for (size_t i = head; i < n; i++)
                lat[i] = now > arr[i] ? now - arr[i] : 0;
            out->batches++;
            last_done = now;
            break;
        }
        while (arrived < n && arr[arrived] <= now)
            arrived++;
        if (arrived == head) { /* idle: nothing waiting */
            sleep_until(start + arr[arrived]);
            continue;
        }
        size_t waiting = arrived - head;
        double deadline = arr[head] + max_wait_s;
        if (waiting < max_batch && now < deadline) {
            double wake = arrived < n && arr[arrived] < deadline ? arr[arrived] : deadline;
            sleep_until(start + wake);
            continue;
        }
        size_t b = waiting < max_batch ? waiting : max_batch;
        /* Which items of the pool: any contiguous range does (same work). */
        size_t first = pool > b ? head % (pool - b + 1) : 0;
        s = nu_serve_engine_run(e, first, b);
        double done = nu_bench_now() - start;
        for (size_t i = head; i < head + b; i++)
            lat[i] = done - arr[i];
        head += b;
        out->batches++;
        last_done = done;
    }
    if (s == NU_OK && n > 0) {
        nu_bench_sort(lat, n);
        out->items = n;
        out->achieved = (double)n / (last_done - arr[0] > 1e-9 ? last_done - arr[0] : 1e-9);
        out->p50_ms = 1e3 * nu_bench_percentile(lat, n, 50);
        out->p90_ms = 1e3 * nu_bench_percentile(lat, n, 90);
        out->p99_ms = 1e3 * nu_bench_percentile(lat, n, 99);
        out->batch_mean = (double)n / (double)out->batches;
    }
    free(arr);
    free(lat);
    return s;
}
