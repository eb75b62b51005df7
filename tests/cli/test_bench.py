"""nextuser bench from the command line: usage errors (exit 2) and an
unwritable --json (exit 1) before anything runs; small quick runs of every
suite whose JSON follows the schema of docs/bench.md (names, context,
counters positive, fractions of the measured peak in (0, 1.5)); and a run
forced to NU_ISA=scalar that shows a lower infer fraction of the peak than
the default ISA, since the peak is always the machine's.

usage: test_bench.py NEXTUSER
"""
import json
import os
import subprocess
import sys
import tempfile
import time

exe = sys.argv[1:]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("NU_ISA", None)
    e.update(env or {})
    return subprocess.run([*exe, "bench", *args], capture_output=True, text=True, env=e)


tmp = tempfile.mkdtemp(prefix="nu_bench_")
t_start = time.time()

# ---- help and usage errors (each returns before measuring anything) ----
r = run("--help")
check(r.returncode == 0 and "usage: nextuser bench" in r.stdout and "--p99-ms" in r.stdout, "--help")
for args, what in [(["--suite", "bogus"], "unknown suite"),
                   (["--suite", "infer,nope"], "unknown suite in a list"),
                   (["--shape", "huge"], "unknown shape"),
                   (["--threads", "0"], "zero threads"),
                   (["--threads", "1,x"], "bad thread list"),
                   (["--threads", "1,1"], "duplicate threads"),
                   (["--threads", ""], "empty thread list"),
                   (["--dtypes", "fp16"], "unknown dtype"),
                   (["--serve-dtype", "fp32,fp32"], "duplicate serve dtype"),
                   (["--users", "-5"], "negative users"),
                   (["--reps", "0"], "zero reps"),
                   (["--pool", "0"], "zero pool"),
                   (["--frobnicate"], "unknown option"),
                   (["--json"], "missing value")]:
    r = run(*args)
    check(r.returncode == 2 and "nextuser bench" in r.stderr, f"{what}: exit 2 with a message "
          f"(got {r.returncode}: {r.stderr.strip()[:120]})")
r = run("--quick", "--suite", "infer", "--json", "/nonexistent-dir/x/out.json")
check(r.returncode == 1 and "/nonexistent-dir/x/out.json" in r.stderr and "peak" not in r.stdout,
      f"unwritable --json: exit 1 before running ({r.returncode}: {r.stderr.strip()[:160]})")
r = run("--quick", "--suite", "infer", env={"NU_ISA": "bogus"})
check(r.returncode == 2, f"NU_ISA=bogus: exit 2 (got {r.returncode})")


def bench_json(name, *args, env=None):
    path = os.path.join(tmp, name + ".json")
    r = run("--quick", "--json", path, *args, env=env)
    check(r.returncode == 0, f"{name}: exit 0 (got {r.returncode}: {r.stderr.strip()[-300:]})")
    if r.returncode != 0:
        return None, r
    with open(path) as f:
        return json.load(f), r


def rows(doc):
    return {b["name"]: b for b in doc["benchmarks"]}


def check_schema(doc, what, threads=(1,)):
    ctx = doc["context"]
    for key in ["date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled",
                "caches", "library_build_type", "tool", "tool_version", "isa", "command", "machine",
                "peak_fma_gflops", "read_gbps"]:
        check(key in ctx, f"{what}: context.{key}")
    check(ctx.get("tool") == "nextuser", f"{what}: context.tool")
    check(ctx.get("command", "").startswith("nextuser bench"), f"{what}: context.command")
    for t in threads:
        check(ctx["peak_fma_gflops"].get(str(t), 0) > 0, f"{what}: peak_fma_gflops[{t}] > 0")
        check(ctx["read_gbps"].get(str(t), 0) > 0, f"{what}: read_gbps[{t}] > 0")
    names = rows(doc)
    for t in threads:
        check(names.get(f"peak/fma/threads:{t}", {}).get("gflops", 0) > 0, f"{what}: peak/fma row")
        check(names.get(f"peak/read/threads:{t}", {}).get("gbps", 0) > 0, f"{what}: peak/read row")
    for b in doc["benchmarks"]:
        ok = (b["run_name"] == b["name"] and b["run_type"] == "aggregate" and b["aggregate_name"] == "median"
              and b["time_unit"] == "ms" and b["threads"] in threads and b["real_time"] >= 0
              and b["cpu_time"] == b["real_time"] and b["repetitions"] >= 1)
        check(ok, f"{what}: schema of {b['name']}")


def positive(row, keys, what):
    for k in keys:
        check(row.get(k, 0) > 0, f"{what}: {row.get('name')} {k} = {row.get(k)} > 0")


# ---- infer ----
infer, _ = bench_json("infer", "--suite", "infer", "--threads", "1")
if infer:
    check_schema(infer, "infer")
    names = rows(infer)
    want = ["peak/fma/threads:1", "peak/read/threads:1", "infer/base/B1/threads:1", "infer/base/B64/threads:1"]
    check(sorted(names) == sorted(want), f"infer names: {sorted(names)}")
    for n in want[2:]:
        row = names.get(n, {})
        positive(row, ["items_per_second", "p50_ms", "p99_ms", "gflops", "frac_peak", "iterations"], "infer")
        check(0 < row.get("frac_peak", 0) < 1.5, f"{n}: frac_peak {row.get('frac_peak')} in (0, 1.5)")
        check(row.get("p50_ms", 1) <= row.get("p99_ms", 0), f"{n}: p50 <= p99")
        check(abs(row.get("mflop_per_item", 0) - 12.6) < 1.5, f"{n}: base MFLOP/item {row.get('mflop_per_item')}")

