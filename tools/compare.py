#!/usr/bin/python3
"""Ours against the peers, interleaved in one run: `nextuser bench` and the
PyTorch, ONNX Runtime and FAISS runners of tools/peers/ on the same shapes,
weights, tables and thread counts; for each of --reps rounds it runs ours,
then PyTorch, then ONNX Runtime, then FAISS (each writing the result schema of
docs/bench.md), takes per workload the median of every figure across the
rounds, and writes a Markdown report (machine, date, the exact command, a
side-by-side table per workload with the command behind each figure) and a
JSON file holding every tool's medians and the ratios.

Ours is measured by `nextuser bench` when the binary has it; with
--ours cli (or automatically when bench says "not built yet") by the older
commands instead: embed (infer; no per-batch latency), search --table copy
(retrieve), retrieve --table copy (serve offline) and train --max-steps
(train; the time of 1+S steps minus that of 1 step, over S).

Shapes, per workload (full run; --quick in brackets):
  infer     base model, 10k users (the weights of `nextuser synth --users 10000
            --seed SEED`, which are bench's), items of 50 users, B 1,64,1024 [1,64]
  retrieve  fp32 tables of `nextuser synth --users U`, U 100k,1M [100k],
            B 1,16,256, K 100
  train     B 256, 50 users + the next, M 1024 negatives, 4 exposed per position
  serve     offline, generator + fp32 scoring over the table of 1M [100k] users,
            batches of 64 (bench's offline batch)

usage: compare.py --nextuser build/nextuser [--threads 1,2] [--quick] [--reps R]
                  [--md results/compare.md] [--json results/compare.json]
Run with /usr/bin/python3 (torch, numpy, faiss).  Full run about 10 minutes on
2 cores, --quick about 2.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
sys.path.insert(0, PEERS)
import peer_common as pc  # noqa: E402

PY = sys.executable or "/usr/bin/python3"


def _rel(path):
    """Path relative to the current directory when below it (shorter commands)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel
TOOLS = ("nextuser", "pytorch", "onnxruntime", "faiss")
RATE_KEYS = ("items_per_second", "queries_per_second")
INFER_USERS = 10000      # users of bench's infer model (app/bench/workload_infer.c)
TRAIN_USERS = 20000      # users of bench's training data (app/bench/workload_train.c)
SERVE_BATCH = 64         # bench's offline batch (--batch)


class Plan:
    """What one run measures, derived from the options."""

    def __init__(self, a):
        self.quick = a.quick
        self.threads = pc.parse_int_list(a.threads, "--threads")
        self.shape = a.shape
        self.suites = [s for s in a.suites.split(",") if s]
        for s in self.suites:
            if s not in ("infer", "retrieve", "train", "serve"):
                raise SystemExit("error: --suites: unknown suite %r" % s)
        self.infer_batches = [1, 64] if a.quick else [1, 64, 1024]
        self.users = [100000] if a.quick else [100000, 1000000]
        self.retrieve_batches = [1, 16, 256]
        self.serve_users = 100000 if a.quick else 1000000
        self.min_time = 0.25 if a.quick else 0.4
        self.max_time = 1.0 if a.quick else 2.0
        self.reps = a.reps if a.reps else (2 if a.quick else 3)
        self.seed = a.seed


