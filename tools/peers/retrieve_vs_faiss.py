#!/usr/bin/env python3
"""Retrieval throughput of nextuser vs FAISS IndexFlatIP on the same
normalised 1M x 64 user table, K = 100, same threads, interleaved in one
run; medians of repetitions.  Also the machine's streaming-read bandwidth on
the same number of threads (nextuser-microbench peak/read_threads), so B = 1
is reported as a fraction of it, and bf16/int8 against fp32 with their
recall@100.  Writes Markdown and JSON.  Run with /usr/bin/python3.

usage: retrieve_vs_faiss.py --nextuser build/nextuser --microbench build/nextuser-microbench
                            [--users 1000000] [--threads 2] [--reps 3] [--md FILE] [--json FILE]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np


def read_f32_table(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
    e = hdr["f32"]
    return np.memmap(path, dtype="<f4", mode="r", offset=8 + n + e["data_offsets"][0],
                     shape=tuple(e["shape"]))


def write_queries(path, Q):
    with open(path, "w") as f:
        for i, q in enumerate(Q):
            f.write("q%d\t%s\n" % (i, " ".join("%.9g" % v for v in q)))


def ours(exe, model, qpath, out, batch, threads, dtype, table="copy"):
    r = subprocess.run([exe, "search", "--model", model, "--queries", qpath, "--out", out, "--k", "100",
                        "--batch", str(batch), "--threads", str(threads), "--dtype", dtype, "--table", table],
                       capture_output=True, text=True, check=True)
    return float(re.search(r"\(([0-9.]+) queries/s\)", r.stderr).group(1))


def read_ids(path):
    res = {}
    with open(path) as f:
        f.readline()
        for line in f:
            item, _, user, _ = line.split(",")
            res.setdefault(item, set()).add(int(user[1:]))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nextuser", required=True)
    ap.add_argument("--microbench", required=True)
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workdir", help="keep the synthetic model here (reused when present)")
    ap.add_argument("--md")
    ap.add_argument("--json")
    a = ap.parse_args()
    import faiss
    faiss.omp_set_num_threads(a.threads)
    work = a.workdir or tempfile.mkdtemp(prefix="nu_retr_")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, "synth-%d" % a.users)
    if not os.path.exists(os.path.join(model, "user_table.safetensors")):
        subprocess.run([a.nextuser, "synth", "--users", str(a.users), "--dim", "64", "--out", model,
                        "--seed", "1"], check=True, capture_output=True)
    table = np.ascontiguousarray(read_f32_table(os.path.join(model, "user_table.safetensors")))
    index = faiss.IndexFlatIP(table.shape[1])
    index.add(table)
    rng = np.random.default_rng(11)
    Q1 = rng.standard_normal((32, 64)).astype(np.float32)
    Q256 = rng.standard_normal((512, 64)).astype(np.float32)
    q1p, q256p = os.path.join(work, "q1.tsv"), os.path.join(work, "q256.tsv")
    write_queries(q1p, Q1)
    write_queries(q256p, Q256)
    n1 = Q1 / np.linalg.norm(Q1, axis=1, keepdims=True)
    n256 = Q256 / np.linalg.norm(Q256, axis=1, keepdims=True)
    out = os.path.join(work, "o.csv")
    fig = {k: [] for k in ["bw", "ours_b1", "ours_b1_map", "faiss_b1", "ours_b256", "faiss_b256", "bf16_b1",
                           "int8_b1"]}
    for rep in range(a.reps):
        r = subprocess.run([a.microbench, "--benchmark_filter=peak/read_threads/%d/" % a.threads,
                            "--benchmark_min_time=0.3", "--benchmark_format=json"],
                           capture_output=True, text=True, check=True)
        fig["bw"].append(json.loads(r.stdout)["benchmarks"][0]["GBps"])
        fig["ours_b1"].append(ours(a.nextuser, model, q1p, out, 1, a.threads, "fp32"))
        fig["ours_b1_map"].append(ours(a.nextuser, model, q1p, out, 1, a.threads, "fp32", "map"))
        t0 = time.perf_counter()
        for i in range(len(n1)):
            index.search(n1[i:i + 1], 100)
        fig["faiss_b1"].append(len(n1) / (time.perf_counter() - t0))
        fig["ours_b256"].append(ours(a.nextuser, model, q256p, out, 256, a.threads, "fp32"))
        t0 = time.perf_counter()
        for i in range(0, len(n256), 256):
            index.search(n256[i:i + 256], 100)
        fig["faiss_b256"].append(len(n256) / (time.perf_counter() - t0))
        fig["bf16_b1"].append(ours(a.nextuser, model, q1p, out + ".bf16", 1, a.threads, "bf16"))
        fig["int8_b1"].append(ours(a.nextuser, model, q1p, out + ".int8", 1, a.threads, "int8"))
        print("rep %d: %s" % (rep + 1, {k: round(v[-1], 1) for k, v in fig.items()}), file=sys.stderr)
    med = {k: statistics.median(v) for k, v in fig.items()}
    med["bw"] = max(fig["bw"])  # a peak: the best repetition (probes only run slower than the machine)
    _, truth = index.search(n1, 100)
    recall = {}
    for dt in ["bf16", "int8"]:
        got = read_ids(out + "." + dt)
        recall[dt] = float(np.mean([len(got["q%d" % i] & set(truth[i])) / 100 for i in range(len(n1))]))
    bytes_q = table.nbytes
    frac_b1 = med["ours_b1"] * bytes_q / 1e9 / med["bw"]
    res = {"users": a.users, "d": 64, "k": 100, "threads": a.threads, "reps": a.reps,
           "all": fig, "median": med, "recall": recall,
           "b1_fraction_of_read_bw": frac_b1,
           "b1_ratio_vs_faiss": med["ours_b1"] / med["faiss_b1"],
           "b1_map_fraction_of_read_bw": med["ours_b1_map"] * bytes_q / 1e9 / med["bw"],
           "b256_ratio_vs_faiss": med["ours_b256"] / med["faiss_b256"],
           "bf16_vs_fp32_b1": med["bf16_b1"] / med["ours_b1"],
           "int8_vs_fp32_b1": med["int8_b1"] / med["ours_b1"],
           "faiss_version": faiss.__version__}
    print(json.dumps({k: v for k, v in res.items() if k != "all"}, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if a.md:
        cmd = "/usr/bin/python3 tools/peers/retrieve_vs_faiss.py " + " ".join(sys.argv[1:])
        with open(a.md, "w") as f:
            f.write(f"""# Retrieval: nextuser vs FAISS IndexFlatIP

