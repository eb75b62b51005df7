#!/usr/bin/env bash
# Sharded training on this machine (results/mpi.md, docs/mpi.md "Training"):
#  1. the target: mpirun -np 2 nextuser train --threads 1 against the single
#     process with --threads 2, alternated, REPS runs each of STEPS steps
#     (B = 256, M = 1024, base model) on a synthetic data set of USERS users;
#     median steps/s of each and their ratio;
#  2. the split per rank (bytes sent per step by kind, compute and
#     communication time) at R = 1, 2, 4 (--oversubscribe beyond 2), and the
#     dense gradient's bytes against docs/mpi.md's 8 (R - 1) / R x D;
#  3. quality: ml-latest-small (when ../shared/data has it) trained to the
#     end with validation at R = 2 and by one process, test recall@50 at
#     every stage of both.
# usage: tools/mpi-train-bench.sh BUILD_DIR WORK_DIR [REPS]
# USERS (default 100000), STEPS (default 12); REPS=0 skips part 1.
set -euo pipefail
build="$(cd "$1" && pwd)"; work="$2"; reps="${3:-3}"
users="${USERS:-100000}"; steps="${STEPS:-12}"
root="$(cd "$(dirname "$0")/.." && pwd)"
NU="$build/nextuser"
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" -ne 0 ] || MPIRUN+=(--allow-run-as-root)
mkdir -p "$work"; cd "$work"
if [ "$(cat data.users 2>/dev/null)" != "$users" ]; then
  rm -rf data
  "$NU" synth-data --users "$users" --items 20000 --out data >/dev/null
  echo "$users" > data.users
fi
train=(train --data data --batch 256 --negatives 1024 --max-steps "$steps" --no-prior)
# steps/s of one run from its summary line (steps, seconds)
rate() { sed -n 's/.*: \([0-9]*\) steps (.*) in \([0-9.]*\) s,.*/\1 \2/p' "$1" | awk '{print $1 / $2}'; }

if [ "$reps" -gt 0 ]; then
  echo "== target: nextuser ${train[*]} --threads 2  vs  ${MPIRUN[*]} -np 2 nextuser ${train[*]} --threads 1"
  for i in $(seq "$reps"); do
    "$NU" "${train[@]}" --out s1 --threads 2 2> single.txt
    "${MPIRUN[@]}" -np 2 "$NU" "${train[@]}" --out s2 --threads 1 2> sharded.txt
    echo "$(rate single.txt) $(rate sharded.txt)"
  done | /usr/bin/python3 -c '
import statistics, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
for i, (a, b) in enumerate(rows, 1):
    print("round %d: single %.3f steps/s, sharded %.3f steps/s, ratio %.3f" % (i, a, b, b / a))
a, b = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
print("median: single %.3f steps/s, sharded %.3f steps/s, ratio %.3f (target >= 0.85)" % (a, b, b / a))'
  cmp s1/model.safetensors s2/model.safetensors && echo "same model, bit for bit"
fi

echo "== split per rank"
dense=$(/usr/bin/python3 - s2/model.safetensors <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
# dense parameters: every tensor but user_emb, the feature tables and the serving priors
skip = lambda k: k == "__metadata__" or k == "user_emb" or k.endswith(".emb") or "prior" in k
D = 0
for k, v in h.items():
    if not skip(k):
        c = 1
        for x in v["shape"]: c *= x
        D += c
print(D)
PY
)
for R in 1 2 4; do
  echo "-- R = $R: ${MPIRUN[*]} -np $R nextuser ${train[*]} --threads 1"
  "${MPIRUN[@]}" -np "$R" "$NU" "${train[@]}" --out "r$R" --threads 1 2>&1 | grep 'rank .* of' || true
  echo "   docs/mpi.md: dense gradient 8 x (R - 1) / R x D = $(awk -v R="$R" -v D="$dense" 'BEGIN { print 8 * (R - 1) / R * D }') bytes (D = $dense)"
done

ml="$root/../shared/data/ml-latest-small"
if [ -f "$ml/ratings.csv" ]; then
  echo "== quality: ml-latest-small, R = 2 against one process"
  mkdir -p ml
  [ -f ml/data/data.json ] || "$NU" prepare --format movielens --ratings "$ml/ratings.csv" --items "$ml/movies.csv" \
      --tags "$ml/tags.csv" --out ml/data --seed 1 >/dev/null
  q=(train --data ml/data --epochs 60 --batch 128 --negatives 1024 --lr 0.003 --seed 1
     --val-every epoch --patience 5)
  echo "nextuser ${q[*]} --out ml/single --threads 2"
  "$NU" "${q[@]}" --out ml/single --threads 2 2>&1 | tail -2
  echo "${MPIRUN[*]} -np 2 nextuser ${q[*]} --out ml/sharded --threads 1"
  "${MPIRUN[@]}" -np 2 "$NU" "${q[@]}" --out ml/sharded --threads 1 2>&1 | tail -4
  for m in single sharded; do
    "$NU" eval --data ml/data --split test --model "ml/$m" --k 50 --stages 0,1,5,10,20 --threads 2 \
        --json "ml/eval-$m.json" >/dev/null 2>&1
  done
  /usr/bin/python3 - ml/eval-single.json ml/eval-sharded.json <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
rb = {s["stage"]: s["recall"]["50"] for s in b["stages"]}
worst = 0.0
for s in a["stages"]:
    d = abs(s["recall"]["50"] - rb[s["stage"]])
    worst = max(worst, d)
    print("stage %2d: test recall@50 one process %.4f, R = 2 %.4f, |difference| %.4f"
          % (s["stage"], s["recall"]["50"], rb[s["stage"]], d))
print("largest difference %.4f (target <= 0.01)" % worst)
PY
fi
