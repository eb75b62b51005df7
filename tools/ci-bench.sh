#!/usr/bin/env bash
# The CI benchmark step: quick `nextuser bench` runs, then the regression gate
# against the committed baseline, results/baseline.json (the best of 3 runs of
# the same quick command on this machine: `tools/ci-bench.sh --update-baseline`).
#
# usage: tools/ci-bench.sh [BUILD_DIR] [--update-baseline]
# Environment (docs/plan.md, "The gate", has the measurements behind them):
#   NU_GATE_RUNS       quick runs merged best-of (default 2; baseline: 3)
#   NU_GATE_THRESHOLD  percent a group's median may drop (default 60)
#   NU_GATE_MODE       groups or rows (default groups)
#   NU_GATE_FILTER     regex of the rows gated (default "threads:1 ": one thread;
#                      set it empty on a dedicated runner to gate scaling too)
# Exit status: 0 no regression, 1 a regression or a failed run, 2 bad usage.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"
update=0
for arg in "$@"; do
  case "$arg" in
    --update-baseline) update=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    -*) echo "ci-bench.sh: unknown option $arg" >&2; exit 2 ;;
    *) build="$(cd "$arg" && pwd)" ;;
  esac
done
runs="${NU_GATE_RUNS:-2}"
[ "$update" = 1 ] && runs="${NU_GATE_RUNS:-3}"
threshold="${NU_GATE_THRESHOLD:-60}"
mode="${NU_GATE_MODE:-groups}"
filter="${NU_GATE_FILTER-threads:1 }"
nextuser="$build/nextuser"
if [ ! -x "$nextuser" ]; then
  echo "ci-bench.sh: $nextuser not found (build first)" >&2
  exit 2
fi

# Every suite at --quick (infer B 1,64; retrieve and serve at 100k users;
# train B 256), 1 and 2 threads: about 40 s a run on this 2-core machine.
quick=(bench --quick --suite all --threads 1,2)
files=()
for i in $(seq 1 "$runs"); do
  out="$build/bench-quick-$i.json"
  echo "== run $i/$runs: nextuser ${quick[*]} --json $out"
  "$nextuser" "${quick[@]}" --json "$out" >/dev/null
  files+=("$out")
done

if [ "$update" = 1 ]; then
  python3 "$root/tools/bench-compare" --write-best "$root/results/baseline.json" "${files[@]}"
  exit 0
fi

new="$(IFS=,; echo "${files[*]}")"
gate=(--threshold "$threshold" --gate "$mode")
[ -n "$filter" ] && gate+=(--filter "$filter")
echo "== bench-compare results/baseline.json $new --threshold $threshold --gate $mode" \
     "--filter '$filter'"
python3 "$root/tools/bench-compare" "$root/results/baseline.json" "$new" "${gate[@]}"
