#!/usr/bin/env python3
"""`nextuser plan` on the hand-written sample results: every number checked
against arithmetic done by hand below, and the errors.

usage: test_plan.py NEXTUSER SAMPLE.json
"""
import json
import os
import re
import subprocess
import sys
import tempfile

NEXTUSER, SAMPLE = sys.argv[1], sys.argv[2]
GiB = 1024 ** 3
failures = []


def plan(*args, results=SAMPLE):
    p = subprocess.run([NEXTUSER, "plan", "--results", results, *args], capture_output=True,
                       text=True)
    return p.returncode, p.stdout, p.stderr


def check(title, cond, detail=""):
    print(f"{'ok  ' if cond else 'FAIL'} {title}")
    if not cond:
        failures.append(title)
        if detail:
            print(detail)


def value(out, label, expr_start):
    """The number after '=' on the arithmetic line LABEL whose expression starts EXPR_START."""
    for line in out.splitlines():
        m = re.match(r"^  (\S.{10}) (.*)\s+= (-?[0-9.e+]+)( |$)", line)
        if m and m.group(1).strip() == label and m.group(2).startswith(expr_start):
            return float(m.group(3))
    raise KeyError(f"{label} {expr_start}")


def gib(out, label):
    m = re.search(rf"^  {label}\s+([0-9.]+) GiB", out, re.M)
    return float(m.group(1))


def close(a, b, rel=1e-5):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def sample_variant(path, edit):
    """Writes the sample results, changed by edit(doc), to path; returns path."""
    with open(SAMPLE) as f:
        doc = json.load(f)
    edit(doc)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def set_server_max(field, value):
    """An edit setting FIELD of every server_max row."""
    def edit(doc):
        for b in doc["benchmarks"]:
            if "server_max" in b["name"]:
                b[field] = value
    return edit


# The sample workload of docs/plan.md: 2,000 new items/s, 50M users, K 100,
# p99 <= 50 ms, on 64-core servers with 2 NUMA nodes, 30 % headroom.
rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100",
                    "--p99-ms", "50", "--cores-per-server", "64", "--nodes-per-server", "2")
