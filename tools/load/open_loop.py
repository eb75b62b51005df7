#!/usr/bin/python3
"""Open-loop Poisson load generator for `nextuser serve` (and its peers),
LoadGen-style.

For each offered rate R the arrival times are drawn in advance (exponential
gaps of mean 1/R, seeded) and every request's latency is counted from its
*scheduled* arrival to the last byte of its answer, so a queue anywhere (in
the server, in the kernel, or in this client waiting for a free connection)
shows in the latency instead of hiding behind a slower send rate
(coordinated omission).

Only the standard library.  One thread runs an epoll loop over non-blocking
keep-alive HTTP/1.1 connections; the next arrival is a timerfd (ctypes,
CLOCK_MONOTONIC, absolute, nanosecond resolution), so arrivals are not
rounded up to epoll's milliseconds.  A request goes out on an idle
connection; when none is idle a new one is opened (up to --connections),
else it waits in a backlog (its wait counts in its latency).  Each rate also
reports how late this generator sent its requests (send lag: scheduled ->
written), so a generator that cannot keep up is visible.

Modes (one JSON document on stdout, or --json FILE):
  --rates 100,200,400     run each offered rate for --duration seconds
  --sweep                 find the highest rate whose p99 <= --p99-ms with no
                          errors and achieved >= 0.9 x the arrivals drawn per second: doubling from
                          --start until a rate fails, then --refine bisection
                          steps between the last pass and the first fail
  --capacity              the generator's own capacity: a sweep against a
                          trivial endpoint (GET --url, e.g. /healthz) whose
                          pass criterion is p99 <= --p99-ms and send-lag p99
                          <= 1 ms

Requests: POST --url with {"items": [N items], "k": K}, items taken
round-robin from --items (a JSONL items file, as `nextuser items` writes),
or GET --url with --get.  A non-200 status, a connection error or no answer
within --timeout-s after the last arrival counts as an error.

usage: open_loop.py --url http://127.0.0.1:PORT/v1/recommend --items I.jsonl
                    [--n 1] [--k 100] (--rates LIST | --sweep | --capacity)
                    [--duration 4] [--p99-ms 20] [--start 100] [--max-rate 1e6]
                    [--refine 3] [--connections 256] [--seed 1] [--json FILE]
                    [--service S.json]

--service S.json copies a description of the service under test into the
output as "service" (run_serve_bench.sh writes one per nextuser serve: the
table's rows, d and dtype, --threads, --workers, --max-batch, --max-wait-us,
the machine's cores and its command).  `nextuser plan --served` needs it to
plan from a sweep (docs/plan.md).
"""

import argparse
import ctypes
import ctypes.util
import errno
import json
import math
import os
import random
import select
import socket
import sys
import time
import urllib.parse

# ----------------------------------------------------------------------------
# timerfd through ctypes (Python 3.11 has no os.timerfd_*)
# ----------------------------------------------------------------------------

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class Timer:
    """A one-shot absolute CLOCK_MONOTONIC timer whose fd epoll can watch."""

    def __init__(self):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self._create = libc.timerfd_create
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                  ctypes.c_void_p]
        self.fd = self._create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self._spec = _Itimerspec()

    def arm(self, t):
        """Fire at monotonic time t (seconds, time.monotonic's clock)."""
        ns = max(int(t * 1e9), 1)
        self._spec.it_value.tv_sec = ns // 1000000000
        self._spec.it_value.tv_nsec = ns % 1000000000
        if self._settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def clear(self):
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass


# ----------------------------------------------------------------------------
# Connections
# ----------------------------------------------------------------------------

class Conn:
    __slots__ = ("sock", "fd", "buf", "busy", "sched", "sent", "pending_out")

    def __init__(self, addr):
        s = socket.create_connection(addr, timeout=2.0)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.sock = s
        self.fd = s.fileno()
        self.buf = b""
        self.busy = False
        self.sched = 0.0
        self.sent = 0.0
        self.pending_out = b""


