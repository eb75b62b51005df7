#!/usr/bin/env python3
"""Inference throughput of nextuser vs the PyTorch reference, same weights,
same items, same thread count, measured interleaved in one run; medians of
several repetitions.  Writes a Markdown table (and JSON) of items/s and the
ratio.  Run with the system interpreter: /usr/bin/python3.

usage: infer_vs_torch.py --nextuser build/nextuser [--items 2048] [--reps 5]
                         [--batch 64] [--threads 1] [--md results/infer.md]
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))

BASE = {"d": 64, "heads": 4, "enc_layers": 2, "dec_layers": 1, "max_users": 50, "num_users": 10000,
        "prefix_fields": [{"name": "genres", "kind": "multi", "vocab": 20},
                          {"name": "year", "kind": "categorical", "vocab": 12},
                          {"name": "tags", "kind": "multi", "vocab": 200},
                          {"name": "content", "kind": "dense", "dim": 16}]}


def make_items(path, count, users, seed=5):
    import random
    r = random.Random(seed)
    with open(path, "w") as f:
        for i in range(count):
            f.write(json.dumps({
                "id": "i%d" % i,
                "features": {"genres": ["v%d" % r.randint(1, 19) for _ in range(2)],
                             "year": "v%d" % r.randint(1, 11),
                             "tags": ["v%d" % r.randint(1, 199) for _ in range(3)],
                             "content": [round(r.uniform(-1, 1), 3) for _ in range(16)]},
                "users": ["u%d" % r.randint(0, users - 1) for _ in range(50)]}) + "\n")


def ours_once(exe, model, items, out, batch, threads):
    r = subprocess.run([exe, "embed", "--model", model, "--items", items, "--out", out,
                        "--threads", str(threads), "--batch", str(batch)],
                       capture_output=True, text=True, check=True)
    m = re.search(r"(\d+) items in ([0-9.]+) s", r.stderr)
    return int(m.group(1)) / float(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nextuser", required=True)
    ap.add_argument("--items", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--md", help="write a Markdown report here")
    ap.add_argument("--json", help="write the figures as JSON here")
    a = ap.parse_args()

    import torch
    import nextuser_ref as ref
    torch.set_num_threads(a.threads)
    tmp = tempfile.mkdtemp(prefix="nu_infer_")
    cfg = os.path.join(tmp, "base.json")
    with open(cfg, "w") as f:
        json.dump(BASE, f)
    model = os.path.join(tmp, "base")
    subprocess.run([a.nextuser, "init", "--config", cfg, "--out", model, "--seed", "1"], check=True,
                   capture_output=True)
    items_path = os.path.join(tmp, "items.jsonl")
    make_items(items_path, a.items, BASE["num_users"])
    loaded = ref.load_model_dir(model)
    items = ref.ItemParser(loaded.model.config, loaded.users, loaded.vocabs).parse_file(items_path)
    items = items[0] if isinstance(items, tuple) else items

    ours, theirs = [], []
    with torch.no_grad():
        loaded.model.embed(items[:a.batch], batch_size=a.batch)  # warm-up
        ours_once(a.nextuser, model, items_path, os.path.join(tmp, "o.tsv"), a.batch, a.threads)
        for rep in range(a.reps):
            ours.append(ours_once(a.nextuser, model, items_path, os.path.join(tmp, "o.tsv"), a.batch, a.threads))
            t0 = time.perf_counter()
            loaded.model.embed(items, batch_size=a.batch)
            theirs.append(len(items) / (time.perf_counter() - t0))
            print(f"rep {rep + 1}: nextuser {ours[-1]:.0f} items/s, PyTorch {theirs[-1]:.0f} items/s",
                  file=sys.stderr)
    med_o, med_t = statistics.median(ours), statistics.median(theirs)
    isa = json.loads(subprocess.run([a.nextuser, "info", "--json"], capture_output=True, text=True,
                                    check=True).stdout)["isa_active"]
    res = {"shape": "base (d 64, h 4, Le 2, Ld 1, 4 prefix tokens, 50 users)", "batch": a.batch,
           "threads": a.threads, "items": a.items, "reps": a.reps, "isa": isa,
           "nextuser_items_per_s": ours, "pytorch_items_per_s": theirs,
           "nextuser_median": med_o, "pytorch_median": med_t, "ratio": med_o / med_t,
           "torch_version": torch.__version__, "machine": platform.processor() or platform.machine()}
    cmd = "/usr/bin/python3 tools/peers/infer_vs_torch.py " + " ".join(
        a_ for a_ in sys.argv[1:])
    print(f"median: nextuser {med_o:.0f} items/s, PyTorch {med_t:.0f} items/s, ratio {med_o / med_t:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if a.md:
        with open(a.md, "w") as f:
            f.write(f"""# Inference: nextuser vs the PyTorch reference

Generator forward (û_next per item), shape {res['shape']}, batch {a.batch},
{a.threads} thread(s), {a.items} items, the same weights and items for both,
{a.reps} repetitions interleaved in one run; medians. nextuser ISA: {isa};
PyTorch {res['torch_version']} (Debian python3-torch, OpenBLAS), the padded
batched path of `tools/reference/nextuser_ref.py`, `torch.set_num_threads({a.threads})`.
nextuser's figure is the forward alone as reported by `nextuser embed` (parsing
and output writing excluded); PyTorch's is `model.embed(items)` alone.

| | items/s (median) | all repetitions |
|---|---|---|
| nextuser | {med_o:.0f} | {', '.join(f'{x:.0f}' for x in ours)} |
| PyTorch reference | {med_t:.0f} | {', '.join(f'{x:.0f}' for x in theirs)} |
| **ratio** | **{med_o / med_t:.2f}x** | |

Reproduce (from the repository root, after `cmake --build build`):

```
{cmd}
```
""")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
