#!/usr/bin/env python3
"""The experiment behind results/quality.md, section 9: a trained model's
û for the items of a split at every stage, scored against its user table
(cosine / tau) plus several popularity priors, Recall@50 over every user
minus the context (the protocol of `nextuser eval`):
  cos+1*logpop        the global prior: log(1 + the user's train positives)
  feature-popular     the baseline (users by positives on train items
                      sharing the new item's values, weighted by how many)
  cos+2*log(1+fp)     the log of feature-popular's score as a prior
  cos+0.5*sum         0.5 * sum over the item's values v of log(1 + n_uv)
                      (n_uv: u's train positives on items holding v)
  ... top32 / top16   the same over the 32 / 16 values with most positives
  ... svd16           the same with log(1 + n) replaced by its rank-16 SVD
The model's own serving priors are not used: only its user_emb and û.

usage: feature_prior_variants.py NEXTUSER DATA_DIR MODEL_DIR [val|test]
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
TAU = 0.1


def item_values(it):
    out = set()
    for k, v in (it.get("features") or {}).items():
        for x in (v if isinstance(v, list) else [v]):
            out.add((k, x))
    return out


def main():
    nu, data, model = sys.argv[1:4]
    split = sys.argv[4] if len(sys.argv) > 4 else "val"
    users = [line.rstrip("\n") for line in open(os.path.join(data, "users.txt"))]
    row = {u: i for i, u in enumerate(users)}
    items = [json.loads(line) for line in open(os.path.join(data, "items.jsonl"))]
    by_id = {it["id"]: it for it in items}
    vocab, pop, cells = {}, np.zeros(len(users)), []
    for it in items:
        if it["split"] != "train":
            continue
        vs = [vocab.setdefault(v, len(vocab)) for v in item_values(it)]
        for u, _ in it["positives"]:
            pop[row[u]] += 1
            cells += [(v, row[u]) for v in vs]
    C = np.zeros((len(vocab), len(users)))
    np.add.at(C, tuple(np.array(cells).T), 1)
    L = np.log1p(C)
    order = np.argsort(-C.sum(1), kind="stable")
    U_, S_, Vt = np.linalg.svd(L, full_matrices=False)
    L16 = (U_[:, :16] * S_[:16]) @ Vt[:16]
    w = read_safetensors(os.path.join(model, "model.safetensors"))
    w = w[0] if isinstance(w, tuple) else w
    E = np.asarray(w["user_emb"], dtype=np.float64)
    En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    d = E.shape[1]
    tmp = tempfile.mkdtemp(prefix="nu_fprior_")
    res = {}
    for s in STAGES:
        req = os.path.join(tmp, "items%d.jsonl" % s)
        subprocess.run([nu, "items", "--data", data, "--split", split, "--stage", str(s),
                        "--out", req], check=True, capture_output=True)
        subprocess.run([nu, "embed", "--model", model, "--items", req, "--out", req + ".tsv"],
                       check=True, capture_output=True)
        Q = {}
        for line in open(req + ".tsv"):
            i, v = line.rstrip("\n").split("\t")
            Q[i] = np.array([float(x) for x in v.split()])[:d]
        cases = []
        for line in open(req):
            it = json.loads(line)
            pos = [row[u] for u, _ in by_id[it["id"]]["positives"]]
            x = np.zeros(len(vocab))
            for v in item_values(by_id[it["id"]]):
                if v in vocab:
                    x[vocab[v]] = 1
            cases.append((Q[it["id"]], pos[:s], set(pos[s:]), x))
        if not cases:
            continue
        q = np.array([c[0] for c in cases])
        X = np.array([c[3] for c in cases])
        cos = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ En.T / TAU
        fp = X @ C
        variants = {
            "cos+1*logpop": cos + np.log1p(pop),
            "feature-popular": fp + 1e-6 * pop,
            "cos+2*log(1+fp)": cos + 2 * np.log1p(fp),
            "cos+0.5*sum": cos + 0.5 * (X @ L),
            "cos+0.5*sum top32": cos + 0.5 * (X[:, order[:32]] @ L[order[:32]]),
            "cos+0.5*sum top16": cos + 0.5 * (X[:, order[:16]] @ L[order[:16]]),
            "cos+0.5*sum svd16": cos + 0.5 * (X @ L16),
            "cos+0.25*sum": cos + 0.25 * (X @ L),
            "cos+0.25*sum top32": cos + 0.25 * (X[:, order[:32]] @ L[order[:32]]),
        }
        for name, S in variants.items():
            S = S.copy()
            recall = []
            for i, (_, ctx, targets, _) in enumerate(cases):
                S[i, ctx] = -np.inf
                top = np.argpartition(-S[i], K)[:K]
                recall.append(len(targets & set(top.tolist())) / len(targets))
            res.setdefault(name, {})[s] = np.mean(recall)
    print("Recall@%d on %s items; %s; %d feature values" % (K, split, model, len(vocab)))
    print("%-20s" % "scoring" + "".join("  s=%-5d" % s for s in STAGES) + "  mean")
    for name, r in res.items():
        print("%-20s" % name + "".join("  %.4f " % r[s] for s in STAGES if s in r)
              + "  %.4f" % np.mean(list(r.values())))


if __name__ == "__main__":
    main()
