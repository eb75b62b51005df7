#!/usr/bin/python3
"""Plots of benchmark result files (Google Benchmark JSON of `nextuser bench` and
the peers, docs/bench.md).

usage: /usr/bin/python3 tools/bench_plots.py RESULTS.json [MORE.json ...] --out DIR

Writes into DIR (created if needed), for what the files hold:
  throughput_threads_infer.png     items/s against threads, per shape and batch
  throughput_threads_retrieve.png  queries/s against threads, per dtype, users, batch
  throughput_threads_serve.png     serve offline items/s and server_max rate against threads
  latency_batch_infer.png          p50 and p99 batch latency against batch size
  latency_batch_retrieve.png       the same for retrieval
  latency_rate_serve.png           server scenario: p50/p99 per item against offered rate
Each line is labelled with the file's tool (nextuser, pytorch, ...) when several
files are given.  Exit status: 0 written, 2 bad input (missing file, not JSON,
nothing to plot).
"""
import argparse
import json
import os
import re
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise ValueError("not Google Benchmark JSON (no \"benchmarks\" list)")
    tool = (doc.get("context") or {}).get("tool", os.path.basename(path))
    rows = {}
    for b in doc["benchmarks"]:
        if not isinstance(b, dict) or "name" not in b:
            raise ValueError("a benchmark entry has no name")
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        rows.setdefault(b.get("run_name", b["name"]), b)
    return tool, rows


def rate(b):
    for k in ("items_per_second", "queries_per_second", "max_rate_per_second"):
        if isinstance(b.get(k), (int, float)) and b[k] > 0:
            return b[k]
    return None


def finish(fig, ax, path, title, xlabel, ylabel, logx=False, logy=False):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def plot_threads(files, suite, out, pattern, ylabel):
    """Throughput against threads: one line per (tool, workload without threads)."""
    lines = defaultdict(dict)
    for tool, rows in files:
        for name, b in rows.items():
            m = re.match(pattern, name)
            if m and rate(b):
                lines[(tool, m.group(1))][int(m.group(2))] = rate(b)
    lines = {k: v for k, v in lines.items() if v}
    if not lines:
        return 0
    fig, ax = plt.subplots(figsize=(10, 5))
    several = len({t for t, _ in lines}) > 1
    for (tool, label), pts in sorted(lines.items()):
        xs = sorted(pts)
        ax.plot(xs, [pts[x] for x in xs], marker="o",
                label=f"{tool}: {label}" if several else label)
    ax.set_xticks(sorted({x for pts in lines.values() for x in pts}))
    finish(fig, ax, os.path.join(out, f"throughput_threads_{suite}.png"),
           f"{suite}: throughput against threads", "threads", ylabel, logy=True)
    return 1


def plot_batches(files, suite, out, pattern):
    """p50 and p99 batch latency against batch size, per (tool, workload, threads)."""
    lines = defaultdict(dict)
    for tool, rows in files:
        for name, b in rows.items():
            m = re.match(pattern, name)
            if m and isinstance(b.get("p50_ms"), (int, float)):
                lines[(tool, m.group(1) + m.group(3))][int(m.group(2))] = (
                    b["p50_ms"], b.get("p99_ms", b["p50_ms"]))
    if not lines:
        return 0
    fig, ax = plot_p50_p99(lines)
    finish(fig, ax, os.path.join(out, f"latency_batch_{suite}.png"),
           f"{suite}: batch latency against batch size", "batch size", "ms per batch",
           logx=True, logy=True)
    return 1


def plot_p50_p99(lines):
    """A figure with one p50 line (solid) and one p99 line (dashed, same colour)
    per (tool, label) of lines: {(tool, label): {x: (p50, p99)}}."""
    fig, ax = plt.subplots(figsize=(10, 5))
    several = len({t for t, _ in lines}) > 1
    for (tool, label), pts in sorted(lines.items()):
        xs = sorted(pts)
        name = f"{tool}: {label}" if several else label
        line, = ax.plot(xs, [pts[x][0] for x in xs], marker="o", label=f"{name} p50")
        ax.plot(xs, [pts[x][1] for x in xs], marker="x", linestyle="--", color=line.get_color(),
                label=f"{name} p99")
    return fig, ax


def plot_server(files, out):
    """Server scenario: per-item p50/p99 against the offered rate."""
    lines = defaultdict(dict)
    bounds = {}
    for tool, rows in files:
        for name, b in rows.items():
            m = re.match(r"^serve/(.*)/server/(threads:\d+)/rate:([0-9.]+)$", name)
            if m and isinstance(b.get("p99_ms"), (int, float)):
                offered = b.get("offered_per_second", float(m.group(3)))
                lines[(tool, f"{m.group(1)} {m.group(2)}")][offered] = (
                    b.get("p50_ms", b["p99_ms"]), b["p99_ms"])
            m = re.match(r"^serve/.*/server_max/", name)
            if m and isinstance(b.get("p99_bound_ms"), (int, float)):
                bounds[b["p99_bound_ms"]] = True
    if not lines:
        return 0
    fig, ax = plot_p50_p99(lines)
    for bound in bounds:
        ax.axhline(bound, color="red", linewidth=0.8, linestyle=":", label=f"p99 bound {bound:g} ms")
    finish(fig, ax, os.path.join(out, "latency_rate_serve.png"),
           "serve, server scenario: latency per item against offered rate",
           "offered items/s", "ms from arrival", logy=True)
    return 1


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", metavar="RESULTS.json")
    ap.add_argument("--out", required=True, metavar="DIR", help="directory for the PNG files")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    files = []
    for path in args.results:
        try:
            files.append(load(path))
        except (OSError, ValueError) as e:
            print(f"bench_plots: {path}: {e}", file=sys.stderr)
            return 2
    # Several files of one tool: tell them apart by file name.
    tools = [t for t, _ in files]
    files = [(t if tools.count(t) == 1 else f"{t} ({os.path.basename(p)})", rows)
             for (t, rows), p in zip(files, args.results)]
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        print(f"bench_plots: --out {args.out}: {e.strerror}", file=sys.stderr)
        return 2
    n = 0
    n += plot_threads(files, "infer", args.out, r"^infer/(.*)/threads:(\d+)$", "items/s")
    n += plot_threads(files, "retrieve", args.out, r"^retrieve/(.*)/threads:(\d+)$", "queries/s")
    n += plot_threads(files, "serve", args.out,
                      r"^serve/(.*/(?:offline|server_max))/threads:(\d+)$",
                      "items/s (offline) or max rate under the bound (server_max)")
    n += plot_batches(files, "infer", args.out, r"^(infer/[^/]+)/B(\d+)(/threads:\d+)$")
    n += plot_batches(files, "retrieve", args.out, r"^(retrieve/[^/]+/U[^/]+)/B(\d+)(/threads:\d+)$")
    n += plot_server(files, args.out)
    if n == 0:
        print("bench_plots: nothing to plot (no infer, retrieve or serve entries)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
