/* The human table on stdout: one line per workload with its throughput,
 * latency, work rates and fraction of the measured peak ("-" where a
 * figure does not apply). */
#include <math.h>
#include <stdio.h>

#include "bench/bench.h"

static void cell(FILE *f, double v, int width, int prec)
{
    if (isnan(v))
        fprintf(f, " %*s", width, "-");
    else
        fprintf(f, " %*.*f", width, prec, v);
}

void nu_bench_print_table(FILE *f, const nu_bench_results *r)
{
    fprintf(f, "%-56s %11s %9s %9s %8s %7s %6s  %s\n", "workload", "items|q/s", "p50 ms", "p99 ms",
            "GFLOP/s", "GB/s", "frac", "notes");
    for (size_t i = 0; i < r->n; i++) {
        const nu_bench_result *e = &r->v[i];
        double rate = nu_bench_get(e, "items_per_second", NAN);
        if (isnan(rate))
            rate = nu_bench_get(e, "queries_per_second", NAN);
        if (isnan(rate))
            rate = nu_bench_get(e, "max_rate_per_second", NAN);
        double frac = nu_bench_get(e, "frac_peak", NAN);
        if (isnan(frac))
            frac = nu_bench_get(e, "frac_bw", NAN);
        fprintf(f, "%-56s", e->name);
        cell(f, rate, 11, rate < 100 ? 1 : 0);
        cell(f, nu_bench_get(e, "p50_ms", NAN), 9, 3);
        cell(f, nu_bench_get(e, "p99_ms", NAN), 9, 3);
        cell(f, nu_bench_get(e, "gflops", NAN), 8, 1);
        cell(f, nu_bench_get(e, "gbps", NAN), 7, 1);
        cell(f, frac, 6, 3);
        double recall = nu_bench_get(e, "recall_at_100", NAN);
        double offered = nu_bench_get(e, "offered_per_second", NAN);
        double bound = nu_bench_get(e, "p99_bound_ms", NAN);
        if (!isnan(recall))
            fprintf(f, "  recall@100 %.3f", recall);
        if (!isnan(offered))
            fprintf(f, "  offered %.0f/s, batch %.1f, p90 %.2f ms", offered,
                    nu_bench_get(e, "batch_mean", 0), nu_bench_get(e, "p90_ms", 0));
        if (!isnan(bound))
            fprintf(f, "  highest rate with p99 <= %.0f ms (batch <= %.0f, wait <= %.1f ms)", bound,
                    nu_bench_get(e, "max_batch", 0), nu_bench_get(e, "max_wait_ms", 0));
        fputc('\n', f);
    }
}
