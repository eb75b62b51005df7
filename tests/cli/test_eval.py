"""nextuser prepare + eval from the command line (label eval):
- prepare on a tiny CSV log: the exact sequences, negatives and split sizes;
- malformed inputs (missing columns, bad numbers, unknown ids, empty files,
  missing files) exit non-zero naming file:line and write nothing; --skip-bad
  counts instead;
- eval's argument errors exit 2 with a message; a model that does not match
  the data is refused;
- ml-latest-small, when ../shared/data has it: prepare, a short training run
  (base shape, 2 epochs, 2 threads: deterministic) and the model beats
  Popular on recall@50 at stage 5 of the validation items; the ablation
  flags train models that eval accepts.  Skips, saying so, without the data.

usage: test_eval.py NEXTUSER [SHARED_DATA_DIR]
"""
import json
import os
import subprocess
import sys
import tempfile

exe = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
shared = (sys.argv[2] if len(sys.argv) > 2 else
          os.environ.get("NU_SHARED_DATA", os.path.join(here, "..", "..", "..", "shared", "data")))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args):
    return subprocess.run([exe, *args], capture_output=True, text=True)


tmp = tempfile.mkdtemp(prefix="nu_eval_")


def put(name, text):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


# ---- prepare on a tiny CSV log -------------------------------------------
# Item a: positives u1@10, u2@20, u3@30 (u3 also exposed-negative on b);
# item b: positive u1@15, exposed u3@16, a rating 3 (ignored) by u2.
log = put("log.csv", "user,item,timestamp,signal\n"
          "u2,a,20,positive\nu1,a,10,positive\nu3,a,30,5\n"
          "u1,b,15,positive\nu3,b,16,exposed\nu2,b,17,3\n")
out = os.path.join(tmp, "tiny")
r = run("prepare", "--format", "csv", "--ratings", log, "--out", out, "--seed", "3")
check(r.returncode == 0, "prepare csv: " + r.stderr)
if r.returncode == 0:
    items = {}
    for line in open(os.path.join(out, "items.jsonl")):
        it = json.loads(line)
        items[it["id"]] = it
    check(set(items) == {"a", "b"}, "two items: %s" % sorted(items))
    check([u for u, _ in items["a"]["positives"]] == ["u1", "u2", "u3"],
          "positives in time order: %s" % items["a"]["positives"])
    check([t for _, t in items["a"]["positives"]] == [10, 20, 30], "timestamps kept")
    check([u for u, _ in items["b"]["positives"]] == ["u1"] and
          [u for u, _ in items["b"]["negatives"]] == ["u3"], "exposed negative of b: %s" % items["b"])
    check("1 ratings between the thresholds ignored" in r.stdout, "the ignored rating is counted: " + r.stdout)
    users = open(os.path.join(out, "users.txt")).read().split()
    check(sorted(users) == ["u1", "u2", "u3"], "users.txt: %s" % users)
    check(all(it["split"] in ("train", "val", "test") for it in items.values()), "every item has a split")

# ---- malformed inputs ----------------------------------------------------
head = "user,item,timestamp,signal\nu1,a,10,positive\n"
cases = [
    ("missing column", head + "u2,a,20\n", "bad.csv:3:"),
    ("bad timestamp", head + "u2,a,2x0,positive\n", "bad.csv:3:"),
    ("bad signal", head + "u2,a,20,maybe\n", "bad.csv:3:"),
    ("empty file", "", "bad.csv"),
]
for what, text, where in cases:
    bad = put("bad.csv", text)
    dest = os.path.join(tmp, "bad_out")
    r = run("prepare", "--format", "csv", "--ratings", bad, "--out", dest)
    check(r.returncode != 0 and where in r.stderr, "%s: exit %d, %s" % (what, r.returncode, r.stderr.strip()))
    check(not os.path.exists(dest), "%s: nothing written" % what)
