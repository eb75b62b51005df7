#!/usr/bin/env bash
# Sharded retrieval on this machine (results/mpi.md, docs/mpi.md): a 1M-user
# synthetic model, B = 256 queries per batch.
#  1. the target: mpirun -np 2 nextuser search --threads 1 against the single
#     process with --threads 2, alternated, REPS runs each, median queries/s;
#  2. the split per rank (scan / communication / merge, bytes per batch) of
#     search and retrieve at R = 1, 2, 4 (--oversubscribe beyond 2).
# usage: tools/mpi-bench.sh BUILD_DIR WORK_DIR [REPS]
set -euo pipefail
build="$(cd "$1" && pwd)"; work="$2"; reps="${3:-5}"
NU="$build/nextuser"
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -ne 0 ] || MPIRUN+=(--allow-run-as-root)
mkdir -p "$work"; cd "$work"
if [ ! -f m1m/user_table.safetensors ]; then
  "$NU" synth --users 1000000 --dim 64 --out m1m --seed 11 --dtypes all
fi
/usr/bin/python3 - <<'PY'
import json, random
r = random.Random(5)
with open("q.tsv", "w") as f:
    for i in range(1024):
        f.write("q%d\t%s\n" % (i, " ".join("%.6g" % r.gauss(0, 1) for _ in range(64))))
with open("items.jsonl", "w") as f:
    for i in range(1024):
        users = ["u%d" % r.randrange(1000000) for _ in range(r.randrange(1, 40))]
        f.write(json.dumps({"id": "it%d" % i, "users": users}) + "\n")
PY
single=("$NU" search --model m1m --queries q.tsv --batch 256 --threads 2 --out single.csv)
sharded=("${MPIRUN[@]}" -np 2 "$NU" search --model m1m --queries q.tsv --batch 256 --threads 1 --out sharded.csv)
echo "== target: ${single[*]}  vs  ${sharded[*]}"
"${single[@]}" 2>/dev/null; "${sharded[@]}" 2>/dev/null # warm the page cache
for i in $(seq "$reps"); do
  "${single[@]}" 2>&1 | grep "queries/s" | sed 's/^/single  /'
  "${sharded[@]}" 2>&1 | grep "queries/s" | sed 's/^/sharded /'
done | tee target.log
cmp single.csv sharded.csv && echo "outputs identical"
/usr/bin/python3 - <<'PY'
import re, statistics
v = {"single": [], "sharded": []}
for line in open("target.log"):
    m = re.search(r"\(([\d.]+) queries/s\)", line)
    v[line.split()[0]].append(float(m.group(1)))
a, b = statistics.median(v["single"]), statistics.median(v["sharded"])
print("single 2 threads: %s -> median %.1f queries/s" % (v["single"], a))
print("sharded R=2 x 1:  %s -> median %.1f queries/s" % (v["sharded"], b))
print("ratio %.3f" % (b / a))
PY
for dt in fp32 int8; do
  for R in 1 2 4; do
    echo "== search $dt R=$R"
    "${MPIRUN[@]}" -np $R "$NU" search --model m1m --queries q.tsv --batch 256 --threads 1 --dtype $dt --out s.csv
    echo "== retrieve $dt R=$R"
    "${MPIRUN[@]}" -np $R "$NU" retrieve --model m1m --items items.jsonl --batch 256 --threads 1 --dtype $dt --out r.csv
  done
done 2>&1
