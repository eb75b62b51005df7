"""nextuser synth-data from the command line: help, usage errors (exit 2),
deterministic output (same seed -> identical files, other seed -> other
files), the data directory format (docs/data-format.md), the planted group
structure measured through truth.json, and atomic replacement."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

# The command to run: the nextuser binary, possibly behind an emulator.
exe = sys.argv[1:]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args):
    return subprocess.run([*exe, *args], capture_output=True, text=True)


def files(d):
    return {n: open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))}


tmp = tempfile.mkdtemp(prefix="nu_synth_data_")
a, b, c = (os.path.join(tmp, n) for n in "abc")

r = run("synth-data", "--help")
check(r.returncode == 0 and "usage: nextuser synth-data" in r.stdout, "--help")
r = run("--help")
check(r.returncode == 0 and "synth-data" in r.stdout, "top-level --help lists synth-data")
for args, needle in [((), "required"),
                     (("--users", "10", "--items", "5"), "--out"),
                     (("--users", "x", "--items", "5", "--out", a), "--users"),
                     (("--users", "10", "--items", "5", "--out", a, "--groups", "11"), "--groups"),
                     (("--users", "10", "--items", "5", "--out", a, "--train", "0.8", "--val", "0.3"),
                      "--val"),
                     (("--users", "10", "--items", "5", "--out", a, "--pos-mean", "0"), "--pos-mean"),
                     (("--users", "10", "--items", "5", "--out", a, "--frob"), "unknown option"),
                     (("--users", "10", "--items", "5", "--out"), "needs a value")]:
    r = run("synth-data", *args)
    check(r.returncode == 2 and needle in r.stderr and not os.path.exists(a),
          f"usage error {args}: rc {r.returncode} {r.stderr!r}")
r = run("synth-data", "--users", "10", "--items", "5", "--out", os.path.join(tmp, "no", "dir"))
check(r.returncode == 1 and "no/dir" in r.stderr, "missing parent directory fails: " + r.stderr)

opts = ["--users", "2000", "--items", "600", "--groups", "5", "--seed", "9"]
r1 = run("synth-data", *opts, "--out", a)
r2 = run("synth-data", *opts, "--out", b)
r3 = run("synth-data", *opts[:-1], "10", "--out", c)
check(r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 0, "generate: " + r1.stderr)
check(r1.stdout.count("\n") == 1 and "2000 users, 600 items" in r1.stdout and "seed 9" in r1.stdout,
      "one-line summary: " + r1.stdout)
fa, fb, fc = files(a), files(b), files(c)
check(sorted(fa) == [".nextuser-dir", "data.json", "items.jsonl", "truth.json", "users.txt",
                     "vocab_genres.txt", "vocab_tags.txt", "vocab_year.txt"],
      f"files: {sorted(fa)}")
check(fa == fb, "same seed -> identical files")
check(fa["items.jsonl"] != fc["items.jsonl"] and fa["truth.json"] != fc["truth.json"],
      "other seed -> other data")

meta = json.loads(fa["data.json"])
check(meta["format"] == "nextuser-data-1" and meta["num_users"] == 2000 and
      meta["num_items"] == 600 and meta["seed"] == 9, f"data.json: {meta}")
users = fa["users.txt"].decode().splitlines()
check(len(users) == 2000 and len(set(users)) == 2000, "users.txt: one id a line")
vocab = {}
for f in meta["prefix_fields"]:
    if f["kind"] != "dense":
        lines = fa[f"vocab_{f['name']}.txt"].decode().splitlines()
        check(lines[0] == "<unk>" and len(lines) == f["vocab"], f"vocab_{f['name']}.txt size")
        vocab[f["name"]] = set(lines)
dense = {f["name"]: f["dim"] for f in meta["prefix_fields"] if f["kind"] == "dense"}

truth = json.loads(fa["truth.json"])
ug, ig, G = truth["user_group"], truth["item_group"], truth["groups"]
check(G == 5 and len(ug) == 2000 and len(ig) == 600, "truth.json sizes")
uidx = {u: i for i, u in enumerate(users)}
splits = {"train": 0, "val": 0, "test": 0}
own = total = neg_own = 0
counts = []
format_ok = True
for line in fa["items.jsonl"].decode().splitlines():
    it = json.loads(line)
    format_ok &= set(it) == {"id", "split", "features", "positives", "negatives"}
    splits[it["split"]] += 1
    g = ig[int(it["id"][1:])]
    for key in ("positives", "negatives"):
        lst = [(t, uidx[u]) for u, t in it[key]]
        format_ok &= lst == sorted(lst)
    for name, v in it["features"].items():
        if name in dense:
            format_ok &= len(v) == dense[name]
        else:
            format_ok &= all(x in vocab[name] for x in ([v] if isinstance(v, str) else v))
    pos = [uidx[u] for u, _ in it["positives"]]
    format_ok &= len(set(pos)) == len(pos)
    counts.append(len(pos))
    own += sum(ug[u] == g for u in pos)
    total += len(pos)
    neg_own += sum(ug[uidx[u]] == g for u, _ in it["negatives"])
check(format_ok, "items.jsonl follows docs/data-format.md (sorted, known values, distinct positives)")
check(splits == {"train": 420, "val": 60, "test": 120}, f"70/10/20 split: {splits}")
check(own >= 0.75 * total, f"planted: {own / total:.3f} of positives in the item's group")
check(neg_own == 0, "exposed negatives from other groups")
check(min(counts) == 0 and counts.count(1) > 0 and max(counts) > 50,
      f"heavy tail: min {min(counts)}, ones {counts.count(1)}, max {max(counts)}")

# Replacing an existing directory: whole, no leftovers beside it.
r = run("synth-data", *opts[:-1], "10", "--out", a)
check(r.returncode == 0 and files(a) == fc, "regenerate replaces the directory whole")
check(sorted(os.listdir(tmp)) == ["a", "b", "c"], f"no temporary leftovers: {os.listdir(tmp)}")
# A file someone added is never deleted: it stays in the old directory beside.
with open(os.path.join(a, "stray.txt"), "w") as f:
    f.write("old")
r = run("synth-data", *opts, "--out", a)
old = [n for n in os.listdir(tmp) if n.startswith("a.old.")]
check(r.returncode == 0 and files(a) == fa, "regenerate replaces a directory with an added file")
check(len(old) == 1 and files(os.path.join(tmp, old[0])) == {"stray.txt": b"old"},
      f"the added file kept beside, nextuser's own removed: {os.listdir(tmp)}")
shutil.rmtree(os.path.join(tmp, old[0]))
open(os.path.join(tmp, "file"), "w").close()
r = run("synth-data", "--users", "10", "--items", "5", "--out", os.path.join(tmp, "file"))
check(r.returncode == 1 and "not a directory" in r.stderr, "a file in the way: " + r.stderr)
check(sorted(os.listdir(tmp)) == ["a", "b", "c", "file"], f"nothing left beside: {os.listdir(tmp)}")

shutil.rmtree(tmp)
# --activity-skew: a few users take most positives; 0 keeps the uniform draw.
def top_share(d, frac):
    counts = {}
    for line in open(os.path.join(d, "items.jsonl")):
        for u, _ in json.loads(line)["positives"]:
            counts[u] = counts.get(u, 0) + 1
    v = sorted(counts.values(), reverse=True)
    return sum(v[:max(1, int(len(v) * frac))]) / sum(v)


skew_tmp = tempfile.mkdtemp(prefix="nu_synth_skew_")
flat, skewed, zero = (os.path.join(skew_tmp, n) for n in ("flat", "skewed", "zero"))
r1 = run("synth-data", "--users", "2000", "--items", "1000", "--seed", "3", "--out", flat)
r2 = run("synth-data", "--users", "2000", "--items", "1000", "--seed", "3", "--activity-skew", "4",
         "--out", skewed)
r3 = run("synth-data", "--users", "2000", "--items", "1000", "--seed", "3", "--activity-skew", "0",
         "--out", zero)
check(r1.returncode == r2.returncode == r3.returncode == 0, "synth-data with --activity-skew: " + r1.stderr + r2.stderr + r3.stderr)
if r1.returncode == r2.returncode == r3.returncode == 0:
    f, k = top_share(flat, 0.1), top_share(skewed, 0.1)
    check(f < 0.25 and k > 0.35, "skew 4: the top 10%% of users hold %.2f of the positives "
          "(uniform: %.2f)" % (k, f))
    check(files(flat) == files(zero), "--activity-skew 0 writes the same files as no option")
r = run("synth-data", "--users", "10", "--items", "5", "--out", os.path.join(skew_tmp, "n"),
        "--activity-skew", "-1")
check(r.returncode == 2 and "--activity-skew" in r.stderr, "a negative skew is a usage error")
shutil.rmtree(skew_tmp, ignore_errors=True)

sys.exit(summary("cli_synth_data"))
