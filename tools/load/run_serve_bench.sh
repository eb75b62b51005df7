#!/usr/bin/env bash
# Load test of `nextuser serve` against the Python peer (tools/peers/serve_peer.py),
# everything on 127.0.0.1 with ephemeral ports, every run bounded in time, all in
# ONE run so that the ratios are same-run (issue 14, results/serve.md):
#
#   * data and models: `nextuser synth-data` (100k and 1M users), `nextuser train
#     --epochs 1 --max-steps S --no-prior` (plain cosine scoring, so that the peer's
#     FAISS IndexFlatIP over the normalised rows scores exactly as nextuser),
#     `nextuser table --dtypes fp32`, `nextuser items --split test --stage 5`;
#   * per user count: nextuser serve, then the peer, each with
#       - wrk closed loop (tools/load/recommend.lua), 1 and 16 items per request;
#       - the open-loop Poisson sweep (tools/load/open_loop.py --sweep), 1 item per
#         request, p99 bound 20 ms (100k) / 50 ms (1M);
#   * light load: 1 item per request, 100k users, a low rate, p50/p99 (both), and
#     the same on a service logging each request's stages (tools/load/stage_times.py);
#   * the generator's own capacity against nextuser's /healthz;
#   * the in-process engine: `nextuser retrieve --batch 16` (and 32) on the same
#     model and items, items/s, for the HTTP+JSON overhead at 16 items/request;
#   * a perf profile of the server during a 16-items/request wrk run (PERF=1);
#   * the top-k answers of both services compared on a few items.
#
# usage: tools/load/run_serve_bench.sh [OUTDIR]     (default out/serve-bench)
# env:   WRK_SECONDS=8 RATE_SECONDS=3 LIGHT_RATE=100 LIGHT_SECONDS=10 PERF=1
#        USERS="100000 1000000" TRAIN_STEPS=20 THREADS=2 WAIT_US=0 BUILD=build-load
# Writes OUTDIR/results.json (everything) and OUTDIR/summary.md, prints the summary.
# `nextuser plan --served OUTDIR/results.json` plans a fleet from its sweeps (docs/plan.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/out/serve-bench}
BUILD=${BUILD:-$ROOT/build-load}
WRK_SECONDS=${WRK_SECONDS:-8}
RATE_SECONDS=${RATE_SECONDS:-3}
LIGHT_RATE=${LIGHT_RATE:-100}
LIGHT_SECONDS=${LIGHT_SECONDS:-10}
PERF=${PERF:-1}
USERS=${USERS:-"100000 1000000"}
TRAIN_STEPS=${TRAIN_STEPS:-20}
THREADS=${THREADS:-2}
WAIT_US=${WAIT_US:-0}
export WAIT_US
K=100
PY=/usr/bin/python3
NU=$BUILD/nextuser
LUA=$ROOT/tools/load/recommend.lua
OL=$ROOT/tools/load/open_loop.py
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/run.log
: > "$LOG"
say() { echo "[$(date +%T)] $*" | tee -a "$LOG" >&2; }

say "build $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DNU_BUILD_BENCH=OFF >>"$LOG"
cmake --build "$BUILD" -j2 --target nextuser >>"$LOG"

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start_service NAME CMD... : starts it, waits for its "listening on" line, sets ADDR and SPID
start_service() {
    local name=$1; shift
    "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" &
    SPID=$!
    PIDS+=("$SPID")
    for _ in $(seq 600); do
        if ADDR=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$OUT/$name.out" 2>/dev/null | head -1 | cut -d' ' -f3) \
           && [ -n "$ADDR" ]; then
            say "$name listening on $ADDR (pid $SPID)"
            return 0
        fi
        kill -0 "$SPID" 2>/dev/null || { cat "$OUT/$name.err" >&2; echo "$name died" >&2; exit 1; }
        sleep 0.2
    done
    echo "$name did not start" >&2; exit 1
}
stop_service() {
    kill -TERM "$SPID" 2>/dev/null || true
    timeout 30 tail --pid="$SPID" -f /dev/null || kill -KILL "$SPID" 2>/dev/null || true
}

