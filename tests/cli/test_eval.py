"""nextuser prepare + eval from the command line (label eval):
- prepare on a tiny CSV log: the exact sequences, negatives and split sizes;
- malformed inputs (missing columns, bad numbers, unknown ids, empty files,
  missing files) exit non-zero naming file:line and write nothing; --skip-bad
  counts instead;
- --item-features with --items or a MovieLens format exits 2; with
  ../shared/data/movietweetings-100k, its interactions.csv + items.csv as
  they are: genre (multi, 26 rows) and year (categorical, 11), 72,771
  positives, and eval reads the result (else SKIP);
- eval's argument errors exit 2 with a message; a model that does not match
  the data is refused;
- --json's per-item recall: the stage's items in file order, the same for
  every method, with means equal to the stage's recall; the new baselines
  (lookalike-mf, feature-popular) run and are described in --help;
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

# ---- prepare --item-features (a generic layout, as MovieTweetings ships) -----
for extra in (["--format", "csv", "--items", movies], ["--format", "movielens"]):
    r = run("prepare", "--ratings", log, "--item-features", movies, *extra, "--out", os.path.join(tmp, "x"))
    check(r.returncode == 2 and "--item-features" in r.stderr,
          "--item-features with %s is a usage error: exit %d %s" % (extra, r.returncode, r.stderr.strip()))
mt = os.path.join(shared, "movietweetings-100k")
if not os.path.exists(os.path.join(mt, "interactions.csv")):
    print("SKIP movietweetings-100k: %s not found (set NU_SHARED_DATA)" % mt)
else:
    data = os.path.join(tmp, "mt")
    r = run("prepare", "--format", "csv", "--ratings", os.path.join(mt, "interactions.csv"),
            "--item-features", os.path.join(mt, "items.csv"), "--out", data)
    check(r.returncode == 0, "prepare movietweetings-100k: " + r.stderr)
    if r.returncode == 0:
        meta = json.load(open(os.path.join(data, "data.json")))
        want = [{"name": "genre", "kind": "multi", "vocab": 26}, {"name": "year", "kind": "categorical", "vocab": 11}]
        check(meta["prefix_fields"] == want, "genre (25 + <unk>) and year (10 + <unk>): %s" % meta["prefix_fields"])
        for f in want:
            lines = open(os.path.join(data, "vocab_%s.txt" % f["name"])).read().splitlines()
            check(len(lines) == f["vocab"] and lines[0] == "<unk>", "vocab_%s.txt: %s" % (f["name"], lines[:3]))
        pos = neg = 0
        for line in open(os.path.join(data, "items.jsonl")):
            it = json.loads(line)
            pos, neg = pos + len(it["positives"]), neg + len(it["negatives"])
        check((pos, neg) == (72771, 7559), "72,771 positives and 7,559 negatives (its README): %d, %d" % (pos, neg))
        r = run("eval", "--data", data, "--baseline", "popular", "--split", "val", "--stages", "0", "--k", "50")
        check(r.returncode == 0, "eval reads the prepared data: " + r.stderr)

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

# ---- per-item recall in --json, the new baselines --------------------------
# On a small synthetic directory: every method's JSON keeps the old keys, and
# each stage's "per_item" lists the stage's items (val items with at least
# s+1 positives, in file order: the same list for every method) with one
# recall per item and K whose mean is the stage's recall.
r = run("eval", "--help")
check(r.returncode == 0 and "lookalike-mf" in r.stdout and "feature-popular" in r.stdout and
      "per_item" in r.stdout and "same order" in r.stdout, "eval --help describes the new baselines and per_item")
sd = os.path.join(tmp, "sd")
r = run("synth-data", "--users", "60", "--items", "80", "--out", sd, "--seed", "2")
check(r.returncode == 0, "synth-data: " + r.stderr)
if r.returncode == 0:
    want_items = {}
    rows = [json.loads(line) for line in open(os.path.join(sd, "items.jsonl")) if line.strip()]
    stages = [0, 1, 5]
    for st in stages:
        want_items[st] = [it["id"] for it in rows
                          if it["split"] == "val" and len(it.get("positives", [])) >= st + 1]
    per_method = {}
    for method in ("popular", "random", "lookalike-cf", "lookalike-mf", "feature-popular"):
        j = os.path.join(tmp, "pi-%s.json" % method)
        r = run("eval", "--data", sd, "--baseline", method, "--stages", "0,1,5", "--k", "5,20",
                "--json", j, "--seed", "4")
        check(r.returncode == 0, "eval %s: %s" % (method, r.stderr))
        if r.returncode != 0:
            continue
        res = json.load(open(j))
        check(res["method"] == method and res["split"] == "val" and res["k"] == [5, 20] and
              all(k in res for k in ("seed", "data", "model")), "%s: the top-level keys" % method)
        per_method[method] = res
        for s_ in res["stages"]:
            st = s_["stage"]
            pi = s_.get("per_item", {})
            check(set(s_) == {"stage", "items", "recall", "per_item"} and set(pi) == {"items", "recall"},
                  "%s stage %d: keys %s" % (method, st, sorted(s_)))
            check(pi.get("items") == want_items[st] and s_["items"] == len(want_items[st]),
                  "%s stage %d: the stage's items in file order" % (method, st))
            for k in ("5", "20"):
                lst = pi.get("recall", {}).get(k, [])
                ok = len(lst) == s_["items"] and all(0 <= x <= 1 for x in lst)
                mean = sum(lst) / len(lst) if lst else 0.0
                check(ok and abs(mean - s_["recall"][k]) <= 1e-6,
                      "%s stage %d K %s: mean of %d items %.7f vs recall %.6f" %
                      (method, st, k, len(lst), mean, s_["recall"][k]))
    if "popular" in per_method and "lookalike-mf" in per_method:
        a, b = per_method["popular"], per_method["lookalike-mf"]
        check(all(x["per_item"]["items"] == y["per_item"]["items"] for x, y in zip(a["stages"], b["stages"])),
              "popular and lookalike-mf list the same items in the same order")
        check(a["stages"][0]["per_item"]["recall"] == b["stages"][0]["per_item"]["recall"],
              "lookalike-mf at stage 0 is popular, item by item")
    r = run("eval", "--data", sd, "--baseline", "lookalike-mf", "--stages", "1", "--seed", "4")
    r2 = run("eval", "--data", sd, "--baseline", "lookalike-mf", "--stages", "1", "--seed", "4",
             "--threads", "1")
    check(r.returncode == 0 and r.stdout == r2.stdout, "lookalike-mf: the same table on 1 thread")

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