check("sample plan exits 0", rc == 0, out + err)
print(out)
if rc == 0:
    # From the sample file:
    #   server_max threads:1: max_batch 64, max_wait 10 ms, bound 50, 500 items/s
    #   infer/base/B64/threads:1 6400 items/s (largest infer B <= 64)
    #   retrieve/fp32/U1M/B16/threads:1 800 q/s (largest retrieve B <= 64)
    #   serve offline U1M: threads:1 625 items/s, threads:2 1200 items/s
    g = 1 / 6400 * 1e3                        # 0.15625 ms
    s = 1 / (800 * 1e6) * 1e9                 # 1.25 ns per user
    f = (1 / 625 * 1e3) / (0.15625 + 1.25)    # 1.6 / 1.40625 = 1.137777...
    t = f * (0.15625 + 1.25e-6 * 50e6)        # f x 62.65625 = 71.28889 ms
    e = 1200 / (2 * 625)                      # 0.96
    # The server scenario kept 500 / 625 = 0.8 of offline under the bound, but there
    # one batch of 64 took 64 / 625 = 102.4 ms on the core, more than the plan's
    # batch budget (20 ms below): another regime, so r = 1 (A5).
    r = 1.0
    P = e * r / (t / 1e3)                     # 0.96 / 0.0712889 = 13.466334 items/s per core
    checks = [
        ("generator", "g =", 0.15625), ("scoring", "s =", 1.25), ("glue", "f =", 1.1377778),
        ("at U users", "t =", 71.288889), ("scaling", "e =", 0.96),
        ("measured", "min(1, 500 / 625)", 0.8), ("its batch", "64 / 625", 102.4),
        ("latency", "r = 1", 1.0), ("per core", "P =", 13.466334),
        # A6: budget (50 - 10) / 2 = 20 ms; on one server (C 64) a batch of 64:
        # generator 64 x f x g / (64 x 0.96) = 0.185185 ms, scoring 64 x f x 62.5 / 61.44
        # = 74.0741 ms; k = ceil(74.0741 / (20 - 0.185185)) = ceil(3.738) = 4
        ("budget", "(50 - 10)", 20.0), ("generator", "64 x f x g", 0.185185),
        ("scoring", "64 x f x s", 74.074074), ("shards", "k =", 4),
        # 2000 / 13.466334 = 148.5185 busy; 2000 / (0.7 x 13.466334) = 212.17 -> 213 cores;
        # ceil(213 / 64) = 4 servers; replicas floor(4 / 4) = 1 of max(4, ceil(4 / 1)) = 4 shards
        ("cores busy", "X / P", 148.51852), ("cores", "ceil(X", 213), ("servers", "ceil(213", 4),
        ("replicas", "max(1", 1), ("shards", "max(4", 4), ("servers", "1 x 4", 4),
        # batch time 0.185185 + 74.0741 / 4 = 18.7037 ms; worst 10 + 2 x 18.7037 = 47.4074 ms
        ("batch time", "generator", 18.703704), ("worst wait", "10 + 2", 47.407407),
        # busy: 2000 / (4 x 64 x 13.466334) = 58.015 %
        ("busy", "X / (", 58.015046),
    ]
    for label, expr, want in checks:
        try:
            got = value(out, label, expr)
        except KeyError:
            check(f"line {label} {expr} printed", False)
            continue
        check(f"{label} {expr} = {want} (got {got})", close(got, want, 2e-5))
    check("hand values agree with each other",
          close(P, 13.466334, 1e-6) and close(f, 1.1377778, 1e-6) and close(s, 1.25) and close(g, 0.15625))
    # Memory per node: 50M / 4 shards = 12.5M rows x 256 B / 2 nodes = 1.6e9 B = 1.490 GiB;
    # user embeddings 50M x 64 x 4 / 2 = 6.4e9 B = 5.960 GiB;
    # weights (the base shape of app/bench/shapes.c): prefix tables genres 20x64 = 1,280,
    # year 12x64 = 768, tags 200x64 = 12,800, content dense 16x64 + 64 = 1,088; pos.prefix
    # 4x64 = 256, pos.user 50x64 = 3,200, cls + pos.cls 128; 2 encoder layers of 49,984
    # (ln 128 + qkv 12,480 + wo 4,160 + ln 128 + ffn 16,640 + 16,448), enc.ln 128,
    # query_pos 51x64 = 3,264, 1 decoder layer of 49,984 (ln 128, wq 4,160, wkv 8,320,
    # wo 4,160, ln 128, ffn 33,088), dec.ln 128: 172,992 floats = 691,968 B.
    check("table shard 1.490 GiB", close(gib(out, "user table shard"), round(1.6e9 / GiB, 3), 1e-6))
    check("user embeddings 5.960 GiB",
          close(gib(out, "user embeddings"), round(6.4e9 / GiB, 3), 1e-6))
    check("weights 172992 floats", "172992 floats x 4 B" in out)
    m = re.search(r"32 threads x (\d+) B", out)
    check("32 threads per node", m is not None)
    if m:
        total = (1.6e9 + 6.4e9 + 691968 + 32 * int(m.group(1))) / GiB
        check(f"total = sum of the parts ({total:.3f} GiB)", close(gib(out, "total"), round(total, 3), 1e-6))
    check("summary line", re.search(r"^Plan: 4 server\(s\) = 1 replica\(s\) x 4 shard\(s\), 64 cores "
                                    r"each \(256 cores; 148\.5 busy .* batch 64 items, wait limit "
                                    r"10 ms, batch time 18\.704 ms", out, re.M) is not None)
    for a in ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "[m1]", "[m5]"):
        check(f"assumption {a} printed", a in out)

# int8 with more throughput: 20,000 items/s, 1M users -> the latency needs 1 shard.
rc, out, err = plan("--items-per-sec", "20000", "--users", "1000000", "--k", "100",
                    "--p99-ms", "50", "--dtype", "int8", "--cores-per-server", "32")
check("int8 plan lacks serve/base/int8 -> exit 2 naming it",
      rc == 2 and "serve/base/int8/U" in err and "nextuser bench --suite serve" in err, err)

