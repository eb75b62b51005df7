#!/usr/bin/env bash
# Long libFuzzer campaigns (issue 17): tools/fuzz.sh TARGET|all [SECONDS] [RUNS]
#
# Builds build-fuzz (clang-14, -DNU_FUZZ=ON) when needed, then fuzzes each
# target in turn on ONE core for SECONDS (default 600) or RUNS executions
# (default: unlimited), starting from tests/fuzz/<target>/corpus and the
# campaign corpus of earlier runs.  Everything it writes goes outside the
# repository, under $NU_FUZZ_OUT (default /tmp/nextuser-fuzz):
#   <target>/corpus/     new inputs (reused by the next campaign)
#   <target>/artifacts/  crash-*, leak-*, timeout-*, oom-* files
#   <target>/log         libFuzzer's output
# and prints per target: executions, exec/s, coverage (cov, ft), artifacts.
# Targets: safetensors config items_line prepare dataset checkpoint idmap
# json_strict request.  Extra libFuzzer flags: NU_FUZZ_FLAGS.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target=${1:?usage: tools/fuzz.sh TARGET|all [SECONDS] [RUNS]}
secs=${2:-600}
runs=${3:--1}
out=${NU_FUZZ_OUT:-/tmp/nextuser-fuzz}
build=${NU_FUZZ_BUILD:-$root/build-fuzz}
all=(safetensors config items_line prepare dataset checkpoint idmap json_strict request)
case "$out/" in "$root"/*) echo "fuzz.sh: NU_FUZZ_OUT must be outside the repository" >&2; exit 2 ;; esac

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=${CC:-clang-14} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNU_FUZZ=ON \
    -DNU_BUILD_BENCH=OFF -DNU_NEON_CROSS=OFF -DNU_MPI=OFF -DBUILD_TESTING=ON >/dev/null
fi
cmake --build "$build" -j"${NU_FUZZ_JOBS:-2}" --target fuzz_targets >/dev/null

if [ "$target" = all ]; then targets=("${all[@]}"); else targets=("$target"); fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
status=0
printf '%-12s %12s %8s %7s %7s %s\n' target executions exec/s cov ft artifacts
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no target $t ($bin)" >&2; exit 2; }
  w="$out/$t"
  mkdir -p "$w/corpus" "$w/artifacts"
  dict=()
  [ -f "$root/tests/fuzz/$t/dict" ] && dict=(-dict="$root/tests/fuzz/$t/dict")
  cmd=("$bin" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1
       -max_total_time="$secs" -runs="$runs" -artifact_prefix="$w/artifacts/" "${dict[@]}"
       ${NU_FUZZ_FLAGS:-} "$w/corpus" "$root/tests/fuzz/$t/corpus")
  echo "${cmd[*]}" >"$w/command"
  rc=0
  "${cmd[@]}" >"$w/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$w/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$w/log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$w/log" | tail -1 | cut -d' ' -f2)
  arts=$(find "$w/artifacts" -type f | wc -l)
  printf '%-12s %12s %8s %7s %7s %s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$arts"
  if [ "$rc" -ne 0 ] || [ "$arts" -ne 0 ]; then
    status=1
    echo "  rc $rc; see $w/log and $w/artifacts" >&2
  fi
done
exit $status
