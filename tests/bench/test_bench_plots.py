#!/usr/bin/env python3
"""tools/bench_plots.py on the sample results: every PNG is written; bad input exits 2.

usage: test_bench_plots.py BENCH_PLOTS SAMPLE.json
"""
import os
import subprocess
import sys
import tempfile

TOOL, SAMPLE = sys.argv[1], sys.argv[2]
try:
    import matplotlib  # noqa: F401
except ImportError:
    print("SKIP: matplotlib is not installed")
    sys.exit(77)

failures = []
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "plots")
    p = subprocess.run([sys.executable, TOOL, SAMPLE, "--out", out], capture_output=True, text=True)
    print(p.stdout + p.stderr)
    if p.returncode != 0:
        failures.append(f"sample: exit {p.returncode}")
    for name in ("throughput_threads_infer", "throughput_threads_retrieve",
                 "throughput_threads_serve", "latency_batch_infer", "latency_batch_retrieve",
                 "latency_rate_serve"):
        path = os.path.join(out, name + ".png")
        ok = os.path.exists(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        print(f"{'ok  ' if ok else 'FAIL'} {name}.png")
        if not ok:
            failures.append(name)
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write("{\"context\": {}}")
    for args, what in (([bad], "no benchmarks"), ([os.path.join(tmp, "absent.json")], "missing")):
        p = subprocess.run([sys.executable, TOOL, *args, "--out", out], capture_output=True,
                           text=True)
        print(f"{'ok  ' if p.returncode == 2 else 'FAIL'} {what}: exit {p.returncode}")
        if p.returncode != 2:
            failures.append(what)
print("FAILED: " + ", ".join(failures) if failures else "all plot checks pass")
sys.exit(1 if failures else 0)
