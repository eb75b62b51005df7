#!/usr/bin/env python3
"""`nextuser plan --served` on the hand-written served figures of
served_sample.json (a results.json of tools/load/run_serve_bench.sh with round
numbers): every number against arithmetic done by hand below, --results and
--served together, and the errors.

usage: test_plan_served.py NEXTUSER SERVED_SAMPLE.json BENCH_SAMPLE.json [SERVED_REAL.json]

SERVED_REAL.json (served_small.json) is a real results.json of a short
run_serve_bench.sh run: the plan must read it and pick the run the rule of
docs/plan.md picks, recomputed here from the file.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

NEXTUSER, SERVED, BENCH = sys.argv[1], sys.argv[2], sys.argv[3]
REAL = sys.argv[4] if len(sys.argv) > 4 else None
failures = []


def plan(*args):
    p = subprocess.run([NEXTUSER, "plan", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def served(*args, path=SERVED):
    return plan("--served", path, *args)


def check(title, cond, detail=""):
    print(f"{'ok  ' if cond else 'FAIL'} {title}")
    if not cond:
        failures.append(title)
        if detail:
            print(detail)


def value(out, label, expr_start):
    """The number after '=' on the arithmetic line LABEL whose expression starts EXPR_START."""
    for line in out.splitlines():
        m = re.match(r"^  (\S.{10}) (.*)\s+= (-?[0-9.e+]+)( |$)", line)
        if m and m.group(1).strip() == label and m.group(2).startswith(expr_start):
            return float(m.group(3))
    raise KeyError(f"{label} {expr_start}")


def close(a, b, rel=1e-5):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def expect(tag, out, checks):
    for label, expr, want in checks:
        try:
            got = value(out, label, expr)
        except KeyError:
            check(f"{tag}: line {label} {expr} printed", False, out)
            continue
        check(f"{tag}: {label} {expr} = {want} (got {got})", close(got, want, 2e-5))


def gib(out, label):
    m = re.search(rf"^  {label}\s+([0-9.]+) GiB", out, re.M)
    return float(m.group(1)) if m else None


GiB = 1024 ** 3
W = ("--items-per-sec", "2000", "--k", "100", "--cores-per-server", "64", "--nodes-per-server", "2")

# 1. 2M users, p99 <= 50 ms.  The sample has fp32 sweeps at 100k (bound 20 ms) and 1M
# (bound 50 ms); none at >= 2M, so the most users below: 1M.  rho = 2M / 1M = 2 = sigma.
# A run counts when p99 x 2 <= 50, i.e. p99 <= 25 ms: the runs at 200/s (p99 10) and
# 400/s (p99 20); the best achieved is 400/s.  R = 400 x 1 / 2 = 200 items/s per process,
# its p99 20 x 2 = 40 ms; per core (c = 2 threads x 1 worker, 2 machine cores) 100.
# X / R = 10 busy; ceil(2000 / (0.7 x 200)) = ceil(14.29) = 15 processes, 30 cores;
# floor(64 / 2) = 32 per server: 1 server; busy 2000 / (15 x 200) = 66.667 %.
rc, out, err = served("--users", "2000000", "--p99-ms", "50", *W)
check("served 2M: exit 0", rc == 0, out + err)
print(out)
if rc == 0:
    expect("2M", out, [
        ("users", "rho = 2000000 / 1000000", 2), ("time scale", "sigma", 2),
        ("latency", "p99 x sigma = 20 x 2", 40), ("per process", "R = 400 x 1 / 2", 200),
        ("per core", "R / c = 200 / 2", 100), ("busy", "X / R", 10),
        ("processes", "ceil(X", 15), ("cores", "15 x 2", 30), ("per server", "floor(64 / 2)", 32),
        ("servers", "ceil(15 / 32)", 1), ("busy", "X / (processes", 66.666667)])
    # Memory: table 2M x 256 B = 512e6 B = 0.477 GiB; model 2M x 388 + 650,496 =
    # 776,650,496 B = 0.723 GiB; per process 1,288,650,496 B = 1.200 GiB; 15 processes on
    # the one server: 19,329,757,440 B = 18.002 GiB.
    check("table 0.477 GiB", gib(out, "user table") == round(512e6 / GiB, 3), out)
    check("model 0.723 GiB", gib(out, "model") == round(776650496 / GiB, 3), out)
    check("per process 1.200 GiB", gib(out, "per process") == round(1288650496 / GiB, 3), out)
    check("per server 18.002 GiB", gib(out, "per server") == round(15 * 1288650496 / GiB, 3), out)
    check("2M: the 1M sweep is used, the 100k one named as not used",
          "[s1] sweep-nextuser-1M: nextuser serve over 1000000 users" in out
          and "not used: sweep-nextuser-100k" in out, out)
    check("2M: the run used is the 2nd of the sweep (400/s)", "its run 2, used: offered 400/s" in out, out)
    check("2M: W6 (not the sweep's answer) printed", "W6" in out, out)
    check("2M: the peer's sweep is ignored", "peer" not in out, out)
    check("2M: context printed (wrk, engine, generator capacity)",
          "1200 requests/s (p99 30 ms)" in out and "1500 items/s" in out and "1600 items/s" in out
          and "10000 requests/s" in out, out)
    check("2M: threads/cores, users and dtype stated",
          "--threads 2 --workers 1 = 2 core(s) of a 2-core machine" in out and "fp32 table" in out, out)
    for a in ("A9", "A10", "A11", "A12", "A13", "A14", "A15", "[s1]", "[s2]", "[s3]"):
        check(f"2M: {a} printed", a in out)
    check("2M: summary line",
          re.search(r"^Plan \(served\): 1 server\(s\) of 64 cores running 15 nextuser serve process\(es\) "
                    r"\(--threads 2 --workers 1, 2 cores each; 30 cores; 10\.00 busy at 2000 items/s, 15 with "
                    r"30% headroom\); 200 items/s per process at p99 <= 40 ms; 18\.002 GiB per server$",
                    out, re.M) is not None, out)

# 2. 1M users (the measured count): sigma 1; runs with p99 <= 50: the best achieved is
# the sweep's own answer, 1000/s (p99 45).  ceil(2000 / 700) = 3 processes, 6 cores.
rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W)
check("served 1M: exit 0", rc == 0, out + err)
if rc == 0:
    expect("1M", out, [("users", "rho", 1), ("time scale", "sigma", 1),
                       ("per process", "R = 1000 x 1 / 1", 1000), ("per core", "R / c", 500),
                       ("processes", "ceil(X", 3), ("cores", "3 x 2", 6), ("servers", "ceil(3 / 32)", 1),
                       ("busy", "X / (processes", 66.666667)])
    check("1M: the sweep's answer used, no W6", "W6" not in out and "its run 6, used" in out, out)

# 3. 500k users: the fewest users at or above U is the 1M sweep; rho 0.5, sigma 1.
rc, out, err = served("--users", "500000", "--p99-ms", "50", *W)
check("served 500k: exit 0", rc == 0, out + err)
if rc == 0:
    expect("500k", out, [("users", "rho = 500000 / 1000000", 0.5), ("time scale", "sigma", 1),
                         ("per process", "R = 1000", 1000)])
    check("500k: A12 says the measured rate stands", "measured rate and latencies stand" in out, out)

# 4. 50k users: the 100k sweep (the fewest >= 50k): its answer 4000/s -> 1 process.
rc, out, err = served("--users", "50000", "--p99-ms", "50", *W)
check("served 50k: exit 0", rc == 0, out + err)
if rc == 0:
    expect("50k", out, [("per process", "R = 4000", 4000), ("processes", "ceil(X", 1)])

# 5. A tighter bound than the sweep's, still covered by a run: 1M, p99 <= 30 ms -> the run
# at 400/s (p99 20); R 400, ceil(2000 / 280) = 8 processes; W6 says it is coarse.
rc, out, err = served("--users", "1000000", "--p99-ms", "30", *W)
check("served 1M at 30 ms: exit 0 from a lower run", rc == 0, out + err)
if rc == 0:
    expect("1M 30ms", out, [("per process", "R = 400", 400), ("processes", "ceil(X", 8)])
    check("1M 30 ms: W6 and A10 note", "W6" in out and "tighter than the sweep's bound" in out, out)

# 6. Both files: 1M users, p99 <= 50.  Bench (tests/bench/sample_results.json, see
# test_plan.py): g 0.15625 ms, s 1.25 ns, f 1.137778, t = f x (0.15625 + 1.25) = 1.6 ms,
# e 0.96, r 1 -> P = 0.96 / 0.0016 = 600 items/s per core; ceil(2000 / 420) = 5 cores,
# 1 server.  Served: 500 per core, 6 cores, 1 server: same servers, more cores -> the
# served plan bounds the answer; ratio 500 / 600 = 0.833.
rc, out, err = plan("--results", BENCH, "--served", SERVED, "--users", "1000000", "--p99-ms", "50", *W)
check("both: exit 0", rc == 0, out + err)
print(out)
if rc == 0:
    check("both: the bench plan printed", "results: " + BENCH in out and "[m1]" in out, out)
    check("both: the served plan printed", "served: " + SERVED in out and "[s1]" in out, out)
    expect("both", out, [("per core", "P = e x r / t", 600), ("per core", "R / c", 500)])
    check("both: side by side",
          re.search(r"bench \(the engine, per core\):\s+1 server\(s\),\s+5 cores provisioned", out)
          is not None and
          re.search(r"served \(nextuser serve, HTTP\):\s+1 server\(s\),\s+6 cores provisioned", out)
          is not None, out)
    check("both: ratio 0.833", "per-core throughput = 0.833" in out, out)
    check("both: the served plan bounds it", "Bounded by the served plan" in out
          and "Answer: 1 server(s) of 64 cores." in out, out)
# 40,000 items/s at 1M users on 64-core servers (1 node): bench ceil(40000 / 420) = 96
# cores -> 2 servers (1 shard each); served ceil(40000 / 700) = 58 processes ->
# ceil(58 / 32) = 2 servers, 116 cores >= 96 -> the served plan bounds it.
rc, out, err = plan("--results", BENCH, "--served", SERVED, "--users", "1000000", "--p99-ms", "50",
                    "--items-per-sec", "40000", "--k", "100", "--cores-per-server", "64")
check("both at 40k items/s: exit 0", rc == 0, out + err)
if rc == 0:
    expect("both 40k", out, [("processes", "ceil(X", 58), ("servers", "ceil(58 / 32)", 2),
                             ("cores", "ceil(X / ((1 - 0.30) x P))", 96)])
    check("both 40k: served bounds, answer 2 servers",
          "Bounded by the served plan" in out and "Answer: 2 server(s)" in out, out)

# Errors.
rc, out, err = served("--users", "50000000", "--p99-ms", "50", *W)
check("50M users (50x the largest sweep) -> exit 2 asking to measure there",
      rc == 2 and "1000000 users" in err and "USERS=50000000" in err and "--results" in err, err)
rc, out, err = served("--users", "1000000", "--p99-ms", "5", *W)
check("p99 5 ms, tighter than any run (lowest 10 ms) -> exit 2 naming the rerun",
      rc == 2 and "tighter" in err and "--p99-ms 5" in err and "10 ms" in err, err)
rc, out, err = served("--users", "2000000", "--p99-ms", "15", *W)
check("2M at 15 ms: every p99 x 2 > 15 -> exit 2 asking to measure at 2M",
      rc == 2 and "USERS=2000000" in err and "x 2 = 20 ms" in err, err)
rc, out, err = served("--users", "1000000", "--p99-ms", "50", "--dtype", "int8", *W)
check("int8: no int8 sweep -> exit 2 naming what was measured",
      rc == 2 and "int8" in err and "1000000 users fp32" in err, err)
rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path="/nonexistent/served.json")
check("missing file -> exit 2 naming it", rc == 2 and "/nonexistent/served.json" in err, err)
rc, out, err = served("--users", "1000000", "--p99-ms", "50", "--items-per-sec", "2000", "--k", "100",
                      "--cores-per-server", "1")
check("a 2-core process on 1-core servers -> exit 1", rc == 1 and "no served plan" in err, err)
rc, out, err = plan("--users", "5", "--k", "1", "--p99-ms", "50", "--items-per-sec", "1")
check("neither --results nor --served -> exit 2", rc == 2 and "--served" in err, err)
rc, out, err = plan("--results", BENCH, "--served", "/nonexistent/served.json", "--users", "1000000",
                    "--p99-ms", "50", *W)
check("both, the served file missing -> exit 2, nothing printed",
      rc == 2 and out == "" and "/nonexistent/served.json" in err, out + err)

with open(SERVED) as f:
    doc = json.load(f)
with tempfile.TemporaryDirectory() as tmp:
    def write(name, obj):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    # One open_loop.py sweep document (what open_loop.py --sweep --service writes): the
    # same numbers as the 1M sweep within results.json.
    single = write("sweep.json", doc["sweep-nextuser-1M"])
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=single)
    check("one open_loop.py sweep: exit 0", rc == 0, out + err)
    if rc == 0:
        expect("single", out, [("per process", "R = 1000", 1000), ("processes", "ceil(X", 3)])
    rates = dict(doc["sweep-nextuser-1M"], mode="rates")
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=write("rates.json", rates))
    check("an open_loop.py --rates document -> exit 2 asking for --sweep",
          rc == 2 and "not a sweep" in err and "--sweep" in err, err)
    no_sweeps = {k: v for k, v in doc.items() if not k.startswith("sweep-nextuser-")}
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=write("nosweep.json", no_sweeps))
    check("results.json without a nextuser sweep -> exit 2 naming the script",
          rc == 2 and "sweep-nextuser-" in err and "run_serve_bench.sh" in err, err)
    old = json.loads(json.dumps(doc))
    del old["sweep-nextuser-1M"]["service"]
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=write("old.json", old))
    check("a sweep without its service record -> exit 2",
          rc == 2 and "\"service\"" in err and "run_serve_bench.sh" in err, err)
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=write("bad.json", "[1, 2"))
    check("not JSON -> exit 2", rc == 2 and "bad.json" in err, err)
    # Every run failed (errors): nothing to plan from.
    broken = json.loads(json.dumps(doc))
    for r in broken["sweep-nextuser-1M"]["runs"]:
        r["errors"] = 1
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=write("broken.json", broken))
    check("no passing run -> exit 2", rc == 2 and "no run of the sweep passed" in err, err)
    # A bench workload name longer than the planner's names (127 characters) is refused
    # with a clear message, not cut short and mismatched (the snprintf results are checked).
    with open(BENCH) as f:
        bench = json.load(f)
    long_name = "serve/base/fp32/U" + "1" * 120 + "/server_max/threads:1"
    bench["benchmarks"].append({"name": long_name, "run_name": long_name, "run_type": "iteration",
                                "max_rate_per_second": 10.0, "max_batch": 8, "max_wait_ms": 1,
                                "p99_bound_ms": 50})
    rc, out, err = plan("--results", write("long.json", bench), "--items-per-sec", "2000", "--users",
                        "1000000", "--k", "100", "--p99-ms", "50")
    check("bench workload name over 127 characters -> exit 2 'too long'",
          rc == 2 and "workload name too long" in err, err)
    # The service used fewer cores than the machine had: W7; machine_cores caps c.
    wide = json.loads(json.dumps(doc))
    wide["sweep-nextuser-1M"]["service"]["machine_cores"] = 8
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=write("wide.json", wide))
    check("service on 2 of 8 cores: W7", rc == 0 and "W7" in out, out + err)
    narrow = json.loads(json.dumps(doc))
    narrow["sweep-nextuser-1M"]["service"]["machine_cores"] = 1
    rc, out, err = served("--users", "1000000", "--p99-ms", "50", *W, path=write("narrow.json", narrow))
    check("service on a 1-core machine: c = 1", rc == 0 and "R / c = 1000 / 1" in out, out + err)

# The real file of the load script: the same rule recomputed from its runs.
if REAL:
    with open(REAL) as f:
        real = json.load(f)
    sweeps = {k: v for k, v in real.items() if k.startswith("sweep-nextuser-")}
    check("real file: has a nextuser sweep with its service record",
          sweeps and all("service" in v for v in sweeps.values()))
    for key, sw in sweeps.items():
        sv = sw["service"]
        users = 2 * sv["users"]                       # sigma 2
        bound = 50.0
        ok = [r for r in sw["runs"] if r["errors"] == 0 and r["achieved_per_s"]
              and r["achieved_per_s"] >= 0.9 * r["offered_actual_per_s"]
              and r["latency_ms"]["p99"] is not None and 2 * r["latency_ms"]["p99"] <= bound]
        rc, out, err = served("--users", str(users), "--p99-ms", str(bound), *W, path=REAL)
        if not ok:
            check(f"real {key}: no run within the bound -> exit 2", rc == 2, out + err)
            continue
        best = max(ok, key=lambda r: r["achieved_per_s"])
        R = best["achieved_per_s"] * sw["items_per_request"] / 2
        c = min(sv["threads"] * sv["workers"], sv.get("machine_cores") or 10 ** 9)
        procs = -(-2000 // (0.7 * R))
        check(f"real {key}: exit 0", rc == 0, out + err)
        if rc == 0:
            expect(f"real {key}", out, [("per process", "R =", R), ("per core", "R / c", R / c),
                                        ("processes", "ceil(X", procs), ("cores", "%d x" % procs, procs * c)])
            check(f"real {key}: its users and threads stated",
                  f"over {sv['users']} users" in out and f"--threads {sv['threads']}" in out, out)

rc = subprocess.run([NEXTUSER, "plan", "--help"], capture_output=True, text=True)
check("--help names --served", rc.returncode == 0 and "--served FILE" in rc.stdout)

print(f"{len(failures)} failure(s)" if failures else "all served plan checks pass")
sys.exit(1 if failures else 0)
