#!/usr/bin/env python3
"""The experiments behind results/quality.md: a trained model's û for the
items of a split at each stage, scored against its user table in several
ways, Recall@50 over every user minus the context (the protocol of `nextuser
eval`, whose figures the "cos" row reproduces):
  cos            what nextuser serves: cosine of û and the user row
  cos_noctx      the same model with the context users removed (features only):
                 does the context help?
  dot            the plain inner product (a row's norm can carry activity)
  cos+B*logpop   cosine / tau plus B * log(1 + the user's train positives):
                 a popularity prior the cosine cannot express
  ctxmean        the mean of the context users' unit rows (lookalike-emb)
  popular        users by train positives

usage: score_variants.py NEXTUSER DATA_DIR MODEL_DIR [val|test]
Uses /usr/bin/python3 with numpy; writes its temporary files under /tmp.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from safetensors_io import read_safetensors  # noqa: E402

STAGES = (0, 1, 5, 10, 20)
K = 50


def load_rows(path):
    out = {}
    for line in open(path):
        item, values = line.rstrip("\n").split("\t")
        out[item] = np.array([float(x) for x in values.split()])
    return out


def main():
    nu, data, model = sys.argv[1:4]
    split = sys.argv[4] if len(sys.argv) > 4 else "val"
    users = [line.rstrip("\n") for line in open(os.path.join(data, "users.txt"))]
    row = {u: i for i, u in enumerate(users)}
    items = [json.loads(line) for line in open(os.path.join(data, "items.jsonl"))]
    by_id = {it["id"]: it for it in items}
    pop = np.zeros(len(users))
    for it in items:
        if it["split"] == "train":
            for u, _ in it["positives"]:
                pop[row[u]] += 1
    weights = read_safetensors(os.path.join(model, "model.safetensors"))
    weights = weights[0] if isinstance(weights, tuple) else weights
    E = np.asarray(weights["user_emb"], dtype=np.float64)
    En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    tau = 0.1
    tmp = tempfile.mkdtemp(prefix="nu_score_variants_")
    res = {}
    for s in STAGES:
        req = os.path.join(tmp, "items%d.jsonl" % s)
        bare = os.path.join(tmp, "bare%d.jsonl" % s)
        subprocess.run([nu, "items", "--data", data, "--split", split, "--stage", str(s),
                        "--out", req], check=True, capture_output=True)
        with open(bare, "w") as g:
            for line in open(req):
                it = json.loads(line)
                it["users"] = []
                g.write(json.dumps(it) + "\n")
        for f in (req, bare):
            subprocess.run([nu, "embed", "--model", model, "--items", f, "--out", f + ".tsv"],
                           check=True, capture_output=True)
        Q, Q0 = load_rows(req + ".tsv"), load_rows(bare + ".tsv")
        cases = []
        for line in open(req):
            it = json.loads(line)
            pos = [row[u] for u, _ in by_id[it["id"]]["positives"]]
            cases.append((Q[it["id"]], Q0[it["id"]], pos[:s], set(pos[s:])))
        if not cases:
            continue
        q = np.array([c[0] for c in cases])
        q0 = np.array([c[1] for c in cases])
        unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
        cos = unit(q) @ En.T / tau
        variants = {"cos": cos, "cos_noctx": unit(q0) @ En.T / tau, "dot": q @ E.T}
        for beta in (0.5, 1, 2, 4):
            variants["cos+%gxlogpop" % beta] = cos + beta * np.log1p(pop)
        if s > 0:
            variants["ctxmean"] = np.array([En[c[2]].mean(0) for c in cases]) @ En.T
        # ties by lower row, as nextuser's Popular
        variants["popular"] = np.tile(pop - 1e-9 * np.arange(len(pop)), (len(cases), 1))
        for name, S in variants.items():
            S = S.copy()
            recall = []
            for i, (_, _, ctx, targets) in enumerate(cases):
                S[i, ctx] = -np.inf
                top = np.argpartition(-S[i], K)[:K]
                recall.append(len(targets & set(top.tolist())) / len(targets))
            res.setdefault(name, {})[s] = np.mean(recall)
    print("Recall@%d on %s items; %s" % (K, split, model))
    print("%-16s" % "scoring" + "".join("  s=%-5d" % s for s in STAGES))
    for name, r in res.items():
        print("%-16s" % name + "".join(("  %.4f " % r[s]) if s in r else "     -   " for s in STAGES))


if __name__ == "__main__":
    main()
