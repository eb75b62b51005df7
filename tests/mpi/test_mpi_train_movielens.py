"""Sharded training to the end on real data (issue 15): ml-latest-small
trained with validation (60 epochs at most, patience 5) at R = 2 ranks x 1
thread and by one process with 2 threads; test recall@50 at every stage
within 0.01 of each other (the two runs are in fact the same bit for bit:
same chunks, same sums).  SKIP when ../shared/data (or NU_SHARED_DATA) has
no ml-latest-small.

usage: test_mpi_train_movielens.py NEXTUSER MPIRUN
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

exe, mpirun = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
shared = os.environ.get("NU_SHARED_DATA", os.path.join(here, "..", "..", "..", "shared", "data"))
sys.path.insert(0, os.path.join(here, ".."))
from checks import check, summary  # noqa: E402

sys.path.insert(0, here)
import mpi_jobs  # noqa: E402


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    check(r.returncode == 0, "%s: %s" % (" ".join(cmd), r.stderr[-600:]))
    return r


def main():
    ml = os.path.join(shared, "ml-latest-small")
    if not os.path.exists(os.path.join(ml, "ratings.csv")):
        print("SKIP ml-latest-small: %s not found (set NU_SHARED_DATA)" % ml)
        return 0
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="nu_mpi_ml_")
    data = os.path.join(tmp, "data")
    run([exe, "prepare", "--format", "movielens", "--ratings", os.path.join(ml, "ratings.csv"),
         "--items", os.path.join(ml, "movies.csv"), "--tags", os.path.join(ml, "tags.csv"),
         "--out", data, "--seed", "1"])
    train = [exe, "train", "--data", data, "--epochs", "60", "--batch", "128", "--negatives", "1024",
             "--lr", "0.003", "--seed", "1", "--val-every", "epoch", "--patience", "5"]
    launch = mpi_jobs.launcher(mpirun, 2)
    run(train + ["--out", os.path.join(tmp, "single"), "--threads", "2"])
    run(launch + train + ["--out", os.path.join(tmp, "sharded"), "--threads", "1"])
    recall = {}
    for m in ("single", "sharded"):
        js = os.path.join(tmp, "eval-%s.json" % m)
        run([exe, "eval", "--data", data, "--split", "test", "--model", os.path.join(tmp, m), "--k", "50",
             "--stages", "0,1,5,10,20", "--threads", "2", "--json", js])
        with open(js) as f:
            recall[m] = {s["stage"]: s["recall"]["50"] for s in json.load(f)["stages"]}
    for stage in sorted(recall["single"]):
        a, b = recall["single"][stage], recall["sharded"].get(stage, -1)
        print("stage %2d: recall@50 one process %.4f, R = 2 %.4f" % (stage, a, b))
        check(abs(a - b) <= 0.01, "stage %d: R = 2 recall@50 %.4f vs one process %.4f" % (stage, b, a))
    check(len(recall["single"]) == 5, "five stages evaluated")
    shutil.rmtree(tmp, ignore_errors=True)
    print("mpi train movielens: %.1f s" % (time.time() - t0))
    return summary("mpi_train_movielens")


if __name__ == "__main__":
    sys.exit(main())
