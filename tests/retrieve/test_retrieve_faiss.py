"""Retrieval from the command line against FAISS IndexFlatIP (Debian
python3-faiss): fp32 top-100 ids identical to FAISS (up to exact float
near-ties), bf16 and int8 recall@100 >= 0.99 against exact fp32, exclusions
honoured by retrieve, K > users, NaN queries and stale tables refused.

usage: test_retrieve_faiss.py NEXTUSER
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

exe = sys.argv[1]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args, **kw):
    return subprocess.run([exe, *args], capture_output=True, text=True, **kw)


def read_f32_table(path):
    """The fp32 tensor of a user_table.safetensors, via its JSON header."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
    e = hdr["f32"]
    b, _ = e["data_offsets"]
    return np.memmap(path, dtype="<f4", mode="r", offset=8 + n + b, shape=tuple(e["shape"]))


def read_topk(path):
    out = {}
    with open(path) as f:
        assert f.readline().strip() == "item,rank,user,score"
        for line in f:
            item, rank, user, score = line.strip().split(",")
            out.setdefault(item, []).append((int(user[1:]), float(score)))
    return out


def main():
    try:
        import faiss
    except ImportError:
        print("SKIP: python3-faiss is not installed")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    faiss.omp_set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="nu_retrieve_")
    model = os.path.join(tmp, "m")
    U, d, K = 30000, 64, 100
    r = run("synth", "--users", str(U), "--dim", str(d), "--out", model, "--seed", "7")
    check(r.returncode == 0, "synth: " + r.stderr)
    table = read_f32_table(os.path.join(model, "user_table.safetensors"))
    rng = np.random.default_rng(3)
    Q = rng.standard_normal((40, d)).astype(np.float32)
    qpath = os.path.join(tmp, "q.tsv")
    with open(qpath, "w") as f:
        for i, q in enumerate(Q):
            f.write("q%d\t%s\n" % (i, " ".join("%.9g" % v for v in q)))
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(d)
    index.add(np.ascontiguousarray(table))
    fs, fi = index.search(Qn, K)
    exact = Qn.astype(np.float64) @ np.asarray(table, dtype=np.float64).T

    for batch in ["1", "16"]:
        out = os.path.join(tmp, "fp32-%s.csv" % batch)
        r = run("search", "--model", model, "--queries", qpath, "--k", str(K), "--batch", batch,
                "--threads", "2", "--out", out)
        check(r.returncode == 0, "search fp32: " + r.stderr)
        got = read_topk(out)
        mismatches = 0
        for i in range(len(Q)):
            ours = [u for u, _ in got["q%d" % i]]
            for j, (a, b) in enumerate(zip(ours, fi[i])):
                # A swap is allowed only between scores equal to float rounding.
                if a != b and abs(exact[i, a] - exact[i, b]) > 1e-6:
                    mismatches += 1
        check(mismatches == 0, f"fp32 batch {batch}: top-{K} ids equal FAISS IndexFlatIP ({mismatches} differ)")
        worst = max(abs(s - exact[i, u]) for i in range(len(Q)) for u, s in got["q%d" % i])
        check(worst < 1e-5, f"fp32 scores are cosines (worst error {worst:.2g})")

    truth = [set(np.argsort(-exact[i], kind="stable")[:K]) for i in range(len(Q))]
    for dt in ["bf16", "int8"]:
        out = os.path.join(tmp, dt + ".csv")
        r = run("search", "--model", model, "--queries", qpath, "--k", str(K), "--dtype", dt,
                "--batch", "4", "--out", out)
        check(r.returncode == 0, f"search {dt}: " + r.stderr)
        got = read_topk(out)
        recall = np.mean([len(truth[i] & {u for u, _ in got["q%d" % i]}) / K for i in range(len(Q))])
        check(recall >= 0.99, f"{dt} recall@{K} against exact fp32 = {recall:.4f} >= 0.99")
        print(f"{dt}: recall@{K} {recall:.4f}")

    # retrieve: users in an item's history never come back.
    items = os.path.join(tmp, "items.jsonl")
    with open(items, "w") as f:
        for i in range(20):
            users = ["u%d" % u for u in rng.integers(0, U, 60)]
            f.write(json.dumps({"id": "it%d" % i, "users": users}) + "\n")
    out = os.path.join(tmp, "ret.csv")
    r = run("retrieve", "--model", model, "--items", items, "--k", "200", "--out", out, "--batch", "8")
    check(r.returncode == 0 and "p99" in r.stderr, "retrieve: " + r.stderr)
    got = read_topk(out)
    hist = {}
    for line in open(items):
        o = json.loads(line)
        hist[o["id"]] = {int(u[1:]) for u in o["users"]}
    clean = all(not ({u for u, _ in got[i]} & hist[i]) for i in hist)
    check(clean and all(len(got[i]) == 200 for i in hist), "retrieve leaves out each item's whole history")
    # The history beyond max_users (60 > 50) is excluded too: run it again
    # with the same item whose users are the previous top results.
    top = [u for u, _ in got["it0"][:60]]
    with open(items, "w") as f:
        f.write(json.dumps({"id": "again", "users": ["u%d" % u for u in top]}) + "\n")
    r = run("retrieve", "--model", model, "--items", items, "--k", "100", "--out", out)
    again = {u for u, _ in read_topk(out)["again"]}
    check(r.returncode == 0 and not (again & set(top)), "all 60 history users excluded, not only the last 50")

    # K larger than the number of users: every user once, with a warning.
    small = os.path.join(tmp, "small")
    run("synth", "--users", "30", "--dim", "16", "--out", small, "--seed", "1")
    with open(qpath, "w") as f:
        f.write("a\t" + " ".join(["0.5"] * 16) + "\n")
    r = run("search", "--model", small, "--queries", qpath, "--k", "100", "--out", out)
    rows = read_topk(out)["a"]
    check(r.returncode == 0 and len(rows) == 30 and "exceeds the 30 users" in r.stderr,
          "k > users: 30 rows and a warning: " + r.stderr)
    with open(qpath, "w") as f:
        f.write("a\t" + " ".join(["0.5"] * 15 + ["nan"]) + "\n")
    r = run("search", "--model", small, "--queries", qpath, "--k", "5", "--out", out + "x")
    check(r.returncode == 1 and "NaN" in r.stderr and not os.path.exists(out + "x"),
          "NaN query refused, no output: " + r.stderr)
    # A table made from another version of the model is refused as stale.
    cfg = os.path.join(tmp, "c.json")
    with open(cfg, "w") as f:
        json.dump({"d": 16, "heads": 1, "num_users": 30}, f)
    run("init", "--config", cfg, "--out", os.path.join(tmp, "other"), "--seed", "9")
    os.replace(os.path.join(small, "user_table.safetensors"),
               os.path.join(tmp, "other", "user_table.safetensors"))
    with open(qpath, "w") as f:
        f.write("a\t" + " ".join(["0.5"] * 16) + "\n")
    r = run("search", "--model", os.path.join(tmp, "other"), "--queries", qpath, "--k", "5", "--out", out)
    check(r.returncode == 1 and "stale" in r.stderr, "stale table refused: " + r.stderr)
    r = run("table", "--model", os.path.join(tmp, "other"))
    r2 = run("search", "--model", os.path.join(tmp, "other"), "--queries", qpath, "--k", "5", "--out", out)
    check(r.returncode == 0 and r2.returncode == 0 and "copied from its file" in r2.stderr,
          "after 'nextuser table', --table auto copies a small table: " + r2.stderr)
    r3 = run("search", "--model", os.path.join(tmp, "other"), "--queries", qpath, "--k", "5", "--out",
             out + ".map", "--table", "map")
    check(r3.returncode == 0 and "memory-mapped" in r3.stderr, "--table map maps it: " + r3.stderr)
    with open(out, "rb") as a, open(out + ".map", "rb") as b:
        check(a.read() == b.read(), "copied and mapped tables give the same rows")
    r4 = run("search", "--model", os.path.join(tmp, "other"), "--queries", qpath, "--out", out,
             "--table", "big")
    check(r4.returncode == 2 and "auto, map or copy" in r4.stderr, "--table big: usage error")
    r = run("search", "--model", small, "--queries", qpath, "--k", "0", "--out", out)
    check(r.returncode == 2, "--k 0 is a usage error")

    subprocess.run(["rm", "-rf", tmp])
    return summary()


sys.exit(main())
