#!/usr/bin/env python3
"""`nextuser bench --model DIR --items FILE` end to end, on a model trained here:
- synth-data, train (a few steps) and items at stages 0, 2 and 5 (three context
  lengths) make a model and its traffic;
- bench runs infer, retrieve and serve on them (tiny repetitions): the rows are
  named for the model (infer/model/..., retrieve/<dtype>/U300/...,
  serve/model/fp32/U300/...), no train row, and the context says which model,
  how many users, d, the items file and their context lengths (checked
  against the file);
- with the model's user_table.safetensors (fp32, int8) and no --items: the
  table is copied (--table auto; --table map maps it), retrieve scans the file's encodings, the items are
  synthesised full windows;
- tools/bench-compare passes the file against itself and fails it against a
  doctored copy at half the speed; nextuser plan plans from it (shape model
  by default) and names the bench command when asked for another shape;
- bad input: a missing model directory, items of another model (another
  data set's users), a feature the model lacks, an empty items file (exit 1);
  --items without --model, --suite train, --shape or --users with --model
  (exit 2).

usage: test_bench_model.py NEXTUSER BENCH_COMPARE
"""
import json
import os
import subprocess
import sys
import tempfile
import time

exe, compare = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402

t_start = time.time()
tmp = tempfile.mkdtemp(prefix="nu_bench_model_")


def run(*args):
    return subprocess.run([exe, *args], capture_output=True, text=True)


def path(name):
    return os.path.join(tmp, name)


# A tiny trained model and its items: three stages, so three context lengths.
r = run("synth-data", "--users", "300", "--items", "200", "--seed", "4", "--out", path("data"))
check(r.returncode == 0, "synth-data: " + r.stderr)
r = run("train", "--data", path("data"), "--out", path("model"), "--max-steps", "5",
        "--batch", "64", "--seed", "1")
check(r.returncode == 0, "train: " + r.stderr)
items = []
for stage in (0, 2, 5):
    out = path(f"items-{stage}.jsonl")
    r = run("items", "--data", path("data"), "--split", "test", "--stage", str(stage), "--out", out)
    check(r.returncode == 0, f"items stage {stage}: " + r.stderr)
    for line in open(out):
        it = json.loads(line)
        it["id"] = f"s{stage}-{it['id']}"  # ids are unique within a file
        items.append(it)
with open(path("items.jsonl"), "w") as f:
    for it in items:
        f.write(json.dumps(it) + "\n")
lengths = [min(len(it.get("users", [])), 50) for it in items]

TINY = ["--quick", "--threads", "1", "--reps", "2", "--rep-seconds", "0.02",
        "--rate-seconds", "0.1", "--retrieve-batches", "1,16"]
bench = path("bench.json")
r = run("bench", "--model", path("model"), "--items", path("items.jsonl"), *TINY, "--json", bench)
check(r.returncode == 0, "bench --model --items: " + r.stdout + r.stderr)
doc = json.load(open(bench)) if r.returncode == 0 else {"context": {}, "benchmarks": []}
names = [b["name"] for b in doc["benchmarks"]]
ctx = doc["context"]
for want in ("infer/model/B1/threads:1", "infer/model/B64/threads:1",
             "retrieve/fp32/U300/B1/threads:1", "retrieve/fp32/U300/B16/threads:1",
             "serve/model/fp32/U300/offline/threads:1",
             "serve/model/fp32/U300/server_max/threads:1"):
    check(want in names, f"bench has {want}: {names}")
check(not [n for n in names if n.startswith("train/")], "no train rows with --model")
check(ctx.get("shape") == "model" and ctx.get("model_dir") == path("model"),
      f"context names the model: {ctx.get('shape')} {ctx.get('model_dir')}")
check(ctx.get("model_users") == 300 and ctx.get("model_d") == 64 and ctx.get("model_max_users") == 50,
      "context: 300 users, d 64, max_users 50")
check(ctx.get("items_file") == path("items.jsonl") and ctx.get("items") == len(items),
      f"context: the items file and its {len(items)} items: {ctx.get('items')}")
mean = sum(lengths) / len(lengths)
check(abs(ctx.get("items_users_mean", -1) - mean) < 1e-9 and ctx.get("items_users_min") == 0
      and ctx.get("items_users_max") == 5,
      f"context lengths as in the file: mean {mean}, 0..5: {ctx.get('items_users_mean')}")
check(ctx.get("model_table") == "built", "no table file: the table is built in memory")
check(all(ctx.get(k, 0) > 0 for k in ("model_weights_bytes", "model_scratch_bytes",
                                      "model_packed_weights_bytes_bf16")) and
      ctx.get("model_packed_weights_bytes_fp32", -1) >= 0,
      "context carries what the plan counts in memory (the bf16 generator's packed copy too)")
check("model " + path("model") in r.stdout and "users per item mean" in r.stdout,
      "stdout names the model and the items: " + r.stdout[:400])
infer = next((b for b in doc["benchmarks"] if b["name"] == "infer/model/B64/threads:1"), {})
check(0 < infer.get("mflop_per_item", 0) < 5,
      f"FLOPs counted for the items' short contexts, not 50 users: {infer.get('mflop_per_item')}")

