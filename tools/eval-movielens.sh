#!/usr/bin/env bash
# The cold-start evaluation of a MovieLens download: tools/eval-data.sh with
# the defaults it always had.
#
#   ./tools/eval-movielens.sh [MOVIELENS_DIR] [OUT_DIR]
#
# MOVIELENS_DIR [../shared/data/ml-latest-small]: ratings.csv + movies.csv
# (+ tags.csv), or ml-100k's u.data + u.item (any layout of eval-data.sh
# works); OUT_DIR [out/ml].  Relative paths are from the repository root, as
# they always were.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./tools/eval-data.sh "${1:-../shared/data/ml-latest-small}" "${2:-out/ml}"
