#!/usr/bin/env bash
# The whole cold-start evaluation (docs/evaluation.md) in one command:
# installs what it needs, builds, prepares a MovieLens download, trains the
# model and its four ablations, evaluates them and the four baselines on
# validation and test, and writes a report, a JSON file and a plot.
#
#   ./tools/eval-movielens.sh [MOVIELENS_DIR] [OUT_DIR]
#
# MOVIELENS_DIR: ratings.csv + movies.csv (+ tags.csv), or ml-100k's u.data +
# u.item [default ../shared/data/ml-latest-small]; OUT_DIR [out/ml] receives
# the data, models, report.md, report.json and recall50.png.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
src="${1:-../shared/data/ml-latest-small}"
out="${2:-out/ml}"
if [ ! -d "$src" ]; then
  echo "eval-movielens: $src is not a directory: download a MovieLens dataset" \
       "(https://grouplens.org/datasets/movielens/) and pass its directory" >&2
  exit 2
fi
./tools/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target nextuser >/dev/null
/usr/bin/python3 tools/eval_movielens.py --nextuser build/nextuser --movielens "$src" --work "$out" \
  --md "$out/report.md" --json "$out/report.json" --png "$out/recall50.png"
echo "report: $out/report.md, plot: $out/recall50.png"