# ---- a small retrieve ----
retr, _ = bench_json("retrieve", "--suite", "retrieve", "--threads", "1", "--users", "20k",
                     "--retrieve-batches", "1,16", "--dtypes", "fp32,int8", "--reps", "2", "--rep-seconds", "0.05",
                     "--pool", "150")
if retr:
    check_schema(retr, "retrieve")
    check(retr["context"].get("pool") == 150, "--pool is recorded in the context")
    names = rows(retr)
    for dt in ["fp32", "int8"]:
        for B in [1, 16]:
            n = f"retrieve/{dt}/U20k/B{B}/threads:1"
            row = names.get(n)
            check(row is not None, f"{n} present")
            if row:
                positive(row, ["queries_per_second", "p50_ms", "p99_ms", "gbps", "gflops", "frac_bw"], "retrieve")
                check(0.9 <= row.get("recall_at_100", 0) <= 1.0, f"{n}: recall {row.get('recall_at_100')}")
    check(names.get("retrieve/fp32/U20k/B1/threads:1", {}).get("recall_at_100") == 1.0, "fp32 recall is 1")

# ---- a small train and serve ----
tr, _ = bench_json("train", "--suite", "train", "--threads", "1", "--train-steps", "2", "--train-batch", "64")
if tr:
    check_schema(tr, "train")
    row = rows(tr).get("train/base/B64/threads:1", {})
    positive(row, ["items_per_second", "p50_ms", "p99_ms", "gflops", "frac_peak"], "train")
    check(0 < row.get("frac_peak", 0) < 1.5, f"train frac_peak {row.get('frac_peak')}")

sv, _ = bench_json("serve", "--suite", "serve", "--threads", "1", "--serve-users", "20k", "--reps", "2",
                   "--rep-seconds", "0.05", "--rate-seconds", "0.2", "--max-batch", "16",
                   "--serve-dtype", "fp32,int8")
if sv:
    check_schema(sv, "serve")
    names = rows(sv)
    pre = "serve/base/fp32/U20k"
    off = names.get(pre + "/offline/threads:1", {})
    positive(off, ["items_per_second", "p50_ms", "p99_ms", "frac_peak"], "serve offline")
    srv = [b for n, b in names.items() if n.startswith(pre + "/server/threads:1/rate:")]
    check(len(srv) >= 5, f"serve: {len(srv)} server rates")
    for b in srv:
        positive(b, ["offered_per_second", "items_per_second", "p50_ms", "p90_ms", "p99_ms", "batch_mean"], "server")
        check(b["p50_ms"] <= b["p90_ms"] <= b["p99_ms"], f"{b['name']}: p50 <= p90 <= p99")
        check(1 <= b["batch_mean"] <= 16 and b["max_batch"] == 16, f"{b['name']}: batches within --max-batch")
        check(b["name"].endswith("rate:%d" % round(b["offered_per_second"])), f"{b['name']}: rate in the name")
    mx = names.get(pre + "/server_max/threads:1", {})
    for k in ["max_rate_per_second", "p99_bound_ms", "max_batch", "max_wait_ms", "p99_ms"]:
        check(k in mx, f"server_max has {k}")
    check(mx.get("p99_bound_ms") == 50 and mx.get("p99_ms", 99) <= 50, "server_max meets its bound")
    check(mx.get("max_rate_per_second", 0) > 0, "server_max rate > 0")
    for n in ["offline/threads:1", "server_max/threads:1"]:
        check("serve/base/int8/U20k/" + n in names, f"int8 serve {n} present")

# ---- NU_ISA=scalar: same machine peak, lower fraction of it ----
sc, _ = bench_json("scalar", "--suite", "infer", "--threads", "1", "--infer-batches", "64", env={"NU_ISA": "scalar"})
if sc and infer:
    check(sc["context"]["isa"] == "scalar", "scalar run records isa scalar")
    check(infer["context"]["isa"] != "scalar", "default run records a vector isa")
    p_def, p_sc = infer["context"]["peak_fma_gflops"]["1"], sc["context"]["peak_fma_gflops"]["1"]
    check(p_sc > 0.4 * p_def, f"peak ignores NU_ISA ({p_sc:.1f} vs {p_def:.1f} GFLOP/s)")
    f_def = rows(infer)["infer/base/B64/threads:1"]["frac_peak"]
    f_sc = rows(sc)["infer/base/B64/threads:1"]["frac_peak"]
    check(f_sc < f_def / 2, f"scalar frac_peak {f_sc:.3f} well below default {f_def:.3f}")
    print(f"frac_peak infer B64 1 thread: default {f_def:.3f}, scalar {f_sc:.3f} ({f_def / max(f_sc, 1e-9):.1f}x)")

print(f"test_bench: {time.time() - t_start:.1f} s")
sys.exit(summary("test_bench"))
