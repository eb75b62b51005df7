"""The Python bindings (python/nextuser, label python), used as installed:
`cmake --install BUILD_DIR` into a temporary prefix, then a fresh python3
with only PYTHONPATH pointing there (no NEXTUSER_LIBRARY, so the package
finds the library next to itself) checks them against the CLI on a small
synthetic model:
- recommend gives the top-K users and scores of `nextuser retrieve`, item
  for item, also when the batch is longer than the engine's max_batch;
- embed gives `nextuser embed`'s vectors, bit for bit, also with the bf16
  generator (gen_dtype), which reports what it runs;
- search of the embeddings gives `nextuser search`'s results, whatever the
  queries' layout (contiguous, a strided view, float64);
- the same for a model that weighs a feature prior (queries wider than
  û_next: `nextuser embed --query`'s);
- failures raise nextuser.Error carrying the library's exact message (the
  text the CLI prints for the same fault) and its status code;
- Batch.add from strings is the same item as Batch.add_json;
- two threads sharing one Engine get the serial results, and Python runs
  while another thread is inside the library (the GIL is released);
- handles keep what they depend on alive, and close in order.

usage: test_bindings.py NEXTUSER BUILD_DIR
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, ".."))
from checks import check, summary  # noqa: E402
import checks  # noqa: E402


def install(build, tmp):
    """Installs into tmp/prefix; returns (prefix, the package's site dir)."""
    prefix = os.path.join(tmp, "prefix")
    r = subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                       capture_output=True, text=True)
    check(r.returncode == 0, "cmake --install: " + r.stderr)
    libs = glob.glob(os.path.join(prefix, "lib", "libnextuser.so.0")) + \
        glob.glob(os.path.join(prefix, "lib", "*", "libnextuser.so.0"))
    check(libs, "the install holds libnextuser.so.0")
    found = glob.glob(os.path.join(prefix, "lib", "python3*", "dist-packages", "nextuser",
                                   "__init__.py"))
    if found:
        site = os.path.dirname(os.path.dirname(found[0]))
    else:
        # The project's install() does not carry the package yet: put it
        # where it would go.
        site = os.path.join(prefix, "lib", "python3", "dist-packages")
        shutil.copytree(os.path.join(SOURCE, "python", "nextuser"),
                        os.path.join(site, "nextuser"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        print("note: the install has no Python package; copied python/nextuser to " + site)
    return prefix, site


def outer(exe, build):
    tmp = tempfile.mkdtemp(prefix="nu_python_")
    prefix, site = install(build, tmp)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NEXTUSER_LIBRARY", "PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = site
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--inner", exe, prefix,
                        os.path.join(tmp, "work")], env=env, capture_output=True, text=True,
                       timeout=540)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    # Fold the inner counts into ours.
    last = [ln for ln in r.stdout.splitlines() if ln.endswith(" failed")]
    if last:
        words = last[-1].split()
        checks.passed += int(words[-4])
        checks.failed += int(words[-2])
    check(r.returncode == 0 and last, "the installed package's checks ran and passed (rc %d)"
          % r.returncode)

    # Exit while OpenMP threads still spin in the library (OMP_WAIT_POLICY=
    # active): the interpreter's dlclose must not unmap code they run in
    # (was a SIGSEGV at exit; the library is linked -z nodelete).
    M = os.path.join(tmp, "work", "M")
    spin = ("import time, nextuser as nu\n"
            "m = nu.Model(%r); e = nu.Engine(m, nu.Table(m, %r), threads=2, max_batch=8, k=5)\n"
            "b = nu.Batch(m); b.add('x', users=[m.user_id(1)])\n"
            "for i in range(40):\n    e.recommend(b); time.sleep(0.001)\n") % (M, M)
    fails = []
    for i in range(3):
        r = subprocess.run([sys.executable, "-c", spin], env=dict(env, OMP_WAIT_POLICY="active"),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            fails.append((r.returncode, r.stderr[-200:]))
    check(os.path.isdir(M) and not fails,
          "exit with OpenMP threads spinning (OMP_WAIT_POLICY=active) is clean: %s" % fails[:1])

    # An unloadable NEXTUSER_LIBRARY is an ImportError that names it.
    bad = dict(env, NEXTUSER_LIBRARY=os.path.join(tmp, "no-such-libnextuser.so"))
    r = subprocess.run([sys.executable, "-c", "import nextuser"], env=bad, capture_output=True,
                       text=True)
    check(r.returncode != 0 and "ImportError" in r.stderr and "no-such-libnextuser.so" in r.stderr,
          "a bad NEXTUSER_LIBRARY is an ImportError naming it: " + r.stderr[-300:])
    if checks.failed == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


# ---- inside the fresh interpreter -----------------------------------------

def inner(exe, prefix, work):
    import gc
    import json
    import threading
    import time

    import numpy as np

    import nextuser as nu

    os.makedirs(work)

    def run(*args):
        return subprocess.run([exe, *args], capture_output=True, text=True)

    def at(name):
        return os.path.join(work, name)

    check(os.path.realpath(nu.library_path).startswith(os.path.realpath(prefix) + os.sep),
          "the library was found next to the installed package: " + nu.library_path)
    r = run("info", "--json")
    info = json.loads(r.stdout) if r.returncode == 0 else {}
    check(nu.version() == info.get("version"), "version() %s = the CLI's" % nu.version())
    check(nu.isa() == info.get("isa_active"), "isa() %s = the CLI's" % nu.isa())
    check(nu.isas_available() == info.get("isas_available"), "isas_available() = the CLI's")

    # The model and the CLI's answers.
    D, M, items, k = at("D"), at("M"), at("I.jsonl"), 20
    for args in (("synth-data", "--users", "300", "--items", "200", "--seed", "3", "--out", D),
                 ("train", "--data", D, "--out", M, "--epochs", "2", "--batch", "64", "--seed", "1",
                  "--threads", "2"),
                 ("items", "--data", D, "--split", "test", "--stage", "2", "--out", items),
                 ("retrieve", "--model", M, "--items", items, "--out", at("R.csv"), "--k", str(k),
                  "--threads", "2"),
                 ("embed", "--model", M, "--items", items, "--out", at("E.tsv"), "--threads", "2"),
                 ("embed", "--model", M, "--items", items, "--out", at("Q.tsv"), "--threads", "2",
                  "--query"),
                 ("embed", "--model", M, "--items", items, "--out", at("EB.tsv"), "--threads", "2",
                  "--gen-dtype", "bf16")):
        r = run(*args)
        if not check(r.returncode == 0, " ".join(args[:1]) + ": " + r.stderr):
            return summary("installed package")

    def read_topk(path):
        out = {}
        for ln in open(path).read().splitlines()[1:]:
            item, rank, user, score = ln.split(",")
            out.setdefault(item, []).append((int(rank), user, float(score)))
        return out

    def read_vectors(path):
        ids, vecs = [], []
        for ln in open(path).read().splitlines():
            i, v = ln.split("\t")
            ids.append(i)
            vecs.append([float(x) for x in v.split()])
        return ids, np.array(vecs, dtype=np.float32)  # %.9g: exact as float32

    def same_topk(model, rows, scores, ids, cli, what):
        bad = []
        for i, item in enumerate(ids):
            want = cli.get(item, [])
            got = [(j + 1, model.user_id(r), float(scores[i, j]))
                   for j, r in enumerate(rows[i]) if r != nu.NO_USER]
            if [g[:2] for g in got] != [w[:2] for w in want] or any(
                    abs(g[2] - w[2]) > 1e-5 * max(abs(w[2]), 1e-30) for g, w in zip(got, want)):
                bad.append(item)
        return check(not bad and ids, "%s: the CLI's top %d for every item (differ: %s)"
                     % (what, k, bad[:5]))

    lines = [ln for ln in open(items).read().splitlines() if ln.strip()]
    model = nu.Model(M)
    check(model.dim > 0 and model.num_users == 300 and model.query_dim >= model.dim,
          "Model: dim %d, %d users, query_dim %d" % (model.dim, model.num_users, model.query_dim))
    check(model.user_ids == open(os.path.join(M, "users.txt")).read().split(),
          "user_ids are users.txt's, by row")
    check(model.user_id(model.num_users) is None and model.user_id(nu.NO_USER) is None,
          "user_id out of range is None")
    table = nu.Table(model, M)
    # max_batch 8 < the items: recommend, embed and search go in chunks.
    engine = nu.Engine(model, table, threads=2, max_batch=8, k=k)
    batch = nu.Batch(model)
    for ln in lines:
        batch.add_json(ln)
    ids = [json.loads(ln)["id"] for ln in lines]
    check(len(batch) == len(lines) > engine.max_batch and batch.ids == ids,
          "Batch: %d items, ids in order" % len(batch))

    # (1) recommend = retrieve.
    rows, scores = engine.recommend(batch)
    check(rows.dtype == np.uint32 and scores.dtype == np.float32 and
          rows.shape == scores.shape == (len(lines), k), "recommend: uint32/float32 [n, k]")
    cli = read_topk(at("R.csv"))
    same_topk(model, rows, scores, ids, cli, "recommend")
    known = [set(json.loads(ln).get("users", [])) for ln in lines]
    check(all(not ({model.user_id(r) for r in rows[i]} & known[i]) for i in range(len(lines))),
          "recommend leaves out every item's known users")
    # The SIMD score kernels sum in another order below 8 queries a call, so
    # a smaller call's scores may differ in the last bit.
    r2, s2 = engine.recommend(batch, first=5, n=3)
    check(np.array_equal(r2, rows[5:8]) and np.allclose(s2, scores[5:8], rtol=1e-6, atol=0),
          "recommend(first=5, n=3) = rows 5..7 of the whole batch")
    r2, s2 = engine.recommend(batch, first=len(batch))
    check(r2.shape == (0, k), "recommend of no items: [0, k]")
    # a session on one of the engine's threads answers the same, bit for bit
    one = engine.session()
    one.set_threads(1)
    r1, s1 = one.recommend(batch, first=0, n=engine.max_batch)
    rf, sf = engine.recommend(batch, first=0, n=engine.max_batch)
    check(np.array_equal(r1, rf) and np.array_equal(s1, sf),
          "Session.set_threads(1): the same answers as the engine's threads")
    try:
        engine.recommend(batch, first=len(batch) - 1, n=2)
        check(False, "recommend past the batch raises")
    except ValueError:
        check(True, "")

    # (2) embed = nextuser embed, exactly.
    E = engine.embed(batch)
    eids, cliE = read_vectors(at("E.tsv"))
    check(eids == ids and E.shape == cliE.shape == (len(lines), model.dim),
          "embed: [n, dim] in the CLI's order")
    check(np.array_equal(E, cliE), "embed = nextuser embed, bit for bit (max diff %g)"
          % (np.abs(E - cliE).max() if E.shape == cliE.shape else -1))

    # (2b) the bf16 generator: what `embed --gen-dtype bf16` gives, bit for
    # bit, whichever encoding this CPU runs it in.
    eb = nu.Engine(model, table, threads=2, max_batch=8, k=k, gen_dtype="bf16")
    active = eb.gen_dtype_active
    check(active == nu.gen_dtype_effective("bf16") and active in ("fp32", "bf16") and
          engine.gen_dtype_active == "fp32",
          "gen_dtype_active: %s for bf16 (this CPU), fp32 for the default" % active)
    EB = eb.embed(batch)
    _, cliEB = read_vectors(at("EB.tsv"))
    check(EB.shape == cliEB.shape and np.array_equal(EB, cliEB),
          "Engine(gen_dtype='bf16').embed = nextuser embed --gen-dtype bf16, bit for bit")
    rel = float(np.max(np.linalg.norm(EB - E, axis=1) / np.linalg.norm(E, axis=1)))
    check((rel == 0.0) == (active == "fp32") and rel <= 0.01,
          "bf16 generator within docs/encodings.md's bound of fp32: max rel err %.2g (%s)"
          % (rel, active))
    eb.close()
    for bad in ("int8", "fp16"):
        try:
            nu.Engine(model, table, gen_dtype=bad)
            check(False, "Engine(gen_dtype=%r) raises" % bad)
        except ValueError as e:
            check("gen_dtype" in str(e), "Engine(gen_dtype=%r): ValueError %r" % (bad, str(e)))

    # (3) errors: nextuser.Error with the library's text, as the CLI prints it.
    try:
        nu.Model(at("nonexistent"))
        check(False, "Model(missing dir) raises")
    except nu.Error as e:
        cli_err = run("embed", "--model", at("nonexistent"), "--items", items, "--out",
                      at("x.tsv")).stderr
        check(isinstance(e, RuntimeError) and e.status == nu.ERR_IO and str(e) and
              "nonexistent" in str(e) and str(e) in cli_err,
              "Model(missing dir): Error(ERR_IO) with the library's message: %r (CLI: %r)"
              % (str(e), cli_err))
    with open(at("bad.jsonl"), "w") as f:
        f.write('{"id": "x", "users": ["u1"\n')
    cli_err = run("embed", "--model", M, "--items", at("bad.jsonl"), "--out", at("x.tsv")).stderr
    for bad, status, words in (('{"id": "x", "users": ["u1"', nu.ERR_FORMAT, "JSON"),
                               ('{"id": "x", "colour": "red"}', nu.ERR_FORMAT, "colour"),
                               ('{"id": "x", "features": {"nofield": "a"}}', nu.ERR_FORMAT,
                                "nofield")):
        n0 = len(batch)
        try:
            batch.add_json(bad)
            check(False, "add_json(%s) raises" % bad)
        except nu.Error as e:
            check(e.status == status and words in str(e) and len(batch) == n0,
                  "add_json(%s): Error %d %r, the batch unchanged" % (bad, e.status, str(e)))
            if words == "JSON":
                check(str(e) in cli_err, "the message is the CLI's: %r in %r" % (str(e), cli_err))
    try:
        nu.Engine(model, table, k=0)
        check(False, "Engine(k=0) raises")
    except nu.Error as e:
        check(e.status == nu.ERR_INVALID_ARG and "k" in str(e), "Engine(k=0): %r" % str(e))
    try:
        nu.Engine(model, table, dtype="int8")  # the table holds fp32 only
        check(False, "Engine on a table without the dtype raises")
    except nu.Error as e:
        check(e.status == nu.ERR_INVALID_ARG and "int8" in str(e), "Engine(int8): %r" % str(e))
    # The message is the failing thread's own.
    got = {}

    def fail_in_thread():
        try:
            nu.Model(at("other-missing"))
        except nu.Error as e:
            got["msg"] = str(e)
    t = threading.Thread(target=fail_in_thread)
    t.start()
    t.join()
    check("other-missing" in got.get("msg", ""), "a thread's Error holds its own message: %s" % got)

    # (4) search = nextuser search (queries: embed's output, or embed
    # --query's when the model weighs a feature prior).
    qids, Q = read_vectors(at("Q.tsv"))
    check(Q.shape == (len(lines), model.query_dim) and np.array_equal(Q[:, :model.dim], E),
          "embed --query: [n, query_dim], û_next first")
    check(np.array_equal(engine.query(batch), Q), "Session.query = embed --query")
    qpath = at("Q.tsv") if model.query_dim > model.dim else at("E.tsv")
    queries = Q if model.query_dim > model.dim else E
    r = run("search", "--model", M, "--queries", qpath, "--out", at("S.csv"), "--k", str(k),
            "--threads", "2")
    check(r.returncode == 0, "search: " + r.stderr)
    srows, sscores = engine.search(queries)
    same_topk(model, srows, sscores, qids, read_topk(at("S.csv")), "search")
    wide = np.zeros((len(lines), model.query_dim + 7), np.float32)
    wide[:, 3:3 + model.query_dim] = queries
    for what, q in (("a strided view", wide[:, 3:3 + model.query_dim]),
                    ("float64", queries.astype(np.float64)),
                    ("Fortran order", np.asfortranarray(queries))):
        a, b = engine.search(q)
        check(np.array_equal(a, srows) and np.array_equal(b, sscores), "search of %s" % what)
    a, b = engine.search(queries[4])
    check(np.array_equal(a, srows[4:5]) and np.allclose(b, sscores[4:5], rtol=1e-6, atol=0),
          "search of one vector")
    try:
        engine.search(np.full((1, model.query_dim), np.nan, np.float32))
        check(False, "search of a NaN raises")
    except nu.Error as e:
        check(e.status == nu.ERR_INVALID_ARG and str(e), "search of a NaN: %r" % str(e))

    # A model that weighs a feature prior (selection on validation picks
    # its weight): queries are wider than û_next, recommend adds the
    # indicators itself, search takes embed --query's lines.
    M2 = at("M2")
    r = run("train", "--data", D, "--out", M2, "--epochs", "4", "--batch", "64", "--seed", "1",
            "--threads", "2", "--val-every", "epoch")
    check(r.returncode == 0, "train --val-every: " + r.stderr)
    for args in (("retrieve", "--model", M2, "--items", items, "--out", at("R2.csv"), "--k", str(k),
                  "--threads", "2"),
                 ("embed", "--model", M2, "--items", items, "--out", at("Q2.tsv"), "--threads", "2",
                  "--query"),
                 ("search", "--model", M2, "--queries", at("Q2.tsv"), "--out", at("S2.csv"),
                  "--k", str(k), "--threads", "2")):
        r = run(*args)
        check(r.returncode == 0, "%s (feature prior): %s" % (args[0], r.stderr))
    model2 = nu.Model(M2)
    engine2 = nu.Engine(model2, nu.Table(model2, M2), threads=2, max_batch=8, k=k)
    batch2 = nu.Batch(model2)
    for ln in lines:
        batch2.add_json(ln)
    print("note: the feature-prior model's query_dim is %d, dim %d"
          % (model2.query_dim, model2.dim))
    a, b = engine2.recommend(batch2)
    same_topk(model2, a, b, ids, read_topk(at("R2.csv")), "recommend (feature prior)")
    q2ids, Q2 = read_vectors(at("Q2.tsv"))
    check(Q2.shape == (len(lines), model2.query_dim) and
          np.array_equal(Q2[:, :model2.dim], engine2.embed(batch2)),
          "embed --query (feature prior): [n, query_dim], û_next first")
    a, b = engine2.search(Q2)
    same_topk(model2, a, b, q2ids, read_topk(at("S2.csv")), "search (feature prior)")
    engine2.close()

    # (5) add from strings = add_json of the same item.  Dense fields take
    # JSON only, so both go without them (zeros); an unknown user and an
    # unknown value exercise the counts.
    by_json, by_strings = nu.Batch(model), nu.Batch(model)
    for ln in lines:
        it = json.loads(ln)
        feats = {f: v for f, v in it.get("features", {}).items()
                 if not (isinstance(v, list) and v and not isinstance(v[0], str))}
        feats["tags"] = feats.get("tags", []) + ["no-such-tag"]
        users = it.get("users", []) + ["no-such-user"]
        by_json.add_json(json.dumps({"id": it["id"], "users": users, "features": feats}))
        by_strings.add(it["id"], users=users, features=feats)
    a, b = engine.recommend(by_json), engine.recommend(by_strings)
    check(by_json.ids == by_strings.ids == ids and np.array_equal(a[0], b[0]) and
          np.array_equal(a[1], b[1]) and np.array_equal(engine.embed(by_json),
                                                        engine.embed(by_strings)),
          "Batch.add = Batch.add_json: same items, recommendations and embeddings")
    check(by_json.input_counts() == by_strings.input_counts() ==
          (len(lines), len(lines), 0), "input counts agree: %s, %s"
          % (by_json.input_counts(), by_strings.input_counts()))
    try:
        by_strings.add("y", features={"year": ["1970s", "1980s"]})
        check(False, "two values of a categorical field raise")
    except nu.Error as e:
        check(e.status == nu.ERR_INVALID_ARG and "year" in str(e), "categorical: %r" % str(e))
    by_strings.clear()
    check(len(by_strings) == 0 and by_strings.ids == [], "clear() empties the batch")

    # (6) two threads on one Engine (each its own session) = serial.
    results, errors = {}, []
    start = threading.Barrier(2)

    def worker(name):
        try:
            start.wait()
            out = [engine.recommend(batch) for _ in range(15)]
            results[name] = out
        except Exception as e:  # reported below
            errors.append(repr(e))
    ts = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    same = not errors and all(np.array_equal(r_[0], rows) and np.array_equal(r_[1], scores)
                              for out in results.values() for r_ in out)
    check(same and len(results) == 2, "two threads: the serial results (errors: %s)" % errors)
    with engine.session() as s1, engine.session() as s2:
        check(np.array_equal(s1.recommend(batch)[0], s2.recommend(batch)[0]),
              "explicit sessions agree")
    check(s1.closed, "a session closes when its with-block ends")

    # Lifetimes: an Engine keeps its model and table; close() goes in order.
    def engine_only():
        m = nu.Model(M)
        return nu.Engine(m, nu.Table(m, M), threads=1, k=k), nu.Batch(m)
    e2, b2 = engine_only()
    gc.collect()
    for ln in lines[:3]:
        b2.add_json(ln)
    check(np.array_equal(e2.recommend(b2)[0], rows[:3]),
          "an Engine keeps its Model and Table alive")
    s = e2.session()
    e2.model.close()
    check(e2.closed and s.closed and b2.closed and e2.table.closed,
          "closing a Model closes what depends on it")
    try:
        s.recommend(batch)
        check(False, "a closed session raises")
    except ValueError:
        check(True, "")
    with nu.Batch(model) as b3:
        pass
    check(b3.closed, "a batch closes when its with-block ends")

    # The GIL is free during a library call: while one long embed runs in a
    # thread, this thread keeps running Python in the middle of it.
    big = nu.Batch(model)
    for i in range(4000):
        it = json.loads(lines[i % len(lines)])
        it["id"] = "big%d" % i
        big.add_json(json.dumps(it))
    long_engine = nu.Engine(model, table, threads=1, max_batch=len(big), k=k)
    window, ticks = {}, []

    def long_call():
        window["from"] = time.perf_counter()
        long_engine.embed(big)
        window["to"] = time.perf_counter()
    t = threading.Thread(target=long_call)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    lo, hi = window["from"], window["to"]
    inside = [x for x in ticks if lo + 0.25 * (hi - lo) < x < lo + 0.75 * (hi - lo)]
    check(inside, "Python runs during a %.0f ms library call of another thread (%d ticks)"
          % (1e3 * (hi - lo), len(inside)))
    return summary("installed package")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--inner":
        sys.exit(inner(sys.argv[2], sys.argv[3], sys.argv[4]))
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(outer(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])))
