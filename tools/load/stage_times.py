#!/usr/bin/python3
"""Where the time of `nextuser serve`'s requests went, from its log.

Run the service with `--log-level info`: each answered /v1/recommend or
/v1/embed request gets a line with its total (us=) and its stages:
parse_us (headers to items parsed and checked), queue_us (to a worker taking
its first item: the queue, the batch wait and the worker's wake-up),
engine_us (to its last item's batch run: batch assembly and the engine),
answer_us (the JSON answer), send_us (resume and write).  This prints the
p50 / p90 / p99 of each over the lines given (stdin or files), optionally
skipping the first N (warm-up), as text or --json.

usage: stage_times.py [--skip N] [--json] [LOG ...]
"""
import argparse
import json
import re
import sys

STAGES = ["parse_us", "queue_us", "engine_us", "answer_us", "send_us", "us"]


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="*")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N requests")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for f in [open(p) for p in a.logs] or [sys.stdin]:
        for line in f:
            if 'msg="request"' not in line or "engine_us=" not in line:
                continue
            kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            rows.append({k: float(kv[k]) for k in STAGES if k in kv})
    rows = rows[a.skip:]
    if not rows:
        sys.exit("stage_times.py: no request lines with stages (was the service at --log-level info?)")
    out = {"requests": len(rows)}
    for k in STAGES:
        v = sorted(r[k] for r in rows if k in r)
        out[k] = {"p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99)}
    if a.json:
        print(json.dumps(out))
        return
    print("%d requests (microseconds)" % len(rows))
    for k in STAGES:
        name = "total" if k == "us" else k[:-3]
        print("  %-7s p50 %8.0f  p90 %8.0f  p99 %8.0f" % (name, out[k]["p50"], out[k]["p90"], out[k]["p99"]))


if __name__ == "__main__":
    main()
