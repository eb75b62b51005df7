/* A small C API over Google Benchmark, so the benchmarks themselves are C.
 * Implemented by gbench_shim.cc (the only C++ file). */
#ifndef NU_GBENCH_H
#define NU_GBENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nu_bench_state nu_bench_state; /* a benchmark::State */
typedef void (*nu_bench_fn)(nu_bench_state *st, void *arg);

/* Counter kinds (subset of benchmark::Counter::Flags). */
enum {
    NU_COUNTER_PLAIN = 0,           /* a plain number (rates computed by the caller) */
    NU_COUNTER_AVG_ITERATIONS = 2,  /* value / iterations */
    NU_COUNTER_RATE_PER_ITER = 3    /* value / iterations / ... (kAvgIterationsRate) */
};

/* Registers fn(state, arg) under `name` (copied).  min_time_s <= 0 keeps
 * Google Benchmark's default.  Returns nothing; registration order is run order. */
void nu_bench_register(const char *name, nu_bench_fn fn, void *arg, double min_time_s);

/* The timing loop: while (nu_bench_keep_running(st)) { work } */
int nu_bench_keep_running(nu_bench_state *st);
int64_t nu_bench_iterations(nu_bench_state *st);
/* Wall-clock seconds of the timed loop so far, pauses excluded. */
double nu_bench_timed_seconds(nu_bench_state *st);
void nu_bench_pause(nu_bench_state *st);
void nu_bench_resume(nu_bench_state *st);
void nu_bench_set_counter(nu_bench_state *st, const char *name, double value, int kind);
void nu_bench_set_label(nu_bench_state *st, const char *label);
void nu_bench_skip(nu_bench_state *st, const char *why);
void nu_bench_set_items_processed(nu_bench_state *st, int64_t items);
void nu_bench_set_bytes_processed(nu_bench_state *st, int64_t bytes);
/* Keeps the compiler from discarding a value. */
void nu_bench_do_not_optimize(const void *p);

/* Initialises Google Benchmark with the command line (all its flags work),
 * adds context entries, runs the registered benchmarks.  Returns exit code. */
void nu_bench_add_context(const char *key, const char *value);
int nu_bench_main(int argc, char **argv);

/* ---- measured roofline, shared by every benchmark (bench_peak.c) ---- */
/* Measures once (best ISA the host runs): FMA peak in FLOP/s on one core and
 * streaming-read bandwidth in bytes/s on one core. */
void nu_roofline_measure(void);
double nu_roofline_fma_flops(void);
double nu_roofline_read_bytes(void);

/* Sets the standard counters of a kernel benchmark: GFLOP/s, GB/s and their
 * fractions of the measured one-core peaks, from per-iteration work. */
void nu_bench_report_work(nu_bench_state *st, double flops_per_iter, double bytes_per_iter);

/* Registration functions, one per benchmark file. */
void nu_bench_register_peak(void);
void nu_bench_register_matmul(void);
void nu_bench_register_engine(void);
void nu_bench_register_search_order(void);
void nu_bench_register_norm(void);
void nu_bench_register_attention(void);
void nu_bench_register_score(void);
void nu_bench_register_score_lowp(void);

#ifdef __cplusplus
}
#endif
#endif
