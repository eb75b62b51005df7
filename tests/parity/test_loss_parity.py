"""Parity of the C training loss (src/train/loss.c) with PyTorch autograd.

The reference is nextuser_ref.training_loss (docs/model.md "Training loss"
written per position), computed in float64 with autograd for dL/dû and
dL/dtable.  tests/loss_dump runs the C loss on the same float32 inputs.
Cases: both similarities, default λ and each term alone, R above and below
the C chunk of 128 positions, M up to 1024, positions without a target,
accidental hits (targets among the shared negatives and among the exposed
ones), duplicated shared negatives.  On every ISA this host runs
(NU_ISA=scalar|avx2|avx512):
  - each loss term and the total: |C - ref| <= 1e-4 |ref| (+1e-9);
  - dhat and dtable, every element: |g_C - g| <= 1e-4 |g| + 5e-6 max|g|
    (max over that tensor), as tests/parity/test_grad_parity.py: 1e-4
    relative where it is meaningful plus a float32 rounding floor (the C
    sums over up to 1025 logits per position and over every position for
    a shared negative in float32, an absolute error ~1e-6 max|g|);
  - the touched rows are exactly the rows of the terms with λ != 0 (no
    row at all for L_aux alone), and every other table row has an exactly
    zero C gradient (and a zero PyTorch one).

usage: test_loss_parity.py NEXTUSER LOSS_DUMP
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "reference"))
import nextuser_ref as ref  # noqa: E402
import safetensors_io  # noqa: E402
import torch  # noqa: E402

REL_TOL = 1e-4
ABS_FLOOR = 5e-6
MEANINGFUL = 1e-3
torch.set_num_threads(1)
exe, loss_dump = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402


def available_isas():
    r = subprocess.run([exe, "info", "--json"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["isas_available"]


def make_batch(seed, R, M, U, d, max_neg):
    rs = np.random.RandomState(seed)
    uhat = rs.normal(0, 1, (R, d)).astype(np.float32)
    table = rs.normal(0, 0.3, (U, d)).astype(np.float32)
    used = U - U // 4          # the last quarter of the table is never used
    targets = [int(v) for v in rs.randint(0, used, R)]
    for i in rs.choice(R, max(1, R // 10), replace=False):
        targets[i] = None      # positions that train nothing
    shared = [int(v) for v in rs.randint(0, used, M)]
    for j in range(0, M, 7):  # accidental hits: targets among the shared rows
        t = targets[rs.randint(R)]
        if t is not None:
            shared[j] = t
    shared[1] = shared[2] if M > 2 else shared[1]
    exposed = []
    for i in range(R):
        e = [int(v) for v in rs.randint(0, used, rs.randint(0, max_neg + 1))]
        if targets[i] is not None and rs.rand() < 0.2:
            e.append(targets[i])  # an exposed negative equal to the target: left out
        exposed.append(e)
    return uhat, table, targets, shared, exposed


def torch_loss(batch, similarity, tau, lambdas):
    uhat, table, targets, shared, exposed = batch
    u = torch.tensor(uhat, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(table, dtype=torch.float64, requires_grad=True)
    out = ref.training_loss(u, t, targets, shared, exposed, similarity, tau, lambdas)
    out["total"].backward()
    return out, u.grad.numpy(), t.grad.numpy()


def used_rows(batch, lambdas):
    _, _, targets, shared, exposed = batch
    rows = set()
    if not any(t is not None for t in targets):
        return []
    for i, t in enumerate(targets):
        if t is None:
            continue
        if lambdas[0] or lambdas[1]:
            rows.add(t)
        if lambdas[1]:
            rows.update(e for e in exposed[i] if e != t)
    if lambdas[0]:
        rows.update(shared)
    return sorted(rows)


def write_input(path, batch, similarity, tau, lambdas):
    uhat, table, targets, shared, exposed = batch
    off = np.cumsum([0] + [len(e) for e in exposed]).astype(np.float32)
    rows = [e for es in exposed for e in es] or [0]
    safetensors_io.write_safetensors(path, {
        "uhat": uhat, "table": table,
        "target": np.array([-1 if t is None else t for t in targets], dtype=np.float32),
        "shared": np.array(shared, dtype=np.float32), "neg_off": off,
        "neg_rows": np.array(rows, dtype=np.float32)},
        {"similarity": similarity, "tau": repr(float(tau)),
         "lambdas": ",".join(repr(float(v)) for v in lambdas)})


def compare(case, isa, name, c, g):
    gmax = float(np.max(np.abs(g)))
    diff = np.abs(c.astype(np.float64) - g)
    if gmax == 0.0:
        check(float(np.max(diff)) == 0.0, f"{case} {isa}: {name} is zero")
        return 0.0, 0.0
    big = np.abs(g) > MEANINGFUL * gmax
    rel = float(np.max(diff[big] / np.abs(g[big])))
    excess = diff - (REL_TOL * np.abs(g) + ABS_FLOOR * gmax)
    k = int(np.argmax(excess))
    check(excess.flat[k] <= 0, f"{case} {isa}: {name}[{k}]: C {c.flat[k]:.8g} vs PyTorch "
                               f"{g.flat[k]:.8g} (max|g| {gmax:.3g})")
    return rel, float(np.max(diff)) / gmax


def run_case(tmp, name, batch, similarity, tau, lambdas, isas):
    inp = os.path.join(tmp, name + ".in.safetensors")
    write_input(inp, batch, similarity, tau, lambdas)
    out, gu, gt = torch_loss(batch, similarity, tau, lambdas)
    want_rows = used_rows(batch, lambdas)
    for isa in isas:
        res = os.path.join(tmp, f"{name}-{isa}.safetensors")
        env = dict(os.environ, NU_ISA=isa, OMP_NUM_THREADS="1")
        r = subprocess.run([loss_dump, inp, res], env=env, capture_output=True, text=True)
        check(r.returncode == 0, f"{name} {isa}: loss_dump ran: {r.stderr}")
        if r.returncode:
            continue
        cg, meta = safetensors_io.read_safetensors(res)
        worst_term = 0.0
        for key in ("con", "ce", "aux", "total"):
            want, got = float(out[key]), float(meta[key])
            err = abs(got - want) / max(abs(want), 1e-300)
            worst_term = max(worst_term, err if want else abs(got))
            check(abs(got - want) <= REL_TOL * abs(want) + 1e-9,
                  f"{name} {isa}: {key} C {got:.12g} vs PyTorch {want:.12g}")
        check(int(meta["positions"]) == out["positions"] and int(meta["pairs"]) == out["pairs"],
              f"{name} {isa}: counts {meta['positions']}/{meta['pairs']} vs "
              f"{out['positions']}/{out['pairs']}")
        rel_u, ab_u = compare(name, isa, "dhat", cg["dhat"], gu)
        rel_t, ab_t = compare(name, isa, "dtable", cg["dtable"], gt)
        got_rows = [int(v) for v in meta["touched"].split(",") if v]
        check(got_rows == want_rows, f"{name} {isa}: touched rows {got_rows[:20]}... "
                                     f"!= {want_rows[:20]}...")
        mask = np.ones(gt.shape[0], dtype=bool)
        mask[want_rows] = False
        check(not np.any(cg["dtable"][mask]) and not np.any(gt[mask]),
              f"{name} {isa}: rows not touched have zero gradient")
        print(f"{name:24s} {isa:7s} terms {worst_term:.1e}  dhat rel {rel_u:.1e} abs {ab_u:.1e}"
              f"  dtable rel {rel_t:.1e} abs {ab_t:.1e}")


def main():
    tmp = tempfile.mkdtemp(prefix="nu_loss_parity_")
    isas = available_isas()
    small = make_batch(1, 300, 64, 400, 32, 4)       # 3 chunks, the last partial
    tiny = make_batch(2, 9, 5, 30, 8, 3)
    big = make_batch(3, 520, 1024, 3000, 64, 4)      # the default M and d
    cases = [
        ("tiny-cos", tiny, "cosine", 0.1, (1.0, 0.5, 0.1)),
        ("tiny-dot", tiny, "dot", 0.1, (1.0, 0.5, 0.1)),
        ("cos-default", small, "cosine", 0.1, (1.0, 0.5, 0.1)),
        ("cos-con", small, "cosine", 0.1, (1.0, 0.0, 0.0)),
        ("cos-ce", small, "cosine", 0.1, (0.0, 1.0, 0.0)),
        ("cos-aux", small, "cosine", 0.1, (0.0, 0.0, 1.0)),
        ("cos-tau0.05", small, "cosine", 0.05, (1.0, 0.5, 0.1)),
        ("dot-default", small, "dot", 0.1, (1.0, 0.5, 0.1)),
        ("dot-con", small, "dot", 0.1, (1.0, 0.0, 0.0)),
        ("dot-ce", small, "dot", 0.1, (0.0, 1.0, 0.0)),
        ("dot-aux", small, "dot", 0.1, (0.0, 0.0, 1.0)),
        ("cos-M1024-d64", big, "cosine", 0.1, (1.0, 0.5, 0.1)),
        ("dot-M1024-d64", big, "dot", 0.1, (1.0, 0.5, 0.1)),
    ]
    for name, batch, sim, tau, lambdas in cases:
        run_case(tmp, name, batch, sim, tau, lambdas, isas)
    subprocess.run(["rm", "-rf", tmp])
    return summary()


sys.exit(main())