# run_wrk TAG ADDR ITEMS N : closed loop, -t2 -c16, JSON line -> $OUT/wrk-TAG.json
run_wrk() {
    local tag=$1 addr=$2 items=$3 n=$4
    local cmd="wrk -t2 -c16 -d${WRK_SECONDS}s --timeout 10s -s tools/load/recommend.lua http://$addr -- $items $n $K"
    say "wrk $tag: $cmd"
    (cd "$ROOT" && timeout $((WRK_SECONDS + 30)) wrk -t2 -c16 -d${WRK_SECONDS}s --timeout 10s -s "$LUA" \
        "http://$addr" -- "$items" "$n" "$K") > "$OUT/wrk-$tag.txt" 2>&1 || true
    grep '^wrk-json ' "$OUT/wrk-$tag.txt" | sed 's/^wrk-json //' \
        | $PY -c "import json,sys; d=json.load(sys.stdin); d['command']=sys.argv[1]; print(json.dumps(d))" "$cmd" \
        > "$OUT/wrk-$tag.json"
    cat "$OUT/wrk-$tag.json" >> "$LOG"
}
wrk_rps() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))['requests_per_s'])" "$1"; }

date -u +%Y-%m-%dT%H:%M:%SZ > "$OUT/date.txt"
{ uname -a; grep -m1 'model name' /proc/cpuinfo; nproc; uptime; } > "$OUT/machine.txt"
ps -eo pid,pcpu,comm --sort=-pcpu | head -6 > "$OUT/top-before.txt"

for U in $USERS; do
    case $U in 100000) L=100k; BOUND=20 ;; 1000000) L=1M; BOUND=50 ;; *) L=$U; BOUND=50 ;; esac
    D=$OUT/data-$L M=$OUT/model-$L I=$OUT/items-$L.jsonl
    if [ ! -f "$M/user_table.safetensors" ] || [ ! -f "$I" ]; then
        say "data and model, $L users"
        $NU synth-data --users "$U" --items 20000 --out "$D" >>"$LOG" 2>&1
        $NU train --data "$D" --out "$M" --epochs 1 --max-steps "$TRAIN_STEPS" --no-prior --threads "$THREADS" >>"$LOG" 2>&1
        $NU table --model "$M" --dtypes fp32 >>"$LOG" 2>&1
        $NU items --data "$D" --split test --stage 5 --out "$I" >>"$LOG" 2>&1
    fi

    # --- the engine in-process, same model and items (items repeated to ~8k) ---
    I8=$OUT/items-$L-x3.jsonl
    # (ids made unique per copy: an items file may not repeat an id)
    { cat "$I"; for c in 2 3; do sed "s/^{\"id\": *\"\([^\"]*\)\"/{\"id\":\"\1~$c\"/" "$I"; done; } > "$I8"
    for B in 16 32; do
        cmd="nextuser retrieve --model model-$L --items items-$L-x3.jsonl --out topk.csv --k $K --batch $B --threads $THREADS"
        say "engine $L B$B"
        $NU retrieve --model "$M" --items "$I8" --out "$OUT/topk-$L.csv" --k $K --batch $B --threads "$THREADS" \
            2> "$OUT/engine-$L-B$B.txt" >/dev/null
        $PY - "$OUT/engine-$L-B$B.txt" "$cmd" > "$OUT/engine-$L-B$B.json" <<'EOF'
import json, re, sys
t = open(sys.argv[1]).read()
m = re.search(r"(\d+) items in ([0-9.]+) s \(([0-9.]+) items/s\); batch of (\d+): p50 ([0-9.]+) ms, p99 ([0-9.]+) ms", t)
print(json.dumps({"items": int(m.group(1)), "seconds": float(m.group(2)), "items_per_s": float(m.group(3)),
                  "batch": int(m.group(4)), "p50_ms": float(m.group(5)), "p99_ms": float(m.group(6)),
                  "command": sys.argv[2], "line": t.strip().splitlines()[-1]}))