{a.users} x 64 fp32 user table (L2-normalised, from `nextuser synth --seed 1`), K = 100,
{a.threads} threads for both (FAISS {res['faiss_version']}, Debian python3-faiss,
`faiss.omp_set_num_threads({a.threads})`), {a.reps} repetitions interleaved in one run, medians.
nextuser figures are the search alone as reported by `nextuser search` (loading excluded),
with the table copied into anonymous memory (`--table copy`, as FAISS holds its index) unless
marked "mapped" (`--table map`, the default: the file's pages shared from the page cache);
FAISS's are `index.search` alone. The read bandwidth is `nextuser-microbench`
`peak/read_threads/{a.threads}` measured in the same run (its best repetition).

| workload | nextuser | FAISS | ratio | note |
|---|---|---|---|---|
| B = 1, fp32 (queries/s) | {med['ours_b1']:.1f} | {med['faiss_b1']:.1f} | **{res['b1_ratio_vs_faiss']:.2f}x** | {med['ours_b1'] * bytes_q / 1e9:.1f} GB/s = **{frac_b1:.2f}** of the measured {med['bw']:.1f} GB/s |
| B = 1, fp32, mapped (queries/s) | {med['ours_b1_map']:.1f} | {med['faiss_b1']:.1f} | **{med['ours_b1_map'] / med['faiss_b1']:.2f}x** | {med['ours_b1_map'] * bytes_q / 1e9:.1f} GB/s = **{res['b1_map_fraction_of_read_bw']:.2f}** of the measured bandwidth (4 KiB page-cache pages) |
| B = 256, fp32 (queries/s) | {med['ours_b256']:.0f} | {med['faiss_b256']:.0f} | **{res['b256_ratio_vs_faiss']:.2f}x** | {2 * 64 * a.users * med['ours_b256'] / 1e9:.0f} GFLOP/s |
| B = 1, bf16 (queries/s) | {med['bf16_b1']:.1f} | | **{res['bf16_vs_fp32_b1']:.2f}x** fp32 | recall@100 {recall['bf16']:.4f} |
| B = 1, int8 (queries/s) | {med['int8_b1']:.1f} | | **{res['int8_vs_fp32_b1']:.2f}x** fp32 | recall@100 {recall['int8']:.4f} |

All repetitions: `{json.dumps({k: [round(x, 1) for x in v] for k, v in fig.items()})}`

Reproduce (from the repository root, after `cmake --build build`):

```
{cmd}
```
""")


if __name__ == "__main__":
    main()