def run(cmd, log, what, env=None, ok=(0,)):
    """Runs cmd, logging it; returns (returncode, seconds, stderr)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    log.append({"what": what, "command": shlex.join(cmd), "seconds": round(dt, 2),
                "rc": r.returncode})
    if r.returncode not in ok:
        sys.stderr.write("compare: %s failed (exit %d): %s\n%s\n"
                         % (what, r.returncode, shlex.join(cmd), r.stderr[-3000:]))
    return r.returncode, dt, r.stderr + r.stdout


# ----------------------------------------------------------------------------
# Inputs: model directories and tables, made once by our CLI
# ----------------------------------------------------------------------------

SETUP = []   # the commands that make the inputs (listed in the report even when cached)


def synth(exe, work, users, shape, seed, log):
    """A model dir of `shape` with `users` users and its fp32 table (cached)."""
    out = os.path.join(work, "synth-%s-%s-s%d" % (shape, pc.users_label(users), seed))
    cmd = [exe, "synth", "--users", str(users), "--dim", str(pc.SHAPES[shape]["d"]), "--out", out,
           "--seed", str(seed), "--dtypes", "fp32"]
    if shape != "base":
        path = os.path.join(work, "%s.json" % shape)
        cmd += ["--config", path]
    if shlex.join(cmd) not in SETUP:
        SETUP.append(shlex.join(cmd))
    if os.path.exists(os.path.join(out, "user_table.safetensors")):
        return out
    if shape != "base":
        with open(path, "w") as f:
            json.dump(pc.shape_config(shape, users), f)
    rc, _, err = run(cmd, log, "synth %s" % out)
    if rc != 0:
        raise SystemExit("compare: cannot make the model %s:\n%s" % (out, err))
    return out


# ----------------------------------------------------------------------------
# Ours
# ----------------------------------------------------------------------------

def bench_available(exe):
    r = subprocess.run([exe, "bench", "--help"], capture_output=True, text=True)
    return r.returncode == 0 and "not built yet" not in (r.stdout + r.stderr)


def ours_bench(exe, plan, out_json, log):
    """`nextuser bench` over the suites; returns its result document."""
    lst = lambda xs: ",".join(map(str, xs))  # noqa: E731
    cmd = [exe, "bench", "--suite", ",".join(plan.suites), "--shape", plan.shape,
           "--threads", lst(plan.threads), "--json", out_json]
    if plan.quick:
        cmd.append("--quick")
    # The peers' shapes; only fp32 tables (the peers have no bf16/int8), and
    # shorter server sweeps in a full run (the peers have no server scenario).
    if "infer" in plan.suites:
        # bf16 rows too (skipped, saying so, without AVX512_BF16): compared
        # with the peers' fp32 in rows of their own, named .../gen:bf16/...
        cmd += ["--infer-batches", lst(plan.infer_batches), "--gen-dtypes", "fp32,bf16"]
    if "retrieve" in plan.suites:
        cmd += ["--users", lst(pc.users_label(u) for u in plan.users), "--dtypes", "fp32",
                "--retrieve-batches", lst(plan.retrieve_batches)]
    if "serve" in plan.suites:
        cmd += ["--serve-users", pc.users_label(plan.serve_users), "--serve-dtype", "fp32",
                "--batch", str(SERVE_BATCH)]
        if not plan.quick:
            cmd += ["--rate-seconds", "1"]
    if not plan.quick:
        cmd += ["--reps", "3"]     # x the rounds: enough samples for medians
    cmd += ["--seed", str(plan.seed)]
    rc, _, err = run(cmd, log, "nextuser bench")
    if rc != 0:
        return None
    with open(out_json) as f:
        return json.load(f)


def _items_file(path, cfg, count, seed):
    """The peers' synthetic items as an items file for `nextuser embed/retrieve`."""
    arr = pc.make_item_arrays(cfg, count, seed)
    with open(path, "w") as f:
        for i in range(count):
            feats = {}
            for fld in cfg["prefix_fields"]:
                x = arr["f_" + fld["name"]][i]
                if fld["kind"] == "categorical":
                    feats[fld["name"]] = "v%d" % x
                elif fld["kind"] == "multi":
                    m = arr["f_" + fld["name"] + "_mask"][i]
                    feats[fld["name"]] = ["v%d" % v for v, on in zip(x, m) if on > 0]
                else:
                    feats[fld["name"]] = [float(v) for v in x]
            users = ["u%d" % u for u in arr["users"][i][:arr["n_users"][i]]]
            f.write(json.dumps({"id": "i%d" % i, "features": feats, "users": users}) + "\n")


