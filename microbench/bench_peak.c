/* The roofline of this machine, measured by our own loops: one core's FMA
 * peak and streaming-read bandwidth.  Every kernel benchmark reports itself
 * also as a fraction of these. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch.h"
#include "gbench.h"

static double fma_flops, read_bytes;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Streaming-read probe size: far above any cache (256 MiB). */
#define READ_FLOATS ((size_t)64 << 20)

static float *read_buffer(void)
{
    static float *buf;
    if (!buf) {
        buf = aligned_alloc(64, READ_FLOATS * sizeof(float));
        if (!buf) {
            fprintf(stderr, "nextuser-microbench: out of memory for the bandwidth probe\n");
            exit(2);
        }
        for (size_t i = 0; i < READ_FLOATS; i++)
            buf[i] = (float)(i & 1023) * 1e-3f;
    }
    return buf;
}

void nu_roofline_measure(void)
{
    if (fma_flops > 0)
        return;
    /* The best of every ISA's loops, each the best of several short runs:
     * the maximum is the least disturbed one, and on some cores narrower
     * loads stream faster than wider ones. */
    volatile float sink = 0;
    float *buf = read_buffer();
    for (int i = 0; i < NU_ISA_COUNT; i++) {
        const nu_kernel_table *t = nu_kernels_for((nu_isa)i);
        if (!t)
            continue;
        size_t iters = 20u << 20;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_s();
            sink += t->peak_fma(iters);
            double f = (double)iters * (double)t->peak_fma_flops_per_iter / (now_s() - t0);
            if (f > fma_flops)
                fma_flops = f;
        }
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_s();
            sink += t->stream_sum(READ_FLOATS, buf);
            double b = (double)READ_FLOATS * sizeof(float) / (now_s() - t0);
            if (b > read_bytes)
                read_bytes = b;
        }
    }
    (void)sink;
}

double nu_roofline_fma_flops(void) { nu_roofline_measure(); return fma_flops; }
double nu_roofline_read_bytes(void) { nu_roofline_measure(); return read_bytes; }

void nu_bench_report_work(nu_bench_state *st, double flops_per_iter, double bytes_per_iter)
{
    /* Plain numbers: GFLOP/s and fractions are already rates. */
    double per_s = (double)nu_bench_iterations(st) / nu_bench_timed_seconds(st);
    if (flops_per_iter > 0) {
        double flops = flops_per_iter * per_s;
        nu_bench_set_counter(st, "GFLOPS", flops * 1e-9, NU_COUNTER_PLAIN);
        nu_bench_set_counter(st, "frac_fma_peak", flops / nu_roofline_fma_flops(), NU_COUNTER_PLAIN);
    }
    if (bytes_per_iter > 0) {
        double bytes = bytes_per_iter * per_s;
        nu_bench_set_counter(st, "GBps", bytes * 1e-9, NU_COUNTER_PLAIN);
        nu_bench_set_counter(st, "frac_read_bw", bytes / nu_roofline_read_bytes(), NU_COUNTER_PLAIN);
    }
}

/* The two reference loops as benchmarks of their own, per ISA, so the JSON
 * carries the peak measured in the same run as every kernel. */
static void bench_peak_fma(nu_bench_state *st, void *arg)
{
    const nu_kernel_table *t = arg;
    const size_t iters = 1u << 20;
    volatile float sink = 0;
    while (nu_bench_keep_running(st))
        sink += t->peak_fma(iters);
    (void)sink;
    nu_bench_report_work(st, (double)iters * (double)t->peak_fma_flops_per_iter, 0);
}

static void bench_peak_read(nu_bench_state *st, void *arg)
{
    const nu_kernel_table *t = arg;
    float *buf = read_buffer();
    volatile float sink = 0;
    while (nu_bench_keep_running(st))
        sink += t->stream_sum(READ_FLOATS, buf);
    (void)sink;
    nu_bench_report_work(st, 0, (double)READ_FLOATS * sizeof(float));
}

/* Streaming read on several threads at once (each streams its own part of
 * the buffer): the bandwidth bound of multi-threaded scans. */
static void bench_peak_read_threads(nu_bench_state *st, void *arg)
{
    const nu_kernel_table *t = nu_kernels_for(nu_isa_best());
    int threads = (int)(intptr_t)arg;
    float *buf = read_buffer();
    float sums[256] = {0};
    while (nu_bench_keep_running(st)) {
#pragma omp parallel num_threads(threads)
        {
            int i = omp_get_thread_num(), n = omp_get_num_threads();
            size_t lo = READ_FLOATS * (size_t)i / (size_t)n, hi = READ_FLOATS * (size_t)(i + 1) / (size_t)n;
            sums[i & 255] += t->stream_sum(hi - lo, buf + lo);
        }
    }
    nu_bench_do_not_optimize(sums);
    nu_bench_report_work(st, 0, (double)READ_FLOATS * sizeof(float));
}

void nu_bench_register_peak(void)
{
    char tname[64];
    for (int n = 1; n <= omp_get_max_threads() && n <= 256; n++) {
        snprintf(tname, sizeof tname, "peak/read_threads/%d", n);
        nu_bench_register(tname, bench_peak_read_threads, (void *)(intptr_t)n, 0);
    }
    char name[96];
    for (int i = 0; i < NU_ISA_COUNT; i++) {
        const nu_kernel_table *t = nu_kernels_for((nu_isa)i);
        if (!t)
            continue;
        snprintf(name, sizeof name, "peak/fma/%s", t->name);
        nu_bench_register(name, bench_peak_fma, (void *)t, 0);
        snprintf(name, sizeof name, "peak/read/%s", t->name);
        nu_bench_register(name, bench_peak_read, (void *)t, 0);
    }
}
