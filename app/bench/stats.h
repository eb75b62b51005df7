/* Small statistics and timing helpers of the benchmark workloads. */
#ifndef NU_BENCH_STATS_H
#define NU_BENCH_STATS_H

#include <stddef.h>

double nu_bench_now(void); /* monotonic seconds */
void nu_bench_sort(double *v, size_t n);
/* Nearest-rank percentile (p in [0, 100]) of n sorted values; 0 when n == 0. */
double nu_bench_percentile(const double *sorted, size_t n, double p);
/* Median of n values (not modified); 0 when n == 0. */
double nu_bench_median(const double *v, size_t n);
double nu_bench_mean(const double *v, size_t n);

#endif
