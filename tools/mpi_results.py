#!/usr/bin/env python3
"""The measured figures of sharded search runs, as `nextuser plan
--mpi-results FILE` reads them (docs/plan.md, "Over several servers").

usage: mpi_results.py OUT.json --query-width Q [--pool P] [--pingpong FILE]
                      LOG [LOG ...]

Each LOG is the stderr of one `mpirun -np R nextuser search ... --dtype D`
run: its summary line (queries, batch, k, dtype, ranks) and its per-rank
lines (rows, scan, communication, merge, bytes per batch) become one run.
The pool is the search's rule (k for fp32, else --pool or max(4k, 256)).
--pingpong: the output of tools/mpi_pingpong.c ("latency_us X gbps Y"),
recorded as the loopback figure.
"""
import argparse
import json
import math
import re
import sys

SUMMARY = re.compile(r"nextuser search: (\d+) queries in .*?; batch of (\d+):.*? (\w+) table "
                     r".*?, k (\d+),.*?sharded over (\d+) ranks")
RANK = re.compile(r"nextuser search: rank (\d+) of (\d+): rows \[(\d+), (\d+)\), scan ([\d.]+) s, "
                  r"communication ([\d.]+) s \(waits included\)(?:, merge ([\d.]+) s)?; per batch "
                  r"(\d+) bytes (broadcast to each rank|gathered from it)")


def pool_of(dtype, k, pool):
    p = k if dtype == "fp32" else (pool if pool else max(4 * k, 256))
    return max(p, k)


def parse(text, query_width, pool=None):
    """One run from a search's stderr; None when it holds no sharded summary."""
    s = SUMMARY.search(text)
    if not s:
        return None
    queries, batch, dtype, k, ranks = int(s[1]), int(s[2]), s[3], int(s[4]), int(s[5])
    run = {"command": "search", "dtype": dtype, "ranks": ranks, "batch": batch, "k": k,
           "pool": pool_of(dtype, k, pool), "query_width": query_width, "queries": queries,
           "batches": math.ceil(queries / batch), "history_rows": 0,
           "scan_s": [], "comm_s": [], "merge_s": 0.0,
           "bcast_bytes_per_batch": 0, "gather_bytes_per_batch": 0}
    for m in RANK.finditer(text):
        run["scan_s"].append(float(m[5]))
        run["comm_s"].append(float(m[6]))
        if m[9].startswith("broadcast"):
            run["merge_s"] = float(m[7])
            run["bcast_bytes_per_batch"] = int(m[8])
        else:
            run["gather_bytes_per_batch"] = int(m[8])
    if len(run["scan_s"]) != ranks:
        return None
    if ranks == 1:  # no rank sends to rank 0: its own share, counted alike
        run["gather_bytes_per_batch"] = None
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--query-width", type=int, required=True)
    ap.add_argument("--pool", type=int, default=0)
    ap.add_argument("--pingpong")
    a = ap.parse_args()
    doc = {"written_by": "tools/mpi_results.py", "runs": []}
    if a.pingpong:
        m = re.search(r"latency_us ([\d.]+) gbps ([\d.]+)", open(a.pingpong).read())
        if m:
            doc["loopback"] = {"latency_us": float(m[1]), "gbps": float(m[2]),
                               "how": "tools/mpi_pingpong.c on this host: 8-byte and 1 MiB "
                                      "ping-pong between 2 ranks"}
    for path in a.logs:
        run = parse(open(path).read(), a.query_width, a.pool)
        if run is None:
            print("mpi_results.py: %s: no sharded search summary" % path, file=sys.stderr)
            return 1
        if run["gather_bytes_per_batch"] is None:
            continue  # R = 1 moves nothing between ranks
        doc["runs"].append(run)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
