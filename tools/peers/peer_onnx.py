#!/usr/bin/python3
"""ONNX Runtime peer runner: the reference generator (peer_torch.TensorGenerator,
same weights as ours from a nextuser model directory) exported with
torch.onnx.export (opset 14, dynamic batch) and run by onnxruntime-node
(tools/peers/node_modules/onnxruntime-node, CPU) through tools/peers/ort_run.js
with intraOpNumThreads = threads.  Before any timing, each run's output is
checked against PyTorch's on the same inputs (max |diff| <= 1e-4).

The graph needs fixed-shape inputs: every item has max_users (50) user slots
(padding rows are masked out by the n_users input), multi-valued features 4
slots with a mask; see peer_common.make_item_arrays.  The benchmark items all
have 50 users, so no padding is computed that ours would skip.

Workloads: infer/<shape>/B<b>/threads:<t> (items/s, p50/p99 batch latency,
GFLOP/s with the FLOPs of docs/benchmarks.md).  Writes the result schema with
context.tool = "onnxruntime".

usage: peer_onnx.py --model DIR --json OUT [--threads 1,2] [--batches 1,64,1024]
                    [--min-time S] [--reps R] [--node node] [--keep DIR]
Exit status: 0 done, 1 failure (export, parity, runtime), 3 onnxruntime-node
or node is not available (the message says which).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402
import peer_torch  # noqa: E402

ORT_RUN = os.path.join(pc.HERE, "ort_run.js")
ORT_PACKAGE = os.path.join(pc.HERE, "node_modules", "onnxruntime-node")
EXIT_UNAVAILABLE = 3
OPSET = 14
TOLERANCE = 1e-4


def unavailable_reason(node="node"):
    """None when node and onnxruntime-node are usable, else why not."""
    if shutil.which(node) is None:
        return "node (%s) is not on PATH" % node
    if not os.path.isfile(os.path.join(ORT_PACKAGE, "package.json")):
        return ("onnxruntime-node is not installed in %s (cd tools/peers && npm install "
                "--ignore-scripts)" % os.path.dirname(ORT_PACKAGE))
    return None


def export(loaded, path):
    """Writes the generator as ONNX (opset 14, batch dimension dynamic)."""
    cfg = loaded.model.config
    gen = peer_torch.TensorGenerator(loaded.model)
    names = pc.input_names(cfg)
    example = peer_torch.tensors_of(pc.make_item_arrays(cfg, 2, 1), cfg)
    axes = {n: {0: "batch"} for n in names}
    axes["next_user"] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")   # tracer warnings about shapes used as constants
        torch.onnx.export(gen, tuple(example), path, input_names=names,
                          output_names=["next_user"], dynamic_axes=axes, opset_version=OPSET,
                          do_constant_folding=True)


def write_array(directory, name, arr):
    fname = name + ".bin"
    np.ascontiguousarray(arr).tofile(os.path.join(directory, fname))
    return {"file": fname, "dtype": "int64" if arr.dtype == np.int64 else "float32",
            "shape": list(arr.shape)}


def prepare_job(loaded, work, threads, batches, reps, timing, seed, n_users=None, tag="job"):
    """Exports the model (once per work dir), writes every batch's inputs and
    PyTorch's outputs (the parity reference), returns the job file path for
    ort_run.js.  n_users: None, every item max_users users (the benchmark);
    -1, 0..max_users drawn per item (the parity check of padding and masks)."""
    cfg = loaded.model.config
    if not os.path.exists(os.path.join(work, "generator.onnx")):
        export(loaded, os.path.join(work, "generator.onnx"))
    gen = peer_torch.TensorGenerator(loaded.model)
    runs = []
    for b in batches:
        arrays = pc.make_item_arrays(cfg, b, seed, n_users=n_users)
        inputs = {n: write_array(work, "%s_B%d_%s" % (tag, b, n), arrays[n])
                  for n in pc.input_names(cfg)}
        with torch.no_grad():
            want = gen(*peer_torch.tensors_of(arrays, cfg)).numpy()
        expected = write_array(work, "%s_B%d_expected" % (tag, b), want)
        for t in threads:
            runs.append({"threads": t, "batch": b, "inputs": inputs, "expected": expected,
                         "tolerance": TOLERANCE, "reps": reps, **timing})
    job = os.path.join(work, tag + ".json")
    with open(job, "w") as f:
        json.dump({"model": "generator.onnx", "runs": runs}, f, indent=1)
    return job


def run_node(node, job):
    """Runs ort_run.js on a job; returns its result (None on failure, said)."""
    r = subprocess.run([node, ORT_RUN, job], capture_output=True, text=True)
    if r.returncode != 0:
        print("peer_onnx: ort_run.js failed (exit %d):\n%s" % (r.returncode, r.stderr),
              file=sys.stderr)
        return None
    return json.loads(r.stdout)


def check_parity(loaded, work, node="node", batch=16, seed=5):
    """ONNX Runtime vs PyTorch on items with 0..max_users users (padding and
    masks exercised), one thread; returns the max |diff| (None on failure:
    ort_run.js exits 1 when it exceeds TOLERANCE)."""
    job = prepare_job(loaded, work, [1], [batch], 1,
                      {"min_time": 0.0, "min_iters": 1, "max_time": 1.0}, seed, n_users=-1,
                      tag="check")
    res = run_node(node, job)
    return None if res is None else res["runs"][0]["max_abs_diff"]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="nextuser model directory (the weights)")
    ap.add_argument("--json", required=True, help="result file to write")
    ap.add_argument("--shape", default="base", choices=sorted(pc.SHAPES),
                    help="shape name in the workload names (default base)")
    ap.add_argument("--threads", default="1,2", help="intraOpNumThreads values (default 1,2)")
    ap.add_argument("--batches", default="1,64,1024", help="batch sizes (default 1,64,1024)")
    pc.add_timing_options(ap)
    ap.add_argument("--seed", type=int, default=7, help="seed of the synthetic items (7)")
    ap.add_argument("--node", default="node", help="node executable (default: node on PATH)")
    ap.add_argument("--check", action="store_true",
                    help="first compare ONNX Runtime with PyTorch on items of 0..max_users users "
                         "(the padding and masks), failing beyond 1e-4")
    ap.add_argument("--keep", help="write the ONNX model and inputs here (kept) instead of a "
                                   "temporary directory")
    a = ap.parse_args(argv)
    threads = pc.parse_int_list(a.threads, "--threads")
    batches = pc.parse_int_list(a.batches, "--batches")
    pc.check_timing_options(ap, a)
    why = unavailable_reason(a.node)
    if why:
        print("peer_onnx: ONNX Runtime peer unavailable: %s" % why, file=sys.stderr)
        return EXIT_UNAVAILABLE
    try:
        loaded = peer_torch.load_model(a.model)
    except (ValueError, OSError) as e:
        print("peer_onnx: %s" % e, file=sys.stderr)
        return 1
    cfg = loaded.model.config
    work = a.keep or tempfile.mkdtemp(prefix="nu_onnx_")
    os.makedirs(work, exist_ok=True)
    try:
        if a.check:
            diff = check_parity(loaded, work, a.node)
            if diff is None:
                return 1
            pc.progress("peer_onnx: ONNX Runtime vs PyTorch on items of 0..%d users: max |diff| "
                        "%.2g" % (cfg["max_users"], diff))
        job = prepare_job(loaded, work, threads, batches, a.reps, pc.timing_of(a), a.seed)
        res = run_node(a.node, job)
        if res is None:
            return 1
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    flops = pc.infer_flops_per_item(cfg)
    entries = []
    for run in res["runs"]:
        name = "infer/%s/B%d/threads:%d" % (a.shape, run["batch"], run["threads"])
        e = pc.rate_entry(name, run["threads"], run["latencies_s"], run["batch"],
                          "items_per_second", {"max_abs_diff_vs_pytorch": run["max_abs_diff"]})
        e["gflops"] = e["items_per_second"] * flops / 1e9
        entries.append(e)
        pc.progress("onnxruntime %s: %.0f items/s, p50 %.3f ms (|diff| vs PyTorch %.1e)"
                    % (name, e["items_per_second"], e["p50_ms"], run["max_abs_diff"]))
    ctx = pc.context("onnxruntime", res["version"])
    ctx["peer_notes"] = ("onnxruntime-node %s CPU, torch.onnx.export opset %d of the reference "
                         "generator (fixed 50 user slots + mask), intraOpNumThreads = threads, "
                         "interOpNumThreads 1, sequential, graph optimisation all"
                         % (res["version"], OPSET))
    ctx["environment"] = ("onnxruntime-node %s: its own MLAS kernels, their ISA chosen at run "
                          "time (no BLAS library)" % res["version"])
    pc.write_result(a.json, ctx, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
