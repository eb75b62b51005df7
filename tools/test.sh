#!/usr/bin/env bash
# Builds nextuser and runs every test: kernels on every ISA this host runs,
# NEON under qemu-aarch64, dispatch/CLI, install, the benchmark regression
# gate (tools/ci-bench.sh), a sanitizer build and the libFuzzer targets.
# Installs what it needs first (tools/setup-deps.sh).  Exit 0 only if all pass.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="$(nproc)"

./tools/setup-deps.sh

echo "== release build (-Werror) + all tests, NEON cross-built and run under qemu =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNU_WERROR=ON -DBUILD_TESTING=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== benchmark gate: nextuser bench --quick (best of 2) against results/baseline.json =="
./tools/ci-bench.sh build

echo "== sanitizer build (address + undefined): kernel, dispatch and CLI tests =="
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNU_SANITIZE=ON \
  -DNU_NEON_CROSS=OFF -DNU_BUILD_BENCH=OFF >/dev/null
cmake --build build-sanitize -j"$jobs"
# Not label mpi: the ranks would run OpenMPI's own allocations under
# LeakSanitizer; the sharded search itself is covered by test_unit_search_shards.
# Not label crash: 200+ runs killed with SIGKILL, which no sanitizer reports
# on; it checks the files on disk, done above with the release build.
(cd build-sanitize && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs" -LE "neon|install|reference|mpi|crash")

echo "== fuzz build (clang-14, libFuzzer + address + undefined): replay the seeds, fuzz each parser briefly =="
CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNU_FUZZ=ON \
  -DNU_BUILD_BENCH=OFF -DNU_NEON_CROSS=OFF -DNU_MPI=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_targets
(cd build-fuzz && ctest --output-on-failure -j"$jobs" -L fuzz)

echo "test.sh: all tests passed"
