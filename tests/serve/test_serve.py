"""nextuser serve through a real HTTP client (label serve), on ephemeral
loopback ports only:
1. /v1/recommend equals `nextuser retrieve` for every item: users exactly,
   scores as float32 printed with "%.7g" against the CSV's text; one item per
   request against retrieve --batch 1, all items in one request against
   retrieve --batch B when the service batches B (the same grouping: the
   library's scores may differ in the last bit between groupings,
   docs/api.md); /v1/embed equals `nextuser embed`;
2. every bad input gets its status and a message naming the field (413,
   malformed JSON (strict: trailing text, duplicate keys), wrong types, k out of range, too many items, 404, 405,
   503 when the queue is full, idle clients timed out) and the service still
   answers afterwards; unknown users are skipped and counted;
3. reloads (M -> M2 -> M -> M2) during 8 threads x 2 s of requests with
   bad requests mixed in: no failed request, every bad one gets its 4xx,
   every answer carries one of the two versions and equals what that
   version gives (the same users and scores within 1e-6 of retrieve
   --batch 1: under load the service groups items differently, which may
   move a score's last bit);
4. a bad model on reload (admin and SIGHUP) is refused with the library's
   message and the old version keeps answering;
5. SIGTERM during a load: every answer received is a 200, the process exits
   0, and every request the service logged as answered reached its client;
6. `promtool check metrics` passes on GET /metrics and the counters moved;
7. /healthz and /readyz.

usage: test_serve.py NEXTUSER
"""
import csv
import http.client
import json
import re
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

exe = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import check, summary  # noqa: E402

# Under AddressSanitizer everything is slower: scale the waits.
SLOW = 3.0 if os.environ.get("NU_SERVE_SLOW") else 1.0


def run(*args, **kw):
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, **kw)


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


