"""nextuser tune from the command line (labels train, cli): the learning rate
chosen on validation within a time budget.
- two rates: both run, the JSON lists them, the kept one has the higher
  validation score, DIR holds its model (eval on validation gives that score
  back) and no candidate directory is left beside it;
- a budget too small for a second run: only the first rate runs, and it says
  why the others were not tried;
- a foreign --out is refused before any training, untouched; bad options exit 2.

usage: test_tune.py NEXTUSER
"""
import json
import os
import subprocess
import sys
import tempfile

exe = sys.argv[1]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args):
    return subprocess.run([exe, *args], capture_output=True, text=True)


tmp = tempfile.mkdtemp(prefix="nu_tune_")
data = os.path.join(tmp, "data")
r = run("synth-data", "--users", "300", "--items", "200", "--seed", "4", "--out", data)
check(r.returncode == 0, "synth-data: " + r.stderr)
small = ["--epochs", "8", "--batch", "32", "--negatives", "128", "--threads", "2"]

out, js = os.path.join(tmp, "tuned"), os.path.join(tmp, "tune.json")
r = run("tune", "--data", data, "--out", out, "--lrs", "1e-3,1e-2", "--json", js, *small)
check(r.returncode == 0, "tune with two rates: " + r.stderr)
if r.returncode == 0:
    doc = json.load(open(js))
    cands = doc["candidates"]
    check([c["lr"] for c in cands] == [1e-3, 1e-2] and all(c["ran"] for c in cands),
          "both rates ran: %s" % cands)
    best = max(cands, key=lambda c: c["score"])
    check(doc["chosen_lr"] == best["lr"], "the chosen rate has the best validation score")
    check("kept lr %g" % best["lr"] in r.stderr, "it says which rate it kept: " + r.stderr[-300:])
    e = run("eval", "--data", data, "--model", out, "--split", "val", "--k", "50")
    rec = [float(ln.split()[2]) for ln in e.stdout.splitlines()[2:]
           if ln.split() and int(ln.split()[1]) > 0]
    check(e.returncode == 0 and rec and abs(sum(rec) / len(rec) - best["score"]) < 1e-3,
          "DIR holds the kept run's model: validation %s vs %.4f" % (rec, best["score"]))
    state = json.load(open(os.path.join(out, "train_state.json")))
    check(int(state["best_step"]) == best["step"], "its checkpoint is the kept step's")
    left = [n for n in os.listdir(tmp) if n.startswith("tuned.")]
    check(not left, "no candidate directory left: %s" % left)

r = run("tune", "--data", data, "--out", os.path.join(tmp, "budget"), "--lrs", "1e-3,3e-3,1e-2",
        "--budget-seconds", "0.001", *small)
check(r.returncode == 0 and r.stderr.count("not tried") == 2 and "1 of 3 rates tried" in r.stderr,
      "a tiny budget runs only the first rate and says so: " + r.stderr[-400:])

foreign = os.path.join(tmp, "foreign")
os.makedirs(foreign)
with open(os.path.join(foreign, "a.txt"), "w") as f:
    f.write("mine\n")
r = run("tune", "--data", data, "--out", foreign, *small)
check(r.returncode == 1 and "not written by nextuser" in r.stderr and "train step" not in r.stderr,
      "a foreign --out is refused before training: " + r.stderr[-300:])
check(open(os.path.join(foreign, "a.txt")).read() == "mine\n", "and left as it was")

for args, needle in [(("--data", data), "required"),
                     (("--data", data, "--out", out, "--lrs", "0.1,x"), "--lrs"),
                     (("--data", data, "--out", out, "--lrs", "20"), "--lrs"),
                     (("--data", data, "--out", out, "--budget-seconds", "-1"), "--budget-seconds"),
                     (("--data", data, "--out", out, "--frob"), "unknown option")]:
    r = run("tune", *args)
    check(r.returncode == 2 and needle in r.stderr, "tune %s: exit 2 naming %r: %s"
          % (args[2:], needle, r.stderr.strip()))
r = run("tune", "--help")
check(r.returncode == 0 and "usage: nextuser tune" in r.stdout, "--help")

sys.exit(summary("test_tune"))
