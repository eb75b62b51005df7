"""Issue 17, crash consistency: `nextuser train`, `table` and `prepare` are
killed with SIGKILL at seeded random moments (N >= 200 kills in all) on a
tiny synthetic data set, and after every kill:
  - --out is absent or a complete state (train: a checkpoint) that a run
    without kills wrote, file for file and byte for byte, and never an
    earlier state than the one before the kill (the old or a new state);
  - whatever a killed run left beside --out (TARGET.tmp.PID.N, TARGET.old.*,
    the lock file) or inside it (FILE.tmp.PID.N) is gone after the next run
    that ends;
  - train: resuming from what is there, and running to the end, gives files
    byte-identical to the uninterrupted run; table and prepare: the next run
    gives the reference output.
Most of a tiny training run's time is spent in fsync, in the checkpoint
writes, so uniform delays land in the middle of writes and swaps often;
table and prepare write once, at the end, so half of their delays fall in
the last half of the run.  The test counts the kills that left a temporary
directory or file behind, and needs some for every command.  The delays
scale with the reference runs' times and adapt as the disk's speed changes.

usage: crash_consistency.py NEXTUSER [SEED]
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

exe = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 17
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402

KILLS = {"train": 110, "table": 50, "prepare": 50}  # 210 kills in all
CHAIN = 4            # kills in a row before a run is let finish
TIME_LIMIT = 240.0   # seconds: a slower run fails rather than hang

TMP_FILE = re.compile(r"\.tmp\.[0-9]+\.[0-9]+$")
rng = random.Random(seed)
t_start = time.time()
tmp = tempfile.mkdtemp(prefix="nu_crash_")


def run(*args):
    r = subprocess.run([exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print("FAIL: nextuser %s: rc %d: %s" % (" ".join(args), r.returncode, r.stderr[-400:]))
        sys.exit(1)


def run_killed(args, delay):
    """Runs nextuser, sends SIGKILL after `delay` seconds unless it ended;
    returns (killed, returncode, pid, stderr)."""
    err = tempfile.TemporaryFile()
    p = subprocess.Popen([exe, *args], stdout=subprocess.DEVNULL, stderr=err)
    time.sleep(delay)
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
    p.wait()
    err.seek(0)
    return p.returncode == -signal.SIGKILL, p.returncode, p.pid, err.read().decode(errors="replace")


def state(path):
    """None when absent, else {file name: sha256} (a subdirectory or a link
    is a name with no hash: it never matches a reference).  The temporary
    file of a killed write (FILE.tmp.PID.N) is no part of the state: it is a
    leftover, which the next run must remove (leftovers())."""
    if not os.path.lexists(path):
        return None
    out = {}
    for name in sorted(n for n in os.listdir(path) if not TMP_FILE.search(n)):
        full = os.path.join(path, name)
        if os.path.isfile(full) and not os.path.islink(full):
            with open(full, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
        else:
            out[name] = "not a regular file"
    return out


def describe(out):
    """The files of `out`, and the loop state when it is a checkpoint."""
    if not os.path.isdir(out):
        return "absent"
    text = ", ".join(sorted(os.listdir(out)))
    try:
        with open(os.path.join(out, "train_state.json")) as f:
            st = json.load(f)
        text += "; step %s epoch %s position %s" % (st["step"], st["epoch"], st["position"])
    except (OSError, ValueError, KeyError):
        pass
    return text


def leftovers(out):
    """What interrupted writes leave: siblings TARGET.tmp.*, TARGET.old.*,
    TARGET.nextuser-lock, and FILE.tmp.* inside the target."""
    parent, base = os.path.split(out)
    found = {os.path.join(parent, n) for n in os.listdir(parent)
             if n.startswith(base + ".tmp.") or n.startswith(base + ".old.")
             or n == base + ".nextuser-lock"}
    if os.path.isdir(out):
        found |= {os.path.join(out, n) for n in os.listdir(out) if TMP_FILE.search(n)}
    return found


def timed(args, reps=2):
    """The shortest of `reps` runs (the same output each time): the scale of
    the kill delays, robust to a slow fsync now and then."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.time()
        run(*args)
        best = min(best, time.time() - t0)
    return best


