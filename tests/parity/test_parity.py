"""Parity of the C forward pass with the PyTorch reference (tools/reference).

For several configurations (causal and bidirectional attention, with and
without [CLS], with and without prefix fields of every kind) a random model
is written by `nextuser init` (and one by the reference's init, so files go
both ways), random items with n = 0, 1, 7, 50 users and mixed lengths in one
batch are embedded by both, and û_next and the training-mode decoder outputs
must agree to max |diff| <= 1e-4, on every ISA this host runs.  With
--neon, runs instead the aarch64 build under qemu (NEON and scalar) on a
small case.

usage: test_parity.py NEXTUSER [--neon QEMU... -- NEXTUSER_AARCH64]
"""
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "reference"))
import nextuser_ref as ref  # noqa: E402
import torch  # noqa: E402

TOL = 1e-4
torch.set_num_threads(1)
args = sys.argv[1:]
exe = [args[0]]
neon = None
if len(args) > 1 and args[1] == "--neon":
    sep = args.index("--")
    neon = args[2:sep] + [args[sep + 1]]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def available_isas(cmd):
    r = subprocess.run(cmd + ["info", "--json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["isas_available"]


def read_tsv(path, positions):
    rows = {}
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        key = (parts[0], int(parts[1])) if positions else parts[0]
        rows[key] = np.array([float(v) for v in parts[-1].split()], dtype=np.float64)
    return rows


def make_items(model_dir, config, count, seed, lengths):
    rnd = random.Random(seed)
    users = [l.strip() for l in open(os.path.join(model_dir, "users.txt"))]
    vocabs = {}
    for f in config.get("prefix_fields", []):
        if f["kind"] != "dense":
            vocabs[f["name"]] = [l.strip() for l in open(os.path.join(model_dir, "vocab_%s.txt" % f["name"]))]
    lines = []
    for i in range(count):
        n = lengths[i % len(lengths)]
        feats = {}
        for f in config.get("prefix_fields", []):
            if rnd.random() < 0.15:
                continue  # missing field
            if f["kind"] == "categorical":
                feats[f["name"]] = rnd.choice(vocabs[f["name"]] + ["unknown-value"])
            elif f["kind"] == "multi":
                feats[f["name"]] = [rnd.choice(vocabs[f["name"]]) for _ in range(rnd.randint(0, 4))]
            else:
                feats[f["name"]] = [float(np.float32(rnd.uniform(-2, 2))) for _ in range(f["dim"])]
        lines.append(json.dumps({"id": "item%d" % i, "features": feats,
                                 "users": [rnd.choice(users) for _ in range(n)]}))
    return lines


def compare(name, c_rows, py_rows):
    worst = 0.0
    keys_ok = set(c_rows) == set(py_rows)
    check(keys_ok, f"{name}: same items/positions in C and PyTorch output")
    if keys_ok:
        for k in py_rows:
            worst = max(worst, float(np.max(np.abs(c_rows[k] - py_rows[k]))))
    check(worst <= TOL, f"{name}: max |C - PyTorch| = {worst:.3g} <= {TOL}")
    return worst


def run_case(tmp, name, config, lengths, count, cmds, init_with="c"):
    model = os.path.join(tmp, name)
    cfg_path = os.path.join(tmp, name + ".json")
    with open(cfg_path, "w") as f:
        json.dump(config, f)
    if init_with == "c":
        subprocess.run(exe + ["init", "--config", cfg_path, "--out", model, "--seed", "3"], check=True,
                       capture_output=True)
    else:
        m = ref.init_model(ref.load_config_file(cfg_path), 3)
        ref.save_model_dir(model, m, ref.synthetic_users(config["num_users"]),
                           {f["name"]: ref.synthetic_vocab(f["vocab"])
                            for f in config.get("prefix_fields", []) if f["kind"] != "dense"})
    items_path = os.path.join(tmp, name + ".jsonl")
    with open(items_path, "w") as f:
        f.write("\n".join(make_items(model, config, count, 11, lengths)) + "\n")

    loaded = ref.load_model_dir(model)
    items = ref.ItemParser(loaded.model.config, loaded.users, loaded.vocabs).parse_file(items_path)
    items = items[0] if isinstance(items, tuple) else items
    with torch.no_grad():
        emb = loaded.model.embed(items).numpy().astype(np.float64)
        dec = [d.numpy().astype(np.float64) for d in loaded.model.decode_all(items)]
    py_emb = {it.id: emb[i] for i, it in enumerate(items)}
    py_dec = {(it.id, j + 1): dec[i][j] for i, it in enumerate(items) for j in range(dec[i].shape[0])}

    for label, cmd, isas in cmds:
        for isa in isas:
            # Under qemu one thread: qemu-user hangs starting libgomp threads.
            threads = "1" if label == "qemu" else "2"
            env = dict(os.environ, NU_ISA=isa, OMP_NUM_THREADS=threads)
            out = os.path.join(tmp, f"{name}-{label}-{isa}.tsv")
            outd = os.path.join(tmp, f"{name}-{label}-{isa}-all.tsv")
            r1 = subprocess.run(cmd + ["embed", "--model", model, "--items", items_path, "--out", out,
                                       "--batch", "5", "--threads", threads], env=env, capture_output=True, text=True)
            r2 = subprocess.run(cmd + ["embed", "--model", model, "--items", items_path, "--out", outd,
                                       "--all-positions", "--batch", "3", "--threads", threads], env=env, capture_output=True,
                                text=True)
            check(r1.returncode == 0 and r2.returncode == 0, f"{name} {label} {isa}: embed ran: {r1.stderr}{r2.stderr}")
            if r1.returncode or r2.returncode:
                continue
            w1 = compare(f"{name} {label} {isa} û_next", read_tsv(out, False), py_emb)
            w2 = compare(f"{name} {label} {isa} decoder positions", read_tsv(outd, True), py_dec)
            print(f"{name:14s} {label:6s} {isa:7s} û_next {w1:.2e}  all positions {w2:.2e}")


def main():
    tmp = tempfile.mkdtemp(prefix="nu_parity_")
    fields = [{"name": "genres", "kind": "multi", "vocab": 12},
              {"name": "year", "kind": "categorical", "vocab": 7},
              {"name": "content", "kind": "dense", "dim": 5}]
    base = {"d": 64, "heads": 4, "enc_layers": 2, "dec_layers": 1, "max_users": 50, "num_users": 500,
            "prefix_fields": fields}
    lengths = [0, 1, 7, 50, 3, 20, 60]
    host = [("native", exe, available_isas(exe))]
    cases = [
        ("causal-cls", dict(base), "c"),
        ("causal-nocls", dict(base, use_cls=False), "c"),
        ("bidir-cls", dict(base, attention="bidirectional"), "py"),
        ("bidir-nocls", dict(base, attention="bidirectional", use_cls=False), "c"),
        ("noprefix", dict(base, prefix_fields=[], d=32, heads=2, dec_layers=2, enc_layers=1), "c"),
    ]
    if not neon:
        for name, cfg, init_with in cases:
            run_case(tmp, name, cfg, lengths, 21, host, init_with)
    else:  # the aarch64 build under qemu: one small case (emulation is slow)
        small = dict(base, d=32, heads=2, max_users=8, num_users=40)
        run_case(tmp, "neon-small", small, [0, 1, 7, 8], 8, [("qemu", neon, available_isas(neon))])
    subprocess.run(["rm", "-rf", tmp])
    return summary()


sys.exit(main())