# Errors.
# The server scenario chose its batch and wait for p99 <= 50 ms: a tighter bound
# needs a new measurement, a looser one is planned conservatively.
rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100", "--p99-ms", "40")
check("bound tighter than measured (40 < 50 ms) -> exit 2 asking for a rerun",
      rc == 2 and "--p99-ms 40" in err, err)
rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100", "--p99-ms", "60")
check("bound looser than measured (60 > 50 ms) -> a conservative plan",
      rc == 0 and "conservative" in out, out + err)
rc, out, err = plan("--users", "5", "--k", "1", "--p99-ms", "50")
check("missing --items-per-sec -> exit 2", rc == 2 and "required" in err, err)
rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100", "--p99-ms", "50",
                    results="/nonexistent/results.json")
check("unreadable results -> exit 2", rc == 2 and "/nonexistent/results.json" in err, err)
rc, out, err = plan("--items-per-sec", "0", "--users", "5", "--k", "1", "--p99-ms", "50")
check("--items-per-sec 0 -> exit 2", rc == 2, err)
rc, out, err = plan("--items-per-sec", "1", "--users", "5", "--k", "1", "--p99-ms", "50",
                    "--cores-per-server", "6", "--nodes-per-server", "4")
check("cores not divisible by nodes -> exit 2", rc == 2, err)
rc, out, err = plan("--items-per-sec", "1", "--users", "5", "--k", "1", "--p99-ms", "50",
                    "--frobnicate", "1")
