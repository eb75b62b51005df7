#!/usr/bin/python3
"""The peer runners of tools/peers/ on a tiny model: each writes a valid
result file (the schema of docs/bench.md, our workload names), the
tensor-input PyTorch generator matches the reference's embed(), and the ONNX
export run by onnxruntime-node matches PyTorch within 1e-4 (on items of
0..50 users, so padding and masks count); plus the medians and ratios of
tools/compare.py on hand-made rounds, and bad input.  The ONNX Runtime part
is skipped, saying so, when node or onnxruntime-node is absent.

usage: test_peers.py path/to/nextuser
"""
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
PEERS = os.path.join(REPO, "tools", "peers")
PY = sys.executable
sys.path.insert(0, PEERS)
sys.path.insert(0, os.path.join(REPO, "tools"))

FAILS = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def check_schema(path, tool, want_names, rate_key):
    """The file follows the schema: context keys, one median aggregate per
    workload, positive rates and ordered percentiles."""
    with open(path) as f:
        doc = json.load(f)
    ctx = doc.get("context", {})
    for key in ("date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled",
                "caches", "library_build_type", "tool", "tool_version", "command", "machine"):
        check(key in ctx, "%s: context has %s" % (tool, key))
    check(ctx.get("tool") == tool, "%s: context.tool is %r" % (tool, ctx.get("tool")))
    check("peak_fma_gflops" not in ctx, "%s: no peak figures for a peer" % tool)
    names = [e["name"] for e in doc.get("benchmarks", [])]
    check(sorted(names) == sorted(want_names), "%s: workloads %s" % (tool, names))
    for e in doc.get("benchmarks", []):
        where = "%s %s" % (tool, e["name"])
        check(e["run_name"] == e["name"] and e["run_type"] == "aggregate"
              and e["aggregate_name"] == "median" and e["aggregate_unit"] == "time"
              and e["time_unit"] == "ms" and e["repetition_index"] == 0, where + ": aggregate keys")
        check(e["threads"] == int(e["name"].split("threads:")[1].split("/")[0]),
              where + ": threads matches the name")
        check(e["iterations"] >= 1 and e["repetitions"] >= 1, where + ": iterations, repetitions")
        check(e[rate_key] > 0 and math.isfinite(e[rate_key]), where + ": %s > 0" % rate_key)
        check(0 < e["p50_ms"] <= e["p99_ms"] and e["real_time"] > 0 and e["cpu_time"] > 0,
              where + ": 0 < p50 <= p99, times > 0")
    return doc


