#!/usr/bin/env bash
# The main job on an embedded default: installs what it needs, builds, then
# shows what this machine runs and measures the kernels against its own
# measured FMA peak and read bandwidth.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./tools/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/nextuser info
echo
echo "Kernel microbenchmarks (frac_* = fraction of this machine's measured one-core peak):"
./build/nextuser-microbench --benchmark_min_time=0.05 \
  --benchmark_filter="${NU_BENCH_FILTER:-peak|/M1024_K256_N256|/B1_N1000000|layernorm/.*/rows4096_d64|attention_fwd/.*/T55}" \
  --benchmark_counters_tabular=true
