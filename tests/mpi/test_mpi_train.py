"""Data-parallel training with row-sharded tables under mpirun (docs/mpi.md,
"Training"):

* R ranks x 1 thread take the same chunks of each batch as one process with
  R threads and sum them in the same order, so their steps are equal bit
  for bit: model, optimiser moments and state, R = 2, 3, 4 (stronger than
  the issue's 1e-5); with validation (process 0 validates the gathered model
  and the others follow its decisions) too;
* a run stopped and resumed (same R, and another R: re-sharding) equals the
  uninterrupted one bit for bit;
* the sharded checkpoint set (OUT.shards) resumes on another R and becomes
  one process's directory byte for byte;
* a rank killed with SIGKILL mid-training leaves the last complete
  checkpoint in --out and a complete set named by the manifest, and
  training resumes from either;
* an error on the ranks (a missing data directory) ends every rank with the
  message, no hang.

usage: test_mpi_train.py NEXTUSER MPIRUN
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

exe, mpirun = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_jobs  # noqa: E402

LIMIT = 120  # seconds for one job: a hang fails the test instead of blocking it
FILES = ["model.safetensors", "optimizer.safetensors", "train_state.json"]


def launcher(ranks):
    return mpi_jobs.launcher(mpirun, ranks)


def run(args, ranks=None):
    return mpi_jobs.run(exe, mpirun, args, ranks, LIMIT)


def same_dirs(a, b):
    for f in FILES:
        with open(os.path.join(a, f), "rb") as x, open(os.path.join(b, f), "rb") as y:
            if x.read() != y.read():
                return False
    return True


def main():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="nu_mpi_train_")
    data = os.path.join(tmp, "data")
    r = run(["synth-data", "--users", "3000", "--items", "600", "--out", data])
    check(r.returncode == 0, "synth-data: " + r.stderr)
    common = ["train", "--data", data, "--batch", "64", "--no-prior"]
    out = lambda name: os.path.join(tmp, name)  # noqa: E731

    # Steps equal to one process with as many threads, bit for bit.
    for R in (2, 3, 4):
        a = run(common + ["--out", out("single%d" % R), "--max-steps", "2", "--threads", str(R)])
        b = run(common + ["--out", out("sharded%d" % R), "--max-steps", "2", "--threads", "1"], R)
        check(a.returncode == 0 and b.returncode == 0, "R=%d: %s %s" % (R, a.stderr, b.stderr))
        check(a.returncode == 0 and b.returncode == 0 and same_dirs(out("single%d" % R), out("sharded%d" % R)),
              "R=%d: the sharded step differs from one process's with %d threads" % (R, R))
        check(("rank %d of %d: per step sent" % (R - 1, R)) in b.stderr,
              "R=%d: each rank's traffic is reported: %s" % (R, b.stderr[-400:]))

    # Validation: process 0 validates, every process follows.
    a = run(common + ["--out", out("val1"), "--max-steps", "6", "--val-every", "3", "--threads", "2"])
    b = run(common + ["--out", out("val2"), "--max-steps", "6", "--val-every", "3", "--threads", "1"], 2)
    check(a.returncode == 0 and b.returncode == 0, "validation runs: %s %s" % (a.stderr, b.stderr))
    check(b.stderr.count("validation recall@50") == a.stderr.count("validation recall@50") >= 2,
          "validation lines: %s" % b.stderr)
    check(a.returncode == 0 and b.returncode == 0 and same_dirs(out("val1"), out("val2")),
          "validated sharded run differs from one process")

    # Resume: same R, and re-sharded to another R, bit for bit.
    full = run(common + ["--out", out("full"), "--max-steps", "4", "--threads", "1"], 2)
    half = run(common + ["--out", out("half"), "--max-steps", "2", "--threads", "1"], 2)
    rest = run(common + ["--out", out("half"), "--resume", out("half"), "--max-steps", "4", "--threads", "1"], 2)
    check(full.returncode == half.returncode == rest.returncode == 0, "resume runs: " + rest.stderr)
    check(same_dirs(out("full"), out("half")), "resumed sharded run differs from the uninterrupted one")
    shutil.copytree(out("sharded2"), out("from2"))
    r4 = run(common + ["--out", out("from2"), "--resume", out("from2"), "--max-steps", "4", "--threads", "1"], 4)
    s4 = run(common + ["--out", out("single2"), "--resume", out("single2"), "--max-steps", "4", "--threads", "4"])
    check(r4.returncode == 0 and s4.returncode == 0, "re-shard runs: %s %s" % (r4.stderr, s4.stderr))
    check(same_dirs(out("from2"), out("single2")),
          "a checkpoint of 2 ranks resumed on 4 differs from one process resumed with 4 threads")

    # The sharded set (OUT.shards: each rank its rows, the manifest last):
    # resumed on 4 ranks it equals the full copy resumed on one process with
    # 4 threads; on one process at its own step it becomes that process's
    # directory, byte for byte the full copy.
    check(os.path.exists(os.path.join(out("half") + ".shards", "manifest.json")), "the set's manifest")
    s4b = run(common + ["--out", out("fromset"), "--resume", out("half") + ".shards", "--max-steps", "6",
                        "--threads", "1"], 4)
    shutil.copytree(out("half"), out("half1"))
    s1b = run(common + ["--out", out("half1"), "--resume", out("half1"), "--max-steps", "6", "--threads", "4"])
    check(s4b.returncode == 0 and s1b.returncode == 0, "set resumes: %s %s" % (s4b.stderr, s1b.stderr))
    check(same_dirs(out("fromset"), out("half1")), "a set of 2 ranks resumed on 4 differs from one process")
    conv = run(["train", "--data", data, "--resume", out("half") + ".shards", "--out", out("conv"),
                "--max-steps", "4", "--threads", "1"])
    check(conv.returncode == 0 and same_dirs(out("conv"), out("half")),
          "the set as one process's directory differs from the full copy: " + conv.stderr)

    # SIGKILL to one rank mid-training: the last complete checkpoint stays.
    kill_out = out("killed")
    cmd = launcher(2) + [exe] + common + ["--out", kill_out, "--epochs", "50", "--checkpoint-every", "3",
                                          "--threads", "1"]
    job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not os.path.exists(os.path.join(kill_out, "train_state.json")):
        time.sleep(0.05)
    time.sleep(0.3)  # a few more steps, maybe inside a checkpoint
    ranks = subprocess.run(["pgrep", "-P", str(job.pid), "-f", "nextuser"], capture_output=True, text=True)
    pids = [int(p) for p in ranks.stdout.split()]
    check(len(pids) == 2, "two rank processes under mpirun: %s" % pids)
    if pids:
        os.kill(pids[-1], signal.SIGKILL)
    try:
        job.wait(timeout=60)
    except subprocess.TimeoutExpired:
        job.kill()
        check(False, "mpirun did not end after a rank was killed")
    check(job.returncode != 0, "the job fails when a rank dies")
    with open(os.path.join(kill_out, "train_state.json")) as f:
        step = int(json.load(f)["step"])
    check(step > 0 and step % 3 == 0, "the checkpoint left is a complete one (step %d)" % step)
    with open(os.path.join(kill_out + ".shards", "manifest.json")) as f:
        named = json.load(f)["set"]
    check(int(named.split("-")[1]) % 3 == 0 and int(named.split("-")[1]) >= step,
          "the manifest names a complete set (%s)" % named)
    from_set = run(common + ["--out", out("killed_set"), "--resume", kill_out + ".shards",
                             "--max-steps", str(int(named.split("-")[1]) + 3), "--threads", "1"], 2)
    check(from_set.returncode == 0, "resume from the killed run's set: " + from_set.stderr)
    leftovers = [n for n in os.listdir(tmp) if n.startswith("killed.") and "lock" not in n and
                 not n.endswith(".shards")]
    back = run(common + ["--out", kill_out, "--resume", kill_out, "--max-steps", str(step + 3),
                         "--threads", "1"], 2)
    check(back.returncode == 0, "resume after the kill: " + back.stderr)
    check(not [n for n in os.listdir(tmp) if n.startswith("killed.") and "lock" not in n and
               not n.endswith(".shards")],
          "leftovers of the killed run cleaned by the next: %s" % leftovers)

    # An error on every rank: one message, every rank ends, no hang.
    r = run(["train", "--data", out("nothing"), "--out", out("x"), "--threads", "1"], 2)
    check(r.returncode != 0 and r.returncode != 124, "missing data: rc %d" % r.returncode)
    check("nothing" in r.stderr, "the message names the data directory: " + r.stderr)

    shutil.rmtree(tmp, ignore_errors=True)
    print("mpi train: %.1f s" % (time.time() - t0))
    return summary("mpi_train")


if __name__ == "__main__":
    sys.exit(main())
