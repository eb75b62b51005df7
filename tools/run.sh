#!/usr/bin/env bash
# The main job on an embedded default: installs only what building and
# running nextuser needs (tools/setup-runtime.sh), builds, then trains the
# generator on synthetic interactions with planted structure, recommends
# users for held-out new items and measures recall against chance and
# popularity, serves a 100,000-user table in fp32 and int8, measures the
# kernels against this machine's own measured peaks, and ends by serving the
# trained model over HTTP on loopback (ask, reload, stop).  Every figure it
# shows is computed by nextuser itself.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./tools/setup-runtime.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build -j"$(nproc)" --target nextuser nextuser-microbench >/dev/null
nu=./build/nextuser
out=out/demo
mkdir -p "$out"

$nu info
echo
echo "== synthetic interactions with planted structure: 5,000 users, 2,000 items"
$nu synth-data --users 5000 --items 2000 --seed 1 --out "$out/data"

echo
echo "== train the generator (base shape: d 64, 4 heads, 2+1 layers, 50 users of context),"
echo "   keeping the epoch and popularity-prior weight that score best on the validation items"
$nu train --data "$out/data" --out "$out/model" --epochs 60 --val-every epoch --patience 5 \
  --batch 128 --negatives 1024 --lr 3e-3 --seed 1

echo
echo "== cold start on held-out test items: their first 5 users as context, top-20 users each"
$nu items --data "$out/data" --split test --stage 5 --out "$out/test_items.jsonl"
$nu retrieve --model "$out/model" --items "$out/test_items.jsonl" --k 20 --out "$out/top20.csv"
head -4 "$out/top20.csv"
echo
echo "recall@20 of each item's later users (the same items, stage 5), against chance and popularity:"
$nu eval --data "$out/data" --model "$out/model" --split test --stages 5 --k 20
$nu eval --data "$out/data" --baseline random --split test --stages 5 --k 20
$nu eval --data "$out/data" --baseline popular --split test --stages 5 --k 20

echo
echo "== at scale: 100,000 users, exact fp32 and int8 tables"
# The big synthetic model has prefix fields of its own: the items go without features.
$nu items --data "$out/data" --split test --stage 5 --no-features --out "$out/scale_items.jsonl"
$nu synth --users 100000 --dim 64 --out "$out/big" --seed 1 >/dev/null
$nu retrieve --model "$out/big" --items "$out/scale_items.jsonl" --k 100 --out "$out/top100.csv"
$nu retrieve --model "$out/big" --items "$out/scale_items.jsonl" --k 100 --dtype int8 --out "$out/top100-int8.csv"

echo
echo "== kernel microbenchmarks (frac_* = fraction of this machine's measured one-core peak)"
./build/nextuser-microbench --benchmark_min_time=0.05 \
  --benchmark_filter="${NU_BENCH_FILTER:-peak/fma/avx512|peak/read/avx512|matmul_nn/.*/M1024_K256_N256|score_topk/.*/B1_N1000000_d64_K100/|attention_fwd/.*/enc_T55_h4}" \
  --benchmark_counters_tabular=true

echo
echo "== serve the trained model over HTTP (loopback, an ephemeral port), ask it, reload it, stop it"
log="$out/serve.log"
$nu serve --model "$out/model" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --k 5 \
  >"$out/serve.out" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
port="" admin=""
for _ in $(seq 1 100); do # the service prints its ports once it listens
  line="$(grep -m1 'listening on' "$out/serve.out" 2>/dev/null || true)"
  if [ -n "$line" ]; then
    port="$(sed -E 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/' <<<"$line")"
    admin="$(sed -E 's/.*admin 127\.0\.0\.1:([0-9]+).*/\1/' <<<"$line")"
    break
  fi
  sleep 0.1
done
[ -n "$port" ] || { echo "serve did not start:" >&2; cat "$log" >&2; exit 1; }
item="$(head -1 "$out/test_items.jsonl")"
echo "POST /v1/recommend with one held-out item:"
curl -sS --fail-with-body -X POST "http://127.0.0.1:$port/v1/recommend" \
  -H 'Content-Type: application/json' -d "{\"items\": [$item], \"k\": 5}"
echo
echo "POST /admin/reload (the same directory; the old version serves until the swap):"
curl -sS --fail-with-body -X POST "http://127.0.0.1:$admin/admin/reload"
echo
curl -sS --fail-with-body "http://127.0.0.1:$port/metrics" | grep -E '^nextuser_(requests_total|reloads_total|model_info)' | head -5
kill -TERM "$pid"
wait "$pid" && echo "serve: stopped cleanly (exit 0)"
trap - EXIT
