#!/usr/bin/env python3
"""The cold-start evaluation of docs/evaluation.md on a data directory,
in one command: prepare -> train the model and its ablations -> evaluate
the model, the ablations and the baselines on validation and test (with paired
bootstrap intervals of every margin) ->
a Markdown report, a JSON file and a PNG plot of recall@50 by stage.

  /usr/bin/python3 tools/eval_movielens.py --nextuser build/nextuser \\
      --data-dir ../shared/data/ml-latest-small --work out/ml \\
      --md results/eval-ml-latest-small.md --png results/eval-ml-latest-small.png

--data-dir (or its old name --movielens) takes a directory in any of three
layouts, detected in this order: MovieLens, ratings.csv + movies.csv
(+ tags.csv) (ml-latest, ml-25m, ...); ml-100k, u.data + u.item; generic,
interactions.csv (user,item,timestamp,signal) + items.csv (item,features:
field=value|..., docs/data-format.md; without it the items have no
features), or a training data directory already made (data.json: the output of
`nextuser prepare` or `nextuser synth-data`, used with its own split).  --search runs the documented hyperparameter search on the
VALIDATION split only and writes its table (--search-md); the main run
uses the configuration in CHOSEN below, picked by that search.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

STAGES = [0, 1, 5, 10, 20]
KS = [20, 50]

# lr and lambdas picked on validation by --search (results/eval-search-ml-latest-small.md);
# the number of epochs is no longer a constant: each model trains until its own
# validation recall stops improving (train --val-every epoch, patience 5, at most
# 60 epochs) and keeps its best checkpoint, on whatever data it is given.
CHOSEN = {"epochs": 60, "lr": 3e-3, "lambdas": "1,0.5,0.1", "batch": 128, "negatives": 1024,
          "select": True}
# The learning rate is tuned per data set: the model is trained at each of
# these (every run selecting its epoch and prior weight on validation) and
# the one with the best validation score is kept; the ablations use its rate.
LR_GRID = (1e-3, 3e-3, 1e-2)

# The hyperparameter grid of --search (base shape, seed fixed).
SEARCH = [
    {"epochs": e, "lr": lr, "lambdas": lam, "batch": 128, "negatives": 1024}
    for e in (5, 10) for lr in (1e-3, 3e-3) for lam in ("1,0.5,0.1", "1,0,0.1")
]

ABLATIONS = [
    ("no prefix", ["--no-prefix"]),
    ("no [CLS]", ["--no-cls"]),
    ("bidirectional", ["--bidirectional"]),
    ("max_users 10", ["--max-users", "10"]),
    # The generator alone: both serving priors kept at 0 (cosine only).
    ("no priors", ["--no-prior"]),
]
BASELINES = ["popular", "feature-popular", "lookalike-mf", "lookalike-cf", "lookalike-emb", "random"]
# The baselines the model must beat: every one but random (chance, for scale).
RIVALS = [b for b in BASELINES if b != "random"]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality"))
from bootstrap import margin_interval  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def slug(name):
    """A method name as a file-name part: "no [CLS]" -> "no_CLS"."""
    return name.replace(" ", "_").replace("[", "").replace("]", "")


def fmt(cmd):
    """A command as the report shows it: paths relative to the working directory."""
    return " ".join(os.path.relpath(c) if os.path.isabs(c) else c for c in cmd)


def run(cmd):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr.strip()))
    return r, time.time() - t0


def prepare_cmd(nu, src, out, seed):
    """The prepare command for the layout of src (see the module's text)."""
    if os.path.exists(os.path.join(src, "ratings.csv")):
        cmd = [nu, "prepare", "--format", "movielens", "--ratings", os.path.join(src, "ratings.csv"),
               "--items", os.path.join(src, "movies.csv")]
        if os.path.exists(os.path.join(src, "tags.csv")):
            cmd += ["--tags", os.path.join(src, "tags.csv")]
    elif os.path.exists(os.path.join(src, "u.data")):
        cmd = [nu, "prepare", "--format", "ml100k", "--ratings", os.path.join(src, "u.data"),
               "--items", os.path.join(src, "u.item")]
    elif os.path.exists(os.path.join(src, "interactions.csv")):
        cmd = [nu, "prepare", "--format", "csv", "--ratings", os.path.join(src, "interactions.csv")]
        if os.path.exists(os.path.join(src, "items.csv")):
            cmd += ["--item-features", os.path.join(src, "items.csv")]
    else:
        sys.exit("%s: no ratings.csv (MovieLens), u.data (ml-100k) or interactions.csv (generic) found" % src)
    return cmd + ["--out", out, "--seed", str(seed)]


def train_cmd(nu, data, out, hp, seed, threads, extra=()):
    return [nu, "train", "--data", data, "--out", out, "--epochs", str(hp["epochs"]),
            "--batch", str(hp["batch"]), "--negatives", str(hp["negatives"]), "--lr", str(hp["lr"]),
            "--lambdas", hp["lambdas"], "--seed", str(seed), "--threads", str(threads),
            *(["--val-every", "epoch", "--patience", "5"] if hp.get("select") else []), *extra]


def eval_cmd(nu, data, split, threads, jsonf, model=None, baseline=None, seed=1):
    cmd = [nu, "eval", "--data", data, "--split", split, "--threads", str(threads),
           "--k", ",".join(map(str, KS)), "--stages", ",".join(map(str, STAGES)), "--json", jsonf]
    if model:
        cmd += ["--model", model]
    if baseline:
        cmd += ["--baseline", baseline, "--seed", str(seed)]
    return cmd


def evaluate(nu, data, split, threads, work, name, **kw):
    jf = os.path.join(work, "eval-%s-%s.json" % (slug(name), split))
    cmd = eval_cmd(nu, data, split, threads, jf, **kw)
    run(cmd)
    with open(jf) as f:
        res = json.load(f)
    return {"command": fmt(cmd), "stages": res["stages"]}


def recall(res, stage, k):
    for s in res["stages"]:
        if s["stage"] == stage:
            return s["recall"][str(k)]
    return None


def items_at(res, stage):
    return next(s["items"] for s in res["stages"] if s["stage"] == stage)


def per_item(res, stage, k=50):
    """(item ids, per-item recall@k) of one stage: eval --json's per_item lists."""
    st = next(x for x in res["stages"] if x["stage"] == stage)
    return st["per_item"]["items"], st["per_item"]["recall"][str(k)]


def paired(a_res, b_res, stage):
    """mean(a - b) and its paired bootstrap 95 % interval over the stage's items."""
    ia, ra = per_item(a_res, stage)
    ib, rb = per_item(b_res, stage)
    if ia != ib:
        sys.exit("per-item lists of stage %d are not over the same items" % stage)
    return margin_interval(ra, rb)


def mean50(res):
    return sum(recall(res, s, 50) for s in STAGES) / len(STAGES)


def do_search(a, nu, data):
    rows = []
    for i, hp in enumerate(SEARCH):
        out = os.path.join(a.work, "search-%d" % i)
        tcmd = train_cmd(nu, data, out, hp, a.seed, a.threads)
        log("search %d/%d: %s" % (i + 1, len(SEARCH), json.dumps(hp)))
        _, secs = run(tcmd)
        res = evaluate(nu, data, "val", a.threads, a.work, "search-%d" % i, model=out)
        rows.append((hp, res, secs, fmt(tcmd)))
        shutil.rmtree(out, ignore_errors=True)
    best = max(rows, key=lambda r: mean50(r[1]))
    lines = ["# Hyperparameter search on the validation split (ml-latest-small)", "",
             "Generated by `%s`." % " ".join(["/usr/bin/python3"] + sys.argv), "",
             "Base shape (d 64, 4 heads, 2 encoder + 1 decoder layers, 50 context users), data seed %d, "
             "training seed %d, %d threads. Criterion: mean recall@50 over stages %s on **validation** items "
             "only; test items are not looked at." % (a.seed, a.seed, a.threads, STAGES), "",
             "| epochs | lr | lambdas (con,ce,aux) | train s | " +
             " | ".join("R@50 s=%d" % s for s in STAGES) + " | mean R@50 |",
             "|---|---|---|---|" + "---|" * len(STAGES) + "---|"]
    for hp, res, secs, _ in rows:
        mark = " **(chosen)**" if hp is best[0] else ""
        lines.append("| %d | %g | %s | %.0f | %s | %.4f%s |" % (
            hp["epochs"], hp["lr"], hp["lambdas"], secs,
            " | ".join("%.4f" % recall(res, s, 50) for s in STAGES), mean50(res), mark))
    lines += ["", "Chosen: `%s` (set as CHOSEN in tools/eval_movielens.py)." % json.dumps(best[0]), ""]
    with open(a.search_md, "w") as f:
        f.write("\n".join(lines))
    log("search: best %s (mean R@50 %.4f); table in %s" % (json.dumps(best[0]), mean50(best[1]), a.search_md))


def plot(png, methods, split, dataset):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, res in methods:
        style = "-o" if name == "model" else ("--^" if name in dict(ABLATIONS) else ":s")
        ax.plot(range(len(STAGES)), [recall(res, s, 50) for s in STAGES], style, label=name,
                linewidth=2.4 if name == "model" else 1.2)
    ax.set_xticks(range(len(STAGES)))
    ax.set_xticklabels([str(s) for s in STAGES])
    ax.set_xlabel("stage s (context users known)")
    ax.set_ylabel("Recall@50")
    ax.set_title("Item cold start, %s, %s items" % (dataset, split))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def table(methods, k):
    head = "| method | " + " | ".join("s=%d" % s for s in STAGES) + " |"
    lines = [head, "|---|" + "---|" * len(STAGES)]
    for name, res in methods:
        lines.append("| %s | %s |" % (name, " | ".join("%.4f" % recall(res, s, k) for s in STAGES)))
    return lines


def margins(methods, rivals=None):
    """Per stage: the model minus the strongest rival there (by recall@50),
    with the paired bootstrap 95 % interval of that margin."""
    by = dict(methods)
    model = by["model"]
    out = []
    for s in STAGES:
        pool = [(n, by[n]) for n in (rivals or RIVALS) if n in by]
        n, r = max(pool, key=lambda nr: recall(nr[1], s, 50))
        d, lo, hi = paired(model, r, s)
        out.append((s, n, recall(r, s, 50), d, lo, hi))
    return out


def verdict(lo, hi):
    return "ahead (interval above 0)" if lo > 0 else ("behind (interval below 0)" if hi < 0
                                                      else "tie (interval spans 0)")


def margin_lines(methods):
    L = ["| stage | strongest baseline (R@50) | model minus it | 95 % interval | verdict |",
         "|---|---|---|---|---|"]
    for s, n, rv, d, lo, hi in margins(methods):
        L.append("| %d | %s (%.4f) | %+.4f | [%+.4f, %+.4f] | %s |" % (s, n, rv, d, lo, hi,
                                                                      verdict(lo, hi)))
    return L


def ablation_lines(methods):
    by = dict(methods)
    L = ["| variant | " + " | ".join("s=%d" % s for s in STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for name, _ in ABLATIONS:
        cells = []
        for s in STAGES:
            d, lo, hi = paired(by["model"], by[name], s)
            cells.append("%+.3f [%+.3f, %+.3f]" % (d, lo, hi))
        L.append("| model minus %s | %s |" % (name, " | ".join(cells)))
    return L


def prefix_text(data):
    with open(os.path.join(data, "data.json")) as f:
        fields = json.load(f).get("prefix_fields", [])
    return ", ".join("%s (%s)" % (x["name"], x["kind"]) for x in fields) or "none"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nextuser", default="build/nextuser")
    ap.add_argument("--data-dir", "--movielens", dest="data_dir", default="../shared/data/ml-latest-small",
                    help="a data directory: ratings.csv+movies.csv[+tags.csv] (MovieLens), u.data+u.item "
                         "(ml-100k) or interactions.csv[+items.csv] (generic)")
    ap.add_argument("--work", default="out/ml", help="prepared data, models and eval JSON go here")
    ap.add_argument("--seed", type=int, default=1, help="split seed and training seed [1]")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--md", help="write the Markdown report here")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--png", help="write the recall@50 plot (test split) here")
    ap.add_argument("--search", action="store_true", help="run the hyperparameter search on validation")
    ap.add_argument("--search-md", default="results/eval-search-ml-latest-small.md")
    a = ap.parse_args()
    nu = os.path.abspath(a.nextuser)
    if not os.path.isdir(a.data_dir):
        sys.exit("%s: no such directory (download a MovieLens dataset, or pass --data-dir)" % a.data_dir)
    os.makedirs(a.work, exist_ok=True)
    t_start = time.time()
    if os.path.exists(os.path.join(a.data_dir, "data.json")):
        # Already a training data directory (prepare's or synth-data's output):
        # its own split is used as it is.
        data = a.data_dir
        pcmd = ["(already a data directory: %s)" % fmt([os.path.abspath(data)])]
    else:
        data = os.path.join(a.work, "data")
        pcmd = prepare_cmd(nu, a.data_dir, data, a.seed)
        r, _ = run(pcmd)
        log(r.stderr.strip() or r.stdout.strip())
    if a.search:
        do_search(a, nu, data)
        return

    models = [("model", [])] + ABLATIONS
    trained, tcmds = {}, {}

    def train(name, extra, hp, out):
        cmd = train_cmd(nu, data, out, hp, a.seed, a.threads, extra)
        log("train %s (lr %g) ..." % (name, hp["lr"]))
        r, secs = run(cmd)
        kept = re.search(r"kept the model of step (\d+) \(validation recall@50 ([0-9.]+), "
                         r"prior_weight ([0-9.e+-]+), feature_prior_weight ([0-9.e+-]+)\)", r.stderr)
        if not kept:
            sys.exit("%s: no validation summary in its output:\n%s" % (fmt(cmd), r.stderr[-500:]))
        return fmt(cmd), secs, kept.group(1), "%s, feature_prior_weight %s" % (kept.group(3), kept.group(4))

    # The learning rate, on validation: `nextuser tune` trains the model at each
    # rate of LR_GRID (each run choosing its epoch and prior weight) and keeps
    # the best.  tune uses the default loss weights, which CHOSEN keeps.
    final = os.path.join(a.work, "model-model")
    tune_json = os.path.join(a.work, "tune.json")
    tcmd = [nu, "tune", "--data", data, "--out", final, "--lrs", ",".join("%g" % x for x in LR_GRID),
            "--epochs", str(CHOSEN["epochs"]), "--batch", str(CHOSEN["batch"]),
            "--negatives", str(CHOSEN["negatives"]), "--patience", "5", "--seed", str(a.seed),
            "--threads", str(a.threads), "--json", tune_json]
    log("tune the learning rate of the model (%s) ..." % ", ".join("%g" % x for x in LR_GRID))
    r, secs = run(tcmd)
    with open(tune_json) as f:
        tuned = json.load(f)
    chosen = next(c for c in tuned["candidates"] if c["lr"] == tuned["chosen_lr"])
    hp = dict(CHOSEN, lr=tuned["chosen_lr"])
    trained["model"] = final
    tcmds["model"] = (fmt(tcmd), secs, str(chosen["step"]), "%g, feature_prior_weight %g"
                      % (chosen["prior_weight"], chosen["feature_prior_weight"]))
    for name, extra in ABLATIONS:
        out = os.path.join(a.work, "model-" + slug(name))
        tcmds[name] = train(name, extra, hp, out)
        trained[name] = out
    with open(os.path.join(data, "users.txt")) as f:
        n_users = sum(1 for line in f if line.strip())
    report = {"prepare": fmt(pcmd), "chosen": hp, "seed": a.seed, "users": n_users, "train": tcmds,
              "prefix": prefix_text(data), "splits": {},
              "lr_tuning": [{"lr": c["lr"], "val_score": c["score"], "seconds": c["seconds"]}
                            for c in tuned["candidates"] if c["ran"]]}
    for split in ("val", "test"):
        methods = []
        for name, _ in models:
            log("eval %s on %s ..." % (name, split))
            methods.append((name, evaluate(nu, data, split, a.threads, a.work, name, model=trained[name])))
        for b in BASELINES:
            log("eval %s on %s ..." % (b, split))
            methods.append((b, evaluate(nu, data, split, a.threads, a.work, b, baseline=b, seed=a.seed,
                                        model=trained["model"] if b == "lookalike-emb" else None)))
        report["splits"][split] = {n: r for n, r in methods}
    total = time.time() - t_start
    report["seconds"] = total
    log("done in %.0f s" % total)

    test = list(report["splits"]["test"].items())
    val = list(report["splits"]["val"].items())
    for split, methods in (("val", val), ("test", test)):
        print("%s: recall@50 by stage %s" % (split, STAGES))
        for line in table(methods, 50):
            print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    if a.png:
        plot(a.png, test, "test", os.path.basename(os.path.normpath(a.data_dir)))
    if a.md:
        write_md(a, report, val, test, total)


def write_md(a, report, val, test, total):
    model_test = dict(test)["model"]
    L = ["# Cold-start evaluation on %s" % os.path.basename(os.path.normpath(a.data_dir)), "",
         "The protocol of docs/evaluation.md: items split 70/10/20 at random (seed %d); at stage s the "
         "context is an item's first s positive users (rating >= 4) in time order, the targets all its "
         "later positive users; every user is scored, context users excluded; Recall@K averaged over "
         "items with at least s+1 positives. Hyperparameters were chosen on validation only "
         "(learning rate: by `nextuser tune` on this data's validation items; loss weights: "
         "results/eval-search-ml-latest-small.md; epochs and the two prior weights: by each training run "
         "on this data's validation items); **test is reported once**, "
         "below." % a.seed, "",
         "## Reproduce", "", "```",
         " ".join(["/usr/bin/python3"] + [os.path.relpath(sys.argv[0])] + sys.argv[1:]), "```", "",
         "It ran in %.0f s on this machine (2 cores, %d threads): prepare, %d trainings, %d evaluations. "
         "The individual commands it ran:" % (total, a.threads, len(LR_GRID) + len(ABLATIONS),
                                              2 * (1 + len(ABLATIONS) + len(BASELINES))), "", "```", report["prepare"]]
    for name, (cmd, secs, step, weight) in report["train"].items():
        L.append("%s   # %s, %.0f s, kept step %s, prior_weight %s" % (cmd, name, secs, step, weight))
    L += ["%s   # and likewise --baseline %s, --model for each ablation, --split val"
          % (dict(test)["model"]["command"], "|".join(BASELINES)), "```", "",
          "Training: base shape (d 64, 4 heads, 2 encoder + 1 decoder layers, 50 context users, "
          "prefix = %s), %s, seed %d. Each model trains until its validation recall@50 stops "
          "improving and keeps its best checkpoint and the weights of its popularity prior and feature "
          "prior (`train --val-every epoch`; results/quality.md, section 9). The learning rate was tuned on validation: %s; the ablations use the chosen "
          "rate." % (report["prefix"], json.dumps(report["chosen"]), a.seed,
                     ", ".join("lr %g: %.4f (%.0f s)" % (t["lr"], t["val_score"], t["seconds"])
                               for t in report["lr_tuning"])), "",
          "## Test split (reported once)", "",
          "Items per stage: " + ", ".join("s=%d: %d" % (s, items_at(model_test, s)) for s in STAGES), "",
          "### Recall@50", ""] + table(test, 50) + ["", "### Recall@20", ""] + table(test, 20)
    L += ["", "### Margins (recall@50, test)", "",
          "The model minus the strongest baseline at each stage (every baseline but random; at stage 0 "
          "too), with a paired bootstrap 95 % interval over the stage's items (2,000 resamples, seeded; "
          "tools/quality/bootstrap.py):", ""] + margin_lines(test)
    L += ["", "### Ablations (recall@50, test)", "",
          "The model minus each variant, with the same paired 95 % intervals (positive: the removed "
          "part helps):", ""] + ablation_lines(test)
    if a.png:
        L += ["", "![recall@50 by stage](%s)" % os.path.relpath(a.png, os.path.dirname(os.path.abspath(a.md)))]
    L += ["", "## Validation split (where the choices were made)", "",
          "Items per stage: " + ", ".join("s=%d: %d" % (s, items_at(dict(val)["model"], s)) for s in STAGES),
          "", "### Recall@50", ""] + table(val, 50) + ["", "### Recall@20", ""] + table(val, 20)
    L += ["", "### Margins (recall@50, validation)", ""] + margin_lines(val)
    L += ["", "## Notes", "",
          "- *lookalike-emb* averages the context users' rows of the trained model's user table. Those "
          "rows are trained as the generator's *targets*, not as a space where the mean of a few users "
          "points at their neighbours, so it is weak; it falls back to Popular at stage 0.",
          "- *lookalike-cf* ranks users by summed cosine co-engagement over training positives; stage 0 "
          "uses the users of the 20 training items most similar by genre, Popular fills the rest.",
          "- *lookalike-mf* is a lookalike system on matrix-factorisation embeddings (implicit ALS on "
          "the training positives, d 64, 15 iterations, alpha 40, lambda 0.1: textbook values, not "
          "tuned): users by cosine to the mean of the context users' factors; Popular at stage 0.",
          "- *feature-popular* ranks users by their positives on training items that share the new "
          "item's feature values (weighted by how many values they share); it ignores the context.",
          "- Ablations are trained with the same hyperparameters and seed; *no prefix* reads no item "
          "features (stage 0 then carries no item information at all: a learned constant query), "
          "*max_users 10* sees only the 10 most recent context users.",
          "- The data has %d users: with K = 50 a method ranks %.1f%% of all users, so Popular is a "
          "strong baseline on small datasets." % (report["users"], 5000.0 / report["users"]), ""]
    with open(a.md, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