bad = put("bad.csv", head + "u2,a,2x0,positive\nu3,a,30,positive\n")
r = run("prepare", "--format", "csv", "--ratings", bad, "--out", os.path.join(tmp, "skip"), "--skip-bad")
check(r.returncode == 0 and "1 malformed" in r.stdout + r.stderr, "--skip-bad counts the bad row: " + r.stderr)
movies = put("movies.csv", "movieId,title,genres\n1,A (1999),Drama\n")
ratings = put("ratings.csv", "userId,movieId,rating,timestamp\n1,1,5,10\n1,7,4,11\n")
r = run("prepare", "--ratings", ratings, "--items", movies, "--out", os.path.join(tmp, "unk"))
check(r.returncode != 0 and "ratings.csv:3:" in r.stderr and "unknown item" in r.stderr,
      "unknown item id names file:line: " + r.stderr.strip())
r = run("prepare", "--ratings", os.path.join(tmp, "nope.csv"), "--out", os.path.join(tmp, "x"))
check(r.returncode != 0 and "nope.csv" in r.stderr, "missing file named: " + r.stderr.strip())

# ---- eval argument errors ------------------------------------------------
usage = [
    ([], "required"),
    (["--data", out], "--model or --baseline"),
    (["--data", out, "--baseline", "oracle"], "oracle"),
    (["--data", out, "--baseline", "popular", "--k", "0"], "--k"),
    (["--data", out, "--baseline", "popular", "--stages", "1,x"], "--stages"),
    (["--data", out, "--baseline", "popular", "--split", "train"], "--split"),
]
for args, needle in usage:
    r = run("eval", *args)
    check(r.returncode == 2 and needle in r.stderr, "eval %s: exit %d %s" % (args, r.returncode, r.stderr.strip()))
r = run("eval", "--data", out, "--baseline", "popular", "--split", "val")
check(r.returncode == 0, "eval popular on the tiny data: " + r.stderr)
synth = os.path.join(tmp, "synth")
r = run("init", "--out", synth, "--users", "5")
if r.returncode == 0:
    r = run("eval", "--data", out, "--model", synth)
    check(r.returncode == 1 and "users" in r.stderr, "a model of other users is refused: " + r.stderr.strip())

# ---- ml-latest-small ---------------------------------------------------------
ml = os.path.join(shared, "ml-latest-small")
if not os.path.exists(os.path.join(ml, "ratings.csv")):
    print("SKIP ml-latest-small: %s not found (set NU_SHARED_DATA)" % ml)
else:
    data = os.path.join(tmp, "ml")
    r = run("prepare", "--ratings", os.path.join(ml, "ratings.csv"), "--items", os.path.join(ml, "movies.csv"),
            "--tags", os.path.join(ml, "tags.csv"), "--out", data, "--seed", "1")
    check(r.returncode == 0, "prepare ml-latest-small: " + r.stderr)
    model = os.path.join(tmp, "ml_model")
    r = run("train", "--data", data, "--out", model, "--epochs", "2", "--batch", "128", "--lr", "3e-3",
            "--threads", "2", "--seed", "1")
    check(r.returncode == 0, "train on ml-latest-small: " + r.stderr)

    def recall50(*args):
        j = os.path.join(tmp, "e.json")
        r = run("eval", "--data", data, "--split", "val", "--stages", "0,5", "--k", "50", "--json", j, *args)
        check(r.returncode == 0, "eval %s: %s" % (args, r.stderr))
        res = json.load(open(j)) if r.returncode == 0 else {"stages": []}
        return {s["stage"]: s["recall"]["50"] for s in res["stages"]}

    got, pop = recall50("--model", model), recall50("--baseline", "popular")
    print("ml-latest-small val recall@50 at stage 5: model %.4f, popular %.4f" % (got.get(5, 0), pop.get(5, 0)))
    check(got.get(5, 0) > pop.get(5, 1), "the model beats Popular at stage 5: %s vs %s" % (got, pop))
    # The ablation flags give models eval accepts (a few steps only).
    for flags in (["--no-prefix"], ["--no-cls", "--bidirectional", "--max-users", "10"]):
        abl = os.path.join(tmp, "abl")
        r = run("train", "--data", data, "--out", abl, "--max-steps", "3", "--batch", "64", "--threads", "2", *flags)
        check(r.returncode == 0, "train %s: %s" % (flags, r.stderr))
        check(len(recall50("--model", abl)) == 2, "eval of the %s model" % flags)

sys.exit(summary("test_eval"))
