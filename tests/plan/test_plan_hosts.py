"""`nextuser plan --hosts` (docs/plan.md, "Over several servers"): the
figures of tests/bench/sample_results.json worked by hand -- bytes per
batch, the hosts chosen, the replica sets and servers -- the error
messages, and (when mpirun is there) that the predicted bytes per batch
equal those a real `mpirun -np 2 nextuser search` moves.

usage: test_plan_hosts.py NEXTUSER SAMPLE_RESULTS MPI_RESULTS_PY [MPIRUN]
"""
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

exe, sample, mpi_results_py = sys.argv[1], sys.argv[2], sys.argv[3]
mpirun = sys.argv[4] if len(sys.argv) > 4 else shutil.which("mpirun")  # "": no MPI build
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def plan(*args):
    return subprocess.run([exe, "plan", *args], capture_output=True, text=True, timeout=60)


def value(out, label):
    m = re.search(r"^  %s\s.*= ([\d.e+-]+)" % re.escape(label), out, re.M)
    return float(m.group(1)) if m else None


BASE = ["--results", sample, "--items-per-sec", "20000", "--users", "50000000", "--k", "100",
        "--p99-ms", "50", "--hosts"]


def by_hand():
    r = plan(*BASE)
    check(r.returncode == 0, "plan --hosts: rc %d %s" % (r.returncode, r.stderr))
    out = r.stdout
    # sample_results.json: server_max B 64, wait 10 ms; base d = 64, fp32, K 100.
    check(value(out, "broadcast") == 24 + 4 * 64 * 64 == 16408, "broadcast bytes")
    check(value(out, "gathered") == 256 + 4 * 64 * 100 * 2 == 51456, "gathered bytes")
    check("10 Gbit/s per link and 50 us per message" in out, "network figure printed")
    # Per batch on one 64-core server (the plan above): generator and scoring.
    gen = value(out, "generator")  # first "generator": ms per item, g = 1 / 6400
    check(abs(gen - 1000 / 6400) < 1e-9, "g = 1 / 6400 ms: %s" % gen)
    f = (1 / 625) / (1 / 6400 + 1e6 / (800 * 1e6))  # glue: offline vs g + s U at 1M
    e = min(1, 1200 / (2 * 625))
    bgen = 64 * f * (1 / 6400) / (64 * e) * 1e3
    bscan = 64 * f * (50e6 / (800 * 1e6)) / (64 * e) * 1e3
    L, G = 50e-3, 10e9 / 8 / 1e3  # ms, bytes per ms

    def batch(H):
        lv = math.ceil(math.log2(H)) if H > 1 else 0
        comm = lv * (L + 16408 / G) + lv * L + (H - 1) * 51456 / G
        return bgen + bscan / H + comm + 64 * H * 100 * 50e-6  # --merge-ns default 50

    H = next(h for h in range(1, 100) if 10 + 2 * batch(h) <= 50)
    best = min(range(H, 100), key=lambda h: (math.ceil(20000 / (0.7 * 64 / batch(h) * 1e3)) * h, h)
               if 10 + 2 * batch(h) <= 50 else (1 << 30, h))
    sets = math.ceil(20000 / (0.7 * 64 / batch(best) * 1e3))
    check((H, best, sets) == (5, 5, 8), "by hand: H %d, chosen %d, sets %d" % (H, best, sets))
    check(value(out, "latency") is not None and "= 5 hosts at least" in out, "latency: 5 hosts")
    check(value(out, "sets") == 8 and value(out, "servers") is not None, "sets 8")
    check("Plan (hosts): 40 server(s) = 8 replica set(s) x 5 host(s)" in out, "plan line: " +
          out[out.find("Plan (hosts)"):][:120])
    check(abs(value(out, "p99") - (10 + 2 * batch(5))) < 1e-3, "p99 estimate")
    # 200 excluded rows per item (retrieve): 4 (B + B x 200) more broadcast.
    r = plan(*BASE, "--history", "200")
    check(r.returncode == 0 and value(r.stdout, "broadcast") == 24 + 4 * 64 * 64 + 4 * (64 + 64 * 200),
          "bcast with exclusions")
    # int8 is not in the sample: the missing workloads and the command that writes them.
    r = plan(*BASE, "--dtype", "int8")
    check(r.returncode == 2 and "serve/base/int8/U<users>/server_max/threads:1" in r.stderr and
          "written by: nextuser bench --suite serve" in r.stderr, "int8 missing: " + r.stderr)
    # Memory: 1 GiB servers cannot hold the model on rank 0.
    r = plan(*BASE, "--memory-gib", "1")
    check(r.returncode == 1 and "more than the 1 GiB of one server" in r.stderr,
          "memory error: %d %s" % (r.returncode, r.stderr))
    # A bound no H up to --max-hosts meets (H = 5 is needed).
    r = plan(*BASE, "--max-hosts", "3")
    check(r.returncode == 1 and "no number of hosts up to 3 meets p99 <= 50 ms: the best, 3 "
          "host(s), gives %.3f ms" % (10 + 2 * batch(3)) in r.stderr, "bound error: %d %s" % (r.returncode, r.stderr))
    # Missing workload: names the command that writes it.
    tmp = tempfile.mkdtemp(prefix="nu_plan_hosts_")
    empty = os.path.join(tmp, "empty.json")
    with open(empty, "w") as fh:
        json.dump({"context": {}, "benchmarks": [{"name": "x", "items_per_second": 1}]}, fh)
    r = plan("--results", empty, *BASE[2:])
    check(r.returncode == 2 and "nextuser bench" in r.stderr, "missing workload: " + r.stderr)
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as fh:
        json.dump({"runs": []}, fh)
    r = plan(*BASE, "--mpi-results", bad)
    check(r.returncode == 2 and "tools/mpi-bench.sh" in r.stderr, "bad mpi results: " + r.stderr)
    r = plan("--items-per-sec", "1", "--users", "1", "--k", "1", "--p99-ms", "9", "--served",
             sample, "--hosts")
    check(r.returncode == 2 and "--hosts and --mpi-results need --results" in r.stderr,
          "--hosts without --results: " + r.stderr)
    shutil.rmtree(tmp)


