#!/usr/bin/env python3
"""One training step of the base model (d 64, h 4, Le 2, Ld 1, 4 prefix
fields, windows of 50 context users + the next, B = 256, M = 1024 shared
negatives, 4 exposed negatives per position): nextuser vs PyTorch with the
same loss (the three terms of docs/model.md, vectorised) and Adam, same
thread count, measured in one run; medians.  Writes Markdown and JSON.
Run with /usr/bin/python3.

nextuser's step time is (time of S+1 steps - time of 1 step) / S from
`nextuser train --max-steps`, so start-up and the final checkpoint cancel.

usage: train_vs_torch.py --nextuser build/nextuser [--threads 1] [--reps 3] [--steps 5]
                         [--md FILE] [--json FILE]
"""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))


def ours_seconds(exe, data, out, steps, threads):
    r = subprocess.run([exe, "train", "--data", data, "--out", out, "--batch", "256", "--negatives", "1024",
                        "--threads", str(threads), "--max-steps", str(steps), "--seed", "3"],
                       capture_output=True, text=True, check=True)
    return float(re.search(r"steps \(.*\) in ([0-9.]+) s", r.stderr).group(1))


def torch_batch(ref, loaded, data_items, rnd, B=256, ctx=50, hard=4):
    """B windows of ctx + 1 consecutive positives, as reference Items, plus
    targets and exposed negatives per position (row ids)."""
    users = {u: i for i, u in enumerate(loaded.users)}
    big = [it for it in data_items if it["split"] == "train" and len(it["positives"]) > ctx]
    lines, targets, exposed = [], [], []
    for b in range(B):
        it = rnd.choice(big)
        s = rnd.randrange(0, len(it["positives"]) - ctx)
        win = [u for u, _ in it["positives"][s:s + ctx + 1]]
        lines.append(json.dumps({"id": "w%d" % b, "features": it["features"], "users": win[:-1]}))
        negs = [users[u] for u, _ in it["negatives"]] or [0]
        for u in win:
            targets.append(users[u])
            exposed.append([negs[(len(targets) + k) % len(negs)] for k in range(hard)])
    parser = ref.ItemParser(loaded.model.config, loaded.users, loaded.vocabs)
    items = parser.parse_lines(lines)
    return (items[0] if isinstance(items, tuple) else items), targets, exposed


