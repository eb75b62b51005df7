"""The load-test tools against a tiny `nextuser serve` (label serve), so that
they cannot rot: tools/load/open_loop.py (fixed low rate, then a two-step
sweep) and the wrk script tools/load/recommend.lua, a couple of seconds each,
on an ephemeral loopback port.  Checks that they report sane numbers: no
errors, achieved close to offered at a low rate, latencies positive and
bounded, wrk's non-200 count zero.

usage: test_load_tools.py NEXTUSER
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

exe = os.path.abspath(sys.argv[1])
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
sys.path.insert(0, os.path.join(here, ".."))
from checks import check, summary  # noqa: E402

OPEN_LOOP = os.path.join(root, "tools", "load", "open_loop.py")
LUA = os.path.join(root, "tools", "load", "recommend.lua")
PY = sys.executable


def run(*args):
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        print(r.stdout, r.stderr)
    return r


tmp = tempfile.mkdtemp(prefix="nu_load_tools_")
data, model, items = (os.path.join(tmp, x) for x in ("data", "model", "items.jsonl"))
check(run("synth-data", "--users", "300", "--items", "300", "--out", data).returncode == 0, "synth-data")
check(run("train", "--data", data, "--out", model, "--max-steps", "2", "--no-prior",
          "--threads", "1").returncode == 0, "train")
check(run("items", "--data", data, "--split", "test", "--stage", "2", "--out", items).returncode == 0, "items")

log = open(os.path.join(tmp, "serve.log"), "w")
p = subprocess.Popen([exe, "serve", "--model", model, "--listen", "127.0.0.1:0", "--k", "10",
                      "--threads", "1", "--log-level", "warn"],
                     stdout=subprocess.PIPE, stderr=log, text=True)
line = [""]
t = threading.Thread(target=lambda: line.__setitem__(0, p.stdout.readline()), daemon=True)
t.start()
t.join(60)
addr = line[0].split()[4] if line[0].startswith("nextuser serve: listening on 127.0.0.1:") else None
check(addr is not None, "serve started: %r" % line[0])

if addr:
    # 1. open loop at a fixed low rate
    out = os.path.join(tmp, "ol.json")
    r = subprocess.run([PY, OPEN_LOOP, "--url", "http://%s/v1/recommend" % addr, "--items", items, "--n", "2",
                        "--k", "10", "--rates", "40", "--duration", "2.5", "--json", out, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "open_loop --rates exit status (%s)" % r.stderr[-500:])
    if os.path.exists(out):
        res = json.load(open(out))
        rec = res["runs"][0]
        print("open loop:", json.dumps({k: rec[k] for k in ("offered_per_s", "achieved_per_s", "requests",
                                                             "errors", "latency_ms")}))
        check(rec["errors"] == 0, "open loop: no errors (%s)" % rec["error_kinds"])
        check(rec["ok"] == rec["requests"] and rec["requests"] > 40, "open loop: every request answered")
        # Poisson arrivals: about 100 in 2.5 s, so allow the sampling noise.
        check(0.6 * 40 <= rec["achieved_per_s"] <= 1.5 * 40,
              "open loop: achieved %s close to offered 40/s" % rec["achieved_per_s"])
        lat = rec["latency_ms"]
        check(0 < lat["p50"] <= lat["p99"] < 500, "open loop: sane latencies %s" % lat)
        check(rec["send_lag_ms"]["p50"] < 20, "open loop: the generator keeps its schedule %s" % rec["send_lag_ms"])
    # 2. a two-step sweep (20/s, 40/s: both must pass a loose bound)
    out = os.path.join(tmp, "sweep.json")
    r = subprocess.run([PY, OPEN_LOOP, "--url", "http://%s/v1/recommend" % addr, "--items", items, "--k", "10", "--sweep",
                        "--start", "20", "--max-rate", "40", "--duration", "1", "--refine", "0",
                        "--p99-ms", "500", "--json", out, "--quiet"],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, "open_loop --sweep exit status (%s)" % r.stderr[-500:])
    if os.path.exists(out):
        res = json.load(open(out))
        check(res["max_rate_passing"] == 40 and len(res["runs"]) == 2,
              "sweep: 20 and 40/s pass (%s)" % [(x["offered_per_s"], x["pass"]) for x in res["runs"]])
    # 3. the wrk script
    wrk = shutil.which("wrk")
    if not wrk:
        print("wrk not installed: the wrk script is not checked")
    else:
        r = subprocess.run([wrk, "-t1", "-c2", "-d2s", "-s", LUA, "http://%s" % addr, "--", items, "3", "10"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "wrk exit status (%s)" % r.stderr[-500:])
        js = [l[len("wrk-json "):] for l in r.stdout.splitlines() if l.startswith("wrk-json ")]
        check(len(js) == 1, "wrk printed its JSON line")
        if js:
            w = json.loads(js[0])
            print("wrk:", js[0])
            check(w["requests"] > 10 and w["non200"] == 0, "wrk: requests answered 200")
            check(w["items"] == 3 * w["requests"], "wrk: 3 items per request")
            check(sum(w["socket_errors"].values()) == 0, "wrk: no socket errors")
            check(0 < w["latency_ms"]["p50"] <= w["latency_ms"]["p99"] < 1000, "wrk: sane latencies")

p.terminate()
try:
    check(p.wait(60) == 0, "serve exits 0 on SIGTERM")
except subprocess.TimeoutExpired:
    p.kill()
    check(False, "serve stopped")
log.close()
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(summary("load tools"))
