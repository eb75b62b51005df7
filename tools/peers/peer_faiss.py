#!/usr/bin/python3
"""FAISS peer runner: IndexFlatIP (exact inner product; the rows are
L2-normalised, so cosine like ours) over the fp32 user table our CLI writes
(`nextuser synth --users U --dim 64 --out DIR` -> DIR/user_table.safetensors),
top-K 100, faiss.omp_set_num_threads(T).  Writes the result schema with
context.tool = "faiss".

Workloads: retrieve/fp32/U<u>/B<b>/threads:<t> with queries_per_second,
p50_ms, p99_ms (per batch of B queries), gbps (table bytes / median batch
latency), gflops (2 U d B / median batch latency) and recall_at_100 (1: the
scan is exact).  Queries: random normal vectors, normalised, seeded.

usage: peer_faiss.py --table FILE[,FILE...] --json OUT [--threads 1,2]
                     [--batches 1,16,256] [--min-time S] [--reps R]
Run with /usr/bin/python3 (Debian python3-faiss).
"""

import argparse
import os
import sys

import faiss
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402


def run_table(path, threads, batches, reps, timing, seed):
    table = np.array(pc.read_f32_table(path))          # a private copy, as FAISS holds it
    u, d = table.shape
    index = faiss.IndexFlatIP(d)
    index.add(table)
    rng = np.random.default_rng(seed)
    entries = []
    for t in threads:
        faiss.omp_set_num_threads(t)
        for b in batches:
            q = rng.standard_normal((b, d)).astype(np.float32)
            q /= np.linalg.norm(q, axis=1, keepdims=True)
            k = min(pc.K_TOP, u)
            # Warm-up: one query scans the whole table (pages, caches) without
            # costing a slow large batch (B 256 on 1M x 64 takes seconds in 1.7.3).
            reps_lat = [pc.time_batches(lambda: index.search(q, k), **timing,
                                        warmup_call=lambda: index.search(q[:1], k))
                        for _ in range(reps)]
            name = "retrieve/fp32/U%s/B%d/threads:%d" % (pc.users_label(u), b, t)
            e = pc.rate_entry(name, t, reps_lat, b, "queries_per_second")
            sec = e["real_time"] / 1e3
            e["gbps"] = table.nbytes / sec / 1e9
            e["gflops"] = 2.0 * u * d * b / sec / 1e9
            e["recall_at_100"] = 1.0
            entries.append(e)
            pc.progress("faiss %s: %.1f queries/s, p50 %.3f ms, %.1f GB/s"
                        % (name, e["queries_per_second"], e["p50_ms"], e["gbps"]))
    return entries


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", required=True,
                    help="user_table.safetensors file(s), comma-separated (U from each's rows)")
    ap.add_argument("--json", required=True, help="result file to write")
    ap.add_argument("--threads", default="1,2", help="OpenMP threads (default 1,2)")
    ap.add_argument("--batches", default="1,16,256", help="queries per batch (default 1,16,256)")
    pc.add_timing_options(ap)
    ap.add_argument("--seed", type=int, default=11, help="seed of the queries (11)")
    a = ap.parse_args(argv)
    threads = pc.parse_int_list(a.threads, "--threads")
    batches = pc.parse_int_list(a.batches, "--batches")
    pc.check_timing_options(ap, a)
    entries = []
    try:
        for path in [p for p in a.table.split(",") if p]:
            entries += run_table(path, threads, batches, a.reps, pc.timing_of(a), a.seed)
    except (ValueError, OSError) as e:
        print("peer_faiss: %s" % e, file=sys.stderr)
        return 1
    ctx = pc.context("faiss", faiss.__version__)
    ctx["peer_notes"] = "IndexFlatIP over the fp32 table, K 100, faiss.omp_set_num_threads"
    opts = faiss.get_compile_options() if hasattr(faiss, "get_compile_options") else "?"
    ctx["environment"] = "faiss compile options %s; %s" % (opts, pc.blas_environment())
    pc.write_result(a.json, ctx, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
