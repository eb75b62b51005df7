#!/usr/bin/env python3
"""The regression gate end to end: two quick bench runs of the same build must
pass tools/bench-compare; a run forced to scalar kernels (NU_ISA=scalar, the
injected slowdown) must fail it.  The clean runs also check that batches are
steady: infer B64 on one thread has p99 <= 1.5 x p50 in at least one clean run
(first-touch page faults in every run's first batch once gave 4.7x).

usage: test_gate_e2e.py NEXTUSER BENCH_COMPARE [--threshold P] [--gate rows|groups]
Exits 77 (ctest: skipped) when `nextuser bench` is not built yet.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("nextuser")
ap.add_argument("compare")
ap.add_argument("--threshold", default="60")
ap.add_argument("--gate", default="groups")
args = ap.parse_args()

# The smallest run that covers a compute-bound and a memory-bound workload:
# the generator (frac_peak) and the table scan (frac_bw, dtype ratios).
BENCH = ["bench", "--quick", "--suite", "infer,retrieve", "--threads", "1",
         "--retrieve-batches", "1,16"]

probe = subprocess.run([args.nextuser, "bench", "--help"], capture_output=True, text=True)
if "not built yet" in probe.stdout + probe.stderr or probe.returncode != 0:
    print("SKIP: `nextuser bench` is not built yet; the gate cannot be run end to end")
    sys.exit(77)

tmp = tempfile.mkdtemp(prefix="gate-e2e-")


def bench(name, isa=None):
    path = os.path.join(tmp, name)
    env = dict(os.environ)
    env.pop("NU_ISA", None)
    if isa:
        env["NU_ISA"] = isa
    t0 = time.time()
    p = subprocess.run([args.nextuser, *BENCH, "--json", path], capture_output=True, text=True,
                       env=env)
    print(f"bench {name}{' NU_ISA=' + isa if isa else ''}: exit {p.returncode} in "
          f"{time.time() - t0:.1f} s")
    if p.returncode != 0:
        print(p.stdout + p.stderr)
        sys.exit(1)
    return path


def compare(old, new):
    p = subprocess.run([sys.executable, args.compare, old, new, "--threshold", args.threshold,
                        "--gate", args.gate], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


failures = []
a = bench("clean-a.json")
b = bench("clean-b.json")
rc, out = compare(a, b)
if rc == 1:
    # The machine is shared: one more clean run decides (two clean pairs must
    # not both fail; the scalar case below fails by far more).
    print(out)
    print("clean pair failed once; one more clean run")
    b = bench("clean-c.json")
    rc, out = compare(a, b)
print(out)
if rc != 0:
    failures.append(f"two runs of the same build: bench-compare exit {rc}, want 0")



def tail_ratio(path, name="infer/base/B64/threads:1"):
    with open(path) as f:
        e = next(b for b in json.load(f)["benchmarks"] if b["name"] == name)
    return e["p99_ms"] / e["p50_ms"]


ratios = [tail_ratio(p) for p in (a, b)]
# A neighbour's burst on this shared machine can stretch both runs' tails:
# up to two more clean runs decide (a build whose batches stall fails them all).
for extra in ("clean-d.json", "clean-e.json"):
    if min(ratios) <= 1.5:
        break
    ratios.append(tail_ratio(bench(extra)))
print("infer B64 threads:1 p99/p50 of the clean runs: " + ", ".join(f"{r:.2f}" for r in ratios))
if min(ratios) > 1.5:
    failures.append(f"infer B64 threads:1: p99/p50 {min(ratios):.2f} > 1.5 in every clean run "
                    "(slow batches: page faults, arena growth, a periodic stall?)")

s = bench("scalar.json", isa="scalar")
rc, out = compare(a, s)
print(out)
if rc != 1:
    failures.append(f"NU_ISA=scalar: bench-compare exit {rc}, want 1")
elif "REGRESSION" not in out or "frac_peak" not in out:
    failures.append("NU_ISA=scalar: the infer frac_peak regression is not named")

for f in failures:
    print("FAIL", f)
print("gate end to end: " + ("FAILED" if failures else "clean pair passes, scalar is caught"))
sys.exit(1 if failures else 0)
