#!/usr/bin/env python3
"""nextuser-microbench's counters (label bench): GFLOPS, GBps and the
fractions of peak are plain numbers, not rates of rates (Google Benchmark's
kIsRate once printed "frac_fma_peak 0.93/s"); each agrees with the time the
benchmark reports and the peak recorded in the same run's context, which also
names the CPU.

usage: test_microbench.py NEXTUSER_MICROBENCH
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402

exe = sys.argv[1]
# scalar runs everywhere; the shape is small so the run takes a second.
FILTER = "peak/fma/scalar|peak/read/scalar|matmul_nn/scalar/M16_K128_N128/"
base = [exe, "--benchmark_filter=" + FILTER, "--benchmark_min_time=0.02"]

r = subprocess.run(base + ["--benchmark_counters_tabular=false"], capture_output=True, text=True)
check(r.returncode == 0, "microbench runs: " + r.stderr[-500:])
lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("peak/", "matmul_nn/"))]
check(len(lines) == 3, "three benchmarks printed: %s" % lines)
for ln in lines:
    for key in ("GFLOPS=", "GBps=", "frac_fma_peak=", "frac_read_bw="):
        if key in ln:
            value = ln.split(key, 1)[1].split()[0]
            check(not value.endswith("/s"), "%s%s is a plain number (%s)" % (key, value, ln.split()[0]))

r = subprocess.run(base + ["--benchmark_format=json"], capture_output=True, text=True)
check(r.returncode == 0, "microbench --benchmark_format=json runs")
doc = json.loads(r.stdout)
ctx = doc["context"]
for key in ("cpu_model_name", "cpu_vendor", "cpu_family", "cpu_model", "cpu_best_isa"):
    check(key in ctx, "context names the CPU: %s" % key)
peak_flops = float(ctx["nu_fma_peak_gflops_1core"])
peak_bytes = float(ctx["nu_read_bw_gbps_1core"])
rows = {b["name"]: b for b in doc["benchmarks"]}
mm = rows.get("matmul_nn/scalar/M16_K128_N128/real_time")
check(mm is not None, "the matmul row is there")
if mm:
    seconds = mm["real_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[mm["time_unit"]]
    gflops = 2.0 * 16 * 128 * 128 / seconds * 1e-9
    # the counters come from the same loop as real_time: within 5 %
    check(abs(mm["GFLOPS"] / gflops - 1) < 0.05,
          "GFLOPS %.3f = 2MNK / real_time %.3f" % (mm["GFLOPS"], gflops))
    check(abs(mm["frac_fma_peak"] * peak_flops / mm["GFLOPS"] - 1) < 1e-4,  # the context prints 3 decimals
          "frac_fma_peak = GFLOPS / the context's peak")
    check(abs(mm["frac_read_bw"] * peak_bytes / mm["GBps"] - 1) < 1e-4,  # the context prints 3 decimals
          "frac_read_bw = GBps / the context's bandwidth")
    check(0 < mm["frac_fma_peak"] < 1.5, "a fraction: %g" % mm["frac_fma_peak"])

sys.exit(summary("test_microbench"))
