#!/usr/bin/python3
"""PyTorch peer runner: the reference model (tools/reference/nextuser_ref.py),
same weights as ours (a nextuser model directory), eager mode,
torch.set_num_threads(T), writing the result schema of docs/bench.md with
context.tool = "pytorch".

Workloads (names as `nextuser bench`):
  infer/<shape>/B<b>/threads:<t>   generator forward, items/s, p50/p99 batch latency
  train/<shape>/B<b>/threads:<t>   one step: teacher-forced decode of B windows of
                                   50 users + the next, the three-term loss with M
                                   shared negatives and 4 exposed negatives per
                                   position, backward, torch.optim.Adam
  serve/<shape>/fp32/U<u>/offline/threads:<t>
                                   generator + cosine scoring (torch matmul) + top-K
                                   over the fp32 user table, batches of --serve-batch

The generator runs from ready-made tensors (TensorGenerator below: the
reference's padded batched forward with every item padded to max_users + 1
slots and a mask), so PyTorch is timed on its compute, not on Python item
parsing; its output matches the reference's embed() (checked with --check).

usage: peer_torch.py --model DIR --json OUT [--workloads infer,train,serve]
                     [--shape base] [--threads 1,2] [--batches 1,64,1024] ...
Run with /usr/bin/python3 (Debian python3-torch).
"""

import argparse
import math
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

sys.path.insert(0, pc.REFERENCE_DIR)
import nextuser_ref as ref  # noqa: E402


NOTES = ("eager PyTorch, reference model (tools/reference/nextuser_ref.py) from fixed-shape "
         "tensors, torch.set_num_threads = threads")


class TensorGenerator(torch.nn.Module):
    """The reference generator computed from fixed-shape tensors (the inputs
    of peer_common.make_item_arrays): per item k prefix tokens, max_users
    user slots and one more slot for CLS; the CLS token sits right after the
    item's own users (slot n) and the later slots are padding no real row
    sees, exactly the reference's _batch_encode layout.  Traceable for
    torch.onnx.export (no Python lists, no data-dependent shapes).
    all_positions=False gives û_next [B, d]; True the teacher-forced outputs
    û_1..û_{N+1} [B, N+1, d] (training)."""

    def __init__(self, model, all_positions=False):
        super().__init__()
        self.m = model
        self.cfg = model.config
        self.all_positions = all_positions
        if not self.cfg["use_cls"]:
            raise ValueError("TensorGenerator needs use_cls (the shapes of benchmarks.md have it)")

    def _ln(self, ln, x):
        # The reference's layer norm with the width as a constant (the export
        # cannot take normalized_shape from a traced x.shape).
        return F.layer_norm(x, (self.cfg["d"],), ln.g, ln.b, ln.eps)

    def _prefix(self, inputs):
        m, toks = self.m, []
        for f, field in enumerate(self.cfg["prefix_fields"]):
            node = m.prefix[field["name"]]
            x = inputs["f_" + field["name"]]
            if field["kind"] == "categorical":
                tok = node["emb"][x]
            elif field["kind"] == "multi":
                mask = inputs["f_" + field["name"] + "_mask"]
                tok = (node["emb"][x] * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1)[:, None]
            else:
                tok = x @ node["w"] + node["b"]
            toks.append(tok + m.pos["prefix"][f])
        return torch.stack(toks, dim=1)

    def forward(self, *args):
        names = pc.input_names(self.cfg)
        inputs = dict(zip(names, args))
        m, cfg = self.m, self.cfg
        k, n_max = len(cfg["prefix_fields"]), cfg["max_users"]
        users, ns = inputs["users"], inputs["n_users"]
        user_tok = m.user_emb[users] + m.pos["user"][:n_max]               # [B, N, d]
        tail = torch.cat([user_tok, torch.zeros_like(user_tok[:, :1])], dim=1)
        slots = torch.arange(n_max + 1)[None, :]
        is_cls = (slots == ns[:, None])[:, :, None]
        tail = torch.where(is_cls, m.cls + m.pos["cls"], tail)
        x = torch.cat([self._prefix(inputs), tail], dim=1) if k else tail  # [B, T, d]
        tmax = k + n_max + 1
        t = k + ns + 1
        r = torch.arange(tmax)[None, :]
        if cfg["attention"] == "bidirectional":
            limits = t[:, None] + 0 * r
        else:
            # prefix rows see the prefix; user rows themselves and before; CLS and padding all.
            limits = torch.where(r < k, torch.full_like(r, k),
                                 torch.where(r < (k + ns)[:, None], r + 1, t[:, None] + 0 * r))
        d, heads = cfg["d"], cfg["heads"]
        for blk in m.enc_blocks():
            h = self._ln(blk.ln1, x)
            qkv = h @ blk.attn.wqkv + blk.attn.bqkv
            a = _attend(qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:], limits, heads)
            x = x + a @ blk.attn.wo + blk.attn.bo
            x = x + blk.ffn(self._ln(blk.ln2, x))
        enc = self._ln(m.enc["ln"], x)
        if self.all_positions:
            j = torch.arange(1, n_max + 2)[None, :]                        # 1-based positions
            q = m.dec["query_pos"][j - 1 + 0 * ns[:, None]]
            dlim = torch.where(j <= ns[:, None], k + j - 1, t[:, None] + 0 * j)
        else:
            q = m.dec["query_pos"][ns][:, None, :]
            dlim = t[:, None]
        for blk in m.dec_blocks():
            qq = self._ln(blk.ln1, q) @ blk.attn.wq + blk.attn.bq
            kv = enc @ blk.attn.wkv + blk.attn.bkv
            a = _attend(qq, kv[..., :d], kv[..., d:], dlim, heads)
            q = q + a @ blk.attn.wo + blk.attn.bo
            q = q + blk.ffn(self._ln(blk.ln2, q))
        out = self._ln(m.dec["ln"], q)
        return out if self.all_positions else out[:, 0]


