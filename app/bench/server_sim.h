/* The server scenario of one offered rate, in the manner of MLPerf
 * LoadGen: items arrive as a Poisson process (arrival times drawn ahead
 * from a seed), one dispatcher gathers the waiting items into a batch when
 * max_batch are waiting or the oldest has waited max_wait, serves it for
 * real (nu_serve_engine_run) and sleeps until the next arrival or deadline
 * when idle.  Real time throughout: each item's latency runs from its
 * arrival to the completion of its batch, queueing included. */
#ifndef NU_BENCH_SERVER_SIM_H
#define NU_BENCH_SERVER_SIM_H

#include <stdint.h>

#include "bench/serve_engine.h"

typedef struct nu_server_run {
    double offered;    /* items/s asked for */
    double achieved;   /* items served / (last completion - first arrival) */
    size_t items, batches;
    double p50_ms, p90_ms, p99_ms, batch_mean;
} nu_server_run;

/* Arrivals for `seconds` at `rate` items/s; at most max_batch per batch,
 * max_wait_s the longest the oldest waiting item is held back. */
nu_status nu_server_simulate(nu_serve_engine *e, double rate, double seconds, size_t max_batch,
                             double max_wait_s, uint64_t seed, nu_server_run *out);

#endif