def test_compare_medians():
    import compare
    entry = lambda name, ips, p50: {  # noqa: E731
        "name": name, "run_name": name, "run_type": "aggregate", "aggregate_name": "median",
        "threads": 1, "iterations": 4, "repetitions": 1, "items_per_second": ips, "p50_ms": p50}
    ours = compare.merge_rounds([{"benchmarks": [entry("infer/base/B1/threads:1", x, 1.0)]}
                                 for x in (100.0, 300.0, 200.0)])
    check(len(ours) == 1 and ours[0]["items_per_second"] == 200.0 and ours[0]["iterations"] == 12
          and ours[0]["repetitions"] == 3, "compare: median over rounds, iterations summed")
    peer = compare.merge_rounds([{"benchmarks": [entry("infer/base/B1/threads:1", 50.0, 2.0),
                                                 entry("infer/base/B64/threads:1", 10.0, 9.0)]}])
    rows = compare.comparisons(ours, {"pytorch": peer})
    check(len(rows) == 2 and rows[0]["ratio"] == 4.0 and rows[1]["ratio"] is None,
          "compare: ratio ours/peer, n/a when ours lacks the workload")
    # Ours' bf16 generator row is compared with the peer's (fp32) row of the
    # same workload, in a row of its own that names the peer's workload.
    ours = compare.merge_rounds([{"benchmarks": [entry("infer/base/B1/threads:1", 200.0, 1.0),
                                                 entry("infer/base/B1/gen:bf16/threads:1", 300.0,
                                                       0.7)]}])
    rows = compare.comparisons(ours, {"pytorch": peer})
    bf = [r for r in rows if r["workload"] == "infer/base/B1/gen:bf16/threads:1"]
    check(len(rows) == 3 and rows[1] == bf[0] and bf[0]["ratio"] == 6.0 and
          bf[0]["peer_workload"] == "infer/base/B1/threads:1" and
          [r["ratio"] for r in rows if r["workload"] == "infer/base/B1/threads:1"] == [4.0],
          "compare: the bf16 generator's row against the peer's fp32 row: %s" % rows)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    exe = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="nu_test_peers_")
    model = os.path.join(tmp, "model")
    r = run([exe, "synth", "--users", "1000", "--dim", "64", "--out", model, "--seed", "3"])
    check(r.returncode == 0, "nextuser synth of a tiny model: " + r.stderr.strip())
    table = os.path.join(model, "user_table.safetensors")
    fast = ["--threads", "1", "--min-time", "0", "--min-iters", "2"]

    out = os.path.join(tmp, "torch.json")
    r = run([PY, os.path.join(PEERS, "peer_torch.py"), "--model", model, "--json", out,
             "--batches", "1,4", "--train-batch", "8", "--negatives", "16", "--serve-batch", "8",
             "--check"] + fast)
    check(r.returncode == 0, "peer_torch runs (incl. --check vs the reference): " + r.stderr[-400:])
    if r.returncode == 0:
        check_schema(out, "pytorch", ["infer/base/B1/threads:1", "infer/base/B4/threads:1",
                                      "train/base/B8/threads:1",
                                      "serve/base/fp32/U1k/offline/threads:1"],
                     "items_per_second")

    out = os.path.join(tmp, "faiss.json")
    r = run([PY, os.path.join(PEERS, "peer_faiss.py"), "--table", table, "--json", out,
             "--batches", "1,3"] + fast)
    check(r.returncode == 0, "peer_faiss runs: " + r.stderr[-400:])
    if r.returncode == 0:
        doc = check_schema(out, "faiss", ["retrieve/fp32/U1k/B1/threads:1",
                                          "retrieve/fp32/U1k/B3/threads:1"],
                           "queries_per_second")
        check(all(e["recall_at_100"] == 1.0 and e["gbps"] > 0 for e in doc["benchmarks"]),
              "faiss: recall_at_100 1 (exact), gbps > 0")

    import peer_onnx
    why = peer_onnx.unavailable_reason()
    if why:
        print("SKIP: the ONNX Runtime peer: %s" % why)
    else:
        out = os.path.join(tmp, "onnx.json")
        r = run([PY, os.path.join(PEERS, "peer_onnx.py"), "--model", model, "--json", out,
                 "--batches", "1,3", "--check"] + fast)
        check(r.returncode == 0, "peer_onnx runs (export, parity on 0..50 users): "
              + r.stderr[-600:])
        check("max |diff|" in r.stderr, "peer_onnx reports the parity check")
        if r.returncode == 0:
            doc = check_schema(out, "onnxruntime", ["infer/base/B1/threads:1",
                                                    "infer/base/B3/threads:1"], "items_per_second")
            check(all(e["max_abs_diff_vs_pytorch"] <= 1e-4 for e in doc["benchmarks"]),
                  "onnxruntime: outputs within 1e-4 of PyTorch")

    test_compare_medians()

    r = run([PY, os.path.join(PEERS, "peer_faiss.py"), "--table", os.path.join(tmp, "none"),
             "--json", os.path.join(tmp, "x.json")])
    check(r.returncode == 1 and "none" in r.stderr, "peer_faiss: a missing table exits 1, named")
    r = run([PY, os.path.join(PEERS, "peer_torch.py"), "--model", model, "--json",
             os.path.join(tmp, "x.json"), "--workloads", "fly"])
    check(r.returncode == 2, "peer_torch: an unknown workload exits 2")
    r = run([PY, os.path.join(PEERS, "peer_onnx.py"), "--model", model, "--json",
             os.path.join(tmp, "x.json"), "--threads", "0"])
    check(r.returncode != 0 and "--threads" in r.stderr, "peer_onnx: --threads 0 refused")
    r = run([PY, os.path.join(PEERS, "peer_torch.py"), "--model", os.path.join(tmp, "nomodel"),
             "--json", os.path.join(tmp, "x.json")])
    check(r.returncode == 1, "peer_torch: a missing model dir exits 1")

    subprocess.run(["rm", "-rf", tmp])
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    print("all peer checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
