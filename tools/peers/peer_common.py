"""Shared helpers of the peer runners (peer_torch.py, peer_onnx.py, peer_faiss.py)
and tools/compare.py: the result schema of docs/bench.md (Google Benchmark's
JSON with our context keys), batch timing, percentiles, workload names, the
model shapes and the synthetic items the peers feed their generators.

Only the standard library and numpy: the FAISS runner and compare.py import it
without torch.
"""

import datetime
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
REFERENCE_DIR = os.path.join(REPO, "tools", "reference")

# The two model shapes of docs/benchmarks.md.  The prefix fields are those of
# `nextuser synth` (and of the synthetic training data): four prefix tokens.
PREFIX_FIELDS = [{"name": "genres", "kind": "multi", "vocab": 20},
                 {"name": "year", "kind": "categorical", "vocab": 12},
                 {"name": "tags", "kind": "multi", "vocab": 200},
                 {"name": "content", "kind": "dense", "dim": 16}]
SHAPES = {
    "base": {"d": 64, "heads": 4, "enc_layers": 2, "dec_layers": 1, "max_users": 50},
    "large": {"d": 128, "heads": 8, "enc_layers": 4, "dec_layers": 2, "max_users": 50},
}
# Values per multi-valued feature in the synthetic items, and the fixed width
# the tensor inputs pad them to (the ONNX graph needs fixed shapes).
MULTI_COUNTS = {"genres": 2, "tags": 3}
MULTI_WIDTH = 4
K_TOP = 100


def shape_config(shape, num_users):
    """The model config (model-format.md keys) of a named shape."""
    if shape not in SHAPES:
        raise ValueError("unknown shape %r (known: %s)" % (shape, ", ".join(SHAPES)))
    cfg = dict(SHAPES[shape])
    cfg["ffn"] = 4 * cfg["d"]
    cfg["num_users"] = int(num_users)
    cfg["prefix_fields"] = [dict(f) for f in PREFIX_FIELDS]
    return cfg