def parse_response(buf):
    """(status, consumed bytes) of one complete response at the head of buf,
    or None when it is not complete yet.  Content-Length only (what both
    services send); anything else raises ValueError."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].split(b"\r\n")
    parts = head[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("bad status line %r" % head[0][:80])
    status = int(parts[1])
    length = None
    for h in head[1:]:
        name, _, value = h.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            raise ValueError("chunked answers are not supported")
    if length is None:
        length = 0
    total = end + 4 + length
    if len(buf) < total:
        return None
    return status, total


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(math.ceil(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[i]


class Generator:
    def __init__(self, url, bodies, get=False, max_conns=256, timeout_s=5.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http":
            raise SystemExit("open_loop.py: only http:// URLs")
        self.addr = (u.hostname, u.port or 80)
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        host = "%s:%d" % self.addr
        if get:
            self.reqs = [("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode()]
        else:
            self.reqs = [("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\n\r\n" % (path, host, len(b))).encode() + b
                         for b in bodies]
        self.max_conns = max_conns
        self.timeout_s = timeout_s
        self.timer = Timer()
        self.ep = select.epoll()
        self.ep.register(self.timer.fd, select.EPOLLIN)
        self.conns = {}      # fd -> Conn
        self.idle = []       # idle Conns (a stack: reuse the warmest)
        self.next_req = 0

    def _open(self):
        c = Conn(self.addr)
        self.conns[c.fd] = c
        self.ep.register(c.fd, select.EPOLLIN)
        return c

    def _close(self, c):
        try:
            self.ep.unregister(c.fd)
        except (OSError, ValueError):
            pass
        c.sock.close()
        self.conns.pop(c.fd, None)
        if c in self.idle:
            self.idle.remove(c)

    def warm(self, n):
        while len(self.conns) < min(n, self.max_conns):
            self.idle.append(self._open())

    def _send(self, c, sched, now):
        req = self.reqs[self.next_req]
        self.next_req = (self.next_req + 1) % len(self.reqs)
        c.busy = True
        c.sched = sched
        c.sent = now
        try:
            n = c.sock.send(req)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n < len(req):
            c.pending_out = req[n:]
            self.ep.modify(c.fd, select.EPOLLIN | select.EPOLLOUT)

    def run_rate(self, rate, duration, seed):
        """Offer `rate` requests/s for `duration` s; returns the rate's record."""
        rng = random.Random(seed)
        arrivals = []
        t = 0.0
        while True:
            t += rng.expovariate(rate)
            if t >= duration:
                break
            arrivals.append(t)
        if not arrivals:
            arrivals = [0.0]
        self.warm(min(self.max_conns, max(4, int(rate * 0.002) + 4)))
        lat = []          # scheduled -> answered, seconds, 200 answers
        lag = []          # scheduled -> written, seconds, every request sent
        errors = {"status": 0, "connection": 0, "timeout": 0}
        statuses = {}
        backlog = []      # scheduled times waiting for a connection (FIFO)
        bl_head = 0
        max_backlog = 0
        conns_used = len(self.conns)
        t0 = time.monotonic() + 0.01
        sched_abs = [t0 + a for a in arrivals]
        n = len(sched_abs)
        i = 0             # next arrival to dispatch
        done = 0
        last_done = t0
        deadline = t0 + duration + self.timeout_s
        self.timer.arm(sched_abs[0])
        ep = self.ep
        tfd = self.timer.fd
        outstanding = 0
        while done < n:
            now = time.monotonic()
            if now > deadline:
                break
            events = ep.poll(max(0.0, min(0.5, deadline - now)))
            now = time.monotonic()
            for fd, ev in events:
                if fd == tfd:
                    self.timer.clear()
                    continue
                c = self.conns.get(fd)
                if c is None:
                    continue
                if ev & select.EPOLLOUT and c.pending_out:
                    try:
                        k = c.sock.send(c.pending_out)
                        c.pending_out = c.pending_out[k:]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        pass
                    if not c.pending_out:
                        ep.modify(fd, select.EPOLLIN)
                if not ev & (select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP):
                    continue
                try:
                    data = c.sock.recv(1 << 20)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    if c.busy:
                        errors["connection"] += 1
                        done += 1
                        outstanding -= 1
                    self._close(c)
                    continue
                c.buf += data
                while c.busy:
                    try:
                        r = parse_response(c.buf)
                    except ValueError:
                        errors["connection"] += 1
                        done += 1
                        outstanding -= 1
                        c.busy = False
                        self._close(c)
                        break
                    if r is None:
                        break
                    status, used = r
                    c.buf = c.buf[used:]
                    c.busy = False
                    done += 1
                    outstanding -= 1
                    last_done = now
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 200:
                        lat.append(now - c.sched)
                    else:
                        errors["status"] += 1
                    if bl_head < len(backlog):
                        s = backlog[bl_head]
                        bl_head += 1
                        lag.append(now - s)
                        self._send(c, s, now)
                    else:
                        self.idle.append(c)
            # Dispatch the arrivals that are due.
            while i < n and sched_abs[i] <= now:
                s = sched_abs[i]
                i += 1
                outstanding += 1
                c = self.idle.pop() if self.idle else None
                if c is None and len(self.conns) < self.max_conns:
                    try:
                        c = self._open()
                        conns_used = max(conns_used, len(self.conns))
                    except OSError:
                        errors["connection"] += 1
                        done += 1
                        outstanding -= 1
                        continue
                if c is None:
                    backlog.append(s)
                    max_backlog = max(max_backlog, len(backlog) - bl_head)
                    continue
                lag.append(now - s)
                self._send(c, s, now)
            if i < n:
                self.timer.arm(sched_abs[i])
        # Whatever is still unanswered timed out; drop those connections.
        missing = n - done
        errors["timeout"] += missing
        for c in list(self.conns.values()):
            if c.busy:
                self._close(c)
        lat.sort()
        lag.sort()
        span = max(last_done, sched_abs[-1]) - t0
        ok = len(lat)
        ms = lambda v: None if v is None else round(v * 1e3, 4)
        return {
            "offered_per_s": rate,
            "requests": n,
            # the Poisson sample's own rate: n arrivals in duration seconds
            "offered_actual_per_s": round(n / duration, 2),
            "duration_s": round(duration, 3),
            "achieved_per_s": round(ok / span, 2) if span > 0 else None,
            "ok": ok,
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "latency_ms": {"p50": ms(pct(lat, 50)), "p90": ms(pct(lat, 90)), "p99": ms(pct(lat, 99)),
                           "p999": ms(pct(lat, 99.9)), "max": ms(lat[-1] if lat else None),
                           "mean": ms(sum(lat) / len(lat)) if lat else None},
            "send_lag_ms": {"p50": ms(pct(lag, 50)), "p99": ms(pct(lag, 99)),
                            "max": ms(lag[-1] if lag else None)},
            "connections": len(self.conns),
            "max_connections_open": conns_used,
            "max_backlog": max_backlog,
        }