def _attend(q, k, v, limits, heads):
    """The reference's masked attention (nextuser_ref._attend_masked) with the
    head split written with -1 batch sizes so the exported graph keeps a
    dynamic batch dimension."""
    tq, d = q.shape[1], q.shape[2]
    tk = k.shape[1]
    dh = d // heads
    qh = q.reshape(-1, tq, heads, dh).transpose(1, 2)
    kh = k.reshape(-1, tk, heads, dh).transpose(1, 2)
    vh = v.reshape(-1, tk, heads, dh).transpose(1, 2)
    scores = (qh @ kh.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
    visible = (torch.arange(tk)[None, None, :] < limits[:, :, None])[:, None]
    scores = scores.masked_fill(~visible, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1) * visible.to(scores.dtype)
    return (weights @ vh).transpose(1, 2).reshape(-1, tq, d)


def load_model(model_dir):
    loaded = ref.load_model_dir(model_dir)
    loaded.model.eval()
    return loaded


def tensors_of(arrays, cfg):
    return [torch.from_numpy(arrays[n]) for n in pc.input_names(cfg)]


def items_of(arrays, cfg):
    """The same items as reference Items (for checking against ref.embed)."""
    items = []
    fields = cfg["prefix_fields"]
    for b in range(arrays["users"].shape[0]):
        n = int(arrays["n_users"][b])
        values = []
        for f in fields:
            x = arrays["f_" + f["name"]][b]
            if f["kind"] == "categorical":
                values.append(int(x))
            elif f["kind"] == "multi":
                mask = arrays["f_" + f["name"] + "_mask"][b]
                values.append([int(i) for i, on in zip(x, mask) if on > 0])
            else:
                values.append([float(v) for v in x])
        items.append(ref.Item("i%d" % b, values, [int(u) for u in arrays["users"][b][:n]]))
    return items


def check_against_reference(loaded, seed=3, batch=16, tol=1e-5):
    """Max |TensorGenerator - ref.embed| over random items with 0..max_users users."""
    cfg = loaded.model.config
    arrays = pc.make_item_arrays(cfg, batch, seed, n_users=-1)
    with torch.no_grad():
        ours = TensorGenerator(loaded.model)(*tensors_of(arrays, cfg))
        want = loaded.model.embed(items_of(arrays, cfg), batch_size=batch)
    err = float((ours - want).abs().max())
    if not err <= tol:
        raise SystemExit("peer_torch: TensorGenerator differs from the reference by %.3g (> %g)"
                         % (err, tol))
    return err


# ----------------------------------------------------------------------------
# Workloads
# ----------------------------------------------------------------------------

def run_infer(loaded, shape, threads, batches, reps, timing, seed):
    cfg = loaded.model.config
    gen = TensorGenerator(loaded.model)
    flops = pc.infer_flops_per_item(cfg)
    entries = []
    for t in threads:
        torch.set_num_threads(t)
        for b in batches:
            x = tensors_of(pc.make_item_arrays(cfg, b, seed), cfg)
            with torch.no_grad():
                reps_lat = [pc.time_batches(lambda: gen(*x), **timing)
                            for _ in range(reps)]
            name = "infer/%s/B%d/threads:%d" % (shape, b, t)
            e = pc.rate_entry(name, t, reps_lat, b, "items_per_second")
            e["gflops"] = e["items_per_second"] * flops / 1e9
            entries.append(e)
            pc.progress("pytorch %s: %.0f items/s, p50 %.3f ms" % (name, e["items_per_second"],
                                                                    e["p50_ms"]))
    return entries


def train_loss(uhat, table, targets, shared, exposed, tau, lam=ref.LOSS_LAMBDAS):
    """The three-term loss of docs/model.md, vectorised (cosine similarity / tau):
    contrastive over the target and M shared negatives (a negative equal to the
    target is masked out), BCE on the target and the exposed negatives,
    auxiliary MSE to the stop-gradient target row."""
    h = F.normalize(uhat, dim=-1)
    ut = table[targets]
    pos = (h * F.normalize(ut, dim=-1)).sum(-1) / tau
    neg = h @ F.normalize(table[shared], dim=-1).T / tau
    neg = neg.masked_fill(shared[None, :] == targets[:, None], float("-inf"))
    con = (torch.logsumexp(torch.cat([pos[:, None], neg], 1), 1) - pos).mean()
    hz = (h[:, None, :] * F.normalize(table[exposed], dim=-1)).sum(-1) / tau
    logits = torch.cat([pos[:, None], hz], 1)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1
    ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="mean")
    aux = ((ut.detach() - uhat) ** 2).sum(-1).mean()
    return lam[0] * con + lam[1] * ce + lam[2] * aux