def users_label(u):
    """100000 -> "100k", 1000000 -> "1M" (the U<u> part of workload names)."""
    u = int(u)
    if u % 1000000 == 0:
        return "%dM" % (u // 1000000)
    if u % 1000 == 0:
        return "%dk" % (u // 1000)
    return str(u)


def parse_int_list(text, what):
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit("error: %s: expected a comma-separated list of integers, got %r"
                         % (what, text))
    if not vals or any(v < 1 for v in vals):
        raise SystemExit("error: %s: every value must be >= 1, got %r" % (what, text))
    return vals


# ----------------------------------------------------------------------------
# Work per item (docs/benchmarks.md "Work per item"): multiply-adds x 2
# ----------------------------------------------------------------------------

def infer_flops_per_item(cfg, n_users=None):
    """FLOPs of useful work of the generator for one item with n_users users
    at inference, counted as `nextuser bench` counts them (app/bench/flops.c)
    so that GFLOP/s compare: the dense prefix projections; per encoder layer
    over T = k + n + 1 tokens QKV, output projection and FFN products plus
    4 d FLOPs per visible (query, key) pair; per decoder layer the K/V
    projection of the T encoder rows and the single query's projections, FFN
    and attention over its T keys.  Masked-out pairs the peers compute anyway
    are not counted.  Layer norms, GELU and softmax are left out.  The base
    shape gives about 13.4 MFLOP (docs/benchmarks.md)."""
    d, ffn = cfg["d"], cfg["ffn"]
    n = cfg["max_users"] if n_users is None else n_users
    k = len(cfg["prefix_fields"])
    t = k + n + (1 if cfg.get("use_cls", True) else 0)
    if cfg.get("attention", "causal") == "bidirectional":
        enc_keys = t * t
    else:   # prefix rows see the prefix, user i sees k + i keys, CLS sees all
        enc_keys = k * k + sum(k + i for i in range(1, n + 1)) + (t if t > k + n else 0)
    dense = sum(2 * f["dim"] * d for f in cfg["prefix_fields"] if f["kind"] == "dense")
    enc = t * 2 * (4 * d * d + 2 * d * ffn) + 4 * d * enc_keys
    dec = t * 2 * 2 * d * d + 2 * (2 * d * d + 2 * d * ffn) + 4 * d * t
    return dense + cfg["enc_layers"] * enc + cfg["dec_layers"] * dec


# ----------------------------------------------------------------------------
# Synthetic items, as arrays (the fixed-shape inputs of the exported graph)
# ----------------------------------------------------------------------------

def make_item_arrays(cfg, batch, seed, n_users=None):
    """`batch` random items for a model config: a dict of numpy arrays,
    the inputs of the tensor-input generator (peer_torch.TensorGenerator):
      users [B, max_users] int64 user rows, oldest first, padded with 0;
      n_users [B] int64 (all max_users unless n_users says otherwise: an int
        for all or None for max_users; -1 draws 0..max_users per item);
      f_<field> [B] int64 (categorical), [B, W] int64 + f_<field>_mask [B, W]
        float32 (multi: the mask marks the values present; an item with no
        value carries index 0 with mask 1, the spec's emb[0]), [B, dim]
        float32 (dense)."""
    rng = np.random.default_rng(seed)
    n_max, num_users = cfg["max_users"], cfg["num_users"]
    if n_users is None:
        ns = np.full(batch, n_max, dtype=np.int64)
    elif n_users < 0:
        ns = rng.integers(0, n_max + 1, size=batch).astype(np.int64)
    else:
        ns = np.full(batch, n_users, dtype=np.int64)
    users = rng.integers(0, num_users, size=(batch, n_max)).astype(np.int64)
    users[np.arange(n_max)[None, :] >= ns[:, None]] = 0
    arrays = {"users": users, "n_users": ns}
    for f in cfg["prefix_fields"]:
        name = "f_" + f["name"]
        if f["kind"] == "categorical":
            arrays[name] = rng.integers(1, f["vocab"], size=batch).astype(np.int64)
        elif f["kind"] == "multi":
            count = MULTI_COUNTS.get(f["name"], 2)
            idx = np.zeros((batch, MULTI_WIDTH), dtype=np.int64)
            idx[:, :count] = rng.integers(1, f["vocab"], size=(batch, count))
            mask = np.zeros((batch, MULTI_WIDTH), dtype=np.float32)
            mask[:, :count] = 1.0
            arrays[name] = idx
            arrays[name + "_mask"] = mask
        else:
            arrays[name] = rng.uniform(-1, 1, size=(batch, f["dim"])).astype(np.float32)
    return arrays


def input_names(cfg):
    """Names of the generator's inputs, in the order of make_item_arrays."""
    names = ["users", "n_users"]
    for f in cfg["prefix_fields"]:
        names.append("f_" + f["name"])
        if f["kind"] == "multi":
            names.append("f_" + f["name"] + "_mask")
    return names


# ----------------------------------------------------------------------------
# Tables written by `nextuser synth` / `nextuser table`
# ----------------------------------------------------------------------------

def read_f32_table(path):
    """The fp32 user table ("f32", L2-normalised rows) of a
    user_table.safetensors file, memory-mapped read-only."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    if "f32" not in header:
        raise ValueError("%s: no f32 tensor (write it with `nextuser table --dtypes fp32`)" % path)
    e = header["f32"]
    return np.memmap(path, dtype="<f4", mode="r", offset=8 + n + e["data_offsets"][0],
                     shape=tuple(e["shape"]))


# ----------------------------------------------------------------------------
# Timing and statistics
# ----------------------------------------------------------------------------

def percentile(values, p):
    """The p-th percentile (0..100) with linear interpolation between ranks."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * p / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def time_batches(run_batch, min_time, min_iters, warmup=1, max_time=float("inf"),
                 warmup_call=None):
    """Calls warmup_call (default run_batch) `warmup` times untimed, then
    run_batch until both min_time seconds and min_iters calls have passed,
    or max_time seconds (after at least one call: slow batches get fewer
    samples rather than minutes); returns the latencies in seconds."""
    for _ in range(warmup):
        (warmup_call or run_batch)()
    lat = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        run_batch()
        lat.append(time.perf_counter() - t0)
        spent = time.perf_counter() - start
        if spent >= max_time or (len(lat) >= min_iters and spent >= min_time):
            return lat


def rate_entry(name, threads, rep_latencies, units, rate_key, extra=None):
    """A schema entry from repetitions of batch latencies (seconds; a list of
    lists, one per repetition), `units` items or queries per batch.
    real_time is the median batch latency; <rate_key> the median over the
    repetitions of units x batches / their summed time; p50/p99 over all
    batches of all repetitions."""
    all_lat = [x for rep in rep_latencies for x in rep]
    rates = [units * len(rep) / sum(rep) for rep in rep_latencies if rep]
    med_ms = statistics.median(all_lat) * 1e3
    e = {"name": name, "run_name": name, "run_type": "aggregate", "aggregate_name": "median",
         "aggregate_unit": "time", "repetitions": len(rep_latencies), "repetition_index": 0,
         "threads": threads, "iterations": len(all_lat), "real_time": med_ms, "cpu_time": med_ms,
         "time_unit": "ms", rate_key: statistics.median(rates),
         "p50_ms": percentile(all_lat, 50) * 1e3, "p99_ms": percentile(all_lat, 99) * 1e3}
    if extra:
        e.update(extra)
    return e


# ----------------------------------------------------------------------------
# The result file
# ----------------------------------------------------------------------------

def machine_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def context(tool, tool_version, argv=None):
    argv = sys.argv if argv is None else argv
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host_name": socket.gethostname(), "executable": os.path.abspath(argv[0]),
            "num_cpus": os.cpu_count(), "mhz_per_cpu": 0, "cpu_scaling_enabled": False,
            "caches": [], "library_build_type": "release", "tool": tool,
            "tool_version": tool_version, "command": command_line(argv),
            "machine": machine_name()}


