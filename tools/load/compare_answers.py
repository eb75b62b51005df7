#!/usr/bin/python3
"""Ask two recommend services (nextuser serve and a peer) the same items, one
request per item, and compare their top-k users: the ranked lists must agree
except where neighbouring scores are within --tie of each other (near-ties may
swap order, and at the k-th place may swap users in or out).

usage: compare_answers.py URL_A URL_B --items I.jsonl [--count 8] [--k 100] [--tie 1e-5]
Prints a JSON summary; exit status 1 when an item disagrees beyond near-ties.
"""
import argparse
import json
import sys
import urllib.request


def ask(url, obj, k):
    body = json.dumps({"items": [obj], "k": k}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["items"][0]["users"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url_a")
    ap.add_argument("url_b")
    ap.add_argument("--items", required=True)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--tie", type=float, default=1e-5)
    a = ap.parse_args()
    with open(a.items) as f:
        objs = [json.loads(l) for l in f if l.strip()][:a.count]
    out = {"items": len(objs), "k": a.k, "tie": a.tie, "exact_lists": 0, "agree_modulo_ties": 0,
           "max_score_diff": 0.0, "mean_overlap": 0.0, "disagreements": []}
    for o in objs:
        ua, ub = ask(a.url_a, o, a.k), ask(a.url_b, o, a.k)
        ia, ib = [u["user"] for u in ua], [u["user"] for u in ub]
        sa = {u["user"]: u["score"] for u in ua}
        sb = {u["user"]: u["score"] for u in ub}
        common = set(ia) & set(ib)
        out["mean_overlap"] += len(common) / max(1, len(ia)) / len(objs)
        for u in common:
            out["max_score_diff"] = max(out["max_score_diff"], abs(sa[u] - sb[u]))
        if ia == ib:
            out["exact_lists"] += 1
            out["agree_modulo_ties"] += 1
            continue
        # Position by position, a difference is fine when the two scores at
        # that rank are within the tie tolerance (a swap of near-equal users).
        ok = len(ia) == len(ib) and all(
            x == y or abs(ua[j]["score"] - ub[j]["score"]) <= a.tie for j, (x, y) in enumerate(zip(ia, ib)))
        if ok:
            out["agree_modulo_ties"] += 1
        else:
            j = next(j for j, (x, y) in enumerate(zip(ia, ib)) if x != y) if len(ia) == len(ib) else None
            out["disagreements"].append({"id": o.get("id"), "first_rank": j, "a": ua[j] if j is not None else None,
                                         "b": ub[j] if j is not None else None})
    print(json.dumps(out, indent=1))
    return 0 if not out["disagreements"] else 1


if __name__ == "__main__":
    sys.exit(main())
