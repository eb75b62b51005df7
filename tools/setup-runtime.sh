#!/usr/bin/env bash
# Installs what building and running nextuser needs, and nothing else: the
# compiler, cmake, and the runtime libraries (SLEEF, hwloc, cJSON, OpenMP
# through gcc, libmicrohttpd for the service, OpenMPI for sharded retrieval) plus Google Benchmark for the
# kernel microbenchmarks of the main job.  tools/run.sh uses this; tools/setup-deps.sh adds what the tests
# and the peers need.  Idempotent: installs only what is missing.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

runtime_pkgs=(build-essential cmake pkg-config
  libsleef-dev libhwloc-dev libcjson-dev libbenchmark-dev libmicrohttpd-dev curl
  libopenmpi-dev openmpi-bin)

missing=()
for p in "${runtime_pkgs[@]}" "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-runtime: installing ${missing[*]}" >&2
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
echo "setup-runtime: ok" >&2
