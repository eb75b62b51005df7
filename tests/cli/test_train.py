"""nextuser train end to end on synthetic data with planted structure:
the loss falls; stopping (--max-steps, or Ctrl-C) and resuming gives the
same final weights and optimiser state, bit for bit, as a run never
interrupted; and the trained model retrieves the planted next users far
above chance (recall@20 >= 5x random on held-out test items).

usage: test_train.py NEXTUSER
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

exe = sys.argv[1]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args, **kw):
    return subprocess.run([exe, *args], capture_output=True, text=True, **kw)


def same_files(a, b, names):
    return all(open(os.path.join(a, n), "rb").read() == open(os.path.join(b, n), "rb").read() for n in names)


tmp = tempfile.mkdtemp(prefix="nu_train_")
data = os.path.join(tmp, "data")
r = run("synth-data", "--users", "1500", "--items", "500", "--seed", "4", "--out", data)
check(r.returncode == 0, "synth-data: " + r.stderr)
cfg = os.path.join(tmp, "cfg.json")
with open(cfg, "w") as f:
    json.dump({"d": 32, "heads": 2, "enc_layers": 1, "dec_layers": 1, "max_users": 20}, f)
# 12 epochs of disjoint windows (the default): ~200 steps.
common = ["--data", data, "--config", cfg, "--epochs", "12", "--batch", "32", "--negatives", "256",
          "--threads", "2", "--seed", "9"]
full = os.path.join(tmp, "full")
r = run("train", *common, "--out", full)
check(r.returncode == 0, "train: " + r.stderr)
m = re.search(r"loss ([0-9.]+) -> ([0-9.]+)", r.stderr)
check(m and float(m.group(2)) < 0.8 * float(m.group(1)), "the loss falls: " + r.stderr.strip())
files = ["model.safetensors", "optimizer.safetensors", "train_state.json"]

part = os.path.join(tmp, "part")
r = run("train", *common, "--out", part, "--max-steps", "17")
check(r.returncode == 0 and "stopped early" in r.stderr, "--max-steps stops with a checkpoint")
r = run("train", *common, "--out", part, "--resume", part)
check(r.returncode == 0 and same_files(full, part, files),
      "stop at step 17 + resume = the uninterrupted run, bit for bit")

# Ctrl-C: a longer run, interrupted while it trains, then resumed.
long_args = [a if a != "12" else "40" for a in common]  # --epochs 40
full_long = os.path.join(tmp, "full_long")
run("train", *long_args, "--out", full_long)
intr = os.path.join(tmp, "intr")
p = subprocess.Popen([exe, "train", *long_args, "--out", intr], stderr=subprocess.PIPE, text=True)
time.sleep(0.5)
p.send_signal(signal.SIGINT)
err = p.communicate()[1]
check(p.returncode == 0 and "stopped early" in err, "Ctrl-C writes a checkpoint and exits cleanly: " + err.strip())
r = run("train", *long_args, "--out", intr, "--resume", intr)
check(r.returncode == 0 and same_files(full_long, intr, files), "Ctrl-C + resume = the uninterrupted run")

# Selection on validation: the kept model is the best validation score's,
# and the state in the checkpoint says which step that was.
sel = os.path.join(tmp, "sel")
r = run("train", *[a if a != "12" else "30" for a in common], "--out", sel, "--val-every", "epoch",
        "--patience", "4")
kept = re.search(r"kept the model of step (\d+) \(validation recall@50 ([0-9.]+), "
                 r"prior_weight ([0-9.]+), feature_prior_weight ([0-9.]+)\)", r.stderr)
vals = [float(v) for v in re.findall(r"validation recall@50 ([0-9.]+) \(best", r.stderr)]
check(r.returncode == 0 and kept and vals, "train --val-every epoch: " + r.stderr[-400:])
if kept and vals:
    state = json.load(open(os.path.join(sel, "train_state.json")))
    check(int(state["best_step"]) == int(kept.group(1)) == int(state["step"]),
          "the checkpoint is the kept step's: %s" % state)
    check(abs(max(vals) - float(kept.group(2))) < 1e-4, "the kept score is the best validation")
    e = run("eval", "--data", data, "--model", sel, "--split", "val", "--k", "50")
    rec = [float(ln.split()[2]) for ln in e.stdout.splitlines()[2:] if ln.split() and int(ln.split()[1]) > 0]
    check(e.returncode == 0 and rec and abs(sum(rec) / len(rec) - float(kept.group(2))) < 1e-3,
          "eval of the kept model gives its validation score: %s" % e.stdout)
    check(float(kept.group(3)) in (0, 0.25, 0.5, 1, 2, 4), "the prior weight is one of the grid")
    check(float(kept.group(4)) in (0, 0.25, 0.5, 1, 2, 4), "the feature prior weight too")
    # The PyTorch reference reads a trained model, its prior tensors included.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tools", "reference"))
    import nextuser_ref  # noqa: E402
    try:
        ref = nextuser_ref.load_model_dir(sel)
        check(ref.model.config["feature_prior_weight"] == float(kept.group(4)),
              "the reference loads the trained model with its feature prior")
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        check(False, "the reference loads the trained model: %r" % (e,))
    # The kept model carries the weights it was scored with, and retrieve
    # ranks by them: its feature prior when one was chosen.
    cfg_text = open(os.path.join(sel, "model.safetensors"), "rb").read(1 << 16).decode("latin-1")
    check(("feature_prior_weight" in cfg_text) == (float(kept.group(4)) > 0),
          "the model file records feature_prior_weight exactly when it is > 0")
# --no-prior: the same selection with the weight kept at 0.
nop = os.path.join(tmp, "noprior")
r = run("train", *[a if a != "12" else "6" for a in common], "--out", nop, "--val-every", "epoch",
        "--no-prior")
check(r.returncode == 0 and "prior_weight 0, feature_prior_weight 0)" in r.stderr,
      "--no-prior keeps both weights at 0: "
      + r.stderr[-200:])
r = run("train", *common, "--out", sel, "--val-every", "epoch", "--checkpoint-every", "5")
check(r.returncode == 2 and "--checkpoint-every" in r.stderr, "--checkpoint-every with --val-every: usage error")
r = run("train", *common, "--out", sel, "--windows", "some")
check(r.returncode == 2 and "--windows" in r.stderr, "bad --windows: usage error")

# Planted structure: held-out test items, context = their first 5 positives.
items = os.path.join(tmp, "test_items.jsonl")
truth = []
with open(items, "w") as f:
    for line in open(os.path.join(data, "items.jsonl")):
        it = json.loads(line)
        pos = [u for u, _ in it["positives"]]
        if it["split"] != "test" or len(pos) < 8:
            continue
        f.write(json.dumps({"id": it["id"], "features": it["features"], "users": pos[:5]}) + "\n")
        truth.append((it["id"], set(pos[5:])))
out = os.path.join(tmp, "top.csv")
r = run("retrieve", "--model", full, "--items", items, "--k", "20", "--out", out)
check(r.returncode == 0, "retrieve with the trained model: " + r.stderr)
got = {}
for line in open(out).readlines()[1:]:
    item, _, user, _ = line.strip().split(",")
    got.setdefault(item, set()).add(user)
recall = sum(len(got.get(i, set()) & t) / len(t) for i, t in truth) / max(1, len(truth))
chance = 20 / (1500 - 5)
check(len(truth) >= 10 and recall >= 5 * chance,
      f"recall@20 {recall:.3f} on {len(truth)} test items >= 5x random ({5 * chance:.3f})")
print(f"recall@20 {recall:.3f} vs random {chance:.4f} ({recall / chance:.1f}x) on {len(truth)} test items")

r = run("train", "--data", os.path.join(tmp, "nope"), "--out", os.path.join(tmp, "x"))
check(r.returncode == 1 and "nope" in r.stderr, "missing data directory named: " + r.stderr)
r = run("train", "--data", data)
check(r.returncode == 2, "--out is required")
r = run("train", *common, "--out", os.path.join(tmp, "aux"), "--lambdas", "0,0,1", "--max-steps", "3")
check(r.returncode == 0, "--lambdas 0,0,1 trains the auxiliary term alone: " + r.stderr)
r = run("train", *common, "--out", os.path.join(tmp, "bad"), "--lambdas", "1,2")
check(r.returncode == 2 and "--lambdas" in r.stderr, "bad --lambdas is a usage error")
subprocess.run(["rm", "-rf", tmp])
sys.exit(summary())