EOF
        rm -f "$OUT/topk-$L.csv"
    done

    # --- nextuser serve ---
    start_service "nextuser-$L" "$NU" serve --model "$M" --listen 127.0.0.1:0 --k $K --threads "$THREADS" \
        --workers 1 --max-batch 32 --max-wait-us $WAIT_US --log-level warn
    NADDR=$ADDR NPID=$SPID
    run_wrk "nextuser-$L-n1" "$NADDR" "$I" 1
    run_wrk "nextuser-$L-n16" "$NADDR" "$I" 16
    if [ "$PERF" = 1 ] && [ "$L" = 100k ] && command -v perf >/dev/null; then
        say "perf record -g -p $NPID during a 16-items wrk run"
        (timeout 60 wrk -t2 -c16 -d6s --timeout 10s -s "$LUA" "http://$NADDR" -- "$I" 16 $K >/dev/null 2>&1 &)
        sleep 0.5
        timeout 30 perf record -g -p "$NPID" -o "$OUT/perf-$L.data" -- sleep 5 >>"$LOG" 2>&1 || true
        sleep 1.5
        perf report -i "$OUT/perf-$L.data" --no-children --stdio --percent-limit 1.5 2>/dev/null \
            | grep -E '^ +[0-9.]+%' | head -25 > "$OUT/perf-$L-top.txt" || true
        rm -f "$OUT/perf-$L.data"
    fi
    if [ "$L" = 100k ]; then
        say "generator capacity against /healthz"
        timeout 300 $PY "$OL" --url "http://$NADDR/healthz" --capacity --start 1000 --duration 2 --refine 2 \
            --p99-ms 5 --label generator-capacity --json "$OUT/capacity.json" 2>>"$LOG" || true
        say "light load, nextuser, $LIGHT_RATE/s"
        timeout 300 $PY "$OL" --url "http://$NADDR/v1/recommend" --items "$I" --n 1 --k $K --rates "$LIGHT_RATE" \
            --duration "$LIGHT_SECONDS" --label "light nextuser $L" --json "$OUT/light-nextuser-$L.json" 2>>"$LOG" || true
    fi
    # What the sweep measures, for `nextuser plan --served` (docs/plan.md): the table's
    # rows, d and dtype (its file's header), the service's options, the machine's cores.
    $PY - "$M" "$THREADS" "$K" "nextuser serve --model model-$L --listen 127.0.0.1:0 --k $K --threads $THREADS --workers 1 --max-batch 32 --max-wait-us $WAIT_US --log-level warn" \
        > "$OUT/service-nextuser-$L.json" <<'EOF'
import json, math, os, struct, sys
m, threads, k, cmd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def header(name):
    with open(os.path.join(m, name), "rb") as f:
        return json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
t = header("user_table.safetensors")["f32"]
rows = t["shape"][0]
# model tensors with a row per user (embeddings, priors) vs the rest (weights); all F32
w = [(v["shape"], 4 * math.prod(v["shape"])) for n, v in header("model.safetensors").items() if n != "__metadata__"]
per_user = sum(b for sh, b in w if sh and sh[0] == rows) / rows
weights = sum(b for sh, b in w if not sh or sh[0] != rows)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
print(json.dumps({"name": "nextuser serve", "command": cmd, "users": rows, "d": t["shape"][1],
                  "dtype": "fp32", "table": "copy", "threads": threads, "workers": 1, "max_batch": 32,
                  "max_wait_us": int(os.environ.get("WAIT_US", "0")), "k": k, "model_bytes_per_user": per_user, "weights_bytes": weights,
                  "machine_cores": len(os.sched_getaffinity(0)), "cpu": cpu}))
