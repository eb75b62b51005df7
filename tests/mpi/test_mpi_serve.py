"""Sharded serving under mpirun (docs/mpi.md "Sharded serving"), on
127.0.0.1 with ephemeral ports only:
1. `mpirun -np R nextuser serve` (R = 2, 3) answers /v1/recommend exactly as
   the single-process service does (the whole body, byte for byte: users
   and scores) for fp32, bf16 and int8: one item per request, and a request
   of 20 items batched 8 at a time by both;
2. bad input still gets its 400 and the service keeps answering; /readyz,
   /metrics (nextuser_ranks R) as the single service;
3. hot reload: /admin/reload to a second model answers as the single
   service on that model, byte for byte; a model without a table file is
   refused (422, the rank's message) and the current one keeps serving;
   SIGHUP reloads the first; reloads back and forth under concurrent
   requests fail none, and every answer is one version's exact answer;
4. concurrent requests through two workers (one batch in the MPI protocol
   at a time) all succeed with the single service's users;
5. start-up failures (no table file) end every rank with the message once
   (one error line; the structured log has its own);
   a service stopped before any request exits 0;
   SIGTERM to rank 0 during a load: every answer received is a 200, every
   rank reports and the job exits 0; SIGTERM to mpirun: the job ends and
   every answer received is a 200 (OpenMPI's mpirun itself exits 1).
Every job runs under a time limit: a hang fails the test.

usage: test_mpi_serve.py NEXTUSER MPIRUN
"""
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

exe, mpirun = os.path.abspath(sys.argv[1]), sys.argv[2]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_jobs  # noqa: E402

LIMIT = 60  # seconds for any one wait


def launcher(ranks):
    return mpi_jobs.launcher(mpirun, ranks)