def passes(rec, bound_ms, need_lag_ms=None):
    p99 = rec["latency_ms"]["p99"]
    if rec["errors"] or p99 is None or p99 > bound_ms:
        return False
    # Achieved against the sample's own arrival count (a short run at a low
    # rate draws noticeably more or fewer than rate x duration arrivals).
    if rec["achieved_per_s"] is None or rec["achieved_per_s"] < 0.9 * rec["offered_actual_per_s"]:
        return False
    if need_lag_ms is not None and (rec["send_lag_ms"]["p99"] or 0) > need_lag_ms:
        return False
    return True


def sweep(gen, start, max_rate, duration, bound_ms, refine, seed, need_lag_ms=None, log=None):
    """Doubling from start until a rate fails (or max_rate), then bisection."""
    runs = []

    def run(rate):
        rate = round(rate, 1)
        rec = gen.run_rate(rate, duration, seed + len(runs))
        rec["pass"] = passes(rec, bound_ms, need_lag_ms)
        runs.append(rec)
        if log:
            l = rec["latency_ms"]
            print("  offered %9.1f/s achieved %9.1f/s p50 %8s ms p99 %8s ms errors %d lag-p99 %s ms %s"
                  % (rate, rec["achieved_per_s"] or 0, l["p50"], l["p99"], rec["errors"],
                     rec["send_lag_ms"]["p99"], "pass" if rec["pass"] else "FAIL"), file=log, flush=True)
        # Let a failed (overloaded) rate drain before the next one.
        if not rec["pass"]:
            time.sleep(min(2.0, 0.5 + duration / 4))
        return rec["pass"]

    good, bad = None, None
    r = start
    while r <= max_rate:
        if run(r):
            good = r
            r *= 2
        else:
            bad = r
            break
    if good is None and bad is not None:
        # Even the start failed: halve down a few times.
        r = bad / 2
        for _ in range(4):
            if run(r):
                good = r
                break
            bad = r
            r /= 2
    if good is not None and bad is not None:
        for _ in range(refine):
            mid = (good + bad) / 2
            if run(mid):
                good = mid
            else:
                bad = mid
    best = None
    for rec in runs:
        if rec["pass"] and (best is None or rec["offered_per_s"] > best["offered_per_s"]):
            best = rec
    return {"bound_p99_ms": bound_ms, "max_rate_passing": best["offered_per_s"] if best else None,
            "at_max": best, "first_failing": bad, "runs": runs}


