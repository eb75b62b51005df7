#!/usr/bin/env bash
# ctest fuzz_<name>: replays the seed corpus of tests/fuzz/<name>/corpus (every
# seed must pass), then fuzzes RUNS executions or SECONDS, whichever ends
# first, with the target's dictionary.  New inputs and any crash file go to
# WORK (in the build tree), never into the source tree.
# usage: run_fuzz_test.sh TARGET SRC_DIR WORK RUNS SECONDS
set -euo pipefail
target=$1 src=$2 work=$3 runs=$4 secs=$5
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
dict=()
[ -f "$src/dict" ] && dict=(-dict="$src/dict")
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
common=(-rss_limit_mb=2048 -timeout=10 -max_len=65536 -artifact_prefix="$work/artifacts/")
echo "== replay: $src/corpus"
"$target" "${common[@]}" "$src"/corpus/*
echo "== fuzz: $runs runs, at most $secs s"
"$target" "${common[@]}" "${dict[@]}" -runs="$runs" -max_total_time="$secs" -print_final_stats=1 \
  "$work/corpus" "$src/corpus"
