#!/usr/bin/python3
"""The serving peer a team would write today: a Python aiohttp service with
the PyTorch reference generator (tools/reference/nextuser_ref.py, eager,
batched forward) and a FAISS IndexFlatIP over the L2-normalised user table,
exposing the same POST /v1/recommend as `nextuser serve` (docs/serve.md:
same request and answer JSON) and GET /healthz, /readyz.

Same batching policy as `nextuser serve`: the items of concurrent requests
are queued; --workers batchers each take up to --max-batch items as soon as
--max-batch items wait or the oldest has waited --max-wait-us, and run the
batch (generator + search) in a worker thread (torch and FAISS release the
GIL) on --threads threads; each request is answered when its last item is.

Scoring: cosine, as nextuser scores a model without priors (a model trained
with `nextuser train --no-prior`): û_next L2-normalised, inner product with
the normalised user rows, the item's known users left out (FAISS is asked
for k + the number of known users).  A model with prior weights is refused
(this peer does not implement the priors).

usage: serve_peer.py --model DIR [--listen 127.0.0.1:0] [--workers 1] [--threads 2]
                     [--max-batch 32] [--max-wait-us 200] [--k 100] [--max-items 256]
Prints "serve_peer: listening on HOST:PORT" once listening.  Run with
/usr/bin/python3 (Debian python3-aiohttp, python3-torch, python3-faiss).
"""

import os

# FAISS runs its own OpenMP threads; OpenBLAS's pthreads under them
# oversubscribe the cores (a batch of 32 searches took 0.8 s instead of
# 0.08 s on 2 cores), so one BLAS thread per FAISS thread, before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import asyncio
import json
import signal
import sys
import time
import concurrent.futures

import numpy as np
import torch
import faiss
from aiohttp import web

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import nextuser_ref as ref  # noqa: E402


def load_model(path):
    """ref.load_model_dir, with the serving-only prior tensors set aside:
    nextuser_ref.load_model_dir chokes on the feature-prior tensors
    (`None in [ndarray, ...]`), and this peer refuses prior weights > 0
    anyway (a --no-prior model carries the tensors with weight 0)."""
    orig = ref.safetensors_io.read_safetensors

    def read(p):
        tensors, meta = orig(p)
        for name in (ref.USER_PRIOR,) + tuple(ref.FEATURE_PRIOR):
            tensors.pop(name, None)
        return tensors, meta

    ref.safetensors_io.read_safetensors = read
    try:
        return ref.load_model_dir(path)
    finally:
        ref.safetensors_io.read_safetensors = orig


