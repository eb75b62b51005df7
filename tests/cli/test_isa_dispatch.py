"""Runs `nextuser info --json` under every NU_ISA level and checks which
kernel table really ran (its own code reports its name), and that unknown
or unsupported levels exit 2 with a message, never a crash."""
import json
import os
import subprocess
import sys

# The command to run: the nextuser binary, possibly behind an emulator
# (qemu-aarch64 -L /usr/aarch64-linux-gnu build/neon/nextuser).
exe = sys.argv[1:]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def run(isa):
    env = {"PATH": "/usr/bin:/bin"}
    if isa is not None:
        env["NU_ISA"] = isa
    return subprocess.run([*exe, "info", "--json"], env=env, capture_output=True, text=True)


base = run(None)
check(base.returncode == 0, "info --json exits 0: " + base.stderr)
info = json.loads(base.stdout)
for key, typ in [("isa_active", str), ("isas_available", list), ("features", list),
                 ("numa_nodes", int), ("cores", int), ("threads", int)]:
    check(isinstance(info.get(key), typ), f"key {key} is a {typ.__name__}")
available = info["isas_available"]
check(info["isa_active"] == available[-1], "default is the best available ISA")
check("scalar" in available, "scalar is always available")

for isa in available:
    r = run(isa)
    check(r.returncode == 0, f"NU_ISA={isa} exits 0: {r.stderr}")
    got = json.loads(r.stdout)
    check(got["isa_active"] == isa, f"NU_ISA={isa} selects {isa}, got {got['isa_active']}")
    check(got["isa_whoami"] == isa, f"NU_ISA={isa}: the table's own code reports {got['isa_whoami']}")
    print(f"NU_ISA={isa}: active {got['isa_active']}, code reports {got['isa_whoami']}")

for isa in ["scalar", "avx2", "avx512", "neon"]:
    if isa in available:
        continue
    r = run(isa)
    check(r.returncode == 2, f"NU_ISA={isa} (not runnable here) exits 2, got {r.returncode}")
    check("NU_ISA=" + isa in r.stderr, f"NU_ISA={isa}: message names the level: {r.stderr!r}")
    print(f"NU_ISA={isa}: refused with exit 2: {r.stderr.strip()}")

r = run("avx9000")
check(r.returncode == 2, f"unknown level exits 2, got {r.returncode}")
check("unknown ISA" in r.stderr, f"unknown level message: {r.stderr!r}")

sys.exit(summary())
