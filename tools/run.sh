#!/usr/bin/env bash
# The main job on an embedded default: installs what it needs, builds, then
# serves cold-start recommendations end to end on a synthetic model
# (100,000 users, the base shape), with exact fp32 and int8 tables, and
# measures the kernels against this machine's own measured peaks.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./tools/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nextuser nextuser-microbench >/dev/null
nu=./build/nextuser
out=out/demo
mkdir -p "$out"

$nu info
echo
echo "== a synthetic model: 100,000 users, d 64, 4 prefix fields, with its user table"
$nu synth --users 100000 --dim 64 --out "$out/model" --seed 1

echo
echo "== 2,000 new items, each with its features and up to 50 recent users"
awk -v n=2000 -v users=100000 'BEGIN {
  srand(7);
  for (i = 0; i < n; i++) {
    k = int(rand() * 51); u = "";
    for (j = 0; j < k; j++) u = u (j ? ", " : "") "\"u" int(rand() * users) "\"";
    printf "{\"id\": \"item%d\", \"features\": {\"genres\": [\"v%d\", \"v%d\"], \"year\": \"v%d\", \"tags\": [\"v%d\"]}, \"users\": [%s]}\n",
      i, 1 + int(rand() * 19), 1 + int(rand() * 19), 1 + int(rand() * 11), 1 + int(rand() * 199), u;
  }
}' > "$out/items.jsonl"
head -c 300 "$out/items.jsonl"; echo " ..."

echo
echo "== top-100 users per item (generator + exact fp32 scoring), then with the int8 table"
$nu retrieve --model "$out/model" --items "$out/items.jsonl" --k 100 --out "$out/top100.csv"
$nu retrieve --model "$out/model" --items "$out/items.jsonl" --k 100 --dtype int8 --out "$out/top100-int8.csv"
head -4 "$out/top100.csv"

echo
echo "== kernel microbenchmarks (frac_* = fraction of this machine's measured one-core peak)"
./build/nextuser-microbench --benchmark_min_time=0.05 \
  --benchmark_filter="${NU_BENCH_FILTER:-peak/fma/avx512|peak/read/avx512|matmul_nn/.*/M1024_K256_N256|score_topk/.*/B1_N1000000_d64_K100$|attention_fwd/.*/enc_T55_h4}" \
  --benchmark_counters_tabular=true
