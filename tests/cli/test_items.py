"""nextuser items from the command line (labels cli, data): a data
directory's held-out items as new-item requests.
- every written item is an item of the asked split with more than S
  positives, its users are its first S positives in time order, its features
  are the data's own; no other item is written, in file order;
- the items eval scores at stage S are exactly these (same count);
- the file is read by retrieve with a model trained on the data, and with
  --no-features by a model with other prefix fields;
- usage errors exit 2; a missing data directory exits 1 and writes nothing.

usage: test_items.py NEXTUSER
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


tmp = tempfile.mkdtemp(prefix="nu_items_")
data = os.path.join(tmp, "data")
r = run("synth-data", "--users", "300", "--items", "200", "--seed", "4", "--out", data)
check(r.returncode == 0, "synth-data: " + r.stderr)

source = [json.loads(line) for line in open(os.path.join(data, "items.jsonl"))]

for split, stage in (("test", 5), ("val", 0), ("train", 2)):
    out = os.path.join(tmp, "%s-%d.jsonl" % (split, stage))
    r = run("items", "--data", data, "--split", split, "--stage", str(stage), "--out", out)
    check(r.returncode == 0, "items %s %d: %s" % (split, stage, r.stderr))
    if r.returncode != 0:
        continue
    got = [json.loads(line) for line in open(out)]
    want = [it for it in source if it["split"] == split and len(it["positives"]) > stage]
    check(len(want) > 0, "%s: the synthetic data has items to write" % split)
    check([g["id"] for g in got] == [w["id"] for w in want],
          "%s stage %d: exactly the split's items with > %d positives, in file order"
          % (split, stage, stage))
    for g, w in zip(got, want):
        if g.get("users") != [u for u, _ in w["positives"][:stage]]:
            check(False, "%s: users are the first %d positives: %s" % (g["id"], stage, g))
            break
        # A field with no value may be absent or [] (both read as <unk>).
        if g.get("features") != {k: v for k, v in w["features"].items() if v != []}:
            check(False, "%s: features as in the data: %s vs %s" % (g["id"], g.get("features"),
                                                                   w["features"]))
            break
    check(("wrote %d items" % len(want)) in r.stderr, "reports the count: " + r.stderr)
    if split != "train":
        e = run("eval", "--data", data, "--baseline", "random", "--split", split,
                "--stages", str(stage), "--k", "5")
        rows = [ln.split() for ln in e.stdout.splitlines() if ln.split()[:1] == [str(stage)]]
        check(e.returncode == 0 and rows and int(rows[0][1]) == len(got),
              "eval scores the same %d items at stage %d: %s" % (len(got), stage, e.stdout))

# retrieve reads the file: with the data's own model, and without features
# with a model of other prefix fields.
model = os.path.join(tmp, "model")
r = run("train", "--data", data, "--out", model, "--epochs", "1", "--batch", "64", "--seed", "1")
check(r.returncode == 0, "train: " + r.stderr)
items5 = os.path.join(tmp, "test-5.jsonl")
top = os.path.join(tmp, "top.csv")
r = run("retrieve", "--model", model, "--items", items5, "--k", "7", "--out", top)
check(r.returncode == 0, "retrieve reads items' output: " + r.stderr)
if r.returncode == 0:
    rows = open(top).read().splitlines()[1:]
    check(len(rows) == 7 * sum(1 for _ in open(items5)), "7 users for every item")
    check("unknown" not in r.stderr, "no unknown users or values: " + r.stderr)

bare = os.path.join(tmp, "bare.jsonl")
r = run("items", "--data", data, "--no-features", "--out", bare)
check(r.returncode == 0 and all("features" not in json.loads(ln) for ln in open(bare)),
      "--no-features leaves features out")
big = os.path.join(tmp, "big")
r = run("synth", "--users", "300", "--dim", "16", "--out", big, "--seed", "2")
check(r.returncode == 0, "synth: " + r.stderr)
r = run("retrieve", "--model", big, "--items", bare, "--k", "3", "--out", top)
check(r.returncode == 0, "retrieve with another model's fields, no features: " + r.stderr)

# errors
for args, code, needle in [((), 2, "required"),
                           (("--data", data), 2, "required"),
                           (("--data", data, "--out", bare, "--split", "dev"), 2, "--split"),
                           (("--data", data, "--out", bare, "--stage", "-1"), 2, "--stage"),
                           (("--data", data, "--out", bare, "--frob"), 2, "unknown option"),
                           (("--data", os.path.join(tmp, "nope"), "--out",
                             os.path.join(tmp, "never.jsonl")), 1, "nope")]:
    r = run("items", *args)
    check(r.returncode == code and needle in r.stderr,
          "items %s: exit %d naming %r (got %d: %s)" % (args, code, needle, r.returncode, r.stderr))
check(not os.path.exists(os.path.join(tmp, "never.jsonl")), "nothing written on failure")
r = run("items", "--help")
check(r.returncode == 0 and "usage: nextuser items" in r.stdout, "--help")

sys.exit(summary("test_items"))