class Tally:
    """Counts, and the scale of the kill delays: the reference run's time,
    shrunk when a run ends before its kill and grown slowly with each kill,
    as fsync's speed on a shared disk varies from minute to minute."""
    def __init__(self, scale, late):
        self.kills = self.in_write = self.finished = self.resumed = 0
        self.scale = scale
        self.late = late  # the share of delays drawn from the last half

    def delay(self):
        """Uniform over the run, or (table, prepare: their one write comes
        at the end) over its last half."""
        lo = 0.5 * self.scale if rng.random() < self.late else 0.0
        return rng.uniform(lo, self.scale)


def killed_trial(name, tally, args, delay, before, allowed, out):
    """One run killed after `delay`: --out must be one of `allowed` states
    (index >= that of `before`: the old state or a newer one)."""
    killed, rc, pid, err = run_killed(args, delay)
    after = state(out)
    idx = allowed.index(after) if after in allowed else -1
    if before not in allowed:
        return killed, after  # already reported
    if killed:
        tally.kills += 1
        tally.scale *= 1.03
        tally.in_write += any(".tmp.%d." % pid in p for p in leftovers(out))
        check(idx >= allowed.index(before),
              "%s killed after %.3f s: --out is neither the old nor a new complete state "
              "(%s)" % (name, delay, describe(out)))
    else:
        tally.finished += 1
        tally.scale *= 0.85
        check(rc == 0 and idx == len(allowed) - 1,
              "%s not killed (ended after < %.3f s): rc %d, final state %s: %s"
              % (name, delay, rc, idx == len(allowed) - 1, err[-300:]))
    return killed, after