def blas_environment():
    """What this process computes its matrices with: the BLAS-like libraries
    it has loaded (from /proc/self/maps: call after the work) and the
    environment's OpenBLAS and thread settings (OPENBLAS_CORETYPE picks
    OpenBLAS's kernels whatever the CPU)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                base = os.path.basename(parts[-1]) if len(parts) >= 6 else ""
                if any(k in base for k in ("blas", "mkl", "dnnl", "lapack")):
                    libs.add(base)
    except OSError:
        pass
    env = ", ".join("%s=%s" % (k, os.environ[k]) for k in sorted(os.environ)
                    if k.startswith("OPENBLAS_") or k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"))
    return "libraries %s; environment %s" % (", ".join(sorted(libs)) or "none found", env or "none")


def command_line(argv):
    """argv as a shell command, the interpreter first (python scripts)."""
    import shlex
    words = list(argv)
    if words and words[0].endswith(".py"):
        words = [sys.executable, os.path.relpath(words[0], os.getcwd())] + words[1:]
    return " ".join(shlex.quote(w) for w in words)


def write_result(path, ctx, entries):
    """Writes {"context", "benchmarks"} atomically (temp file + rename)."""
    doc = {"context": ctx, "benchmarks": entries}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".peer-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return doc


def add_timing_options(ap, min_time=0.5, min_iters=3, max_time=3.0):
    """The timing options every runner has."""
    ap.add_argument("--reps", type=int, default=1, help="repetitions (default 1)")
    ap.add_argument("--min-time", type=float, default=min_time,
                    help="seconds of timed batches per repetition (default %g)" % min_time)
    ap.add_argument("--min-iters", type=int, default=min_iters,
                    help="fewest timed batches (default %d)" % min_iters)
    ap.add_argument("--max-time", type=float, default=max_time,
                    help="stop a repetition after this many seconds even below --min-iters "
                         "(at least one batch; default %g)" % max_time)


def timing_of(a):
    """The keyword arguments of time_batches from the parsed options."""
    return {"min_time": a.min_time, "min_iters": a.min_iters, "max_time": a.max_time}


def check_timing_options(ap, a):
    if a.reps < 1 or a.min_iters < 1 or a.min_time < 0 or a.max_time <= 0:
        ap.error("--reps and --min-iters must be >= 1, --min-time >= 0, --max-time > 0")


def run_per_thread_count(script, argv, threads):
    """Runs `script argv` once per thread count, each in a fresh process with
    --threads t and its own --json, and returns all their entries in order
    (None after a failure, reported).  PyTorch's OpenMP pool, once shrunk by
    torch.set_num_threads(1), runs 2 threads 20-50x slower in the same
    process (measured here: B 1 from 1 ms to 50 ms a batch), so each thread
    count gets a process of its own."""
    import subprocess
    entries = []
    with tempfile.TemporaryDirectory(prefix="nu_peer_") as tmp:
        for t in threads:
            args = list(argv)
            args[args.index("--threads") + 1] = str(t)
            out = os.path.join(tmp, "t%d.json" % t)
            args[args.index("--json") + 1] = out
            r = subprocess.run([sys.executable, script] + args)
            if r.returncode != 0:
                print("%s: the run with --threads %d failed (exit %d)"
                      % (os.path.basename(script), t, r.returncode), file=sys.stderr)
                return None
            with open(out) as f:
                entries += json.load(f)["benchmarks"]
    return entries


def normalize_argv(argv):
    """argv with "--opt=value" split into "--opt", "value" (so values can be replaced)."""
    out = []
    for a in argv:
        if a.startswith("--") and "=" in a:
            out += a.split("=", 1)
        else:
            out.append(a)
    return out


def progress(msg):
    print(msg, file=sys.stderr, flush=True)
