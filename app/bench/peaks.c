/* The machine's roofline, measured at the start of every `nextuser bench`
 * run with the kernel table's own loops: the FMA peak (peak_fma) and the
 * streaming-read bandwidth (stream_sum over a buffer far above the last
 * level cache), for each thread count of the run.  Every ISA this CPU runs
 * is tried and the best kept, ignoring NU_ISA: the peak is the machine's,
 * so a run forced to a lower ISA shows a lower fraction of it. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/stats.h"
#include "dispatch.h"
#include "error.h"
#include "util/huge_alloc.h"

/* GFLOP/s of `threads` threads each running `iters` rounds of the FMA loop. */
static double fma_once(const nu_kernel_table *k, int threads, size_t iters)
{
    float sums[256] = {0};
    double t0 = nu_bench_now();
#pragma omp parallel num_threads(threads) if (threads > 1)
    sums[omp_get_thread_num() & 255] += k->peak_fma(iters);
    double s = nu_bench_now() - t0;
    volatile float sink = sums[0];
    (void)sink;
    return (double)threads * (double)iters * (double)k->peak_fma_flops_per_iter / s * 1e-9;
}

/* GB/s of `threads` threads streaming their own part of buf (n floats). */
static double read_once(const nu_kernel_table *k, int threads, const float *buf, size_t n)
{
    float sums[256] = {0};
    double t0 = nu_bench_now();
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        size_t i = (size_t)omp_get_thread_num(), T = (size_t)omp_get_num_threads();
        size_t lo = n * i / T, hi = n * (i + 1) / T;
        sums[i & 255] += k->stream_sum(hi - lo, buf + lo);
    }
    double s = nu_bench_now() - t0;
    volatile float sink = sums[0];
    (void)sink;
    return (double)n * sizeof(float) / s * 1e-9;
}

/* Runs the probes and raises p's figures where this pass beat them. */
static nu_status probe(const nu_bench_config *c, nu_bench_peaks *p)
{
    size_t n = c->read_bytes / sizeof(float);
    float *buf = nu_huge_alloc(n * sizeof(float)); /* 2 MiB pages, as the tables have */
    if (!buf)
        return nu_error(NU_ERR_NOMEM, "out of memory for the %zu MiB bandwidth probe",
                        c->read_bytes >> 20);
    /* First touch by all threads, as the scans will read it. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        buf[i] = (float)(i & 1023) * 1e-3f;
    p->n = c->n_threads;
    for (int ti = 0; ti < c->n_threads; ti++) {
        int T = c->threads[ti];
        p->threads[ti] = T;
        nu_bench_progress("peak: FMA and read bandwidth, %d thread%s", T, T > 1 ? "s" : "");
        for (int isa = 0; isa < NU_ISA_COUNT; isa++) {
            const nu_kernel_table *k = nu_kernels_for((nu_isa)isa);
            if (!k)
                continue;
            /* Calibrate to about 40 ms a round, then keep the best of a few:
             * the maximum is the least disturbed one on a shared machine. */
            size_t iters = 1u << 16;
            double g = fma_once(k, T, iters);
            iters = (size_t)(0.04 * g * 1e9 / ((double)T * (double)k->peak_fma_flops_per_iter)) + 1;
            for (int rep = 0; rep < 5; rep++) {
                g = fma_once(k, T, iters);
                if (g > p->fma_gflops[ti]) {
                    p->fma_gflops[ti] = g;
                    p->fma_isa = k->name;
                }
            }
            /* The scalar loop cannot stream at full speed: not a bound. */
            if (isa == NU_ISA_SCALAR)
                continue;
            for (int rep = 0; rep < (c->quick ? 3 : 5); rep++) {
                double b = read_once(k, T, buf, n);
                if (b > p->read_gbps[ti]) {
                    p->read_gbps[ti] = b;
                    p->read_isa = k->name;
                }
            }
        }
    }
    free(buf);
    return NU_OK;
}

nu_status nu_bench_measure_peaks(const nu_bench_config *c, nu_bench_peaks *p, nu_bench_results *out)
{
    memset(p, 0, sizeof *p);
    nu_status s = probe(c, p);
    for (int ti = 0; ti < p->n && s == NU_OK; ti++) {
        int T = p->threads[ti];
        if (!nu_bench_add(out, T, "peak/fma/threads:%d", T) || !nu_bench_add(out, T, "peak/read/threads:%d", T))
            s = nu_error(NU_ERR_NOMEM, "out of memory");
    }
    return s;
}

nu_status nu_bench_remeasure_peaks(const nu_bench_config *c, nu_bench_peaks *p)
{
    return probe(c, p);
}

void nu_bench_apply_peaks(const nu_bench_config *c, const nu_bench_peaks *p, nu_bench_results *r)
{
    for (size_t i = 0; i < r->n; i++) {
        nu_bench_result *e = &r->v[i];
        double fma = nu_bench_peak_fma(p, e->threads), bw = nu_bench_peak_read(p, e->threads);
        if (!strncmp(e->name, "peak/fma/", 9)) {
            e->real_time_ms = 40; /* one probe round is calibrated to 40 ms */
            nu_bench_set(e, "gflops", fma);
        } else if (!strncmp(e->name, "peak/read/", 10)) {
            e->real_time_ms = bw > 0 ? 1e3 * (double)c->read_bytes * 1e-9 / bw : 0;
            nu_bench_set(e, "gbps", bw);
        } else {
            double g = nu_bench_get(e, "gflops", -1), b = nu_bench_get(e, "gbps", -1);
            if (nu_bench_get(e, "frac_peak", -1) >= 0 && g >= 0)
                nu_bench_set(e, "frac_peak", fma > 0 ? g / fma : 0);
            if (nu_bench_get(e, "frac_bw", -1) >= 0 && b >= 0)
                nu_bench_set(e, "frac_bw", bw > 0 ? b / bw : 0);
        }
    }
}

double nu_bench_peak_fma(const nu_bench_peaks *p, int threads)
{
    for (int i = 0; i < p->n; i++)
        if (p->threads[i] == threads)
            return p->fma_gflops[i];
    return 0;
}

double nu_bench_peak_read(const nu_bench_peaks *p, int threads)
{
    for (int i = 0; i < p->n; i++)
        if (p->threads[i] == threads)
            return p->read_gbps[i];
    return 0;
}