def ours_cli(exe, plan, inputs, work, log):
    """Ours through the older CLI commands (before `nextuser bench`)."""
    entries = []
    tmp = os.path.join(work, "cli")
    os.makedirs(tmp, exist_ok=True)
    if "infer" in plan.suites:
        cfg = pc.shape_config(plan.shape, INFER_USERS)
        for b in plan.infer_batches:
            items = os.path.join(tmp, "items-B%d.jsonl" % b)
            count = max(8 * b, 256) if b > 1 else 256
            if not os.path.exists(items):
                _items_file(items, cfg, count, plan.seed)
            for t in plan.threads:
                cmd = [exe, "embed", "--model", inputs["infer"], "--items", items, "--out",
                       os.path.join(tmp, "emb.tsv"), "--threads", str(t), "--batch", str(b)]
                rc, _, err = run(cmd, log, "ours infer")
                m = re.search(r"([0-9.]+) items/s", err)
                if rc == 0 and m:
                    entries.append(_entry("infer/%s/B%d/threads:%d" % (plan.shape, b, t), t,
                                          {"items_per_second": float(m.group(1))}, cmd))
    if "retrieve" in plan.suites:
        rng_cfg = {"d": 64}
        for u in plan.users:
            model = inputs["retrieve"][u]
            for b in plan.retrieve_batches:
                q = os.path.join(tmp, "queries-B%d.tsv" % b)
                if not os.path.exists(q):
                    _queries_file(q, rng_cfg["d"], max(4 * b, 32 if u > 100000 else 128))
                for t in plan.threads:
                    cmd = [exe, "search", "--model", model, "--queries", q, "--out",
                           os.path.join(tmp, "top.csv"), "--batch", str(b), "--threads", str(t),
                           "--table", "copy"]
                    rc, _, err = run(cmd, log, "ours retrieve")
                    m = re.search(r"\(([0-9.]+) queries/s\).*p50 ([0-9.]+) ms, p99 ([0-9.]+) ms", err)
                    if rc == 0 and m:
                        entries.append(_entry(
                            "retrieve/fp32/U%s/B%d/threads:%d" % (pc.users_label(u), b, t), t,
                            {"queries_per_second": float(m.group(1)),
                             "p50_ms": float(m.group(2)), "p99_ms": float(m.group(3))}, cmd))
    if "serve" in plan.suites:
        cfg = pc.shape_config(plan.shape, plan.serve_users)
        items = os.path.join(tmp, "serve-items.jsonl")
        if not os.path.exists(items):
            _items_file(items, cfg, 4 * SERVE_BATCH, plan.seed)
        for t in plan.threads:
            cmd = [exe, "retrieve", "--model", inputs["serve"], "--items", items, "--out",
                   os.path.join(tmp, "serve.csv"), "--batch", str(SERVE_BATCH), "--threads",
                   str(t), "--table", "copy"]
            rc, _, err = run(cmd, log, "ours serve")
            m = re.search(r"([0-9.]+) items/s", err)
            lat = re.search(r"p50 ([0-9.]+) ms, p99 ([0-9.]+) ms", err)
            if rc == 0 and m:
                c = {"items_per_second": float(m.group(1))}
                if lat:
                    c.update(p50_ms=float(lat.group(1)), p99_ms=float(lat.group(2)))
                entries.append(_entry("serve/%s/fp32/U%s/offline/threads:%d"
                                      % (plan.shape, pc.users_label(plan.serve_users), t), t, c,
                                      cmd))
    if "train" in plan.suites:
        data = os.path.join(work, "train-data")
        cmd = [exe, "synth-data", "--users", str(TRAIN_USERS), "--items", "400", "--pos-mean",
               "150", "--seed", "5", "--out", data]
        if shlex.join(cmd) not in SETUP:
            SETUP.append(shlex.join(cmd))
        if not os.path.exists(os.path.join(data, "data.json")):
            run(cmd, log, "synth-data")
        steps = 2 if plan.quick else 4
        for t in plan.threads:
            secs = []
            for n in (1, 1 + steps):
                # --windows all: ~25k full windows (the disjoint default has
                # ~900, 3.5 batches: the last, short one would be timed too)
                cmd = [exe, "train", "--data", data, "--out", os.path.join(tmp, "m%d" % n),
                       "--batch", "256", "--negatives", "1024", "--threads", str(t),
                       "--max-steps", str(n), "--seed", "3", "--windows", "all"]
                rc, _, err = run(cmd, log, "ours train")
                m = re.search(r"steps \(.*\) in ([0-9.]+) s", err)
                secs.append(float(m.group(1)) if rc == 0 and m else None)
            if None not in secs and secs[1] > secs[0]:
                step = (secs[1] - secs[0]) / steps
                entries.append(_entry("train/%s/B256/threads:%d" % (plan.shape, t), t,
                                      {"items_per_second": 256 / step}, cmd, step * 1e3))
    return {"context": {"tool": "nextuser", "tool_version": "cli", "command":
                        "(per row: the CLI commands below)"}, "benchmarks": entries}


def _queries_file(path, d, n):
    import numpy as np
    rng = np.random.default_rng(11)
    q = rng.standard_normal((n, d)).astype(np.float32)
    with open(path, "w") as f:
        for i, v in enumerate(q):
            f.write("q%d\t%s\n" % (i, " ".join("%.9g" % x for x in v)))


def _entry(name, threads, counters, cmd, real_ms=None):
    e = {"name": name, "run_name": name, "run_type": "aggregate", "aggregate_name": "median",
         "aggregate_unit": "time", "repetitions": 1, "repetition_index": 0, "threads": threads,
         "iterations": 1, "real_time": real_ms if real_ms else counters.get("p50_ms", 0.0),
         "cpu_time": real_ms if real_ms else counters.get("p50_ms", 0.0), "time_unit": "ms",
         "command": shlex.join(cmd)}
    e.update(counters)
    return e


# ----------------------------------------------------------------------------
# Peers
# ----------------------------------------------------------------------------

