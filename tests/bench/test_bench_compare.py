#!/usr/bin/env python3
"""Unit tests of tools/bench-compare on synthetic pairs of result files.

usage: test_bench_compare.py BENCH_COMPARE SAMPLE.json
Each case writes OLD and NEW files derived from the sample (our schema) or a
hand-made microbenchmark file, runs the gate and checks its exit status (0 pass,
1 regression, 2 bad input) and, where it matters, the row it prints.
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

TOOL, SAMPLE = sys.argv[1], sys.argv[2]
with open(SAMPLE) as f:
    BASE = json.load(f)
TMP = tempfile.mkdtemp(prefix="bench-compare-test-")
failures = []


def write(name, doc):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        if isinstance(doc, str):
            f.write(doc)
        else:
            json.dump(doc, f)
    return path


def entry(doc, name):
    return next(b for b in doc["benchmarks"] if b["name"] == name)


def run(old, new, *extra):
    p = subprocess.run([sys.executable, TOOL, old, new, *extra], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def case(title, old, new, want_rc, *extra, want_text=None):
    rc, out = run(write("old.json", old), write("new.json", new), *extra)
    ok = rc == want_rc and (want_text is None or want_text in out)
    print(f"{'ok  ' if ok else 'FAIL'} {title}: exit {rc} (want {want_rc})")
    if not ok:
        failures.append(title)
        print(out)


def changed(fn):
    doc = copy.deepcopy(BASE)
    fn(doc)
    return doc


INF = "infer/base/B64/threads:1"

# Same file twice: nothing moves.
case("identical files pass", BASE, BASE, 0, want_text="no regression")

# A 30 % drop of one fraction of peak is caught at the 25 % default.
case("frac_peak -30% is a regression",
     BASE, changed(lambda d: entry(d, INF).update(frac_peak=entry(d, INF)["frac_peak"] * 0.7)), 1,
     want_text="REGRESSION")

# An improvement never fails.
case("frac_peak +50% passes",
     BASE, changed(lambda d: entry(d, INF).update(frac_peak=entry(d, INF)["frac_peak"] * 1.5)), 0)


# Threshold edges: exactly the threshold passes, just beyond it fails.
def set_frac(value):
    return changed(lambda d: entry(d, INF).update(frac_peak=value))


case("-20% at --threshold 20 passes (edge)", set_frac(0.5), set_frac(0.4), 0, "--threshold", "20")
case("-20.2% at --threshold 20 fails", set_frac(0.5), set_frac(0.399), 1, "--threshold", "20")
case("-30% at --threshold 40 passes", set_frac(0.5), set_frac(0.35), 0, "--threshold", "40")
case("-1% at --threshold 0 fails", set_frac(0.5), set_frac(0.495), 1, "--threshold", "0")

# Raw times and rates are never compared across files: a uniformly slower
# machine (every time doubled, every rate halved, same fractions) passes.
def slower_machine(d):
    for b in d["benchmarks"]:
        for k in ("real_time", "cpu_time", "p50_ms", "p99_ms", "p90_ms"):
            if k in b:
                b[k] *= 2
        for k in ("items_per_second", "queries_per_second", "max_rate_per_second", "gflops",
                  "gbps", "offered_per_second"):
            if k in b:
                b[k] /= 2


case("uniformly slower machine passes (no raw comparison)", BASE, changed(slower_machine), 0)


# A same-run ratio that drops is caught even when the fraction of peak is kept:
# int8 queries/s halves relative to fp32.
def int8_slower(d):
    e = entry(d, "retrieve/int8/U1M/B1/threads:1")
    e["queries_per_second"] /= 2


case("int8/fp32 ratio halved is a regression", BASE, changed(int8_slower), 1,
     want_text="qps_vs_fp32")


def scaling_lost(d):
    entry(d, "infer/base/B64/threads:2")["items_per_second"] *= 0.6


case("thread scaling -40% is a regression", BASE, changed(scaling_lost), 1,
     want_text="x_vs_threads:1")
case("--filter leaves the regressed workload out", BASE, changed(scaling_lost), 0,
     "--filter", "^retrieve/")
# (both its ratios move: x_vs_threads:1 and x_vs_B1)
case("--exclude drops the regressed figures", BASE, changed(scaling_lost), 0,
     "--exclude", "^infer/base/B64/threads:2 x_vs_")

# --gate groups: one noisy row does not fail, a whole group moving does.
case("groups: one row -30% passes (the group median holds)",
     BASE, changed(lambda d: entry(d, INF).update(frac_peak=entry(d, INF)["frac_peak"] * 0.7)), 0,
     "--gate", "groups", want_text="drop")


def all_infer_slower(factor):
    def fn(d):
        for b in d["benchmarks"]:
            if b["name"].startswith("infer/"):
                b["frac_peak"] *= factor
    return changed(fn)


case("groups: every infer frac_peak -30% fails at 25", BASE, all_infer_slower(0.7), 1,
     "--gate", "groups", want_text="REGRESSION")
case("groups: every infer frac_peak -30% passes at 35", BASE, all_infer_slower(0.7), 0,
     "--gate", "groups", "--threshold", "35")
case("groups: a recall drop still fails per row", BASE,
     changed(lambda d: entry(d, "retrieve/int8/U1M/B16/threads:1").update(recall_at_100=0.9)), 1,
     "--gate", "groups")
case("unknown --gate", BASE, BASE, 2, "--gate", "sometimes")

# Recall is compared absolutely.
R = "retrieve/int8/U1M/B16/threads:1"
case("recall -0.02 is a regression", BASE,
     changed(lambda d: entry(d, R).update(recall_at_100=entry(d, R)["recall_at_100"] - 0.02)), 1,
     want_text="recall_at_100")
case("recall -0.005 passes", BASE,
     changed(lambda d: entry(d, R).update(recall_at_100=entry(d, R)["recall_at_100"] - 0.005)), 0)


# Microbenchmark files: iteration entries, the median per name is compared.
def microbench(values, with_median=None):
    bms = []
    for i, v in enumerate(values):
        bms.append({"name": "matmul_nn/avx512/M64_K64_N256/real_time",
                    "run_name": "matmul_nn/avx512/M64_K64_N256/real_time",
                    "run_type": "iteration", "repetitions": len(values), "repetition_index": i,
                    "threads": 1, "iterations": 1000, "real_time": 2e4, "cpu_time": 2e4,
                    "time_unit": "ns", "GFLOPS": 100.0, "frac_fma_peak": v, "frac_read_bw": 0.3})
    if with_median is not None:
        bms.append({"name": "matmul_nn/avx512/M64_K64_N256/real_time_median",
                    "run_name": "matmul_nn/avx512/M64_K64_N256/real_time",
                    "run_type": "aggregate", "aggregate_name": "median", "repetitions": 3,
                    "threads": 1, "iterations": 3, "real_time": 2e4, "cpu_time": 2e4,
                    "time_unit": "ns", "frac_fma_peak": with_median, "frac_read_bw": 0.3})
    return {"context": {"date": "2026-11-29", "host_name": "vm", "executable": "mb",
                        "library_build_type": "release", "nu_isa_best": "avx512",
                        "cpu_model_name": "AMD EPYC", "cpu_vendor": "AuthenticAMD",
                        "cpu_family": "26", "cpu_model": "2", "cpu_best_isa": "avx512"},
            "benchmarks": bms}


# One outlier repetition (0.2) does not move the median (0.9 vs 0.89).
case("microbench: median of iterations, outlier ignored",
     microbench([0.9, 0.91, 0.2]), microbench([0.89, 0.88, 0.9]), 0)
case("microbench: median drop 0.9 -> 0.6 caught",
     microbench([0.9, 0.91, 0.89]), microbench([0.6, 0.61, 0.95]), 1, want_text="frac_fma_peak")
case("microbench: a median aggregate wins over iterations",
     microbench([0.9, 0.9, 0.9], with_median=0.9), microbench([0.9, 0.9, 0.9], with_median=0.5), 1)

# A baseline from another CPU: fractions of peak are not comparable, the gate
# says so and judges only the same-run ratios (and recall) until the baseline
# is re-made.
def other_cpu(d):
    d["context"].update(cpu_model_name="AMD EPYC (Zen 4)", cpu_family="25", cpu_model="17")


def no_cpu(d):
    for k in [k for k in d["context"] if k.startswith("cpu_")]:
        del d["context"][k]


FRAC_HALVED = changed(lambda d: [b.update(frac_peak=b["frac_peak"] / 2)
                                 for b in d["benchmarks"] if "frac_peak" in b])
case("same CPU: every frac_peak halved fails", BASE, FRAC_HALVED, 1, want_text="frac_peak")
case("other CPU: frac_peak halved is not judged, and it says so",
     changed(other_cpu), FRAC_HALVED, 0, want_text="CPU CHANGED")
case("other CPU: the message names both CPUs and the way out",
     changed(other_cpu), BASE, 0, want_text="tools/ci-bench.sh --update-baseline")
case("other CPU: family 25 named", changed(other_cpu), BASE, 0, want_text="family 25 model 17")
case("other CPU: a same-run ratio drop still fails",
     changed(other_cpu), changed(int8_slower), 1, want_text="qps_vs_fp32")
case("other CPU: thread scaling lost still fails",
     changed(other_cpu), changed(scaling_lost), 1, want_text="x_vs_threads:1")
case("other CPU: recall still judged", changed(other_cpu),
     changed(lambda d: entry(d, R).update(recall_at_100=entry(d, R)["recall_at_100"] - 0.02)), 1,
     want_text="recall_at_100")
case("baseline naming no CPU counts as another CPU", changed(no_cpu), FRAC_HALVED, 0,
     want_text="an unrecorded CPU")
case("another ISA (avx2 baseline) is another CPU",
     changed(lambda d: d["context"].update(cpu_best_isa="avx2")), FRAC_HALVED, 0,
     want_text="CPU CHANGED")
case("same CPU prints no CPU warning", BASE, BASE, 0)
rc, out = run(write("old.json", BASE), write("new.json", BASE))
if "CPU CHANGED" in out:
    failures.append("same CPU warned")
    print("FAIL same CPU: no CPU CHANGED line\n" + out)
case("other CPU, microbench: only fractions, nothing left to compare",
     changed(lambda d: None) and microbench([0.9]) | {"context": {"cpu_family": "25"}},
     microbench([0.5]), 2, want_text="no figure in common")


# Best of several runs: a run slowed by a neighbour (every rate and fraction
# halved) next to a normal one merges to the normal one and passes; alone it fails.
def neighbour_slowed(d):
    for b in d["benchmarks"]:
        for k in ("frac_peak", "frac_bw", "items_per_second", "queries_per_second", "gflops",
                  "gbps"):
            if k in b and not b["name"].startswith("peak/"):
                b[k] /= 2


slow = write("slow.json", changed(neighbour_slowed))
normal = write("normal.json", BASE)
base = write("base.json", BASE)
for title, new, want in (("best of (slowed, normal) passes", f"{slow},{normal}", 0),
                         ("the slowed run alone fails", slow, 1)):
    rc, out = run(base, new)
    print(f"{'ok  ' if rc == want else 'FAIL'} {title}: exit {rc} (want {want})")
    if rc != want:
        failures.append(title)
        print(out)
merged = os.path.join(TMP, "merged.json")
p = subprocess.run([sys.executable, TOOL, "--write-best", merged, slow, normal],
                   capture_output=True, text=True)
rc, out = run(base, merged) if p.returncode == 0 else (p.returncode, p.stderr)
print(f"{'ok  ' if rc == 0 else 'FAIL'} --write-best of (slowed, normal) equals the normal run: "
      f"exit {rc}")
if rc != 0:
    failures.append("--write-best")
    print(out)

# Bad input: exit 2.
rc, out = run(os.path.join(TMP, "absent.json"), write("a.json", BASE))
print(f"{'ok  ' if rc == 2 else 'FAIL'} missing file: exit {rc}")
if rc != 2:
    failures.append("missing file")
case("not JSON", "this is not json {", BASE, 2)
case("JSON without benchmarks", {"context": {}}, BASE, 2)
case("benchmark entry without a name", {"context": {}, "benchmarks": [{"real_time": 1}]}, BASE, 2)
case("no common workloads",
     changed(lambda d: d.update(benchmarks=[b for b in d["benchmarks"]
                                            if b["name"].startswith("infer/")])),
     changed(lambda d: d.update(benchmarks=[b for b in d["benchmarks"]
                                            if b["name"].startswith("retrieve/")])), 2,
     want_text="no figure in common")
case("bad --filter regex", BASE, BASE, 2, "--filter", "(")
case("negative threshold", BASE, BASE, 2, "--threshold", "-5")
case("unknown option", BASE, BASE, 2, "--frobnicate")

print(f"{len(failures)} failure(s)" if failures else "all bench-compare cases pass")
sys.exit(1 if failures else 0)