class Server:
    """A running `nextuser serve`, its ports read from its first stdout line."""

    def __init__(self, tmp, name, *args):
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w")
        self.p = subprocess.Popen([exe, "serve", "--listen", "127.0.0.1:0",
                                   "--admin-listen", "127.0.0.1:0", *args],
                                  stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = [None]

        def read():
            line[0] = self.p.stdout.readline()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(60 * SLOW)
        self.line = line[0] or ""
        self.port = self.admin = None
        words = self.line.split()
        # nextuser serve: listening on 127.0.0.1:PORT (admin 127.0.0.1:PORT2)
        if self.line.startswith("nextuser serve: listening on 127.0.0.1:") and len(words) == 7:
            self.port = int(words[4].rsplit(":", 1)[1])
            self.admin = int(words[6].rstrip(")").rsplit(":", 1)[1])

    def ok(self):
        return self.port is not None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
            rc = "killed after %ss" % timeout
        self.log.close()
        return rc

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()


def request(port, method, path, body=None, headers=None, timeout=60):
    """(status, headers, body text) over a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout * SLOW)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def post(port, path, body, **kw):
    s, h, b = request(port, "POST", path, body, {"Content-Type": "application/json"}, **kw)
    try:
        return s, h, json.loads(b)
    except ValueError:
        return s, h, {"unparsed": b}


def read_csv(path):
    """item -> [(user, score text)] in rank order."""
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            out.setdefault(row["item"], []).append((row["user"], row["score"]))
    return out


def as_csv(users):
    """A service answer's users as (user, float32 score printed "%.7g")."""
    return [(u["user"], "%.7g" % f32(u["score"])) for u in users]


def near(a, b):
    """Two answers of one version under different batch groupings: scores
    within the last bits, and a user differs only at a near-tie."""
    if len(a) != len(b):
        return False
    for i, ((ua, sa), (ub, sb)) in enumerate(zip(a, b)):
        if abs(float(sa) - float(sb)) > 1e-6:
            return False
        if ua != ub:
            ties = [float(b[j][1]) for j in (i - 1, i + 1) if 0 <= j < len(b)]
            if i != len(b) - 1 and not any(abs(float(sb) - x) <= 1e-6 for x in ties):
                return False
    return True


# ---- a small model, a second one, items ------------------------------------
tmp = tempfile.mkdtemp(prefix="nu_serve_")
D, M, M2 = (os.path.join(tmp, x) for x in ("data", "model", "model2"))
items_path = os.path.join(tmp, "items.jsonl")
r = run("serve", "--help")
check(r.returncode == 0 and "--max-wait-us" in r.stdout and "--admin-listen" in r.stdout
      and "%.9g" in r.stdout, "serve --help explains the options: " + r.stderr)
r = run("--help")
check("serve" in r.stdout, "serve is listed in nextuser --help")
for args in (("synth-data", "--users", "300", "--items", "200", "--seed", "3", "--out", D),
             ("train", "--data", D, "--out", M, "--epochs", "2", "--batch", "64", "--seed", "1",
              "--threads", "2"),
             ("train", "--data", D, "--out", M2, "--epochs", "2", "--batch", "64", "--seed", "2",
              "--threads", "2"),
             ("items", "--data", D, "--split", "test", "--stage", "2", "--out", items_path)):
    r = run(*args)
    if not check(r.returncode == 0, " ".join(args[:1]) + ": " + r.stderr):
        sys.exit(summary())
items = [json.loads(line) for line in open(items_path) if line.strip()]
check(len(items) >= 10, "enough test items (%d)" % len(items))
known_users = [u.strip() for u in open(os.path.join(M, "users.txt")) if u.strip()]

B = 8   # the service's --max-batch in the parity check
ref = {}  # (model, batch) -> retrieve's CSV
for model in (M, M2):
    for batch in (1, B):
        out = os.path.join(tmp, "ref-%s-%d.csv" % (os.path.basename(model), batch))
        r = run("retrieve", "--model", model, "--items", items_path, "--k", "20",
                "--batch", str(batch), "--out", out, "--threads", "2")
        check(r.returncode == 0, "retrieve: " + r.stderr)
        ref[(model, batch)] = read_csv(out)
emb_out = os.path.join(tmp, "emb.tsv")
r = run("embed", "--model", M, "--items", items_path, "--out", emb_out)
check(r.returncode == 0, "embed: " + r.stderr)
emb_ref = {}
for line in open(emb_out):
    iid, vals = line.rstrip("\n").split("\t")
    emb_ref[iid] = [float(v) for v in vals.split()]

# A model directory the service cannot load: a truncated weights file.
bad = os.path.join(tmp, "bad_model")
shutil.copytree(M, bad)
with open(os.path.join(bad, "model.safetensors"), "r+b") as f:
    f.truncate(100)
empty = os.path.join(tmp, "empty_model")
os.mkdir(empty)

# A service that cannot load its model does not start.
r = subprocess.run([exe, "serve", "--model", empty, "--listen", "127.0.0.1:0"],
                   capture_output=True, text=True, timeout=60)
check(r.returncode == 1 and "model.safetensors" in r.stderr,
      "a bad model at start: exit 1 with the library's message: %d %s" % (r.returncode, r.stderr))
r = run("serve", "--model", M, "--k", "50", "--max-k", "10")
check(r.returncode == 2, "--k above --max-k is a usage error")
r = run("serve", "--model", M, "--listen", "nonsense")
check(r.returncode == 2 and "HOST:PORT" in r.stderr, "a bad --listen is a usage error: " + r.stderr)

# ---- 1, 2, 6, 7: one service ------------------------------------------------
srv = Server(tmp, "main", "--model", M, "--max-batch", str(B), "--max-wait-us", "20000",
             "--max-k", "100", "--max-items", "40", "--max-body", "200000", "--workers", "2",
             "--threads", "1", "--timeout-s", "2")
if not check(srv.ok(), "listening line: %r\n%s" % (srv.line, srv.logtext())):
    srv.stop()
    sys.exit(summary())
port, admin = srv.port, srv.admin

# 7. health and readiness
s, _, b = request(port, "GET", "/healthz")
check(s == 200 and b == "ok\n", "healthz: %d %r" % (s, b))
s, _, b = request(port, "GET", "/readyz")
check(s == 200 and b.startswith("ready model-"), "readyz: %d %r" % (s, b))
v1 = b.split()[1] if s == 200 else "?"
s, _, b = request(admin, "GET", "/readyz")
check(s == 200, "readyz on the admin address too")

# 1. one item per request = retrieve --batch 1, bit for bit (float32 scores)
mismatch = []
for it in items:
    s, _, a = post(port, "/v1/recommend", {"items": [it], "k": 20})
    if s != 200 or a.get("model_version") != v1:
        mismatch.append((it["id"], s, a))
        continue
    got = a["items"][0]
    if got["id"] != it["id"] or as_csv(got["users"]) != ref[(M, 1)].get(it["id"], []) \
            or got["unknown_users"] != 0 or got["truncated"]:
        mismatch.append((it["id"], as_csv(got["users"])[:3], ref[(M, 1)].get(it["id"], [])[:3]))
check(not mismatch, "recommend (1 item a request) = retrieve --batch 1 for all %d items: %s"
      % (len(items), mismatch[:2]))
# all items in one request, batched B at a time = retrieve --batch B
chunk = items[:40]
s, _, a = post(port, "/v1/recommend", {"items": chunk, "k": 20})
ok = s == 200 and [x["id"] for x in a["items"]] == [it["id"] for it in chunk]
bad_items = [x["id"] for x in a.get("items", [])
             if as_csv(x["users"]) != ref[(M, B)].get(x["id"], [])] if ok else ["status %d" % s]
check(ok and not bad_items, "recommend (%d items, batches of %d) = retrieve --batch %d: %s"
      % (len(chunk), B, B, bad_items[:3]))
# the same items written otherwise: pretty-printed over many lines, keys
# reordered, k first, and (served by printing the parsed items back) a
# top-level name with a JSON escape; all answers equal the plain request's
pretty = json.dumps({"k": 20, "items": [{k: it[k] for k in reversed(list(it))} for it in chunk[:6]]},
                    indent=3)
escaped = json.dumps({"items": chunk[:6], "k": 20}).replace('"items"', '"it\\u0065ms"', 1)
s0, _, plain = post(port, "/v1/recommend", {"items": chunk[:6], "k": 20})
for name, text in (("pretty-printed", pretty), ("escaped name", escaped)):
    s, _, b = request(port, "POST", "/v1/recommend", text.encode(),
                      {"Content-Type": "application/json"})
    check(s == 200 and s0 == 200 and json.loads(b)["items"] == plain["items"],
          "a %s body answers as the plain one (status %d)" % (name, s))
# default k is --k (100): the first 20 equal the k=20 answer
s, _, a = post(port, "/v1/recommend", {"items": [items[0]]})
check(s == 200 and len(a["items"][0]["users"]) == min(100, len(known_users) - 2)
      and as_csv(a["items"][0]["users"][:20]) == ref[(M, 1)][items[0]["id"]],
      "no k: --k users; the first 20 are the k=20 answer")
# embed = nextuser embed (9 significant digits both)
s, _, a = post(port, "/v1/embed", {"items": items[:5]})
check(s == 200 and all(x["vector"] == emb_ref[x["id"]] for x in a["items"]),
      "embed = nextuser embed for 5 items")
# integer ids come back as sent; unknown users are skipped and counted;
# a history longer than the model reads is cut and flagged
it = {"id": 7, "users": ["nobody-1", known_users[0], "nobody-2"], "features": {}}
s, _, a = post(port, "/v1/recommend", {"items": [it], "k": 5})
check(s == 200 and a["items"][0]["id"] == 7 and a["items"][0]["unknown_users"] == 2
      and len(a["items"][0]["users"]) == 5
      and known_users[0] not in [u["user"] for u in a["items"][0]["users"]],
      "unknown users skipped and counted, known ones left out: %s" % a)
long_hist = {"id": "long", "users": known_users[:200]}
s, _, a = post(port, "/v1/recommend", {"items": [long_hist], "k": 5})
check(s == 200 and a["items"][0]["truncated"] is True, "a long history is flagged truncated")

# 2. bad input: status, message naming the field, and the service stays up
ok_item = items[0]
cases = [
    ("x" * 200001, 413, "larger than the limit"),
    ("{", 400, "body: not valid JSON"),
    ("", 400, "body: empty"),
    ("\xff\xfe garbage", 400, "body: invalid UTF-8"),
    # strict JSON: nothing after the object, no key twice
    (json.dumps({"items": [ok_item]}) + '{"items": []}', 400, "body: text after the JSON"),
    ('{"items": [], "items": [%s]}' % json.dumps(ok_item), 400, "body: key \"items\" appears twice"),
    ("[" * 5000 + "]" * 5000, 400, "body:"),
    ([], 400, "body: must be a JSON object"),
    ({"items": 3}, 400, "items: must be a list"),
    ({"items": []}, 400, "items: must hold at least one item"),
    ({"items": [ok_item] * 41}, 400, "items: at most 40 items per request (got 41)"),
    ({"items": [ok_item], "k": 0}, 400, "k: must be an integer in [1, 100]"),
    ({"items": [ok_item], "k": 101}, 400, "k: must be an integer in [1, 100]"),
    ({"items": [ok_item], "k": "5"}, 400, "k: must be an integer"),
    ({"items": [ok_item], "k": 2.5}, 400, "k: must be an integer"),
    ({"items": [ok_item], "bar": 1}, 400, 'body: unknown key "bar"'),
    ({"items": [ok_item] * 3 + [{"id": "x", "users": "u1"}]}, 400,
     "items[3].users: must be a list of user ids"),
    ({"items": [{"id": "x", "users": ["u1", {}]}]}, 400, "items[0].users[1]: must be a user id"),
    ({"items": [{"id": "x", "users": None}]}, 400, "items[0].users: must be a list of user ids"),
    ({"items": [{"users": []}]}, 400, "items[0].id: missing"),
    ({"items": [{"id": ["a"]}]}, 400, "items[0].id: must be a non-empty string or an integer"),
    ({"items": [{"id": ""}]}, 400, "items[0].id:"),
    ({"items": [{"id": "a", "features": []}]}, 400, "items[0].features: must be an object"),
    ({"items": [ok_item, {"id": "a", "features": {"nope": "x"}}]}, 400,
     'items[1]: feature "nope"'),
    ({"items": [{"id": "a", "features": {"genres": 5}}]}, 400, 'items[0]: feature "genres"'),
    ({"items": [{"id": "a", "features": {"content": [1, 2]}}]}, 400,
     'items[0]: feature "content"'),
    ({"items": [{"id": "a", "foo": 1}]}, 400, 'items[0]: unknown key "foo"'),
    ({"items": ["a"]}, 400, "items[0]: must be an object"),
]
for body, want_status, want_msg in cases:
    try:
        s, _, a = post(port, "/v1/recommend", body)
    except Exception as e:  # noqa: BLE001
        s, a = "exception %r" % e, {}
    check(s == want_status and want_msg in a.get("error", ""),
          "bad input %.60r: %s %s (want %d %r)" % (body, s, a, want_status, want_msg))
s, _, a = post(port, "/v1/embed", {"items": [ok_item], "k": 3})
check(s == 400 and 'body: unknown key "k"' in a.get("error", ""), "embed takes no k: %s" % a)
for method, path, want in (("GET", "/v1/recommend", 405), ("PUT", "/healthz", 405),
                           ("DELETE", "/metrics", 405), ("GET", "/nope", 404),
                           ("POST", "/admin/reload", 404), ("GET", "/v1/recommend/x", 404)):
    s, h, b = request(port, method, path, "{}" if method in ("POST", "PUT") else None)
    check(s == want and "error" in json.loads(b), "%s %s: %d (want %d) %s" % (method, path, s, want, b))
    if want == 405:
        check("Allow" in h, "405 names the allowed method")
# a body over the limit on a kept-alive connection: the answer arrives and the
# connection still serves (also without Expect: 100-continue)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30 * SLOW)
c.request("POST", "/v1/recommend", body=b"y" * 300000)
r1 = c.getresponse()
r1.read()
c.request("GET", "/healthz")
r2 = c.getresponse()
check(r1.status == 413 and r2.status == 200 and r2.read() == b"ok\n",
      "413 then the same connection answers: %d %d" % (r1.status, r2.status))
c.close()
# an idle client is timed out (--timeout-s 2)
sk = socket.create_connection(("127.0.0.1", port), timeout=30)
sk.sendall(b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
t0 = time.time()
try:
    got = sk.recv(4096)
except OSError:
    got = b""
sk.close()
check(time.time() - t0 < 20 * SLOW and b"200" not in got,
      "an idle half-sent request is closed by the timeout (%.1f s)" % (time.time() - t0))
s, _, b = request(port, "GET", "/healthz")
check(s == 200, "still healthy after every bad input")
s, _, a = post(port, "/v1/recommend", {"items": [items[1]], "k": 20})
check(s == 200 and as_csv(a["items"][0]["users"]) == ref[(M, 1)][items[1]["id"]],
      "still answering correctly after every bad input")

# 6. metrics
s, h, text = request(port, "GET", "/metrics")
check(s == 200 and h.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
      "metrics: 200 text/plain version 0.0.4")
promtool = shutil.which("promtool")
if check(promtool is not None, "promtool is installed (Debian package prometheus)"):
    pr = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                        text=True, timeout=60)
    check(pr.returncode == 0, "promtool check metrics: %s %s" % (pr.stdout, pr.stderr))
values = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        name, val = line.rsplit(" ", 1)
        values[name] = float(val)
check(values.get('nextuser_requests_total{endpoint="recommend",code="200"}', 0) >= len(items),
      "requests_total counts the recommends")
check(values.get('nextuser_requests_total{endpoint="recommend",code="400"}', 0) >= 20,
      "requests_total counts the 400s")
check(values.get('nextuser_requests_total{endpoint="recommend",code="413"}', 0) >= 2,
      "requests_total counts the 413s")
check(values.get("nextuser_items_scored_total", 0) >= len(items) + len(chunk),
      "items_scored_total moved")
check(values.get("nextuser_batch_items_count", 0) > 0 and
      values.get('nextuser_batch_items_bucket{le="8"}', 0) ==
      values.get('nextuser_batch_items_bucket{le="+Inf"}', -1),
      "batch_items histogram: batches of at most --max-batch")
check(values.get('nextuser_request_duration_seconds_count{endpoint="recommend"}', 0) > 0,
      "request duration histogram")
check(values.get('nextuser_model_info{version="%s",dtype="fp32"}' % v1) == 1,
      "model_info names the version and dtype")
check(values.get("nextuser_table_rows") == len(known_users), "table_rows")
check("nextuser_queue_items" in values and "nextuser_model_load_seconds" in values,
      "queue and load-time gauges")
logtext = srv.logtext()
check('method="POST" path="/v1/recommend" status=200 items=1 us=' in logtext,
      "one structured log line per request")
# each answered recommend line carries its stages, which add up to its total
staged = [dict(re.findall(r'(\w+)=(\S+)', ln)) for ln in logtext.splitlines()
          if 'path="/v1/recommend" status=200' in ln]
parts = ("parse_us", "queue_us", "engine_us", "answer_us", "send_us")
good = [d for d in staged if all(k in d for k in parts)]
check(staged and len(good) == len(staged) and
      all(abs(sum(float(d[k]) for k in parts) - float(d["us"])) <= 5 and
          all(float(d[k]) >= 0 for k in parts) for d in good),
      "answered recommend lines give parse/queue/engine/answer/send times that sum to us "
      "(%d of %d lines)" % (len(good), len(staged)))
check(good and sum(float(d["engine_us"]) for d in good) > 0, "the engine stage is measured")
rc = srv.stop()
check(rc == 0, "SIGTERM when idle: exit 0 (%s)" % rc)

# ---- overload: a full queue is answered 503 at once --------------------------
srv = Server(tmp, "overload", "--model", M, "--queue-items", "4", "--max-items", "4",
             "--workers", "1", "--max-batch", "32", "--max-wait-us", "1500000")
if check(srv.ok(), "overload service started: %r" % srv.line):
    res = []

    def slow_one():
        res.append(post(srv.port, "/v1/recommend", {"items": items[:4], "k": 3})[0])

    t = threading.Thread(target=slow_one)
    t.start()
    time.sleep(0.5)
    t0 = time.time()
    s, h, a = post(srv.port, "/v1/recommend", {"items": items[:1], "k": 3})
    check(s == 503 and h.get("Retry-After") == "1" and "queue" in a.get("error", "")
          and time.time() - t0 < 1.0,
          "a full queue: 503 with Retry-After at once: %s %s %s" % (s, h, a))
    t.join(60 * SLOW)
    check(res == [200], "the queued request is answered: %s" % res)
    check(srv.stop() == 0, "overload service exits 0")

# ---- 3, 4: reloads under load --------------------------------------------------
cur = os.path.join(tmp, "current")
os.symlink(M, cur)
srv = Server(tmp, "reload", "--model", cur, "--max-batch", "8", "--max-wait-us", "2000",
             "--workers", "2", "--threads", "1", "--max-k", "20", "--k", "20",
             "--max-body", "200000")
if check(srv.ok(), "reload service started: %r" % srv.line):
    port, admin = srv.port, srv.admin
    s, _, b = request(port, "GET", "/readyz")
    vm = b.split()[1]
    answers, errors, refused_bad = [], [], []
    stop = threading.Event()
    lock = threading.Lock()
    # Bad requests mixed into the load: each must get its 4xx, none may
    # disturb the others (and under ASan: no error, no leak).
    bad_mix = [("{", 400), ({"items": [{"id": "x", "users": 5}]}, 400),
               ({"items": [items[0]], "k": 0}, 400), ("z" * 300000, 413),
               ({"items": [{"id": "a", "features": {"nope": 1}}]}, 400)]

    def client(seed):
        rnd = random.Random(seed)
        while not stop.is_set():
            chosen = rnd.sample(items, rnd.randint(1, 4))
            if rnd.random() < 0.15:
                body, want = rnd.choice(bad_mix)
                try:
                    s, _, a = post(port, "/v1/recommend", body)
                    with lock:
                        (refused_bad if s == want else errors).append((s, a))
                except Exception as e:  # noqa: BLE001
                    with lock:
                        errors.append(repr(e))
                continue
            try:
                s, _, a = post(port, "/v1/recommend", {"items": chosen, "k": 20})
                with lock:
                    if s != 200:
                        errors.append((s, a))
                    else:
                        answers.append(a)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    reloads = []
    for target in (M2, M, M2):
        time.sleep(0.5)
        reloads.append(post(admin, "/admin/reload", {"model": target}, timeout=120))
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(120 * SLOW)
    check(all(x[0] == 200 for x in reloads), "three reloads under load: %s" % [x[0] for x in reloads])
    vm2 = reloads[0][2].get("model_version", "?")
    check(vm2 != vm and vm2.startswith("model2-") and reloads[0][2].get("previous") == vm
          and reloads[1][2].get("model_version") == vm, "reload answers: %s" % reloads)
    check(not errors, "no failed request during the reloads (%d answers): %s"
          % (len(answers), errors[:3]))
    by_version = {}
    wrong = []
    for a in answers:
        v = a["model_version"]
        by_version[v] = by_version.get(v, 0) + 1
        model = {vm: M, vm2: M2}.get(v)
        if model is None:
            wrong.append(v)
            continue
        for x in a["items"]:
            if not near(as_csv(x["users"]), ref[(model, 1)][x["id"]]):
                wrong.append((v, x["id"]))
    exact = sum(1 for a in answers for x in a["items"]
                if as_csv(x["users"]) == ref[({vm: M, vm2: M2}.get(a["model_version"], M), 1)]
                .get(x["id"]))
    print("reloads under load: %d answers, %d bad requests refused as they should, %d failed, "
          "by version %s; %d of %d items bit-exact with retrieve --batch 1"
          % (len(answers), len(refused_bad), len(errors), by_version, exact,
             sum(len(a["items"]) for a in answers)))
    check(set(by_version) == {vm, vm2} and len(answers) > 50,
          "answers from both versions, nothing else: %s" % by_version)
    check(not wrong, "every answer equals what its version gives: %s" % wrong[:3])

    # 4. a bad model is refused with the library's message; the old one serves
    for target, want in ((bad, "model.safetensors"), (empty, "cannot open")):
        s, _, a = post(admin, "/admin/reload", {"model": target}, timeout=120)
        check(400 <= s < 600 and want in a.get("error", ""),
              "reload of a bad model refused: %d %s" % (s, a))
    s, _, a = post(admin, "/admin/reload", {"model": 5})
    check(s == 400 and "model:" in a.get("error", ""), "reload body checked: %s" % a)
    s, _, b = request(port, "GET", "/readyz")
    check(s == 200 and b.split()[1] == vm2, "still ready on the old version: %s" % b)
    s, _, a = post(port, "/v1/recommend", {"items": [items[2]], "k": 20})
    check(s == 200 and a["model_version"] == vm2
          and as_csv(a["items"][0]["users"]) == ref[(M2, 1)][items[2]["id"]],
          "the old version keeps answering after a refused reload")
    # SIGHUP reloads --model (a link: M2 now), refused when it is bad
    os.remove(cur)
    os.symlink(bad, cur)
    srv.p.send_signal(signal.SIGHUP)
    deadline = time.time() + 30 * SLOW
    while time.time() < deadline and srv.logtext().count("model refused") < 3:
        time.sleep(0.1)
    log = srv.logtext()
    check(log.count("model refused") >= 3 and "origin=SIGHUP" in log,
          "SIGHUP with a bad model: refused and logged")
    s, _, b = request(port, "GET", "/readyz")
    check(s == 200 and b.split()[1] == vm2, "SIGHUP refused: the old version serves")
    os.remove(cur)
    os.symlink(M, cur)
    srv.p.send_signal(signal.SIGHUP)
    deadline = time.time() + 30 * SLOW
    while time.time() < deadline:
        s, _, b = request(port, "GET", "/readyz")
        if b.split()[1:2] == [vm]:
            break
        time.sleep(0.1)
    check(b.split()[1:2] == [vm], "SIGHUP reloads the model directory: %s" % b)
    s, _, a = post(port, "/v1/recommend", {"items": [items[3]], "k": 20})
    check(s == 200 and a["model_version"] == vm
          and as_csv(a["items"][0]["users"]) == ref[(M, 1)][items[3]["id"]],
          "after SIGHUP: the reloaded version answers")
    log = srv.logtext()
    check("model version freed" in log, "replaced versions are freed")
    check(srv.stop() == 0, "reload service exits 0")

# ---- a request that finds the service idle runs on its HTTP thread -----------
def metric(port, name):
    s, _, text = request(port, "GET", "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


# the default batching (--max-wait-us 0): a lone request after a pause runs at
# once (here on one engine thread of two), and answers as retrieve --batch 1 does
srv = Server(tmp, "idle", "--model", M, "--workers", "1", "--threads", "2", "--k", "20",
             "--idle-us", "1000", "--idle-threads", "1")
if check(srv.ok(), "idle-path service started: %r" % srv.line):
    port = srv.port
    bad = []
    for it in items[:30]:
        time.sleep(0.003)  # idle for more than --idle-us
        s, _, a = post(port, "/v1/recommend", {"items": [it], "k": 20})
        if s != 200 or as_csv(a["items"][0]["users"]) != ref[(M, 1)].get(it["id"], []):
            bad.append((it["id"], s))
    n_idle = metric(port, "nextuser_idle_batches_total")
    check(not bad and n_idle == 30,
          "30 lone requests after a pause: all run on the HTTP thread (%s) and equal "
          "retrieve --batch 1 bit for bit: %s" % (n_idle, bad[:3]))
    # concurrent clients with pauses: some requests take the idle path, the
    # rest queue for the worker; every answer ranks as retrieve does
    answers, errors = [], []
    lock = threading.Lock()

    def idle_client(seed):
        rnd = random.Random(seed)
        for _ in range(25):
            time.sleep(rnd.choice((0, 0, 0.002)))
            chosen = rnd.sample(items, rnd.randint(1, 3))
            try:
                s, _, a = post(port, "/v1/recommend", {"items": chosen, "k": 20}, timeout=60)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                answers.append((s, chosen, a))

    threads = [threading.Thread(target=idle_client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120 * SLOW)
    wrong = [c[0]["id"] for s, c, a in answers
             if s != 200 or [x["id"] for x in a["items"]] != [x["id"] for x in c]
             or any(not near(as_csv(x["users"]), ref[(M, 1)].get(x["id"], [])) for x in a["items"])]
    n_idle2 = metric(port, "nextuser_idle_batches_total")
    check(len(answers) == 100 and not errors and not wrong,
          "4 clients with pauses, both paths (%s requests took the idle one): %d answers, "
          "every one a 200 ranking as retrieve: %s %s"
          % (n_idle2 - n_idle if n_idle2 is not None else None, len(answers), errors[:2], wrong[:3]))
    check(srv.stop() == 0, "idle-path service exits 0")
srv = Server(tmp, "noidle", "--model", M, "--workers", "1", "--k", "20", "--idle-us", "0")
if check(srv.ok(), "service with --idle-us 0 started: %r" % srv.line):
    for it in items[:5]:
        time.sleep(0.003)
        post(srv.port, "/v1/recommend", {"items": [it], "k": 20})
    check(metric(srv.port, "nextuser_idle_batches_total") == 0,
          "--idle-us 0: every request is handed to a worker")
    check(srv.stop() == 0, "--idle-us 0 service exits 0")

# ---- 5. SIGTERM during a load --------------------------------------------------
srv = Server(tmp, "term", "--model", M, "--max-batch", "8", "--max-wait-us", "5000",
             "--workers", "2", "--threads", "1", "--k", "20")
if check(srv.ok(), "shutdown service started: %r" % srv.line):
    port = srv.port
    statuses, refused, other = [], [], []
    lock = threading.Lock()
    stop = threading.Event()

    def client(seed):
        rnd = random.Random(seed)
        while not stop.is_set():
            chosen = rnd.sample(items, rnd.randint(1, 4))
            try:
                s, _, a = post(port, "/v1/recommend", {"items": chosen}, timeout=60)
                with lock:
                    statuses.append(s)
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
                    http.client.RemoteDisconnected) as e:
                with lock:
                    refused.append(type(e).__name__)
                time.sleep(0.01)
            except Exception as e:  # noqa: BLE001
                with lock:
                    other.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t0 = time.time()
    srv.p.send_signal(signal.SIGTERM)
    try:
        rc = srv.p.wait(60 * SLOW)
    except subprocess.TimeoutExpired:
        srv.p.kill()
        rc = "hung"
    took = time.time() - t0
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(60 * SLOW)
    srv.log.close()
    log = srv.logtext()
    served = sum(1 for line in log.splitlines()
                 if 'path="/v1/recommend" status=200' in line)
    print("SIGTERM during load: exit %s after %.2f s; %d answers received (all 200: %s), "
          "%d logged as answered, %d refused after the signal"
          % (rc, took, len(statuses), all(s == 200 for s in statuses), served, len(refused)))
    check(rc == 0, "SIGTERM during load: exit 0 (%s, %.2f s)" % (rc, took))
    check(statuses and all(s == 200 for s in statuses),
          "every answer received is a 200 (%d answers, %d refused after the signal)"
          % (len(statuses), len(refused)))
    check(not other, "no other client error: %s" % other[:3])
    check(served == len(statuses),
          "every request the service answered reached its client (%d logged, %d received)"
          % (served, len(statuses)))
    check("shutting down" in log and "stopped" in log, "shutdown logged")

shutil.rmtree(tmp, ignore_errors=True)
sys.exit(summary())