def peer_commands(plan, inputs, work, rnd):
    """{tool: [command, ...]} of the peer runners for round `rnd`."""
    thr = ",".join(map(str, plan.threads))
    timing = ["--min-time", str(plan.min_time), "--max-time", str(plan.max_time)]
    common = ["--threads", thr] + timing + ["--seed", str(plan.seed)]
    cmds = {}
    torch_work = [w for w in ("infer", "serve") if w in plan.suites]
    out = lambda tool, part="": os.path.join(work, "%s%s-r%d.json" % (tool, part, rnd))  # noqa: E731
    tc = []
    if torch_work:
        cmd = [PY, _rel(os.path.join(PEERS, "peer_torch.py")), "--model", inputs["infer"], "--json",
               out("pytorch", "-infer"), "--workloads", "infer", "--shape", plan.shape,
               "--batches", ",".join(map(str, plan.infer_batches)), "--check"] + common
        if "infer" in plan.suites:
            tc.append(cmd)
        if "serve" in plan.suites:
            tc.append([PY, _rel(os.path.join(PEERS, "peer_torch.py")), "--model", inputs["serve"],
                       "--json", out("pytorch", "-serve"), "--workloads", "serve", "--shape",
                       plan.shape, "--serve-batch", str(SERVE_BATCH)] + common)
    if "train" in plan.suites:
        tc.append([PY, _rel(os.path.join(PEERS, "peer_torch.py")), "--model", inputs["train"], "--json",
                   out("pytorch", "-train"), "--workloads", "train", "--shape", plan.shape,
                   "--threads", thr, "--min-time", "0", "--min-iters", "1" if plan.quick else "3",
                   "--max-time", str(2 * plan.max_time),
                   "--seed", str(plan.seed)])
    if tc:
        cmds["pytorch"] = tc
    if "infer" in plan.suites:
        cmds["onnxruntime"] = [[PY, _rel(os.path.join(PEERS, "peer_onnx.py")), "--model", inputs["infer"],
                                "--json", out("onnxruntime"), "--shape", plan.shape, "--batches",
                                ",".join(map(str, plan.infer_batches)), "--check"] + common]
    if "retrieve" in plan.suites:
        tables = ",".join(os.path.join(inputs["retrieve"][u], "user_table.safetensors")
                          for u in plan.users)
        cmds["faiss"] = [[PY, _rel(os.path.join(PEERS, "peer_faiss.py")), "--table", tables, "--json",
                          out("faiss"), "--batches", ",".join(map(str, plan.retrieve_batches))]
                         + ["--threads", thr] + timing]
    return cmds


def json_out_of(cmd):
    return cmd[cmd.index("--json") + 1]


# ----------------------------------------------------------------------------
# Medians and the report
# ----------------------------------------------------------------------------

