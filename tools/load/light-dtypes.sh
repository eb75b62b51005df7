#!/usr/bin/env bash
# Light load (results/serve.md, issue 14 target b) for each table encoding:
# `nextuser serve` on MODEL with --dtype fp32, bf16 and int8 in turn, an
# open-loop Poisson load of RATE requests/s (1 item each, k 100) for SECONDS
# from tools/load/open_loop.py, the client's p50/p99 and the service's own
# stage times (tools/load/stage_times.py).  MODEL's table file must hold
# every encoding (`nextuser table --model MODEL --dtypes all`).
# usage: tools/load/light-dtypes.sh BUILD_DIR MODEL ITEMS OUT_DIR
# RATE (default 100), SECONDS (default 10), THREADS (default 2), DTYPES
# (default "fp32 bf16 int8"), SERVE_ARGS (more options for nextuser serve).
set -euo pipefail
build="$(cd "$1" && pwd)"; model="$2"; items="$3"; out="$4"
rate="${RATE:-100}"; secs="${SECONDS_PER_RUN:-10}"; threads="${THREADS:-2}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$out"
for dt in ${DTYPES:-fp32 bf16 int8}; do
  # shellcheck disable=SC2206 # SERVE_ARGS is a list of words
  cmd=(serve --model "$model" --listen 127.0.0.1:0 --k 100 --threads "$threads" --workers 1
       --max-batch 32 --max-wait-us 0 --dtype "$dt" --log-level info ${SERVE_ARGS:-})
  "$build/nextuser" "${cmd[@]}" > "$out/serve-$dt.out" 2> "$out/serve-$dt.log" &
  pid=$!
  addr=""
  for _ in $(seq 300); do
    addr=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$out/serve-$dt.out" 2>/dev/null | head -1 | cut -d' ' -f3) || true
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { cat "$out/serve-$dt.log" >&2; kill "$pid"; exit 1; }
  echo "== $dt: nextuser ${cmd[*]}"
  /usr/bin/python3 "$root/tools/load/open_loop.py" --url "http://$addr/v1/recommend" --items "$items" \
      --n 1 --k 100 --rates "$rate" --duration "$secs" --label "light $dt" --json "$out/light-$dt.json" \
      > /dev/null 2>> "$out/client-$dt.log" || true
  kill -TERM "$pid"; wait "$pid" || true
  /usr/bin/python3 - "$out/light-$dt.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
l = r["latency_ms"]
print("client: %d requests at %.1f/s, %d errors: p50 %.3f ms, p99 %.3f ms"
      % (r["requests"], r["achieved_per_s"], r["errors"], l["p50"], l["p99"]))
PY
  /usr/bin/python3 "$root/tools/load/stage_times.py" --skip 20 "$out/serve-$dt.log" | sed 's/^/service: /'
done
