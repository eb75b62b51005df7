"""Issue 17 at the command line: SIGTERM (what systemd, Kubernetes and batch
schedulers send) checkpoints and exits cleanly like Ctrl-C (before: rc 143,
nothing written), and resuming gives the uninterrupted run bit for bit; a
second train into the same --out is refused while the first runs.

usage: test_hard_cli.py NEXTUSER
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

exe = sys.argv[1]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args):
    return subprocess.run([exe, *args], capture_output=True, text=True)


def same_files(a, b, names):
    return all(open(os.path.join(a, n), "rb").read() == open(os.path.join(b, n), "rb").read()
               for n in names)


def wait_training(p, err_path, limit=20.0):
    """Waits until the progress shows a step (the run is in its loop)."""
    t0 = time.time()
    while time.time() - t0 < limit and p.poll() is None:
        if "train step" in open(err_path, errors="replace").read():
            return True
        time.sleep(0.05)
    return False


tmp = tempfile.mkdtemp(prefix="nu_hard_cli_")
data = os.path.join(tmp, "data")
r = run("synth-data", "--users", "800", "--items", "300", "--seed", "4", "--out", data)
check(r.returncode == 0, "synth-data: " + r.stderr)
cfg = os.path.join(tmp, "cfg.json")
with open(cfg, "w") as f:
    json.dump({"d": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "max_users": 10}, f)
common = ["--data", data, "--config", cfg, "--epochs", "150", "--batch", "16", "--negatives", "64",
          "--threads", "1", "--seed", "3"]
files = ["model.safetensors", "optimizer.safetensors", "train_state.json"]
full = os.path.join(tmp, "full")
r = run("train", *common, "--out", full)
check(r.returncode == 0, "the uninterrupted run: " + r.stderr)

env = dict(os.environ, NU_PROGRESS="1")
for sig in (signal.SIGTERM, signal.SIGINT):
    out = os.path.join(tmp, "out_%d" % sig)
    err_path = os.path.join(tmp, "err_%d.txt" % sig)
    with open(err_path, "w") as err:
        p = subprocess.Popen([exe, "train", *common, "--out", out], stderr=err, env=env)
        started = wait_training(p, err_path)
        p.send_signal(sig)
        p.wait(timeout=120)
    text = open(err_path, errors="replace").read()
    check(started and p.returncode == 0 and "stopped early" in text,
          "%s: checkpoint and a clean exit (rc %s): %s" % (sig.name, p.returncode, text[-300:]))
    check(all(os.path.exists(os.path.join(out, n)) for n in files), "%s: the checkpoint is there" % sig.name)
    r = run("train", *common, "--out", out, "--resume", out)
    check(r.returncode == 0 and same_files(full, out, files),
          "%s + resume = the uninterrupted run, bit for bit: %s" % (sig.name, r.stderr[-300:]))

# A second writer into the same --out is refused while the first runs.
out = os.path.join(tmp, "shared")
err_path = os.path.join(tmp, "err_shared.txt")
with open(err_path, "w") as err:
    p = subprocess.Popen([exe, "train", *common, "--out", out], stderr=err, env=env)
    started = wait_training(p, err_path)
    r = run("train", *common, "--out", out)
    check(started and r.returncode != 0 and "another" in r.stderr,
          "a second train into the same --out is refused: rc %d %s" % (r.returncode, r.stderr[-300:]))
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
check(p.returncode == 0, "the first run ends cleanly")
names = sorted(os.listdir(tmp))
stray = [n for n in names if ".tmp." in n or ".old." in n]
check(not stray, "no temporary or old directories left: %s" % stray)

# search's query file: a line past 1 MiB and a NUL byte are refused with
# file:line before memory goes to them (was getline: any length).
qm = os.path.join(tmp, "qmodel")
r = run("synth", "--users", "50", "--dim", "8", "--out", qm)
check(r.returncode == 0, "synth for the queries: " + r.stderr)
ok_line = "a\t" + " ".join(["0.5"] * 8) + "\n"
for name, body, want in (("long.tsv", ok_line + "b\t" + "1 " * (1 << 20) + "\n", "long.tsv:2: a line longer than"),
                         ("nul.tsv", ok_line + "b\t0.5\x000.5\n", "nul.tsv:2: a NUL byte")):
    qp = os.path.join(tmp, name)
    with open(qp, "w") as f:
        f.write(body)
    r = run("search", "--model", qm, "--queries", qp, "--out", os.path.join(tmp, "q.csv"))
    check(r.returncode == 1 and want in r.stderr, "%s refused: rc %d %s" % (name, r.returncode, r.stderr))
sys.exit(summary())