def run_train(loaded, shape, threads, batch, negatives, reps, timing, seed,
              exposed_per_pos=4):
    cfg = loaded.model.config
    model = loaded.model
    model.train()
    gen = TensorGenerator(model, all_positions=True)
    n, num_users = cfg["max_users"], cfg["num_users"]
    rng = np.random.default_rng(seed)
    arrays = pc.make_item_arrays(cfg, batch, seed)
    x = tensors_of(arrays, cfg)
    # Windows of n context users + the next: position j's target is user j
    # (j <= n) and the next user for j = n + 1.
    nxt = rng.integers(0, num_users, size=(batch, 1))
    targets = torch.from_numpy(np.concatenate([arrays["users"], nxt], 1).reshape(-1))
    exposed = torch.from_numpy(rng.integers(0, num_users, size=(batch * (n + 1), exposed_per_pos)))
    table = model.user_emb
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    entries = []
    for t in threads:
        torch.set_num_threads(t)

        def step():
            shared = torch.randint(0, num_users, (negatives,))
            opt.zero_grad()
            uhat = gen(*x).reshape(-1, cfg["d"])
            loss = train_loss(uhat, table, targets, shared, exposed, cfg["tau"])
            loss.backward()
            opt.step()

        reps_lat = [pc.time_batches(step, **timing) for _ in range(reps)]
        name = "train/%s/B%d/threads:%d" % (shape, batch, t)
        e = pc.rate_entry(name, t, reps_lat, batch, "items_per_second")
        entries.append(e)
        pc.progress("pytorch %s: %.0f items/s, p50 %.1f ms" % (name, e["items_per_second"],
                                                                e["p50_ms"]))
    model.eval()
    return entries


