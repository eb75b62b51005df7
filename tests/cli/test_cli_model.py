"""nextuser init / embed from the command line: help, usage errors (exit 2),
bad configs and bad items (exit 1, message naming the place, no output
file), and a good run (one line per item, d values each)."""
import json
import os
import subprocess
import sys
import tempfile

# The command to run: the nextuser binary, possibly behind an emulator
# (qemu-aarch64 -L /usr/aarch64-linux-gnu build/neon/nextuser).
exe = sys.argv[1:]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(*args):
    return subprocess.run([*exe, *args], capture_output=True, text=True)


tmp = tempfile.mkdtemp(prefix="nu_cli_")
cfg = os.path.join(tmp, "cfg.json")
with open(cfg, "w") as f:
    json.dump({"d": 16, "heads": 2, "max_users": 4, "num_users": 30,
               "prefix_fields": [{"name": "g", "kind": "multi", "vocab": 5},
                                 {"name": "x", "kind": "dense", "dim": 2}]}, f)

for cmd in ["info", "init", "embed"]:
    r = run(cmd, "--help")
    check(r.returncode == 0 and "usage: nextuser " + cmd in r.stdout, f"{cmd} --help")
r = run("--help")
check(r.returncode == 0 and "embed" in r.stdout, "top-level --help lists commands")
r = run("frobnicate")
check(r.returncode == 2 and "unknown command" in r.stderr, "unknown command exits 2")

r = run("init", "--config", cfg)
check(r.returncode == 2 and "--out" in r.stderr, "init without --out exits 2")
r = run("init", "--config", cfg, "--out", os.path.join(tmp, "m"), "--seed", "x")
check(r.returncode == 2 and "--seed" in r.stderr, "bad seed exits 2")
bad = os.path.join(tmp, "bad.json")
with open(bad, "w") as f:
    json.dump({"d": 30, "heads": 4, "num_users": 3}, f)
r = run("init", "--config", bad, "--out", os.path.join(tmp, "m"))
check(r.returncode == 1 and "divisible" in r.stderr and not os.path.exists(os.path.join(tmp, "m")),
      "bad config refused, nothing written: " + r.stderr)

model = os.path.join(tmp, "m")
r = run("init", "--config", cfg, "--out", model, "--seed", "5", "--users", "40")
check(r.returncode == 0, "init: " + r.stderr)
check(sum(1 for _ in open(os.path.join(model, "users.txt"))) == 40, "--users overrides num_users")

items = os.path.join(tmp, "items.jsonl")
with open(items, "w") as f:
    f.write(json.dumps({"id": "a", "features": {"g": ["v1", "v2"], "x": [1, 2]}, "users": ["u1", "u2"]}) + "\n")
    f.write(json.dumps({"id": "b", "users": []}) + "\n")
    f.write(json.dumps({"id": "c", "users": ["u1", "u2", "u3", "u4", "u5", "u6", "zz"]}) + "\n")
out = os.path.join(tmp, "out.tsv")
r = run("embed", "--model", model, "--items", items, "--out", out, "--threads", "2")
check(r.returncode == 0, "embed: " + r.stderr)
lines = open(out).read().splitlines()
check(len(lines) == 3 and [l.split("\t")[0] for l in lines] == ["a", "b", "c"], "one line per item, in order")
check(all(len(l.split("\t")[1].split()) == 16 for l in lines), "d values per line")
check("1 unknown user ids skipped" in r.stderr and "1 items cut" in r.stderr, "imperfect input reported: " + r.stderr)

r = run("embed", "--model", model, "--items", items, "--out", out + "2", "--all-positions")
rows = open(out + "2").read().splitlines()
check(r.returncode == 0 and len(rows) == 3 + 1 + 5, "all positions: n+1 rows per item")
check(rows[2].split("\t")[0] == "a" and rows[2].split("\t")[1] == "3", "position numbering")
last_a = [float(v) for v in rows[2].split("\t")[2].split()]
next_a = [float(v) for v in lines[0].split("\t")[1].split()]
# Equal up to rounding: attention may tile the n+1 training queries together.
check(max(abs(x - y) for x, y in zip(last_a, next_a)) <= 1e-5, "last position equals û_next")

with open(items, "a") as f:
    f.write('{"id": "d", "features": {"colour": "red"}}\n')
out3 = os.path.join(tmp, "out3.tsv")
r = run("embed", "--model", model, "--items", items, "--out", out3)
check(r.returncode == 1 and ":4:" in r.stderr and "colour" in r.stderr and not os.path.exists(out3),
      "bad line names line 4, no output written: " + r.stderr)
r = run("embed", "--model", os.path.join(tmp, "nope"), "--items", items, "--out", out3)
check(r.returncode == 1 and "model.safetensors" in r.stderr, "missing model named: " + r.stderr)
with open(os.path.join(model, "model.safetensors"), "r+b") as f:
    f.truncate(1000)
r = run("embed", "--model", model, "--items", items, "--out", out3)
check(r.returncode == 1 and "model.safetensors" in r.stderr, "truncated model refused: " + r.stderr)
r = run("embed", "--model", model, "--items", items, "--out", out3, "--threads", "0")
check(r.returncode == 2, "--threads 0 exits 2")

subprocess.run(["rm", "-rf", tmp])
sys.exit(summary())
