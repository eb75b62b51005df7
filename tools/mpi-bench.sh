#!/usr/bin/env bash
# Sharded retrieval on this machine (results/mpi.md, docs/mpi.md): a 1M-user
# synthetic model, B = 256 queries per batch.
#  1. the target: mpirun -np 2 nextuser search --threads 1 against the single
#     process with --threads 2, alternated, REPS runs each, median queries/s;
#  2. the split per rank (scan / communication / merge, bytes per batch) of
#     search and retrieve at R = 1, 2, 4 (--oversubscribe beyond 2);
#  3. the loopback figure (tools/mpi_pingpong.c, when mpicc is there) and
#     WORK_DIR/mpi_results.json, the measured search runs R = 2, 4, for
#     `nextuser plan --hosts --mpi-results` (docs/plan.md).
# usage: tools/mpi-bench.sh BUILD_DIR WORK_DIR [REPS]
# USERS=N (default 1000000) for a smaller table; REPS=0 skips the target.
set -euo pipefail
build="$(cd "$1" && pwd)"; work="$2"; reps="${3:-5}"; users="${USERS:-1000000}"
tools="$(cd "$(dirname "$0")" && pwd)"
NU="$build/nextuser"
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -ne 0 ] || MPIRUN+=(--allow-run-as-root)
mkdir -p "$work"; cd "$work"
if [ "$(cat m1m.users 2>/dev/null)" != "$users" ]; then
  rm -rf m1m
  "$NU" synth --users "$users" --dim 64 --out m1m --seed 11 --dtypes all
  echo "$users" > m1m.users
fi
/usr/bin/python3 - <<'PY'
import json, os, random
r = random.Random(5)
with open("q.tsv", "w") as f:
    for i in range(1024):
        f.write("q%d\t%s\n" % (i, " ".join("%.6g" % r.gauss(0, 1) for _ in range(64))))
with open("items.jsonl", "w") as f:
    for i in range(1024):
        users = ["u%d" % r.randrange(int(os.environ.get("USERS", "1000000"))) for _ in range(r.randrange(1, 40))]
        f.write(json.dumps({"id": "it%d" % i, "users": users}) + "\n")
PY
single=("$NU" search --model m1m --queries q.tsv --batch 256 --threads 2 --out single.csv)
sharded=("${MPIRUN[@]}" -np 2 "$NU" search --model m1m --queries q.tsv --batch 256 --threads 1 --out sharded.csv)
if [ "$reps" -gt 0 ]; then
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
fi
for dt in fp32 int8; do
  for R in 1 2 4; do
    echo "== search $dt R=$R"
    "${MPIRUN[@]}" -np $R "$NU" search --model m1m --queries q.tsv --batch 256 --threads 1 --dtype $dt --out s.csv 2> "search_${dt}_$R.log" || { cat "search_${dt}_$R.log"; exit 1; }
    cat "search_${dt}_$R.log"
    echo "== retrieve $dt R=$R"
    "${MPIRUN[@]}" -np $R "$NU" retrieve --model m1m --items items.jsonl --batch 256 --threads 1 --dtype $dt --out r.csv
  done
done 2>&1
pp=()
if command -v mpicc >/dev/null; then
  mpicc -O2 -o mpi_pingpong "$tools/mpi_pingpong.c"
  "${MPIRUN[@]}" -np 2 ./mpi_pingpong | tee pingpong.txt
  pp=(--pingpong pingpong.txt)
fi
/usr/bin/python3 "$tools/mpi_results.py" mpi_results.json --query-width 64 "${pp[@]}" \
  search_fp32_2.log search_fp32_4.log search_int8_2.log search_int8_4.log
echo "wrote $work/mpi_results.json (nextuser plan --hosts --mpi-results $work/mpi_results.json)"