def run_serve(loaded, shape, threads, table_path, batch, reps, timing, seed):
    cfg = loaded.model.config
    gen = TensorGenerator(loaded.model)
    table = torch.from_numpy(np.array(pc.read_f32_table(table_path)))  # a private copy
    u = table.shape[0]
    k = min(pc.K_TOP, u)
    x = tensors_of(pc.make_item_arrays(cfg, batch, seed), cfg)

    def serve_batch():
        q = F.normalize(gen(*x), dim=-1)
        torch.topk(q @ table.T, k, dim=1)

    entries = []
    for t in threads:
        torch.set_num_threads(t)
        with torch.no_grad():
            reps_lat = [pc.time_batches(serve_batch, **timing) for _ in range(reps)]
        name = "serve/%s/fp32/U%s/offline/threads:%d" % (shape, pc.users_label(u), t)
        e = pc.rate_entry(name, t, reps_lat, batch, "items_per_second", {"batch": batch})
        entries.append(e)
        pc.progress("pytorch %s: %.0f items/s, p50 %.2f ms" % (name, e["items_per_second"],
                                                                e["p50_ms"]))
    return entries


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True,
                    help="nextuser model directory (e.g. from `nextuser synth`): the weights")
    ap.add_argument("--json", required=True, help="result file to write (schema of docs/bench.md)")
    ap.add_argument("--workloads", default="infer,train,serve",
                    help="comma list of infer, train, serve (default all three)")
    ap.add_argument("--shape", default="base", choices=sorted(pc.SHAPES),
                    help="shape name used in the workload names (default base); the model "
                         "directory must have that shape")
    ap.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    ap.add_argument("--batches", default="1,64,1024", help="infer batch sizes (default 1,64,1024)")
    ap.add_argument("--train-batch", type=int, default=256, help="items per train step (256)")
    ap.add_argument("--negatives", type=int, default=1024, help="shared negatives M (1024)")
    ap.add_argument("--table", help="user_table.safetensors for serve (default MODEL/user_table"
                                    ".safetensors); U in the name is its row count")
    ap.add_argument("--serve-batch", type=int, default=256, help="items per serve batch (256)")
    pc.add_timing_options(ap)
    ap.add_argument("--seed", type=int, default=7, help="seed of the synthetic items (7)")
    ap.add_argument("--check", action="store_true",
                    help="first check the tensor-input generator against the reference's "
                         "embed() (1e-5) and stop on a mismatch")
    a = ap.parse_args(argv)
    threads = pc.parse_int_list(a.threads, "--threads")
    batches = pc.parse_int_list(a.batches, "--batches")
    workloads = [w for w in a.workloads.split(",") if w]
    for w in workloads:
        if w not in ("infer", "train", "serve"):
            ap.error("--workloads: unknown workload %r (infer, train, serve)" % w)
    pc.check_timing_options(ap, a)
    try:
        loaded = load_model(a.model)
    except (ValueError, OSError) as e:
        print("peer_torch: %s" % e, file=sys.stderr)
        return 1
    cfg = loaded.model.config
    want = pc.SHAPES[a.shape]
    if any(cfg[key] != want[key] for key in want):
        print("peer_torch: %s does not have the %s shape (%s)" % (a.model, a.shape, want),
              file=sys.stderr)
        return 1
    if len(threads) > 1:
        argv = pc.normalize_argv(sys.argv[1:] if argv is None else argv)
        if "--threads" not in argv:
            argv += ["--threads", a.threads]
        entries = pc.run_per_thread_count(os.path.abspath(__file__), argv, threads)
        if entries is None:
            return 1
        ctx = pc.context("pytorch", torch.__version__)
        ctx["peer_notes"] = NOTES + "; one process per thread count"
        ctx["environment"] = next((e.get("environment") for e in entries if e.get("environment")),
                                  torch_environment())
        pc.write_result(a.json, ctx, entries)
        return 0
    torch.set_num_threads(threads[0])
    if a.check:
        pc.progress("peer_torch: tensor generator vs reference embed(): max |diff| %.2g"
                    % check_against_reference(loaded))
    entries = []
    if "infer" in workloads:
        entries += run_infer(loaded, a.shape, threads, batches, a.reps, pc.timing_of(a),
                             a.seed)
    if "train" in workloads:
        entries += run_train(loaded, a.shape, threads, a.train_batch, a.negatives, a.reps,
                             pc.timing_of(a), a.seed)
    if "serve" in workloads:
        table = a.table or os.path.join(a.model, "user_table.safetensors")
        entries += run_serve(loaded, a.shape, threads, table, a.serve_batch, a.reps,
                             pc.timing_of(a), a.seed)
    ctx = pc.context("pytorch", torch.__version__)
    ctx["peer_notes"] = NOTES
    ctx["environment"] = torch_environment()
    pc.write_result(a.json, ctx, entries)
    return 0


def torch_environment():
    """ATen's kernel ISA and BLAS as the build reports them, and the libraries
    loaded (after the work)."""
    show = torch.__config__.show()
    cap = next((l.split(":", 1)[1].strip() for l in show.splitlines()
                if "CPU capability usage" in l), "?")
    m = re.search(r"BLAS_INFO=([^,\s]+)", show)
    blas = "BLAS_INFO=%s" % (m.group(1) if m else "?")
    return "ATen CPU capability %s, %s; %s" % (cap, blas, pc.blas_environment())


if __name__ == "__main__":
    sys.exit(main())
