#!/usr/bin/env python3
"""The bf16 generator against the fp32 path on a trained model (labels
quality, bf16, cli), the bound docs/encodings.md states:
- ml-latest-small (../shared/data, or NU_SHARED_DATA): prepare, a short
  training run (2 epochs, 2 threads, seeded), and items of every cold-start
  stage (test items with 0, 5 and 20 users of context, train items with a
  full window of 50);
- nextuser embed --gen-dtype bf16 vs fp32: for every item
  ||u_bf16 - u_fp32|| <= 0.01 ||u_fp32|| (so every element too);
- nextuser retrieve --k 100: the bf16 path's top-100 users hold >= 0.99 of
  the fp32 path's (mean over items), and no item falls below 0.9;
- on a CPU without AVX512_BF16 (or under NU_ISA=avx2) bf16 falls back to
  fp32, the summary says so and the output is bit-identical to fp32's;
- nextuser eval --gen-dtype bf16: Recall@50 at stages 0 and 5 within 0.01
  of fp32's, stderr names the generator; with a baseline it is a usage error;
- --gen-dtype int8 is a usage error (exit 2); every command that runs the
  generator documents --gen-dtype in --help;
- nextuser bench --gen-dtypes fp32,bf16 writes infer/base/B1/gen:bf16/threads:1
  beside infer/base/B1/threads:1, and the serve scenarios' .../gen:bf16/...
  rows beside theirs (or says why it skips bf16).
Skips the model checks, saying so, when the data is absent.

usage: test_bf16_generator.py NEXTUSER [SHARED_DATA_DIR]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

exe = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
shared = (sys.argv[2] if len(sys.argv) > 2 else
          os.environ.get("NU_SHARED_DATA", os.path.join(here, "..", "..", "..", "shared", "data")))
sys.path.insert(0, os.path.join(here, ".."))
from checks import check, summary  # noqa: E402

REL_BOUND = 0.01    # docs/encodings.md: ||u_bf16 - u_fp32|| <= 1% of ||u_fp32||
RECALL_MEAN = 0.99  # the bar for the final top-100
RECALL_MIN = 0.90


def run(*args, env=None):
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env)


for cmd in ("embed", "retrieve", "serve", "eval", "bench"):
    r = run(cmd, "--help")
    check(r.returncode == 0 and "--gen-dtype" in r.stdout, "%s --help documents --gen-dtype" % cmd)
r = run("embed", "--model", "x", "--items", "y", "--out", "z", "--gen-dtype", "int8")
check(r.returncode == 2 and "not fp32 or bf16" in r.stderr, "--gen-dtype int8 is refused: " + r.stderr)

# bench: a bf16 row beside the fp32 row, whose name does not change (the CI
# gate's baseline); skipped, saying so, where bf16 would run fp32.
bench_json = os.path.join(tempfile.mkdtemp(prefix="nu_bf16_bench_"), "b.json")
r = run("bench", "--suite", "infer,serve", "--infer-batches", "1", "--threads", "1", "--gen-dtypes",
        "fp32,bf16", "--reps", "1", "--rep-seconds", "0.05", "--serve-users", "10k",
        "--rate-seconds", "0.2", "--json", bench_json)
check(r.returncode == 0, "bench --gen-dtypes fp32,bf16: " + r.stderr[-300:])
names = [b["name"] for b in json.load(open(bench_json))["benchmarks"]] if r.returncode == 0 else []
check("infer/base/B1/threads:1" in names, "the fp32 row keeps its name: %s" % names)
check("infer/base/B1/gen:bf16/threads:1" in names or "SKIP infer gen:bf16" in r.stderr,
      "a bf16 row, or a SKIP saying why: %s" % names)
serve_fp32 = ["serve/base/fp32/U10k/offline/threads:1", "serve/base/fp32/U10k/server_max/threads:1"]
serve_bf16 = [n.replace("U10k/", "U10k/gen:bf16/") for n in serve_fp32]
check(all(n in names for n in serve_fp32), "the serve rows keep their names: %s" % names)
check(all(n in names for n in serve_bf16) or "SKIP serve gen:bf16" in r.stderr,
      "serve rows with the bf16 generator, or a SKIP saying why: %s" % names)
r = run("bench", "--suite", "infer", "--gen-dtypes", "bf16,bf16")
check(r.returncode == 2, "bench --gen-dtypes bf16,bf16 is a usage error")
shutil.rmtree(os.path.dirname(bench_json), ignore_errors=True)

ml = os.path.join(shared, "ml-latest-small")
if not os.path.exists(os.path.join(ml, "ratings.csv")):
    print("SKIP bf16 vs fp32 on ml-latest-small: %s not found (set NU_SHARED_DATA)" % ml)
    sys.exit(summary("test_bf16_generator"))

tmp = tempfile.mkdtemp(prefix="nu_bf16_")
data, model = os.path.join(tmp, "data"), os.path.join(tmp, "model")
r = run("prepare", "--ratings", os.path.join(ml, "ratings.csv"), "--items", os.path.join(ml, "movies.csv"),
        "--tags", os.path.join(ml, "tags.csv"), "--out", data, "--seed", "1")
check(r.returncode == 0, "prepare: " + r.stderr)
r = run("train", "--data", data, "--out", model, "--epochs", "2", "--batch", "128", "--lr", "3e-3",
        "--threads", "2", "--seed", "1")
check(r.returncode == 0, "train: " + r.stderr)

# Items of every cold-start stage, ids made unique across the files.
items = os.path.join(tmp, "items.jsonl")
with open(items, "w") as out:
    for split, stage in (("test", 0), ("test", 5), ("test", 20), ("train", 50)):
        part = os.path.join(tmp, "%s%d.jsonl" % (split, stage))
        r = run("items", "--data", data, "--split", split, "--stage", str(stage), "--out", part)
        check(r.returncode == 0, "items %s %d: %s" % (split, stage, r.stderr))
        for line in open(part) if r.returncode == 0 else []:
            o = json.loads(line)
            o["id"] = "%s%d_%s" % (split, stage, o["id"])
            out.write(json.dumps(o) + "\n")


def embed(gen, env=None):
    path = os.path.join(tmp, "e_%s.tsv" % gen)
    r = run("embed", "--model", model, "--items", items, "--out", path, "--threads", "1",
            "--gen-dtype", gen, env=env)
    check(r.returncode == 0, "embed --gen-dtype %s: %s" % (gen, r.stderr))
    ids, rows = [], []
    for line in open(path) if r.returncode == 0 else []:
        i, v = line.rstrip("\n").split("\t")
        ids.append(i)
        rows.append([float(x) for x in v.split()])
    return ids, np.array(rows), r.stderr


def topk(gen):
    path = os.path.join(tmp, "top_%s.csv" % gen)
    r = run("retrieve", "--model", model, "--items", items, "--out", path, "--k", "100",
            "--threads", "1", "--batch", "64", "--gen-dtype", gen)
    check(r.returncode == 0, "retrieve --gen-dtype %s: %s" % (gen, r.stderr))
    top = {}
    for line in list(open(path))[1:] if r.returncode == 0 else []:
        item, _, user, _ = line.rstrip("\n").split(",")
        top.setdefault(item, set()).add(user)
    return top, r.stderr


ids32, u32, _ = embed("fp32")
ids16, u16, log16 = embed("bf16")
check(len(ids32) > 1000 and ids32 == ids16, "both runs embed the same %d items" % len(ids32))
bf16_ran = "generator bf16" in log16
if not bf16_ran:
    print("SKIP bf16 accuracy: this CPU has no AVX512_BF16, bf16 runs fp32 (%s)" % log16.strip())
    check("bf16 asked" in log16, "the fallback is reported: " + log16)
    check(np.array_equal(u32, u16), "the fallback gives fp32's output bit for bit")
else:
    norm = np.linalg.norm(u32, axis=1)
    rel = np.linalg.norm(u16 - u32, axis=1) / norm
    elem = np.abs(u16 - u32).max(axis=1) / norm
    print("bf16 vs fp32 over %d items: ||du||/||u|| max %.5f mean %.5f; max |du_i|/||u|| %.5f; "
          "max |du_i| %.5f" % (len(ids32), rel.max(), rel.mean(), elem.max(), np.abs(u16 - u32).max()))
    check(rel.max() <= REL_BOUND, "||du|| <= %.2f ||u|| on every item (max %.5f)" % (REL_BOUND, rel.max()))
    check(rel.max() > 0, "bf16 really ran: its output differs from fp32's")
    t32, _ = topk("fp32")
    t16, log = topk("bf16")
    check("generator bf16" in log, "retrieve reports the bf16 generator: " + log)
    rec = np.array([len(t32[i] & t16.get(i, set())) / len(t32[i]) for i in t32])
    print("top-100 recall of bf16 against fp32 over %d items: mean %.4f, min %.2f"
          % (len(rec), rec.mean(), rec.min()))
    check(len(rec) == len(ids32), "every item has a top-100")
    check(rec.mean() >= RECALL_MEAN, "mean top-100 recall >= %.2f (%.4f)" % (RECALL_MEAN, rec.mean()))
    check(rec.min() >= RECALL_MIN, "every item's top-100 recall >= %.2f (%.2f)" % (RECALL_MIN, rec.min()))
    def recall50(gen):
        j = os.path.join(tmp, "eval_%s.json" % gen)
        r = run("eval", "--data", data, "--model", model, "--split", "val", "--stages", "0,5",
                "--k", "50", "--json", j, "--gen-dtype", gen)
        check(r.returncode == 0 and ("generator " + gen) in r.stderr, "eval --gen-dtype %s: %s" % (gen, r.stderr))
        res = json.load(open(j)) if r.returncode == 0 else {"stages": []}
        return {st["stage"]: st["recall"]["50"] for st in res["stages"]}
    e32, e16 = recall50("fp32"), recall50("bf16")
    print("eval Recall@50 (val): fp32 %s, bf16 %s" % (e32, e16))
    check(len(e32) == 2 and all(abs(e32[k] - e16.get(k, -1)) <= 0.01 for k in e32),
          "eval: bf16 Recall@50 within 0.01 of fp32's (%s vs %s)" % (e16, e32))
    r = run("eval", "--data", data, "--baseline", "popular", "--gen-dtype", "bf16")
    check(r.returncode == 2, "eval --baseline with --gen-dtype is a usage error")
    # The fallback, forced: the AVX2 kernels have no bf16 dot products.
    env = dict(os.environ, NU_ISA="avx2")
    _, a32, _ = embed("fp32", env)
    _, a16, alog = embed("bf16", env)
    check("fp32 (bf16 asked" in alog, "NU_ISA=avx2: the fallback is reported: " + alog)
    check(np.array_equal(a32, a16), "NU_ISA=avx2: bf16 falls back to fp32's output bit for bit")

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(summary("test_bf16_generator"))
