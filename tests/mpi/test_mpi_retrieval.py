"""Sharded retrieval under mpirun (docs/mpi.md): `mpirun -np R nextuser
search` and `retrieve`, R = 1..4, write exactly the single-process output
files (byte for byte) for fp32, bf16 and int8 -- with a zero query (every
score ties), one-axis queries, exclusions, histories past max_users and a
last batch shorter than the others; a failure on one rank (a corrupt row in
its shard only), a missing table and a bad query each end the job with the
message and a non-zero status, no hang and no output file.

usage: test_mpi_retrieval.py NEXTUSER MPIRUN
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

exe, mpirun = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_jobs  # noqa: E402

LIMIT = 60  # seconds for one job: a hang fails the test instead of blocking it


def launcher(ranks):
    return mpi_jobs.launcher(mpirun, ranks)


def run(args, ranks=None):
    return mpi_jobs.run(exe, mpirun, args, ranks, LIMIT)


def same_file(a, b):
    with open(a, "rb") as x, open(b, "rb") as y:
        return x.read() == y.read()


def main():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="nu_mpi_")
    model = os.path.join(tmp, "m")
    U, d = 3001, 32
    r = run(["synth", "--users", str(U), "--dim", str(d), "--out", model, "--seed", "3"])
    check(r.returncode == 0, "synth: " + r.stderr)
    rng = random.Random(1)
    queries = os.path.join(tmp, "q.tsv")
    with open(queries, "w") as f:
        for i in range(37):
            v = [rng.gauss(0, 1) for _ in range(d)]
            if i == 5:
                v = [0.0] * d  # every user scores 0: the tie rule decides alone
            if i in (6, 7):
                v = [0.0] * d
                v[i] = 1.0  # one axis
            f.write("q%d\t%s\n" % (i, " ".join("%.6g" % x for x in v)))
    items = os.path.join(tmp, "items.jsonl")
    with open(items, "w") as f:
        for i in range(29):
            users = ["u%d" % rng.randrange(U) for _ in range(rng.randrange(0, 70))]
            f.write(json.dumps({"id": "it%d" % i, "users": users}) + "\n")

    for cmd, inp, path in (("search", "--queries", queries), ("retrieve", "--items", items)):
        for dt in ("fp32", "bf16", "int8"):
            common = [cmd, "--model", model, inp, path, "--dtype", dt, "--batch", "8", "--k", "50"]
            if dt != "fp32":
                common += ["--pool", "50"]  # near k: which candidates make the pool matters
            single = os.path.join(tmp, "%s-%s-single.csv" % (cmd, dt))
            r = run(common + ["--threads", "2", "--out", single])
            check(r.returncode == 0 and "rank" not in r.stderr,
                  "%s %s single process, nothing about MPI: %s" % (cmd, dt, r.stderr))
            for ranks in (1, 2, 3, 4):
                out = os.path.join(tmp, "%s-%s-%d.csv" % (cmd, dt, ranks))
                r = run(common + ["--threads", "1", "--out", out], ranks)
                ok = r.returncode == 0 and os.path.exists(out) and same_file(single, out)
                check(ok, "%s %s: mpirun -np %d writes the single-process file: %s"
                      % (cmd, dt, ranks, r.stderr[-2000:]))
                if ranks == 3:
                    check("rank 2 of 3: rows [2000, 3001)" in r.stderr and "bytes" in r.stderr,
                          "%s %s: the summary gives each rank's rows, times and bytes" % (cmd, dt))

    # One rank fails alone: a NaN in a row of rank 2's shard (only it reads those rows).
    bad = os.path.join(tmp, "bad")
    shutil.copytree(model, bad)  # copy2: the model file keeps its mtime, so the table is current
    table = os.path.join(bad, "user_table.safetensors")
    with open(table, "r+b") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
        begin = hdr["f32"]["data_offsets"][0]
        f.seek(8 + n + begin + 2900 * d * 4)
        f.write(b"\x00\x00\xc0\x7f")  # a NaN in row 2900
    out = os.path.join(tmp, "bad.csv")
    r = run(["search", "--model", bad, "--queries", queries, "--out", out, "--threads", "1"], 3)
    check(r.returncode not in (0, 124) and "rank 2: " in r.stderr and "row 2900" in r.stderr
          and "NaN" in r.stderr and not os.path.exists(out),
          "a bad row in rank 2's shard: its message, non-zero status, no output: rc %d %s"
          % (r.returncode, r.stderr))
    r = run(["search", "--model", bad, "--queries", queries, "--out", out, "--threads", "1"], 2)
    check(r.returncode == 1 and "rank 1: " in r.stderr and "rank 0" not in r.stderr,
          "at R = 2 row 2900 is rank 1's: %s" % r.stderr)
    os.remove(table)
    r = run(["retrieve", "--model", bad, "--items", items, "--out", out, "--threads", "1"], 2)
    check(r.returncode == 1 and "no user table" in r.stderr and r.stderr.count("no user table") == 1
          and not os.path.exists(out),
          "no table file: one message, status 1: %s" % r.stderr)
    nanq = os.path.join(tmp, "nan.tsv")
    with open(nanq, "w") as f:
        f.write("a\t" + " ".join(["0.5"] * (d - 1) + ["nan"]) + "\n")
    r = run(["search", "--model", model, "--queries", nanq, "--out", out, "--threads", "1"], 2)
    check(r.returncode == 1 and "NaN" in r.stderr and not os.path.exists(out),
          "a NaN query (every rank's scan fails): status 1, no output: %s" % r.stderr)
    r = run(["eval", "--help"], 2)
    check(r.returncode == 2 and "run on several MPI ranks" in r.stderr,
          "other commands refuse several ranks: %s" % r.stderr)
    print("%.1f s" % (time.time() - t0))
    shutil.rmtree(tmp, ignore_errors=True)
    return summary("mpi_retrieval")


if __name__ == "__main__":
    sys.exit(main())