# The model's own table file, no --items: copied (--table auto), its encodings, full windows.
r = run("table", "--model", path("model"), "--dtypes", "fp32,int8")
check(r.returncode == 0, "table: " + r.stderr)
bench2 = path("bench-table.json")
r = run("bench", "--model", path("model"), "--suite", "infer,retrieve", *TINY, "--json", bench2)
check(r.returncode == 0, "bench --model (table file, no items): " + r.stdout + r.stderr)
if r.returncode == 0:
    doc2 = json.load(open(bench2))
    n2, c2 = [b["name"] for b in doc2["benchmarks"]], doc2["context"]
    check(c2.get("model_table") == "copied",
          f"--table auto copies a small table file: {c2.get('model_table')}")
    r = run("bench", "--model", path("model"), "--suite", "retrieve", *TINY, "--table", "map",
            "--json", path("bench-map.json"))
    check(r.returncode == 0 and json.load(open(path("bench-map.json")))["context"].get("model_table")
          == "mapped", "--table map maps the table file: " + r.stderr)
    check("retrieve/int8/U300/B16/threads:1" in n2 and "retrieve/bf16/U300/B16/threads:1" not in n2,
          f"retrieve scans the file's encodings (fp32, int8): {n2}")
    check(c2.get("items_file") == "synthetic" and c2.get("items_users_mean") == 50,
          "without --items: synthesised full windows")

# The gate: itself passes; half the speed fails.
r = subprocess.run([sys.executable, compare, bench, bench], capture_output=True, text=True)
check(r.returncode == 0, "bench-compare against itself passes: " + r.stdout + r.stderr)
check("per_peak" in r.stdout, "a user model's rows are gated on per_peak")
slow = json.loads(json.dumps(doc))
for b in slow["benchmarks"]:
    if not b["name"].startswith("peak/"):
        for k in ("items_per_second", "queries_per_second", "max_rate_per_second", "gflops",
                  "gbps", "frac_peak", "frac_bw"):
            if k in b:
                b[k] *= 0.5
with open(path("slow.json"), "w") as f:
    json.dump(slow, f)
r = subprocess.run([sys.executable, compare, bench, path("slow.json")], capture_output=True,
                   text=True)
check(r.returncode == 1 and "REGRESSION" in r.stdout,
      f"bench-compare fails a run at half the speed: exit {r.returncode}\n" + r.stdout[-600:])
# The same model doing more work per item at the same efficiency: per_peak catches it.
heavy = json.loads(json.dumps(doc))
for b in heavy["benchmarks"]:
    for k in ("items_per_second", "queries_per_second", "max_rate_per_second"):
        if k in b and not b["name"].startswith("peak/"):
            b[k] *= 0.5
with open(path("heavy.json"), "w") as f:
    json.dump(heavy, f)
r = subprocess.run([sys.executable, compare, bench, path("heavy.json"), "--filter", "per_peak"],
                   capture_output=True, text=True)
check(r.returncode == 1, "per_peak fails a model twice the cost at the same fraction of peak: "
      + r.stdout[-400:])

# The plan from it: shape model without being told.
r = run("plan", "--results", bench, "--items-per-sec", "1000", "--users", "300", "--k", "100",
        "--p99-ms", "50", "--cores-per-server", "8")
check(r.returncode == 0, "plan from the model's results: " + r.stderr)
check("shape model" in r.stdout and "serve/model/fp32/U300/server_max/threads:1" in r.stdout,
      "the plan reads the model's rows: " + r.stdout[:300])
r = run("plan", "--results", bench, "--shape", "base", "--items-per-sec", "1000", "--users",
        "300", "--k", "100", "--p99-ms", "50")
check(r.returncode == 2 and "infer/base" in r.stderr, "another shape: its missing rows named: "
      + r.stderr)

# Bad input.
r = run("bench", "--model", path("no-such-model"), "--quick", "--suite", "infer")
check(r.returncode == 1 and "--model " + path("no-such-model") in r.stderr,
      "a missing model directory: exit 1 naming it: " + r.stderr)
r = run("synth-data", "--users", "3000", "--items", "60", "--seed", "9", "--out", path("other"))
check(r.returncode == 0, "synth-data (another data set): " + r.stderr)
r = run("items", "--data", path("other"), "--split", "train", "--stage", "3", "--no-features",
        "--out", path("other.jsonl"))
check(r.returncode == 0, "items of another data set: " + r.stderr)
r = run("bench", "--model", path("model"), "--items", path("other.jsonl"), "--quick",
        "--suite", "infer")
check(r.returncode == 1 and "items for another model" in r.stderr,
      "items of another model's users: exit 1: " + r.stderr)
with open(path("colour.jsonl"), "w") as f:
    f.write('{"id": "a", "users": ["u1"], "features": {"colour": "red"}}\n')
r = run("bench", "--model", path("model"), "--items", path("colour.jsonl"), "--quick",
        "--suite", "infer")
check(r.returncode == 1 and "colour" in r.stderr and "--items" in r.stderr,
      "a feature the model lacks: exit 1: " + r.stderr)
open(path("empty.jsonl"), "w").close()
r = run("bench", "--model", path("model"), "--items", path("empty.jsonl"), "--quick")
check(r.returncode == 1 and "no items" in r.stderr, "an empty items file: exit 1: " + r.stderr)
for args, what in ((["--items", path("items.jsonl")], "--items without --model"),
                   (["--model", path("model"), "--suite", "train"], "--suite train"),
                   (["--model", path("model"), "--shape", "large"], "--shape"),
                   (["--model", path("model"), "--users", "1M"], "--users"),
                   (["--model", path("model"), "--table", "mmap"], "--table mmap")):
    r = run("bench", *args)
    check(r.returncode == 2, f"{what}: exit 2, got {r.returncode}: " + r.stderr)
r = run("bench", "--help")
check("--model DIR" in r.stdout and "--items FILE" in r.stdout, "--help explains --model and --items")

print(f"test_bench_model: {time.time() - t_start:.1f} s")
sys.exit(summary())