EOF
    START=$($PY -c "import sys; print(max(20, round(float(sys.argv[1]) / 4, -1)))" "$(wrk_rps "$OUT/wrk-nextuser-$L-n1.json")")
    say "open-loop sweep, nextuser $L, from $START/s, p99 <= $BOUND ms"
    timeout 400 $PY "$OL" --url "http://$NADDR/v1/recommend" --items "$I" --n 1 --k $K --sweep --start "$START" \
        --duration "$RATE_SECONDS" --refine 3 --p99-ms "$BOUND" --label "sweep nextuser $L" \
        --service "$OUT/service-nextuser-$L.json" --json "$OUT/sweep-nextuser-$L.json" 2>>"$LOG" || true

    # --- the Python peer (same model, same batching policy) ---
    start_service "peer-$L" $PY "$ROOT/tools/peers/serve_peer.py" --model "$M" --listen 127.0.0.1:0 --k $K \
        --threads "$THREADS" --workers 1 --max-batch 32 --max-wait-us $WAIT_US
    PADDR=$ADDR
    say "compare answers (8 items, k $K)"
    $PY "$ROOT/tools/load/compare_answers.py" "http://$NADDR/v1/recommend" "http://$PADDR/v1/recommend" \
        --items "$I" --count 8 --k $K > "$OUT/compare-$L.json" 2>>"$LOG" || true
    # nextuser stays up (idle) while the peer is measured: it only holds memory.
    run_wrk "peer-$L-n1" "$PADDR" "$I" 1
    run_wrk "peer-$L-n16" "$PADDR" "$I" 16
    if [ "$L" = 100k ]; then
        say "light load, peer, 10/s"
        timeout 300 $PY "$OL" --url "http://$PADDR/v1/recommend" --items "$I" --n 1 --k $K --rates 10 \
            --duration "$LIGHT_SECONDS" --label "light peer $L" --json "$OUT/light-peer-$L.json" 2>>"$LOG" || true
    fi
    START=$($PY -c "import sys; print(max(2, round(float(sys.argv[1]) / 4)))" "$(wrk_rps "$OUT/wrk-peer-$L-n1.json")")
    say "open-loop sweep, peer $L, from $START/s, p99 <= $BOUND ms"
    timeout 400 $PY "$OL" --url "http://$PADDR/v1/recommend" --items "$I" --n 1 --k $K --sweep --start "$START" \
        --duration "$RATE_SECONDS" --refine 3 --p99-ms "$BOUND" --timeout-s 10 --label "sweep peer $L" \
        --json "$OUT/sweep-peer-$L.json" 2>>"$LOG" || true
    stop_service   # the peer
    SPID=$NPID; stop_service
    if [ "$L" = 100k ]; then
        # Where a light-load request's time goes: the same load on a service that
        # logs each request's stages (--log-level info), summarised by stage_times.py.
        start_service "nextuser-stages-$L" "$NU" serve --model "$M" --listen 127.0.0.1:0 --k $K \
            --threads "$THREADS" --workers 1 --max-batch 32 --max-wait-us $WAIT_US --log-level info
        say "light load with per-request stages, $LIGHT_RATE/s"
        timeout 300 $PY "$OL" --url "http://$ADDR/v1/recommend" --items "$I" --n 1 --k $K --rates "$LIGHT_RATE" \
            --duration "$LIGHT_SECONDS" --label "light stages $L" --json "$OUT/light-stages-$L.json" 2>>"$LOG" || true
        stop_service
        $PY "$ROOT/tools/load/stage_times.py" --skip 20 --json "$OUT/nextuser-stages-$L.err" \
            > "$OUT/stages-nextuser-$L.json" 2>>"$LOG" || true
    fi
done
ps -eo pid,pcpu,comm --sort=-pcpu | head -6 > "$OUT/top-after.txt"
uptime >> "$OUT/machine.txt"