class Server:
    """nextuser serve, alone (ranks None) or under mpirun -np ranks."""

    def __init__(self, tmp, name, ranks, *args):
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w")
        cmd = ([] if ranks is None else launcher(ranks)) + [
            exe, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", *args]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = [None]

        def read():
            line[0] = self.p.stdout.readline()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(LIMIT)
        self.line = line[0] or ""
        self.port = self.admin = None
        words = self.line.split()
        if self.line.startswith("nextuser serve: listening on 127.0.0.1:") and len(words) == 7:
            self.port = int(words[4].rsplit(":", 1)[1])
            self.admin = int(words[6].rstrip(")").rsplit(":", 1)[1])

    def ok(self):
        return self.port is not None

    def rank0(self):
        """The pid of rank 0 (a child of mpirun), or of the single process."""
        for line in os.popen("ps -o pid= --ppid %d" % self.p.pid):
            pid = line.strip()
            try:
                env = open("/proc/%s/environ" % pid, "rb").read().split(b"\0")
            except OSError:
                continue
            if b"OMPI_COMM_WORLD_RANK=0" in env:
                return int(pid)
        return self.p.pid

    def stop(self, sig=signal.SIGTERM, to_rank0=True):
        if self.p.poll() is None:
            try:
                os.kill(self.rank0() if to_rank0 else self.p.pid, sig)
            except OSError:
                pass
        try:
            rc = self.p.wait(LIMIT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = "killed after %ss" % LIMIT
        self.log.close()
        return rc

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()


def request(port, method, path, body=None, timeout=LIMIT):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def answers(port, items):
    """The raw bodies: one item per request, then all of them in one."""
    out = [request(port, "POST", "/v1/recommend", {"items": [it], "k": 20}) for it in items]
    out.append(request(port, "POST", "/v1/recommend", {"items": items, "k": 20}))
    return out


def main():
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix="nu_mpi_serve_")
    model = os.path.join(tmp, "m")
    U, d = 3001, 32
    for args in (["synth", "--users", str(U), "--dim", str(d), "--out", model, "--seed", "5"],
                 ["table", "--model", model, "--dtypes", "all"]):
        r = subprocess.run([exe] + args, capture_output=True, text=True, timeout=LIMIT)
        if not check(r.returncode == 0, " ".join(args[:1]) + ": " + r.stderr):
            return summary("mpi_serve")
    rng = random.Random(2)
    items = []
    for i in range(20):
        n = rng.choice([0, 1, 5, 40, 120])  # 120: past max_users, all excluded
        items.append({"id": "it%d" % i, "users": ["u%d" % rng.randrange(U) for _ in range(n)]})
    common = ["--model", model, "--max-batch", "8", "--max-k", "100", "--threads", "1",
              "--max-items", "40", "--timeout-s", "2"]
    # A second model to reload to, and one without a table file.
    model2, notable = os.path.join(tmp, "m2"), os.path.join(tmp, "m3")
    for args in (["synth", "--users", str(U), "--dim", str(d), "--out", model2, "--seed", "6"],
                 ["table", "--model", model2, "--dtypes", "all"],
                 ["synth", "--users", str(U), "--dim", str(d), "--out", notable, "--seed", "7"]):
        r = subprocess.run([exe] + args, capture_output=True, text=True, timeout=LIMIT)
        check(r.returncode == 0, " ".join(args[:1]) + ": " + r.stderr)
    if os.path.exists(os.path.join(notable, "user_table.safetensors")):
        os.remove(os.path.join(notable, "user_table.safetensors"))
    single2 = Server(tmp, "single-m2", None, *common[2:], "--model", model2, "--workers", "1")
    want2 = answers(single2.port, items) if single2.ok() else []
    check(single2.stop() == 0 and want2 and all(s == 200 for s, _ in want2), "single on m2")

    # 1. byte-for-byte parity with the single process, per dtype and R
    for dt in ("fp32", "bf16", "int8"):
        extra = ["--dtype", dt] + (["--pool", "40"] if dt != "fp32" else [])
        single = Server(tmp, "single-" + dt, None, *common, *extra, "--workers", "1")
        if not check(single.ok(), "single %s: listening line: %r\n%s"
                     % (dt, single.line, single.logtext())):
            single.stop()
            continue
        want = answers(single.port, items)
        if dt == "fp32":
            want_fp32[:] = want
        check(single.stop() == 0, "single %s exits 0" % dt)
        check(all(s == 200 for s, _ in want), "single %s answers 200" % dt)
        for ranks in (2, 3):
            srv = Server(tmp, "r%d-%s" % (ranks, dt), ranks, *common, *extra)
            if not check(srv.ok(), "R=%d %s: listening line: %r\n%s"
                         % (ranks, dt, srv.line, srv.logtext())):
                srv.stop()
                continue
            got = answers(srv.port, items)
            diff = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
            check(not diff, "R=%d %s: the single process's answers byte for byte (%d requests);"
                  " first differing: %s" % (ranks, dt, len(want),
                                            [(got[i], want[i]) for i in diff[:1]]))
            if dt == "fp32":
                # 2. bad input, health, metrics
                s, b = request(srv.port, "POST", "/v1/recommend", {"items": 3})
                check(s == 400 and "items: must be a list" in b, "R=%d: bad input 400: %d %s"
                      % (ranks, s, b))
                s, b = request(srv.port, "POST", "/v1/recommend", "{")
                check(s == 400, "R=%d: malformed JSON 400" % ranks)
                s, b = request(srv.port, "POST", "/v1/recommend", {"items": [items[3]], "k": 20})
                check((s, b) == want[3], "R=%d: still answering after bad input" % ranks)
                s, b = request(srv.port, "GET", "/readyz")
                check(s == 200 and b.startswith("ready m-"), "R=%d: readyz %d %r" % (ranks, s, b))
                s, b = request(srv.port, "GET", "/metrics")
                check(s == 200 and ("\nnextuser_ranks %d\n" % ranks) in b,
                      "R=%d: /metrics gives the ranks" % ranks)
                # 3. hot reload: to m2, a refused one, SIGHUP back to m
                s, b = request(srv.admin, "POST", "/admin/reload", {"model": model2})
                check(s == 200, "R=%d: reload to m2: %d %s" % (ranks, s, b))
                got2 = answers(srv.port, items)
                check(got2 == want2, "R=%d: after the reload, the single service's answers on m2"
                      % ranks)
                s, b = request(srv.admin, "POST", "/admin/reload", {"model": notable})
                check(s == 422 and "user table" in b,
                      "R=%d: a model without a table is refused: %d %s" % (ranks, s, b))
                s, b = request(srv.port, "POST", "/v1/recommend", {"items": [items[4]], "k": 20})
                check((s, b) == want2[4], "R=%d: m2 keeps serving after the refusal" % ranks)
                os.kill(srv.rank0(), signal.SIGHUP)
                deadline = time.time() + 20
                while time.time() < deadline and "origin=SIGHUP" not in srv.logtext():
                    time.sleep(0.05)
                time.sleep(0.5)
                s, b = request(srv.port, "POST", "/v1/recommend", {"items": [items[4]], "k": 20})
                check((s, b) == want[4], "R=%d: SIGHUP reloads m: %d %s" % (ranks, s, b[:200]))
                # reloads back and forth under load: no failure, one version per answer
                results, stop_flag = [], []

                def client(seed):
                    rr = random.Random(seed)
                    while not stop_flag:
                        i = rr.randrange(len(items))
                        st, body = request(srv.port, "POST", "/v1/recommend", {"items": [items[i]], "k": 20})
                        results.append((i, st, body))
                workers = [threading.Thread(target=client, args=(k,)) for k in range(3)]
                for w in workers:
                    w.start()
                reloads = []
                for target in (model2, model, model2, model):
                    time.sleep(0.2)
                    reloads.append(request(srv.admin, "POST", "/admin/reload", {"model": target})[0])
                time.sleep(0.2)
                stop_flag.append(1)
                for w in workers:
                    w.join()
                check(reloads == [200] * 4, "R=%d: four reloads under load: %s" % (ranks, reloads))
                bad = [(i, st) for i, st, body in results if (st, body) not in (want[i], want2[i])]
                check(results and not bad, "R=%d: %d answers under reloads, each one version's exact "
                      "answer (bad: %s)" % (ranks, len(results), bad[:3]))
                check(any((st, body) == want2[i] for i, st, body in results) and
                      any((st, body) == want[i] for i, st, body in results),
                      "R=%d: both versions answered during the reloads" % ranks)
            rc = srv.stop()
            log = srv.logtext()
            check(rc == 0 and all(("rank %d of %d" % (r, ranks)) in log for r in range(ranks)),
                  "R=%d %s: SIGTERM to rank 0: every rank reports, exit 0 (%s)\n%s"
                  % (ranks, dt, rc, log[-1500:]))

    # start-up failures end every rank with the message once; a service
    # stopped before any request still ends cleanly (every rank reports)
    notable = os.path.join(tmp, "notable")
    shutil.copytree(model, notable)
    os.remove(os.path.join(notable, "user_table.safetensors"))
    try:
        r = subprocess.run(launcher(2) + [exe, "serve", "--model", notable, "--listen",
                                          "127.0.0.1:0"], capture_output=True, text=True,
                           timeout=LIMIT)
        said = [l for l in r.stderr.splitlines() if l.startswith("nextuser serve:") and "no user table" in l]
        check(r.returncode == 1 and len(said) == 1,
              "no table file: status 1, the message once: %d %s" % (r.returncode, r.stderr))
    except subprocess.TimeoutExpired:
        check(False, "no table file: the job hangs")
    srv = Server(tmp, "idle", 2, *common)
    time.sleep(0.5)
    rc = srv.stop()
    check(srv.ok() and rc == 0 and "rank 1 of 2" in srv.logtext(),
          "a service stopped before any request: exit 0, every rank reports (%s)" % rc)

    # 4, 5. two workers under a concurrent load, then SIGTERM mid-load
    for ranks, to_rank0 in ((3, True), (2, False)):
        srv = Server(tmp, "load-%d" % ranks, ranks, *common, "--workers", "2")
        if not check(srv.ok(), "load R=%d: listening: %r\n%s" % (ranks, srv.line, srv.logtext())):
            srv.stop()
            continue
        ref = {it["id"]: json.loads(b)["items"][0]["users"]
               for it, (s, b) in zip(items, want_fp32)}
        results, stop = [], threading.Event()

        def client(seed):
            rr = random.Random(seed)
            while not stop.is_set():
                it = rr.choice(items)
                try:
                    s, b = request(srv.port, "POST", "/v1/recommend", {"items": [it], "k": 20},
                                   timeout=10)
                except (OSError, http.client.HTTPException):
                    continue  # refused once draining: not an answer
                results.append((it["id"], s, b))

        ths = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in ths:
            t.start()
        time.sleep(1.0)
        n_before = len(results)
        rc = srv.stop(signal.SIGTERM, to_rank0)
        stop.set()
        for t in ths:
            t.join(LIMIT)
        bad = [(i, s, b[:200]) for i, s, b in results if s != 200]
        wrong = []
        for i, s, b in results:
            if s != 200:
                continue
            got = json.loads(b)["items"][0]["users"]
            if [u["user"] for u in got] != [u["user"] for u in ref[i]] or any(
                    abs(u["score"] - v["score"]) > 1e-5 for u, v in zip(got, ref[i])):
                wrong.append(i)
        log = srv.logtext()
        check(n_before > 10 and not bad and not wrong,
              "load R=%d: %d answers before SIGTERM, all 200 (%s) with the single service's "
              "users (%s)" % (ranks, n_before, bad[:2], wrong[:3]))
        every = all(("rank %d of %d" % (r, ranks)) in log for r in range(ranks))
        if to_rank0:
            check(rc == 0 and every and "stopped" in log,
                  "load R=%d: SIGTERM to rank 0 drains, every rank reports, exit 0 (%s)\n%s"
                  % (ranks, rc, log[-1500:]))
        else:
            # OpenMPI 4.1's mpirun forwards the signal, kills what is left after
            # a short grace and exits 1, whatever the ranks return; it may drop
            # the ranks' last lines of output (docs/mpi.md): the job ends, and
            # every answer the clients got is a 200 (checked above).
            check(rc in (0, 1), "load R=%d: SIGTERM to mpirun ends the job (%s)\n%s"
                  % (ranks, rc, log[-1500:]))
    print("%.1f s" % (time.time() - t0))
    shutil.rmtree(tmp, ignore_errors=True)
    return summary("mpi_serve")


want_fp32 = []

if __name__ == "__main__":
    sys.exit(main())
