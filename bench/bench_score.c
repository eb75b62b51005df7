/* PLACEHOLDER: score benchmarks not written yet. */
#include "gbench.h"

void nu_bench_register_score(void) {}