def measured():
    if not mpirun:
        print("SKIP measured bytes: no MPI build or mpirun not found")
        return
    tmp = tempfile.mkdtemp(prefix="nu_plan_mpi_")
    model = os.path.join(tmp, "m")
    r = subprocess.run([exe, "synth", "--users", "3000", "--dim", "32", "--out", model, "--seed",
                        "3", "--dtypes", "all"], capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "synth: " + r.stderr)
    q = os.path.join(tmp, "q.tsv")
    rng = random.Random(2)
    with open(q, "w") as fh:
        for i in range(70):  # batches of 32: a short last batch (averaged)
            fh.write("q%d\t%s\n" % (i, " ".join("%.5f" % rng.gauss(0, 1) for _ in range(32))))
    cmd = [mpirun, "--oversubscribe", "-np", "2"]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    logs = []
    for dt, extra in (("fp32", []), ("int8", ["--pool", "50"]), ("bf16", [])):
        r = subprocess.run(cmd + [exe, "search", "--model", model, "--queries", q, "--out",
                                  os.path.join(tmp, "o.csv"), "--batch", "32", "--k", "7",
                                  "--threads", "1", "--dtype", dt] + extra,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "mpirun search %s: %s" % (dt, r.stderr))
        log = os.path.join(tmp, dt + ".log")
        with open(log, "w") as fh:
            fh.write(r.stderr)
        logs.append((log, extra))
    # --pool is per file: one results file per pool setting, checked each.
    for log, extra in logs:
        out = os.path.join(tmp, "r.json")
        a = [sys.executable, mpi_results_py, out, "--query-width", "32", log]
        if extra:
            a += ["--pool", extra[1]]
        r = subprocess.run(a, capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "mpi_results.py: " + r.stderr)
        r = plan(*BASE, "--mpi-results", out, "--merge-ns", "100")
        check(r.returncode == 0, "plan --mpi-results: rc %d %s" % (r.returncode, r.stderr))
        rows = [l for l in r.stdout.splitlines() if l.startswith("  search ")]
        check(len(rows) == 1 and re.search(r"\|\s+same \|", rows[0]) and "DIFF" not in r.stdout,
              "predicted bytes = measured: %s" % rows)
    # A measured figure that differs fails the check (exit 1, DIFF).
    doc = json.load(open(out))
    doc["runs"][0]["gather_bytes_per_batch"] += 4
    with open(out, "w") as fh:
        json.dump(doc, fh)
    r = plan(*BASE, "--mpi-results", out, "--merge-ns", "100")
    check(r.returncode == 1 and "DIFF" in r.stdout, "a differing byte count fails")
    shutil.rmtree(tmp)


by_hand()
measured()
sys.exit(summary())