check("unknown option -> exit 2", rc == 2, err)
with tempfile.TemporaryDirectory() as tmp:
    def keep_infer(doc):
        doc["benchmarks"] = [b for b in doc["benchmarks"] if b["name"].startswith("infer/")]
    only_infer = sample_variant(os.path.join(tmp, "infer.json"), keep_infer)
    rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100",
                        "--p99-ms", "50", results=only_infer)
    check("results with infer only -> exit 2 naming serve and retrieve and their commands",
          rc == 2 and "server_max" in err and "retrieve/fp32/U" in err
          and "--suite retrieve" in err and "--suite serve" in err, err)
    # A wait limit of 49.9 ms leaves (50 - 49.9) / 2 = 0.05 ms per batch, less than the
    # generator alone (0.185 ms): no number of shards helps -> exit 1.
    long_wait = sample_variant(os.path.join(tmp, "wait.json"), set_server_max("max_wait_ms", 49.9))
    rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100",
                        "--p99-ms", "50", results=long_wait)
    check("no shard count meets the bound -> exit 1", rc == 1 and "no plan" in err, err)
    # Same regime: with batches of 8, one batch took 8 / 625 = 12.8 ms on the core,
    # within the 20 ms budget, so the measured share r = 500 / 625 = 0.8 applies.
    # Batch 8 -> infer B1 (2000 items/s: g = 0.5 ms) and retrieve B1 (110 q/s:
    # s = 1 / 110e6 = 9.0909 ns); f = max(1, 1.6 / (0.5 + 9.0909)) = 1;
    # t = 0.5 + 9.0909e-6 x 50e6 = 455.04545 ms; P = 0.96 x 0.8 / 0.45504545 = 1.687744.
    small = sample_variant(os.path.join(tmp, "batch8.json"), set_server_max("max_batch", 8))
    rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100",
                        "--p99-ms", "50", results=small)
    check("batch 8: exit 0", rc == 0, out + err)
    if rc == 0:
        for label, expr, want in (("its batch", "8 / 625", 12.8), ("latency", "r = the", 0.8),
                                  ("generator", "g =", 0.5), ("scoring", "s =", 9.090909),
                                  ("at U users", "t =", 455.04545), ("per core", "P =", 1.687744)):
            got = value(out, label, expr)
            check(f"batch 8: {label} {expr} = {want} (got {got})", close(got, want, 2e-5))
    # The bf16 generator (--gen-dtype bf16): its own infer and serve rows,
    # named .../gen:bf16/..., here the sample's with the generator twice as
    # fast: g = 1 / 12800 s = 0.078125 ms; the weights gain their bf16 copy.
    def add_bf16(doc):
        extra = []
        for b in doc["benchmarks"]:
            n = b["name"]
            if n.startswith("infer/"):
                c = dict(b, name=n.replace("/threads:", "/gen:bf16/threads:"))
                c["items_per_second"] = 2 * b["items_per_second"]
            elif n.startswith("serve/"):
                c = dict(b, name=n.replace("/U1M/", "/U1M/gen:bf16/"))
            else:
                continue
            if "run_name" in c:
                c["run_name"] = c["name"]
            extra.append(c)
        doc["benchmarks"] += extra
    both = sample_variant(os.path.join(tmp, "bf16gen.json"), add_bf16)
    sample_args = ("--items-per-sec", "2000", "--users", "50000000", "--k", "100", "--p99-ms", "50",
                   "--cores-per-server", "64", "--nodes-per-server", "2")
    rc, out32, err = plan(*sample_args, results=both)
    check("fp32 generator from a file with bf16 rows too: the fp32 rows",
          rc == 0 and abs(value(out32, "generator", "g =") - 0.15625) < 1e-9 and "gen:bf16" not in out32
          and "172992 floats x 4 B" in out32, out32 + err)
    rc, out, err = plan(*sample_args, "--gen-dtype", "bf16", results=both)
    check("--gen-dtype bf16: exit 0", rc == 0, out + err)
    if rc == 0:
        check("--gen-dtype bf16: g = 1 / 12800 s from infer/base/B64/gen:bf16/threads:1",
              close(value(out, "generator", "g ="), 0.078125) and
              "[m2] infer/base/B64/gen:bf16/threads:1: 12800 items/s" in out and
              "serve/base/fp32/U1M/gen:bf16/server_max/threads:1" in out, out)
        m = re.search(r"172992 floats x 4 B \+ (\d+) B packed for the bf16 generator", out)
        # bf16 of every encoder and decoder linear's weight (biases stay fp32):
        # 2 encoder layers of qkv 64x192 + wo 64x64 + ffn 64x256 + 256x64 =
        # 49,152, a decoder layer of wq 4,096 + wkv 8,192 + wo 4,096 + ffn
        # 32,768 = 49,152: 147,456 x 2 B, plus at most 64 B of alignment each.
        check("--gen-dtype bf16: the weights' bf16 copy is counted", m is not None and
              2 * 147456 <= int(m.group(1)) <= 2 * 147456 + 64 * 14, out)
        # The total is the sum of its parts.
        if m:
            mt = re.search(r"32 threads x (\d+) B", out)
            total = (1.6e9 + 6.4e9 + 691968 + int(m.group(1)) + 32 * int(mt.group(1))) / GiB
            check(f"--gen-dtype bf16: total = sum of the parts ({total:.3f} GiB)",
                  close(gib(out, "total"), round(total, 3), 1e-6), out)
    rc, out, err = plan(*sample_args, "--gen-dtype", "bf16")
    check("--gen-dtype bf16 without bf16 rows -> exit 2 naming them and the bench option",
          rc == 2 and "serve/base/fp32/U<users>/gen:bf16/server_max/threads:1" in err and
          "infer/base/B<b>/gen:bf16/threads:1" in err and "--gen-dtypes bf16" in err, err)
    rc, out, err = plan(*sample_args, "--gen-dtype", "int8")
    check("--gen-dtype int8 -> exit 2", rc == 2 and "--gen-dtype" in err, err)
    bad = os.path.join(tmp, "bad.json")
    with open(bad, "w") as f:
        f.write("{\"context\": {}}")
    rc, out, err = plan("--items-per-sec", "2000", "--users", "50000000", "--k", "100",
                        "--p99-ms", "50", results=bad)
    check("not a results file -> exit 2", rc == 2 and "benchmarks" in err, err)
rc, out, err = subprocess.run([NEXTUSER, "plan", "--help"], capture_output=True,
                              text=True).returncode, "", ""
check("--help exits 0", rc == 0)

print(f"{len(failures)} failure(s)" if failures else "all plan checks pass")
sys.exit(1 if failures else 0)
