#!/usr/bin/env bash
# Installs everything the tests need (tools/test.sh): the runtime set of
# tools/setup-runtime.sh, then PyTorch and NumPy (reference, parity, peers),
# FAISS, matplotlib, cffi (the Python bindings), aiohttp, wrk, promtool and
# curl (the service and its load tests), the aarch64 cross toolchain with qemu-user (NEON tests),
# valgrind, clang-14 with its libFuzzer and sanitizer runtimes and OpenMP
# (libclang-rt-14-dev, libomp-14-dev: the fuzz build), and onnxruntime-node from npm (the ONNX Runtime peer).
# Idempotent: skips what is already present.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

test_pkgs=(git hwloc
  python3-torch python3-numpy python3-faiss python3-matplotlib libopenblas0-pthread
  python3-cffi python3-aiohttp wrk prometheus curl
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
  valgrind
  clang-14 libclang-rt-14-dev libomp-14-dev)
arm_pkgs=(libsleef-dev:arm64 libsleef3:arm64 libcjson-dev:arm64 libhwloc-dev:arm64)

# The arm64 packages need the architecture added before the runtime step's
# apt-get update, so that one update serves both.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
"$here/tools/setup-runtime.sh" "${test_pkgs[@]}" "${arm_pkgs[@]}"

# Node.js + npm for the ONNX Runtime peer: use the machine's if present, else Debian's.
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi

# ONNX Runtime peer: the npm package carries its own CPU library; no install scripts run.
if [ ! -d "$here/tools/peers/node_modules/onnxruntime-node" ] && [ "${NU_SKIP_ONNX:-0}" != 1 ]; then
  echo "setup-deps: installing onnxruntime-node (npm, --ignore-scripts)" >&2
  (cd "$here/tools/peers" && npm install --ignore-scripts --no-audit --no-fund >&2) ||
    echo "setup-deps: warning: onnxruntime-node not installed; the ONNX peer will be skipped" >&2
fi
echo "setup-deps: ok" >&2