def finish_and_compare(name, tally, args, out, final, before_leftovers):
    """The run after some kills, to the end: the reference result, and no
    leftovers of the killed runs."""
    r = subprocess.run([exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tally.resumed += 1
    check(r.returncode == 0, "%s after kills: rc %d: %s" % (name, r.returncode, r.stderr[-300:]))
    check(state(out) == final,
          "%s after kills: --out differs from the uninterrupted run" % name)
    left = leftovers(out)
    check(not left, "%s after kills: leftovers survive the next run: %s (before it: %s)"
          % (name, sorted(left), sorted(before_leftovers)))


# ---- inputs and references (no kills) ----

data = os.path.join(tmp, "data")
run("synth-data", "--users", "120", "--items", "60", "--seed", "2", "--out", data)
cfg = os.path.join(tmp, "cfg.json")
with open(cfg, "w") as f:
    json.dump({"d": 8, "heads": 1, "enc_layers": 1, "dec_layers": 1, "max_users": 6}, f)
EVERY = 4
train_args = ["--data", data, "--config", cfg, "--epochs", "2", "--batch", "8",
              "--negatives", "16", "--threads", "1", "--seed", "3",
              "--checkpoint-every", str(EVERY)]

full = os.path.join(tmp, "full")
t_train = timed(["train", *train_args, "--out", full])
with open(os.path.join(full, "train_state.json")) as f:
    total_steps = int(json.load(f)["step"])
# Every checkpoint the uninterrupted run writes, in order: a run stopped at
# step s (--max-steps) writes the one the full run writes every EVERY steps
# (at the last step too, the epoch still unfinished), then the final one.
chain_dir = os.path.join(tmp, "chain")
train_states = [None]
for s in list(range(EVERY, total_steps + 1, EVERY)) + [None]:
    resume = ["--resume", chain_dir] if os.path.exists(chain_dir) else []
    stop = ["--max-steps", str(s)] if s else []
    run("train", *train_args, "--out", chain_dir, *stop, *resume)
    train_states.append(state(chain_dir))
check(train_states[-1] == state(full),
      "stopping and resuming at every checkpoint gives the uninterrupted run")

# The model directory `table` writes into: 20000 users (a table of 4.5 MB
# with every encoding), so that a fair share of the kills land in its write.
table_cfg = os.path.join(tmp, "table_cfg.json")
with open(table_cfg, "w") as f:
    json.dump({"d": 32, "heads": 2, "enc_layers": 1, "dec_layers": 1, "max_users": 6,
               "prefix_fields": []}, f)
base_model = os.path.join(tmp, "base_model")
run("init", "--config", table_cfg, "--users", "20000", "--out", base_model)
model = os.path.join(tmp, "model")
shutil.copytree(base_model, model)
table_dtypes = ["fp32", "all"]
table_states = {}
t_table = 0.0
for dt in table_dtypes:
    ref = os.path.join(tmp, "model_" + dt)
    shutil.copytree(model, ref)
    t_table = max(t_table, timed(["table", "--model", ref, "--dtypes", dt]))
    table_states[dt] = state(ref)

ratings = os.path.join(tmp, "ratings.csv")
with open(ratings, "w") as f:
    f.write("user,item,timestamp,signal\n")
    for i in range(3000):
        f.write("u%d,i%d,%d,%s\n" % (rng.randrange(150), rng.randrange(80), 1000 + i,
                                     rng.choice(["positive", "exposed", "4", "1"])))
prep_seeds = ["1", "2"]
prep_states = {}
t_prep = 0.0
for ps in prep_seeds:
    ref = os.path.join(tmp, "prep_" + ps)
    t_prep = max(t_prep, timed(["prepare", "--format", "csv", "--ratings", ratings,
                                "--seed", ps, "--out", ref]))
    prep_states[ps] = state(ref)
check(prep_states["1"] != prep_states["2"] and table_states["fp32"] != table_states["all"],
      "the two references of table and of prepare differ (old and new are told apart)")
print("references: train %.3f s (%d steps, a checkpoint every %d), table %.3f s, "
      "prepare %.3f s" % (t_train, total_steps, EVERY, t_table, t_prep))

# ---- train: chains of kills, each resuming from what the last one left ----

tally = {"train": Tally(1.1 * t_train, 0.0), "table": Tally(1.5 * t_table, 0.5),
         "prepare": Tally(1.5 * t_prep, 0.5)}
out = os.path.join(tmp, "train_out")
while tally["train"].kills < KILLS["train"] and time.time() - t_start < TIME_LIMIT:
    shutil.rmtree(out, ignore_errors=True)
    left_before = set()
    for _ in range(CHAIN):
        before = state(out)
        resume = ["--resume", out] if before is not None else []
        left_before |= leftovers(out)
        killed, after = killed_trial("train", tally["train"], ["train", *train_args, "--out", out,
                                                               *resume],
                                     tally["train"].delay(), before, train_states, out)
        if not killed:
            break
    resume = ["--resume", out] if state(out) is not None else []
    finish_and_compare("train", tally["train"], ["train", *train_args, "--out", out, *resume],
                       out, train_states[-1], left_before | leftovers(out))

# ---- table: the model directory gets fp32 and all tables in turn ----

t = tally["table"]
while t.kills < KILLS["table"] and time.time() - t_start < TIME_LIMIT:
    shutil.rmtree(model, ignore_errors=True)
    shutil.copytree(base_model, model)
    current = None
    for _ in range(CHAIN):
        dt = rng.choice([d for d in table_dtypes if d != current])
        before = state(model)
        allowed = [before, table_states[dt]]
        killed, after = killed_trial("table", t, ["table", "--model", model, "--dtypes", dt],
                                     t.delay(), before, allowed, model)
        current = dt if after == table_states[dt] else current
    dt = rng.choice(table_dtypes)
    finish_and_compare("table", t, ["table", "--model", model, "--dtypes", dt], model,
                       table_states[dt], leftovers(model))

# ---- prepare: the data directory gets seed 1 and seed 2 splits in turn ----

t = tally["prepare"]
out = os.path.join(tmp, "prep_out")
while t.kills < KILLS["prepare"] and time.time() - t_start < TIME_LIMIT:
    shutil.rmtree(out, ignore_errors=True)
    current = None
    for _ in range(CHAIN):
        ps = rng.choice([p for p in prep_seeds if p != current])
        before = state(out)
        killed, after = killed_trial("prepare", t, ["prepare", "--format", "csv", "--ratings",
                                                    ratings, "--seed", ps, "--out", out],
                                     t.delay(), before,
                                     [before, prep_states[ps]], out)
        current = ps if after == prep_states[ps] else current
    ps = rng.choice(prep_seeds)
    finish_and_compare("prepare", t, ["prepare", "--format", "csv", "--ratings", ratings,
                                      "--seed", ps, "--out", out], out, prep_states[ps],
                       leftovers(out))

elapsed = time.time() - t_start
n = sum(x.kills for x in tally.values())
for k, x in tally.items():
    print("%-8s %3d kills (%3d in the middle of a write: a temporary directory or file left), "
          "%2d runs ended before their kill, %2d runs to the end after kills"
          % (k, x.kills, x.in_write, x.finished, x.resumed))
print("N = %d kills in %.1f s (seed %d)" % (n, elapsed, seed))
check(all(tally[k].kills >= KILLS[k] for k in KILLS),
      "every command got its kills within %.0f s" % TIME_LIMIT)
check(all(x.in_write > 0 for x in tally.values()),
      "some kills of every command landed in the middle of a write")
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(summary("crash consistency"))
