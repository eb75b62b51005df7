#!/usr/bin/env bash
# The main job on an embedded default: installs what it needs, builds, then
# trains the generator on synthetic interactions with planted structure,
# recommends users for held-out new items and measures recall against
# chance, serves a 100,000-user table in fp32 and int8, and measures the
# kernels against this machine's own measured peaks.
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
echo "== synthetic interactions with planted structure: 5,000 users, 2,000 items"
$nu synth-data --users 5000 --items 2000 --seed 1 --out "$out/data"

echo
echo "== train the generator (base shape: d 64, 4 heads, 2+1 layers, 50 users of context)"
$nu train --data "$out/data" --out "$out/model" --epochs 5 --batch 128 --negatives 1024 --seed 1

echo
echo "== cold start on held-out test items: their first 5 users as context, top-20 users each"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
with open(out + "/test_items.jsonl", "w") as f, open(out + "/scale_items.jsonl", "w") as g:
    for line in open(out + "/data/items.jsonl"):
        it = json.loads(line)
        pos = [u for u, _ in it["positives"]]
        if it["split"] == "test" and len(pos) >= 6:
            f.write(json.dumps({"id": it["id"], "features": it["features"], "users": pos[:5]}) + "\n")
            g.write(json.dumps({"id": it["id"], "users": pos[:5]}) + "\n")  # the big model has its own fields
PY
$nu retrieve --model "$out/model" --items "$out/test_items.jsonl" --k 20 --out "$out/top20.csv"
head -4 "$out/top20.csv"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
truth = {}
for line in open(out + "/data/items.jsonl"):
    it = json.loads(line)
    pos = [u for u, _ in it["positives"]]
    if it["split"] == "test" and len(pos) >= 6:
        truth[it["id"]] = set(pos[5:])
got = {}
for line in open(out + "/top20.csv").readlines()[1:]:
    item, _, user, _ = line.strip().split(",")
    got.setdefault(item, set()).add(user)
users = sum(1 for _ in open(out + "/data/users.txt"))
recall = sum(len(got.get(i, set()) & t) / len(t) for i, t in truth.items()) / len(truth)
chance = 20 / (users - 5)
print(f"recall@20 of the later users on {len(truth)} held-out items: {recall:.3f} "
      f"(random: {chance:.4f}, {recall / chance:.0f}x)")
PY

echo
echo "== at scale: 100,000 users, exact fp32 and int8 tables"
$nu synth --users 100000 --dim 64 --out "$out/big" --seed 1 >/dev/null
$nu retrieve --model "$out/big" --items "$out/scale_items.jsonl" --k 100 --out "$out/top100.csv"
$nu retrieve --model "$out/big" --items "$out/scale_items.jsonl" --k 100 --dtype int8 --out "$out/top100-int8.csv"

echo
echo "== kernel microbenchmarks (frac_* = fraction of this machine's measured one-core peak)"
./build/nextuser-microbench --benchmark_min_time=0.05 \
  --benchmark_filter="${NU_BENCH_FILTER:-peak/fma/avx512|peak/read/avx512|matmul_nn/.*/M1024_K256_N256|score_topk/.*/B1_N1000000_d64_K100$|attention_fwd/.*/enc_T55_h4}" \
  --benchmark_counters_tabular=true