class Peer:
    def __init__(self, a):
        self.a = a
        t0 = time.perf_counter()
        self.loaded = load_model(a.model)
        self.model = self.loaded.model
        self.model.eval()
        cfg = self.model.config
        if cfg.get("prior_weight", 0) > 0 or cfg.get("feature_prior_weight", 0) > 0:
            raise SystemExit("serve_peer.py: %s has prior weights (prior_weight %s, feature_prior_weight %s);"
                             " this peer scores plain cosine: train with --no-prior"
                             % (a.model, cfg.get("prior_weight"), cfg.get("feature_prior_weight")))
        if cfg.get("similarity", "cosine") != "cosine":
            raise SystemExit("serve_peer.py: only cosine similarity")
        self.parser = ref.item_parser(self.loaded)
        self.users = self.loaded.users
        table = self.model.user_emb.detach().numpy().astype(np.float32)
        norms = np.linalg.norm(table, axis=1, keepdims=True)
        norms[norms == 0] = 1
        table = np.ascontiguousarray(table / norms, dtype=np.float32)
        self.index = faiss.IndexFlatIP(table.shape[1])
        self.index.add(table)
        self.max_users = cfg["max_users"]
        self.load_seconds = time.perf_counter() - t0
        self.version = "peer-" + os.path.basename(os.path.realpath(a.model))
        self.queue = []              # (item, known_rows, slot) waiting
        self.cond = None
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=a.workers)

    # -- the batch: generator + FAISS, in a worker thread ----------------------------
    def compute(self, batch, kmax):
        items = [b[0] for b in batch]
        with torch.inference_mode():
            emb = self.model.embed(items).numpy().astype(np.float32)
        n = np.linalg.norm(emb, axis=1, keepdims=True)
        n[n == 0] = 1
        q = np.ascontiguousarray(emb / n)
        extra = max(len(b[1]) for b in batch)
        scores, rows = self.index.search(q, min(self.index.ntotal, kmax + extra))
        return scores, rows

    async def batcher(self):
        loop = asyncio.get_running_loop()
        mb, wait = self.a.max_batch, self.a.max_wait_us / 1e6
        while True:
            async with self.cond:
                await self.cond.wait_for(lambda: self.queue)
                oldest = self.queue[0][3]
                while len(self.queue) < mb:
                    left = oldest + wait - loop.time()
                    if left <= 0:
                        break
                    try:
                        await asyncio.wait_for(self.cond.wait_for(lambda: len(self.queue) >= mb), left)
                    except asyncio.TimeoutError:
                        break
                batch = self.queue[:mb]
                del self.queue[:mb]
            kmax = max(b[2]["k"] for b in batch)
            scores, rows = await loop.run_in_executor(self.pool, self.compute, batch, kmax)
            for j, (item, known, slot, _) in enumerate(batch):
                out = []
                for s, r in zip(scores[j], rows[j]):
                    if r < 0 or r in known:
                        continue
                    out.append({"user": self.users[r], "score": float(s)})
                    if len(out) == slot["k"]:
                        break
                slot["answer"]["users"] = out
                slot["req"]["left"] -= 1
                if slot["req"]["left"] == 0:
                    slot["req"]["fut"].set_result(None)

    # -- HTTP -------------------------------------------------------------------------
    async def recommend(self, request):
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError) as e:
            return web.json_response({"error": "malformed JSON: %s" % e}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return web.json_response({"error": "\"items\" must be a list"}, status=400)
        items = body["items"]
        k = body.get("k", self.a.k)
        if not isinstance(k, int) or not 1 <= k <= self.a.k:
            return web.json_response({"error": "\"k\" must be an integer in [1, %d]" % self.a.k}, status=400)
        if not 1 <= len(items) <= self.a.max_items:
            return web.json_response({"error": "a request holds 1 to %d items" % self.a.max_items},
                                     status=400)
        parsed, answers = [], []
        st = self.parser.stats
        for i, obj in enumerate(items):
            u0, v0, t0 = st.unknown_users, st.unknown_values, st.truncated_items
            try:
                it = self.parser.parse_object(obj, "items[%d]" % i)
            except ValueError as e:
                return web.json_response({"error": str(e)}, status=400)
            known = set()
            for u in obj.get("users", []):
                r = self.parser.user_row.get(u)
                if r is not None:
                    known.add(r)
            parsed.append((it, known))
            answers.append({"id": obj.get("id"), "users": None,
                            "unknown_users": st.unknown_users - u0,
                            "unknown_values": st.unknown_values - v0,
                            "truncated": st.truncated_items > t0})
        loop = asyncio.get_running_loop()
        req = {"left": len(parsed), "fut": loop.create_future()}
        now = loop.time()
        async with self.cond:
            for (it, known), ans in zip(parsed, answers):
                self.queue.append((it, known, {"k": k, "answer": ans, "req": req}, now))
            self.cond.notify_all()
        await req["fut"]
        return web.json_response({"model_version": self.version, "items": answers})

    async def healthz(self, request):
        return web.Response(text="ok\n")

    async def readyz(self, request):
        return web.Response(text="ready %s\n" % self.version)


async def amain(a):
    peer = Peer(a)
    torch.set_num_threads(a.threads)
    faiss.omp_set_num_threads(a.threads)
    peer.cond = asyncio.Condition()
    app = web.Application(client_max_size=a.max_body)
    app.router.add_post("/v1/recommend", peer.recommend)
    app.router.add_get("/healthz", peer.healthz)
    app.router.add_get("/readyz", peer.readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = a.listen.rpartition(":")
    site = web.TCPSite(runner, host, int(port), backlog=1024)
    await site.start()
    sock = site._server.sockets[0].getsockname()
    tasks = [asyncio.create_task(peer.batcher()) for _ in range(a.workers)]
    print("serve_peer: listening on %s:%d (load %.2f s, %d users)" % (sock[0], sock[1], peer.load_seconds,
                                                                       len(peer.users)), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    await runner.cleanup()
    peer.pool.shutdown(wait=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-us", type=float, default=200)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--max-items", type=int, default=256)
    ap.add_argument("--max-body", type=int, default=1 << 20)
    a = ap.parse_args()
    asyncio.run(amain(a))


if __name__ == "__main__":
    main()