def torch_loss(torch, F, uhat, table, t, shared, E, tau=0.1, lam=(1.0, 0.5, 0.1)):
    """The three-term loss, vectorised: peer_torch.py's (one copy)."""
    sys.path.insert(0, HERE)
    import peer_torch
    return peer_torch.train_loss(uhat, table, t, shared, E, tau, lam)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nextuser", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--md")
    ap.add_argument("--json")
    a = ap.parse_args()
    import torch
    import torch.nn.functional as F
    import nextuser_ref as ref
    torch.set_num_threads(a.threads)
    tmp = tempfile.mkdtemp(prefix="nu_trainpeer_")
    data = os.path.join(tmp, "data")
    subprocess.run([a.nextuser, "synth-data", "--users", "20000", "--items", "400", "--pos-mean", "150",
                    "--seed", "5", "--out", data], check=True, capture_output=True)
    ours_once = lambda n: ours_seconds(a.nextuser, data, os.path.join(tmp, "m%d" % n), n, a.threads)
    ours_once(1)  # warm the page cache
    # The PyTorch model: the base config with the data's fields, same shapes.
    dj = json.load(open(os.path.join(data, "data.json")))
    cfg = {"d": 64, "heads": 4, "enc_layers": 2, "dec_layers": 1, "max_users": 50,
           "num_users": dj["num_users"], "prefix_fields": dj["prefix_fields"]}
    cfg_path = os.path.join(tmp, "cfg.json")
    json.dump(cfg, open(cfg_path, "w"))
    users = [l.strip() for l in open(os.path.join(data, "users.txt"))]
    vocabs = {f["name"]: [l.strip() for l in open(os.path.join(data, "vocab_%s.txt" % f["name"]))]
              for f in dj["prefix_fields"] if f["kind"] != "dense"}
    model = ref.init_model(ref.load_config_file(cfg_path), 3)
    mdir = os.path.join(tmp, "torch_model")
    ref.save_model_dir(mdir, model, users, vocabs)
    loaded = ref.load_model_dir(mdir)
    data_items = [json.loads(l) for l in open(os.path.join(data, "items.jsonl"))]
    rnd = random.Random(1)
    m = loaded.model
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    table = dict(m.named_parameters())["user_emb"]

    def torch_step():
        items, t, E = torch_batch(ref, loaded, data_items, rnd)
        tt, EE = torch.tensor(t), torch.tensor(E)
        shared = torch.randint(0, len(users), (1024,))
        t0 = time.perf_counter()
        opt.zero_grad()
        uhat = torch.cat(m.decode_all(items))
        loss = torch_loss(torch, F, uhat, table, tt, shared, EE)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0, float(loss)

    torch_step()  # warm-up
    ours, theirs = [], []
    for rep in range(a.reps):
        t1 = ours_once(1)
        tn = ours_once(1 + a.steps)
        ours.append((tn - t1) / a.steps)
        theirs.append(statistics.median([torch_step()[0] for _ in range(a.steps)]))
        print(f"rep {rep + 1}: nextuser {ours[-1] * 1e3:.1f} ms/step, PyTorch {theirs[-1] * 1e3:.1f} ms/step",
              file=sys.stderr)
    mo, mt = statistics.median(ours), statistics.median(theirs)
    res = {"threads": a.threads, "batch": 256, "negatives": 1024, "context_users": 50,
           "nextuser_s_per_step": ours, "pytorch_s_per_step": theirs,
           "nextuser_median": mo, "pytorch_median": mt, "ratio": mt / mo, "torch_version": torch.__version__}
    print(f"median: nextuser {mo * 1e3:.1f} ms/step, PyTorch {mt * 1e3:.1f} ms/step, ratio {mt / mo:.2f}")
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)
    if a.md:
        cmd = "/usr/bin/python3 tools/peers/train_vs_torch.py " + " ".join(sys.argv[1:])
        with open(a.md, "w") as f:
            f.write(f"""# Training: one step, nextuser vs PyTorch

The base model (d 64, h 4, Le 2, Ld 1, 4 prefix fields) on synthetic data
(`nextuser synth-data --users 20000 --items 400 --pos-mean 150 --seed 5`),
B = 256 windows of 50 context users + the next (51 decoder positions each,
teacher-forced), M = 1024 shared random negatives, 4 exposed negatives per
position, the three-term loss (λ = 1, 0.5, 0.1, cosine / τ = 0.1) and Adam;
{a.threads} thread(s) for both; {a.reps} repetitions in one run, medians.

- nextuser: (time of {1 + a.steps} steps - time of 1 step) / {a.steps} from `nextuser train
  --max-steps` (the loop's own timer: start-up and the final checkpoint cancel). Its windows
  come from the data's epoch order (over 99% are full 51-user windows on this data).
- PyTorch {res['torch_version']} (Debian, OpenBLAS): the reference model's padded batched
  forward with autograd, the same loss vectorised, `torch.optim.Adam` (dense), timed from
  `zero_grad` to `step` (batch assembly excluded).

| | ms per step (median) | all repetitions |
|---|---|---|
| nextuser | {mo * 1e3:.1f} | {', '.join('%.1f' % (x * 1e3) for x in ours)} |
| PyTorch | {mt * 1e3:.1f} | {', '.join('%.1f' % (x * 1e3) for x in theirs)} |
| **speed-up** | **{mt / mo:.2f}x** | |

Reproduce (from the repository root, after `cmake --build build`):

```
{cmd}
```
""")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