$PY - "$OUT" "$USERS" <<'EOF' | tee "$OUT/summary.md"
import glob, json, os, sys
out, users = sys.argv[1], sys.argv[2].split()
def load(name):
    p = os.path.join(out, name)
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
res = {"date": open(os.path.join(out, "date.txt")).read().strip(),
       "machine": open(os.path.join(out, "machine.txt")).read(),
       "load_before": open(os.path.join(out, "top-before.txt")).read(),
       "load_after": open(os.path.join(out, "top-after.txt")).read()}
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    b = os.path.basename(f)
    if b != "results.json":
        res[b[:-5]] = load(b)
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(res, f, indent=1)
L = {"100000": "100k", "1000000": "1M"}
print("# serve load test, %s\n" % res["date"])
print("| users | service | wrk 1 item req/s (p99 ms) | wrk 16 items items/s (p99 ms) | open-loop max rate, p99 bound | p50/p99 ms there |")
print("|---|---|---|---|---|---|")
for u in users:
    l = L.get(u, u)
    for s in ("nextuser", "peer"):
        w1, w16, sw = res.get("wrk-%s-%s-n1" % (s, l)), res.get("wrk-%s-%s-n16" % (s, l)), res.get("sweep-%s-%s" % (s, l))
        f1 = "%.0f (%.1f)%s" % (w1["requests_per_s"], w1["latency_ms"]["p99"], " non200 %d" % w1["non200"] if w1["non200"] else "") if w1 else "-"
        f16 = "%.0f (%.1f)%s" % (w16["items_per_s"], w16["latency_ms"]["p99"], " non200 %d" % w16["non200"] if w16["non200"] else "") if w16 else "-"
        if sw and sw.get("at_max"):
            m = sw["at_max"]
            fs = "%s/s (achieved %.0f), p99 <= %g ms" % (sw["max_rate_passing"], m["achieved_per_s"], sw["bound_p99_ms"])
            fl = "%s / %s" % (m["latency_ms"]["p50"], m["latency_ms"]["p99"])
        else:
            fs, fl = ("none passed" if sw else "-"), "-"
        print("| %s | %s | %s | %s | %s | %s |" % (l, s, f1, f16, fs, fl))
print()
for u in users:
    l = L.get(u, u)
    a, b = res.get("sweep-nextuser-%s" % l), res.get("sweep-peer-%s" % l)
    if a and b and a.get("max_rate_passing") and b.get("max_rate_passing"):
        print("(a) %s: nextuser %.0f/s vs peer %.1f/s at p99 <= %g ms: **%.1fx** (target >= 10x)"
              % (l, a["max_rate_passing"], b["max_rate_passing"], a["bound_p99_ms"], a["max_rate_passing"] / b["max_rate_passing"]))
    e16, e32, w16 = res.get("engine-%s-B16" % l), res.get("engine-%s-B32" % l), res.get("wrk-nextuser-%s-n16" % l)
    if e16 and w16:
        best = max(e16["items_per_s"], e32["items_per_s"] if e32 else 0)
        print("(c) %s: 16 items/request through HTTP %.0f items/s vs engine in-process %.0f (B16) / %.0f (B32) items/s: "
              "HTTP+JSON costs **%.1f%%** of the better (target <= 15%%)"
              % (l, w16["items_per_s"], e16["items_per_s"], e32["items_per_s"] if e32 else 0, 100 * (1 - w16["items_per_s"] / best)))
ln = res.get("light-nextuser-100k")
if ln:
    r = ln["runs"][0]
    print("(b) light load 100k, 1 item/request, %g/s offered (%.0f achieved): p50 **%s ms**, p99 **%s ms**, errors %d (target p50 <= 1, p99 <= 3)"
          % (r["offered_per_s"], r["achieved_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], r["errors"]))
st = res.get("stages-nextuser-100k")
if st:
    print("    its stages at the same load (--log-level info, %d requests), p50 / p99 us: %s"
          % (st["requests"], ", ".join("%s %.0f / %.0f" % (k[:-3] or "total", st[k]["p50"], st[k]["p99"])
                                       for k in ("parse_us", "queue_us", "engine_us", "answer_us", "send_us", "us"))))
lp = res.get("light-peer-100k")
if lp:
    r = lp["runs"][0]
    print("    peer at %g/s: p50 %s ms, p99 %s ms, errors %d" % (r["offered_per_s"], r["latency_ms"]["p50"], r["latency_ms"]["p99"], r["errors"]))
cap = res.get("capacity")
if cap:
    print("generator capacity (GET /healthz, p99 <= 5 ms, send lag p99 <= 1 ms): %s req/s" % cap.get("max_rate_passing"))
for u in users:
    c = res.get("compare-%s" % L.get(u, u))
    if c:
        print("answers %s: %d/%d items identical top-%d, %d agree modulo near-ties, max score diff %.2g"
              % (L.get(u, u), c["exact_lists"], c["items"], c["k"], c["agree_modulo_ties"], c["max_score_diff"]))
p = os.path.join(out, "perf-100k-top.txt")
if os.path.exists(p):
    print("\nperf (nextuser serve, 100k, wrk 16 items/request), top self time:\n```")
    print(open(p).read().rstrip())
    print("```")
EOF