def load_bodies(path, n, k):
    with open(path) as f:
        items = [ln.strip() for ln in f if ln.strip()]
    if not items:
        raise SystemExit("open_loop.py: no items in %s" % path)
    count = max(1, min(2000, -(-len(items) // n)))
    bodies, pos = [], 0
    for _ in range(count):
        part = []
        for _ in range(n):
            part.append(items[pos])
            pos = (pos + 1) % len(items)
        bodies.append(('{"items":[%s],"k":%d}' % (",".join(part), k)).encode())
    return bodies


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--items", help="JSONL items file (POST bodies)")
    ap.add_argument("--get", action="store_true", help="GET --url instead (e.g. /healthz)")
    ap.add_argument("--n", type=int, default=1, help="items per request [1]")
    ap.add_argument("--k", type=int, default=100)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--rates", help="comma-separated offered rates (requests/s)")
    g.add_argument("--sweep", action="store_true")
    g.add_argument("--capacity", action="store_true")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds of arrivals per rate [4]")
    ap.add_argument("--p99-ms", type=float, default=20.0)
    ap.add_argument("--start", type=float, default=100.0)
    ap.add_argument("--max-rate", type=float, default=1e6)
    ap.add_argument("--refine", type=int, default=3)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--timeout-s", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label", default="")
    ap.add_argument("--json")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--service", help="JSON file describing the service under test, copied "
                                      "into the output as \"service\"")
    a = ap.parse_args()
    if a.capacity:
        a.get = True
    if not a.get and not a.items:
        ap.error("--items is required for POST requests")
    bodies = [] if a.get else load_bodies(a.items, a.n, a.k)
    gen = Generator(a.url, bodies, get=a.get, max_conns=a.connections, timeout_s=a.timeout_s)
    log = None if a.quiet else sys.stderr
    res = {"tool": "open_loop.py", "label": a.label, "url": a.url, "method": "GET" if a.get else "POST",
           "items_per_request": 0 if a.get else a.n, "k": None if a.get else a.k,
           "duration_per_rate_s": a.duration, "seed": a.seed, "max_connections": a.connections,
           "command": " ".join([os.path.relpath(sys.argv[0]) if os.path.exists(sys.argv[0]) else sys.argv[0]]
                               + sys.argv[1:])}
    if a.service:
        with open(a.service) as f:
            res["service"] = json.load(f)
    if log:
        print("open_loop %s %s" % (a.label, a.url), file=log, flush=True)
    if a.rates:
        res["mode"] = "rates"
        res["runs"] = []
        for j, r in enumerate(float(x) for x in a.rates.split(",")):
            rec = gen.run_rate(r, a.duration, a.seed + j)
            rec["pass"] = passes(rec, a.p99_ms)
            res["runs"].append(rec)
            if log:
                l = rec["latency_ms"]
                print("  offered %9.1f/s achieved %9.1f/s p50 %s ms p99 %s ms errors %d lag-p99 %s ms"
                      % (r, rec["achieved_per_s"] or 0, l["p50"], l["p99"], rec["errors"],
                         rec["send_lag_ms"]["p99"]), file=log, flush=True)
    else:
        res["mode"] = "capacity" if a.capacity else "sweep"
        res.update(sweep(gen, a.start, a.max_rate, a.duration, a.p99_ms, a.refine, a.seed,
                         need_lag_ms=1.0 if a.capacity else None, log=log))
    out = json.dumps(res, indent=1)
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            f.write(out + "\n")
        os.replace(tmp, a.json)
    else:
        print(out)
    bad = sum(r["errors"] for r in res["runs"]) if res["mode"] == "rates" else 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
