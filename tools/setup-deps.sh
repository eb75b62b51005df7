#!/usr/bin/env bash
# Installs every Debian package nextuser needs (build, tests, peers, NEON cross tests)
# plus onnxruntime-node from npm. Idempotent: skips what is already present.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

native_pkgs=(build-essential cmake pkg-config git
  libsleef-dev libbenchmark-dev libhwloc-dev libcjson-dev hwloc
  python3-torch python3-numpy python3-faiss python3-matplotlib libopenblas0-pthread
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
  valgrind)
arm_pkgs=(libsleef-dev:arm64 libsleef3:arm64 libcjson-dev:arm64 libhwloc-dev:arm64)

missing=()
for p in "${native_pkgs[@]}" "${arm_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}" >&2
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

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
