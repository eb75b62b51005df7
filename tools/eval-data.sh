#!/usr/bin/env bash
# The whole cold-start evaluation (docs/evaluation.md) of one data directory,
# in one command: installs what it needs, builds, prepares the data, trains
# the model and its five ablations, evaluates them and the six baselines on
# validation and test, and writes a report, a JSON file and a plot.
#
#   ./tools/eval-data.sh DATA_DIR [OUT_DIR]
#
# DATA_DIR in any of three layouts, detected in this order:
#   MovieLens  ratings.csv + movies.csv (+ tags.csv)   (ml-latest-small, ml-25m, ...)
#   ml-100k    u.data + u.item
#   generic    interactions.csv (user,item,timestamp,signal) + items.csv
#              (item,features: field=value|field=value, docs/data-format.md)
# OUT_DIR [out/<name of DATA_DIR>] receives the data, models, report.md,
# report.json and recall50.png.  NU_BUILD_DIR [build] is the build directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: tools/eval-data.sh DATA_DIR [OUT_DIR]" >&2
  exit 2
fi
# Paths as given are relative to the caller's directory; the work runs from the root.
src="$(cd "$1" 2>/dev/null && pwd)" || {
  echo "eval-data: $1 is not a directory: pass a MovieLens download" \
       "(https://grouplens.org/datasets/movielens/) or interactions.csv + items.csv" >&2
  exit 2
}
out="$(realpath -m "${2:-$root/out/$(basename "$src")}")"
build="${NU_BUILD_DIR:-build}"
cd "$root"
# Relative to the root again, so that the report's commands read as before.
src="$(realpath -m --relative-to=. "$src")"
out="$(realpath -m --relative-to=. "$out")"
./tools/setup-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target nextuser >/dev/null
/usr/bin/python3 tools/eval_movielens.py --nextuser "$build/nextuser" --data-dir "$src" \
  --work "$out" --md "$out/report.md" --json "$out/report.json" --png "$out/recall50.png"
echo "report: $out/report.md, plot: $out/recall50.png"