def merge_rounds(docs):
    """Entries of several rounds -> one entry per name, every numeric figure
    the median over the rounds (iterations summed, repetitions = rounds)."""
    by_name, order = {}, []
    for doc in docs:
        for e in doc.get("benchmarks", []):
            if e.get("run_type") == "aggregate" and e.get("aggregate_name") not in (None, "median"):
                continue
            if e["name"] not in by_name:
                by_name[e["name"]] = []
                order.append(e["name"])
            by_name[e["name"]].append(e)
    out = []
    for name in order:
        es = by_name[name]
        m = dict(es[0])
        for key, v in es[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and key not in (
                    "threads", "repetition_index"):
                vals = [e[key] for e in es if isinstance(e.get(key), (int, float))]
                m[key] = statistics.median(vals) if vals else v
        m["iterations"] = sum(int(e.get("iterations", 0)) for e in es)
        m["repetitions"] = len(es)
        m["rounds"] = {k: [e.get(k) for e in es] for k in RATE_KEYS if k in es[0]}
        out.append(m)
    return out


def fmt(v, digits=None):
    if v is None:
        return "n/a"
    if digits is not None:
        return "%.*f" % (digits, v)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%.3f" % v


# A peer below these fractions of the machine's measured peak (FMA for the
# compute-bound rows, read bandwidth for B = 1 scans) runs far below what its
# BLAS or kernels reach on these sizes: its time goes elsewhere (interpreter,
# small operators, copies), and a ratio against it flatters ours.
FAR_BELOW = {"FMA": 0.05, "BW": 0.25}


def _fractions(name, o, e, key, ctx):
    """(kind, ours' fraction of the peak, the peer's at the same work per
    unit): the work per item or query and the peaks come from ours' bench
    run (same machine, same run); None where ours has no such figures."""
    t = re.search(r"threads:(\d+)", name)
    if not o or not o.get(key) or not t:
        return None, None, None
    bw = "frac_bw" in o and "/B1/" in name
    peaks = ctx.get("read_gbps" if bw else "peak_fma_gflops") or {}
    peak = peaks.get(t.group(1)) if isinstance(peaks, dict) else None
    done = o.get("gbps" if bw else "gflops")
    if not peak or not done:
        return None, None, None
    ours = o["frac_bw"] if bw else done / peak
    theirs = e[key] * (done / o[key]) / peak if e.get(key) else None
    return ("BW" if bw else "FMA"), ours, theirs


def comparisons(ours, peers, ctx=None):
    """Rows (workload, peer, figures, ratio ours/peer, fractions of the
    machine's peak) for every workload a peer ran that ours ran too."""
    ctx = ctx or {}
    ours_by = {e["name"]: e for e in ours}
    rows = []
    pairs = []
    for tool in TOOLS[1:]:
        for e in peers.get(tool, []):
            pairs.append((tool, e, e["name"]))
            # Ours with the bf16 generator against the same peer row (fp32).
            bf16 = e["name"].replace("/threads:", "/gen:bf16/threads:")
            if e["name"].startswith("infer/") and bf16 in ours_by:
                pairs.append((tool, e, bf16))
    for tool, e, ours_name in pairs:
        o = ours_by.get(ours_name)
        key = next((k for k in RATE_KEYS if k in e), None)
        if key is None:
            continue
        r = {"workload": ours_name, "peer": tool, "peer_workload": e["name"], "unit": key,
             "ours": o.get(key) if o else None, "theirs": e.get(key),
             "ours_p50_ms": o.get("p50_ms") if o else None, "theirs_p50_ms": e.get("p50_ms"),
             "ours_p99_ms": o.get("p99_ms") if o else None, "theirs_p99_ms": e.get("p99_ms"),
             "ratio": (o[key] / e[key]) if o and o.get(key) and e.get(key) else None,
             "ours_rounds": o.get("rounds", {}).get(key) if o else None,
             "theirs_rounds": e.get("rounds", {}).get(key)}
        kind, of, tf = _fractions(ours_name, o, e, key, ctx)
        r.update({"peak_kind": kind, "ours_frac": of, "theirs_frac": tf,
                  "peer_far_below": bool(kind and tf is not None and tf < FAR_BELOW[kind])})
        rows.append(r)
    order = {"infer": 0, "retrieve": 1, "train": 2, "serve": 3}
    # A bf16 generator row follows its fp32 row, peer by peer.
    rows.sort(key=lambda r: (order.get(r["workload"].split("/")[0], 9),
                             _name_key(r["peer_workload"]), TOOLS.index(r["peer"]),
                             "/gen:bf16/" in r["workload"]))
    return rows


def _name_key(name):
    parts = []
    for p in name.split("/"):
        m = re.match(r"([A-Za-z:]*)(\d+)([kM]?)$", p)
        if m:
            scale = {"k": 1e3, "M": 1e6}.get(m.group(3), 1)
            parts.append((m.group(1), float(m.group(2)) * scale))
        else:
            parts.append((p, 0))
    return parts


def write_md(path, meta, rows, cmd_ids, ours_doc):
    ctx = ours_doc.get("context", {})
    lines = ["# nextuser against PyTorch, ONNX Runtime and FAISS", ""]
    lines += ["Generated by `tools/compare.py`; every figure is the median over %d interleaved "
              "rounds (ours, PyTorch, ONNX Runtime, FAISS, then again) in one run on one machine. "
              "Ratios are ours / peer throughput (above 1: ours is faster); latencies are per batch "
              "(per training step for train). The machine is shared and noisy: absolute figures "
              "drift between runs, same-run ratios much less." % meta["reps"], ""]
    lines += ["- machine: %s, %d CPUs (%s)" % (meta["machine"], meta["num_cpus"], meta["host"]),
              "- date: %s; wall time of the run: %.0f s; load average (1 min) %s at the start, "
              "%s at the end (other work shares these cores: above ~1 the threads:2 rows "
              "especially are disturbed)" % (meta["date"], meta["seconds"], meta["load"][0],
                                            meta["load"][1]),
              "- command: `%s`" % meta["command"],
              "- ours: %s%s" % (meta["ours_mode"],
                                (", isa %s; its measured FMA peak %s GFLOP/s, read bandwidth %s GB/s"
                                 % (ctx.get("isa", "?"), _per_thread(ctx.get("peak_fma_gflops")),
                                    _per_thread(ctx.get("read_gbps"))))
                                if meta["ours_mode"] == "nextuser bench" else ""),
              "- peers: %s" % ", ".join("%s %s" % (t, v) for t, v in meta["versions"].items()),
              ""]
    if meta.get("environments"):
        lines += ["Each peer's environment, as it reported it (the BLAS-like libraries it "
                  "loaded, the ISA its kernels use, the environment's OpenBLAS settings: "
                  "`OPENBLAS_CORETYPE` picks OpenBLAS's kernels whatever the CPU):", ""]
        lines += ["- %s: %s" % (t, v) for t, v in meta["environments"].items()]
        lines += ["", "The anchors: ratios against a peer are worth what the peer is. Every row "
                  "gives ours and the peer as fractions of this machine's peak measured in the "
                  "same run (FMA for compute, read bandwidth for B = 1 scans; the peer's at "
                  "ours' work per item); a peer below %d%% of the FMA peak or %d%% of the read "
                  "bandwidth is marked *far below*: it runs far below what its own BLAS or "
                  "kernels reach on these sizes, and its ratio flatters ours. PyTorch 1.13 "
                  "(Debian) runs about 3x slower on this Zen 5 machine than it did on Zen 4 "
                  "(softmax, GELU and copies dominate its profile), so quote ONNX Runtime, FAISS "
                  "and the fractions of peak, not the PyTorch ratios."
                  % (round(100 * FAR_BELOW["FMA"]), round(100 * FAR_BELOW["BW"])), ""]
    for f in meta["failed"]:
        lines += ["**FAILED: %s** (its figures are missing below)" % f, ""]
    for tool, why in meta["skipped"].items():
        lines += ["**%s skipped: %s**" % (tool, why), ""]
    lines += ["How each side is measured:", "",
              "- **infer**: ours runs whole batches on each of T threads (T batches in flight); "
              "PyTorch (eager, `torch.set_num_threads(T)`, a fresh process per thread count: its "
              "OpenMP pool, once shrunk to 1 thread, runs 2 threads 20-50x slower in the same "
              "process) and ONNX Runtime (`intraOpNumThreads` T) run one batch at a time on T "
              "threads. Same weights (`nextuser synth --users 10000 "
              "--seed %d` is bench's infer model), items of 50 users and 4 prefix fields. The peers "
              "pad every item to 50 user slots with a mask (no padding is computed here: every item "
              "has 50 users). ONNX Runtime's output is checked against PyTorch (max |diff| <= 1e-4) "
              "before timing. Rows named `.../gen:bf16/...` are ours with the bf16 generator "
              "(`--gen-dtype bf16`: bf16 weights, fp32 sums; outputs within 1%% of fp32, "
              "docs/encodings.md) against the same peer figures in fp32 (the peers have no bf16 "
              "mode on this CPU); their fraction of peak is against the fp32 FMA peak, which bf16 "
              "dot products can exceed up to 2x." % meta["seed"],
              "- **retrieve**: ours scans its fp32 table in private memory; FAISS `IndexFlatIP` "
              "(exact) over the same fp32 table (`nextuser synth --users U`, L2-normalised), K 100, "
              "`faiss.omp_set_num_threads(T)`.",
              "- **train**: one step of the three-term loss, B 256 windows of 50 users + the next, "
              "M 1024 shared negatives, 4 exposed per position. Ours: lazy Adam through the trainer; "
              "PyTorch: autograd + dense `torch.optim.Adam` (every parameter, incl. the 20k-row user "
              "table).",
              "- **threads:2 on this shared machine**: when other work keeps the load average "
              "above 1, a 2-thread team shares its 2 cores with another process. PyTorch and "
              "ONNX Runtime meet at a barrier after every operator (dozens per forward), so each "
              "forward waits for whichever thread the scheduler has parked: their threads:2 rows "
              "can be a few times to ~100x slower than in a quiet moment (see the per-round figures "
              "at the end). "
              "Ours' infer runs whole batches per thread with no per-operator barrier, and suffers "
              "far less. The threads:1 rows compare the implementations; the threads:2 rows show "
              "their behaviour on a busy machine.",
              "- **serve** (offline): generator + fp32 scoring + top-100 for batches of %d items "
              "over the %s-user table; PyTorch: the generator then `torch.topk(q @ table.T)` on T "
              "threads; ours: one batch at a time too, split over the T threads." % (SERVE_BATCH, meta["serve_users"]), ""]
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["workload"].split("/")[0], []).append(r)
    for kind, krows in by_kind.items():
        unit = "queries/s" if krows[0]["unit"] == "queries_per_second" else "items/s"
        lines += ["## %s" % kind, "",
                  "| workload | peer | ours %s | peer %s | **ratio** | ours / peer of peak | "
                  "ours p50 / p99 ms | peer p50 / p99 ms | commands |" % (unit, unit),
                  "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in krows:
            lines.append("| %s | %s | %s | %s | **%s** | %s | %s / %s | %s / %s | %s, %s |" % (
                r["workload"], r["peer"], fmt(r["ours"]), fmt(r["theirs"]),
                ("%.2fx" % r["ratio"]) if r["ratio"] else "n/a", _peak_cell(r),
                fmt(r["ours_p50_ms"]), fmt(r["ours_p99_ms"]), fmt(r["theirs_p50_ms"]),
                fmt(r["theirs_p99_ms"]), cmd_ids.get(("nextuser", r["workload"]), "?"),
                cmd_ids.get((r["peer"], r.get("peer_workload", r["workload"])), "?")))
        lines.append("")
    lines += ["## Commands", "",
              "Each row's figures come from these commands, run in every round (rN in a file name "
              "is the round). $WORK is the work directory, prepared with:", ""]
    lines += ["- `%s`" % c for c in meta["setup"]]
    lines += [""]
    seen = set()
    for (tool, _), cid in sorted(cmd_ids.items(), key=lambda kv: kv[1]):
        if cid in seen:
            continue
        seen.add(cid)
        lines.append("- %s: `%s`" % (cid, meta["commands"][cid]))
    lines += ["", "Per-round throughput (ours | peer), to judge the spread:", ""]
    for r in rows:
        lines.append("- %s vs %s: %s | %s" % (
            r["workload"], r["peer"],
            ", ".join(fmt(x) for x in (r["ours_rounds"] or [])) or "n/a",
            ", ".join(fmt(x) for x in (r["theirs_rounds"] or []))))
    lines.append("")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nextuser", required=True, help="the nextuser executable (build/nextuser)")
    ap.add_argument("--threads", default="1,2", help="thread counts for every tool (default 1,2)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller shapes and shorter runs (about 2 minutes)")
    ap.add_argument("--reps", type=int, default=0,
                    help="interleaved rounds (default 3, --quick 2)")
    ap.add_argument("--suites", default="infer,retrieve,train,serve",
                    help="workloads to compare (default all four)")
    ap.add_argument("--shape", default="base", choices=sorted(pc.SHAPES),
                    help="model shape for infer, train and serve (default base)")
    ap.add_argument("--peers", default="pytorch,onnxruntime,faiss",
                    help="peers to run (default all three)")
    ap.add_argument("--ours", default="auto", choices=("auto", "bench", "cli"),
                    help="how ours is measured: nextuser bench, the older CLI commands, or "
                         "auto (bench when built; default)")
    ap.add_argument("--seed", type=int, default=1,
                    help="model seed (bench's default weights) and item seed (default 1)")
    ap.add_argument("--workdir", help="models, tables and per-round results (kept; reused)")
    ap.add_argument("--md", help="Markdown report to write (e.g. results/compare.md)")
    ap.add_argument("--json", help="JSON file to write (e.g. results/compare.json)")
    a = ap.parse_args(argv)
    if a.reps < 0:
        ap.error("--reps must be >= 1")
    plan = Plan(a)
    peers = [p for p in a.peers.split(",") if p]
    for p in peers:
        if p not in TOOLS[1:]:
            ap.error("--peers: unknown peer %r (%s)" % (p, ", ".join(TOOLS[1:])))
    exe = os.path.abspath(a.nextuser)
    if not os.access(exe, os.X_OK):
        ap.error("--nextuser: %s is not an executable" % a.nextuser)
    mode = a.ours
    if mode == "auto":
        mode = "bench" if bench_available(exe) else "cli"
    elif mode == "bench" and not bench_available(exe):
        print("compare: %s has no working `bench` command" % exe, file=sys.stderr)
        return 1
    work = a.workdir or tempfile.mkdtemp(prefix="nu_compare_")
    os.makedirs(work, exist_ok=True)
    t_start = time.perf_counter()
    load_start = _loadavg()
    log = []
    pc.progress("compare: ours via %s; preparing models in %s" % (
        "nextuser bench" if mode == "bench" else "the CLI commands", work))
    inputs = {"infer": synth(exe, work, INFER_USERS, plan.shape, plan.seed, log)}
    if "train" in plan.suites:
        inputs["train"] = synth(exe, work, TRAIN_USERS, plan.shape, plan.seed, log)
    if "serve" in plan.suites:
        inputs["serve"] = synth(exe, work, plan.serve_users, plan.shape, plan.seed, log)
    if "retrieve" in plan.suites:
        inputs["retrieve"] = {u: synth(exe, work, u, "base", plan.seed, log) for u in plan.users}

    docs = {t: [] for t in TOOLS}
    commands = {t: [] for t in TOOLS}
    versions = {}
    environments = {}
    skipped = {}
    for rnd in range(plan.reps):
        pc.progress("compare: round %d/%d: nextuser" % (rnd + 1, plan.reps))
        if mode == "bench":
            out = os.path.join(work, "nextuser-r%d.json" % rnd)
            doc = ours_bench(exe, plan, out, log)
            commands["nextuser"] = [log[-1]["command"]]
        else:
            n0 = len(log)
            doc = ours_cli(exe, plan, inputs, work, log)
            commands["nextuser"] = [e["command"] for e in log[n0:]]
        if doc:
            docs["nextuser"].append(doc)
        for tool, cmds in peer_commands(plan, inputs, work, rnd).items():
            if tool not in peers or tool in skipped:
                continue
            commands[tool] = cmds
            for cmd in cmds:
                pc.progress("compare: round %d/%d: %s (%s)" % (
                    rnd + 1, plan.reps, tool, os.path.basename(json_out_of(cmd))))
                rc, _, err = run(cmd, log, tool, ok=(0, 3))
                if rc == 3:
                    skipped[tool] = err.strip().splitlines()[-1] if err.strip() else "unavailable"
                    pc.progress("compare: skipping %s: %s" % (tool, skipped[tool]))
                    break
                if rc == 0:
                    with open(json_out_of(cmd)) as f:
                        d = json.load(f)
                    versions[tool] = d["context"].get("tool_version", "?")
                    if d["context"].get("environment"):
                        environments[tool] = d["context"]["environment"]
                    docs[tool].append(d)

    failed = ["%s (exit %d): %s" % (e["what"], e["rc"], e["command"]) for e in log
              if e["rc"] not in (0, 3)]
    medians = {t: merge_rounds(docs[t]) for t in TOOLS}
    ours_ctx = docs["nextuser"][0].get("context", {}) if docs["nextuser"] else {}
    rows = comparisons(medians["nextuser"], {t: medians[t] for t in TOOLS[1:]}, ours_ctx)
    # Command ids: one per tool command; workloads map to the command that wrote them.
    cmd_ids, cmd_text = {}, {}
    labels = {"nextuser": "ours", "pytorch": "torch", "onnxruntime": "ort", "faiss": "faiss"}
    def clean(text):
        text = text.replace(work, "$WORK").replace(PY + " ", "/usr/bin/python3 ")
        text = text.replace(os.getcwd() + "/", "")
        return re.sub(r"-r\d+\.json", "-rN.json", text)

    for tool in TOOLS:
        if tool == "nextuser" and mode == "cli":
            # One command per workload: each entry carries its own.
            cmds = []
            for e in medians[tool]:
                if e.get("command") and e["command"] not in cmds:
                    cmds.append(e["command"])
        else:
            cmds = [c if isinstance(c, str) else shlex.join(c) for c in commands[tool]]
        for i, text in enumerate(cmds):
            cid = "[%s%s]" % (labels[tool], "" if len(cmds) == 1 else i + 1)
            cmd_text[cid] = clean(text)
            for n in _names_of(tool, text, medians[tool], mode):
                cmd_ids.setdefault((tool, n), cid)
    seconds = time.perf_counter() - t_start
    load_end = _loadavg()
    ours_doc = docs["nextuser"][0] if docs["nextuser"] else {}
    meta = {"machine": pc.machine_name(), "num_cpus": os.cpu_count(), "host": os.uname().nodename,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": seconds,
            "command": pc.command_line(sys.argv if argv is None else [sys.argv[0]] + argv),
            "ours_mode": "nextuser bench" if mode == "bench" else "CLI commands (embed, search, "
            "retrieve, train)", "versions": versions, "environments": environments,
            "reps": plan.reps, "seed": plan.seed,
            "serve_users": pc.users_label(plan.serve_users),
            "load": (load_start, load_end),
            "commands": cmd_text, "workdir": work, "skipped": skipped,
            "setup": [clean(c) for c in SETUP], "failed": [clean(f) for f in failed]}
    if a.md:
        write_md(a.md, meta, rows, cmd_ids, ours_doc)
    if a.json:
        doc = {"context": dict(pc.context("compare", "1"), command=meta["command"],
                               ours=meta["ours_mode"], rounds=plan.reps, seconds=round(seconds, 1),
                               skipped=skipped, commands=cmd_text,
                               load_average=list(meta["load"])),
               "tools": {t: {"context": (docs[t][0]["context"] if docs[t] else {}),
                             "benchmarks": medians[t]} for t in TOOLS},
               "comparisons": rows, "log": log}
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, a.json)
    for r in rows:
        print("%-44s %-12s ours %10s  peer %10s  ratio %s" % (
            r["workload"], r["peer"], fmt(r["ours"]), fmt(r["theirs"]),
            ("%.2fx" % r["ratio"]) if r["ratio"] else "n/a"))
    pc.progress("compare: done in %.0f s (work files in %s)" % (seconds, work))
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print("compare: failed: %s" % "; ".join(failed), file=sys.stderr)
        return 1
    return 0


def _peak_cell(r):
    if not r.get("peak_kind"):
        return "n/a"
    cell = "%s / %s %s" % (fmt(r["ours_frac"], 2) if r["ours_frac"] is not None else "?",
                           fmt(r["theirs_frac"], 3) if r["theirs_frac"] is not None else "?",
                           r["peak_kind"])
    return cell + (" *far below*" if r.get("peer_far_below") else "")


def _per_thread(d):
    if not isinstance(d, dict):
        return "?"
    return ", ".join("%.1f (%s thread%s)" % (v, k, "" if k == "1" else "s")
                     for k, v in sorted(d.items(), key=lambda kv: int(kv[0])))


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def _names_of(tool, cmd_text, entries, mode):
    """The workload names a command produced."""
    if tool == "nextuser":
        if mode == "bench":
            return [e["name"] for e in entries]
        return [e["name"] for e in entries if e.get("command") == cmd_text]
    m = re.search(r"--workloads (\S+)", cmd_text)
    kinds = m.group(1).split(",") if m else {"onnxruntime": ["infer"], "faiss": ["retrieve"]}[tool]
    return [e["name"] for e in entries if e["name"].split("/")[0] in kinds]


if __name__ == "__main__":
    sys.exit(main())
