#!/usr/bin/env python3
"""How the training windows weigh items (results/quality.md): for a data
directory, the share of decoder targets that come from the most popular 1 %
and 10 % of training items, with every window (`train --windows all`) and
with disjoint windows (the default), for max_users 50.

usage: window_weights.py DATA_DIR [MAX_USERS]
"""
import json
import os
import sys

data = sys.argv[1]
max_users = int(sys.argv[2]) if len(sys.argv) > 2 else 50
counts = sorted((len(it["positives"]) for line in open(os.path.join(data, "items.jsonl"))
                 for it in [json.loads(line)] if it["split"] == "train" and it["positives"]),
                reverse=True)


def targets(m, mode):
    w = min(m, max_users + 1)
    windows = m - w + 1 if mode == "all" else (m - w + w - 1) // w + 1
    return windows * w


print("%s: %d training items with positives, %d positives" % (data, len(counts), sum(counts)))
for mode in ("all", "disjoint"):
    t = [targets(m, mode) for m in counts]
    total = sum(t)
    shares = []
    for frac in (0.01, 0.10):
        top = max(1, int(len(t) * frac))
        shares.append(sum(t[:top]) / total)
    print("%-9s %9d targets an epoch; top 1%% of items: %.1f%% of them, top 10%%: %.1f%%"
          % (mode, total, 100 * shares[0], 100 * shares[1]))
pos = sum(counts)
print("positives: top 1%% of items hold %.1f%%, top 10%% hold %.1f%%"
      % (100 * sum(counts[:max(1, len(counts) // 100)]) / pos,
         100 * sum(counts[:max(1, len(counts) // 10)]) / pos))
