"""Python bindings of libnextuser (include/nextuser/nextuser.h), through cffi
in ABI mode: the shared library is opened at import, nothing is compiled.

    import nextuser
    model = nextuser.Model("model_dir")
    engine = nextuser.Engine(model, nextuser.Table(model, "model_dir"), k=20)
    batch = nextuser.Batch(model)
    batch.add("new-item", users=["u1", "u7"], features={"genre": ["drama"]})
    rows, scores = engine.recommend(batch)       # uint32 [n, k], float32 [n, k]
    best = [model.user_id(r) for r in rows[0] if r != nextuser.NO_USER]

Threads: cffi releases the GIL for the whole of every call into the library
(ABI mode does too), and these bindings run no Python code while C runs (no
callbacks), so several Python threads recommend, embed or search in
parallel.  An Engine is shared by any number of threads; a Session runs one
call at a time (its lock serialises calls on it), so give each thread its
own Session, or call Engine.recommend/embed/search, which keep one Session
per thread.  A Batch must not change while a call reads it.

Errors: every failing library call raises nextuser.Error (a RuntimeError)
whose message is the library's own (nu_last_error(), read on the calling
thread right after the call) and whose .status is the nu_status code.
Argument mistakes caught before any call raise ValueError or TypeError.

Lifetimes: a Table, Batch or Engine keeps its Model alive, an Engine its
Table, a Session its Engine.  close() (or leaving a `with` block) frees a
handle at once and first closes what depends on it; otherwise handles are
freed when garbage-collected.

The library is looked up in NEXTUSER_LIBRARY (a path), then next to the
installed package (PREFIX/lib/libnextuser.so.0 for PREFIX/lib/python3*/
dist-packages/nextuser, or PREFIX/lib/<multiarch>/), then by
ctypes.util.find_library("nextuser")."""
import collections
import json
import os
import threading
import weakref

import numpy as np

from ._lib import ffi, lib
from ._lib import path as library_path  # what the library was opened by

__all__ = ["Error", "Model", "Table", "Batch", "Engine", "Session", "version", "isa",
           "isas_available", "cpu_features", "sleef_version", "NO_USER", "InputCounts",
           "library_path"]

# nu_status codes.
OK = 0
ERR_INVALID_ARG = 1
ERR_UNSUPPORTED = 2
ERR_IO = 3
ERR_FORMAT = 4
ERR_NOMEM = 5
ERR_INTERNAL = 6

# The row recommend and search give past the eligible users (UINT32_MAX).
NO_USER = 0xFFFFFFFF

_DTYPES = {"fp32": lib.NU_DTYPE_FP32, "bf16": lib.NU_DTYPE_BF16, "int8": lib.NU_DTYPE_INT8}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}


class Error(RuntimeError):
    """A library call failed: str(e) is the library's message, e.status
    its nu_status code (nextuser.ERR_*), e.status_name the code's text."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status

    @property
    def status_name(self):
        return _text(lib.nu_status_str(self.status))


def _text(p):
    return ffi.string(p).decode("utf-8", "surrogateescape") if p != ffi.NULL else None


def _check(status):
    # nu_last_error is thread-local: this runs on the thread that made the
    # call, before any other library call on it.
    if status != OK:
        raise Error(_text(lib.nu_last_error()), int(status))


def _bytes(s, what):
    if isinstance(s, bytes):
        b = s
    elif isinstance(s, str):
        b = s.encode("utf-8", "surrogateescape")
    elif isinstance(s, (int, np.integer)) and not isinstance(s, bool):
        b = str(int(s)).encode()  # the items format takes integer ids too
    else:
        raise TypeError("%s must be a string, got %s" % (what, type(s).__name__))
    if b"\0" in b:
        raise ValueError("%s contains a NUL character: %r" % (what, s))
    return b


def _size(v, what):
    v = int(v)
    if v < 0:
        raise ValueError("%s must be >= 0, got %d" % (what, v))
    return v


def version():
    """The library's version, "major.minor.patch"."""
    return _text(lib.nu_version())


def isa():
    """The kernel ISA in use ("scalar", "avx2", "avx512", "neon"); NU_ISA
    in the environment lowers it (nu_init)."""
    _check(lib.nu_init())
    return _text(lib.nu_isa_active())


def _names(fn):
    # These calls return how many names there are: size, then fill.
    n = fn(ffi.NULL, 0)
    arr = ffi.new("const char *[]", max(n, 1))
    n = min(fn(arr, n), n)
    return [_text(arr[i]) for i in range(n)]


def isas_available():
    """The ISAs this build and CPU run, best last."""
    return _names(lib.nu_isas_available)


def cpu_features():
    """CPU features the kernels use ("avx2", "avx512_bf16", ...)."""
    return _names(lib.nu_cpu_feature_names)


def gen_dtype_effective(want):
    """The generator encoding that `want` ("fp32" or "bf16") runs as on this
    CPU and kernel level: bf16 needs AVX512_BF16 and runs fp32 elsewhere."""
    if want not in ("fp32", "bf16"):
        raise ValueError("gen_dtype must be fp32 or bf16, got %r" % (want,))
    _check(lib.nu_init())
    return _DTYPE_NAMES[int(lib.nu_gen_dtype_effective(_DTYPES[want]))]


def sleef_version():
    return _text(lib.nu_sleef_version())


class _Handle:
    """One library handle: freed once, by close() or by the collector,
    after the handles that depend on it."""

    _ptr = None  # set last in __init__: a failed __init__ leaves nothing to free

    def __init__(self):
        self._children = weakref.WeakSet()

    def _adopt(self, child):
        self._children.add(child)

    def _p(self):
        p = self._ptr
        if p is None:
            raise ValueError("%s is closed" % type(self).__name__)
        return p

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        for c in list(getattr(self, "_children", ())):
            c.close()
        p, self._ptr = self._ptr, None
        if p is not None:
            self._release(p)

    def _release(self, p):
        raise NotImplementedError

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass  # interpreter shutdown: nothing useful to report

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Model(_Handle):
    """A trained model directory (model.safetensors, users.txt, vocabularies).

    dim: the generator's width d; num_users; query_dim: the width of a
    search query (d, plus feature-prior indicators when the model weighs a
    feature prior)."""

    def __init__(self, dir):
        super().__init__()
        self.dir = os.fspath(dir)
        out = ffi.new("nu_model **")
        _check(lib.nu_model_load(_bytes(self.dir, "dir"), out))
        p = out[0]
        self.dim = lib.nu_model_dim(p)
        self.num_users = lib.nu_model_num_users(p)
        self.query_dim = lib.nu_model_query_dim(p)
        self._user_ids = None
        self._ptr = p

    def _release(self, p):
        lib.nu_model_free(p)

    def user_id(self, row):
        """The id of the user at a row (as recommend/search give), None out
        of range (NO_USER included)."""
        row = int(row)
        if row < 0 or row >= NO_USER:
            return None
        return _text(lib.nu_model_user_id(self._p(), row))

    @property
    def user_ids(self):
        """Every user id by row (read once)."""
        if self._user_ids is None:
            p = self._p()
            self._user_ids = [_text(lib.nu_model_user_id(p, r)) for r in range(self.num_users)]
        return self._user_ids

    def __repr__(self):
        return "nextuser.Model(%r: dim %d, %d users)" % (self.dir, self.dim, self.num_users)


class Table(_Handle):
    """The model's user table in one encoding (fp32, bf16 or int8):
    model_dir/user_table.safetensors memory-mapped when it fits and holds
    the encoding, else built in memory.  model_dir defaults to model.dir."""

    def __init__(self, model, model_dir=None, dtype="fp32"):
        super().__init__()
        if dtype not in _DTYPES:
            raise ValueError("dtype must be fp32, bf16 or int8, got %r" % (dtype,))
        self.model = model
        self.dtype = dtype
        d = os.fspath(model_dir if model_dir is not None else model.dir)
        out = ffi.new("nu_table **")
        _check(lib.nu_table_open(model._p(), _bytes(d, "model_dir"), _DTYPES[dtype], out))
        self._ptr = out[0]
        model._adopt(self)

    def _release(self, p):
        lib.nu_table_free(p)


InputCounts = collections.namedtuple("InputCounts", "unknown_users unknown_values truncated_items")


class Batch(_Handle):
    """New items for one model, to embed or recommend for."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        out = ffi.new("nu_batch **")
        _check(lib.nu_batch_create(model._p(), out))
        self._ptr = out[0]
        model._adopt(self)

    def _release(self, p):
        lib.nu_batch_free(p)

    def add(self, id, users=(), features=None):
        """Adds an item: its known users (oldest first; unknown ids are
        skipped and counted) and its features {field: value or [values]}
        (a categorical field takes one value, a multi field any number;
        None leaves a field out).  Dense fields go through add_json."""
        keep = []  # the C strings live until the call returns

        def cstr(s, what):
            b = ffi.new("char[]", _bytes(s, what))
            keep.append(b)
            return b

        if isinstance(users, (str, bytes)):
            raise TypeError("users must be a list of user ids, not a string")
        us = [cstr(u, "a user id") for u in users]
        fields, values = [], []
        for f, v in (features or {}).items():
            if v is None:
                continue
            vs = [v] if isinstance(v, (str, bytes)) else list(v)
            fc = cstr(f, "a feature name")
            for x in vs:
                fields.append(fc)
                values.append(cstr(x, "feature %r's value" % (f,)))
        ua = ffi.new("char *[]", us) if us else ffi.NULL
        fa = ffi.new("char *[]", fields) if fields else ffi.NULL
        va = ffi.new("char *[]", values) if values else ffi.NULL
        _check(lib.nu_batch_add(self._p(), cstr(id, "id"), ua, len(us), fa, va, len(values)))

    def add_json(self, line):
        """Adds one line of the items format, {"id": ..., "features": {...},
        "users": [...]} (a str, bytes, or a dict to serialise)."""
        if isinstance(line, dict):
            line = json.dumps(line)
        b = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else bytes(line)
        _check(lib.nu_batch_add_json(self._p(), b, len(b)))

    def clear(self):
        lib.nu_batch_clear(self._p())

    def __len__(self):
        return lib.nu_batch_count(self._p())

    @property
    def ids(self):
        """The item ids, in the order they were added."""
        p = self._p()
        return [_text(lib.nu_batch_item_id(p, i)) for i in range(lib.nu_batch_count(p))]

    def input_counts(self):
        """Inputs skipped or read as <unk> so far: (unknown_users,
        unknown_values, truncated_items)."""
        c = ffi.new("size_t[3]")
        lib.nu_batch_input_counts(self._p(), c, c + 1, c + 2)
        return InputCounts(c[0], c[1], c[2])


class Engine(_Handle):
    """Serving set up once: threads per call (<= 0: one per core), the most
    items or queries per library call (max_batch; longer requests are cut
    into chunks of it), users per item (k), the table encoding to scan
    (dtype: the table must hold it), the bf16/int8 candidate pool (0:
    max(4k, 256)), whether each call pins its threads to cores and the
    generator's weight encoding (gen_dtype "fp32" or "bf16": faster, within
    the bound of docs/encodings.md; gen_dtype_active says what runs, as bf16
    falls back to fp32 on CPUs without AVX512_BF16).
    Shared by any number of threads.  table defaults to
    Table(model, model.dir, dtype)."""

    def __init__(self, model, table=None, threads=0, max_batch=64, k=100, dtype="fp32", pool=0,
                 pin=False, gen_dtype="fp32"):
        super().__init__()
        if dtype not in _DTYPES:
            raise ValueError("dtype must be fp32, bf16 or int8, got %r" % (dtype,))
        if gen_dtype not in ("fp32", "bf16"):
            raise ValueError("gen_dtype must be fp32 or bf16, got %r" % (gen_dtype,))
        if table is None:
            table = Table(model, model.dir, dtype)
        self.model, self.table = model, table
        # Our struct, of our size: the library writes no further.
        o = ffi.new("nu_engine_options *")
        lib.nu_engine_options_init_sized(o, ffi.sizeof("nu_engine_options"))
        o.threads = int(threads)
        o.max_batch = _size(max_batch, "max_batch")
        o.k = _size(k, "k")
        o.dtype = _DTYPES[dtype]
        o.pool = _size(pool, "pool")
        o.pin = 1 if pin else 0
        o.gen_dtype = _DTYPES[gen_dtype]
        out = ffi.new("nu_engine **")
        _check(lib.nu_engine_create(model._p(), table._p(), o, out))
        self.threads, self.max_batch, self.k = int(threads), int(max_batch), int(k)
        self.dtype, self.pool, self.pin = dtype, int(pool), bool(pin)
        self.gen_dtype = gen_dtype
        self._local = threading.local()
        self._ptr = out[0]
        model._adopt(self)
        table._adopt(self)

    def _release(self, p):
        lib.nu_engine_free(p)

    @property
    def gen_dtype_active(self):
        """The generator encoding this engine runs ("fp32" or "bf16")."""
        return _DTYPE_NAMES[int(lib.nu_engine_gen_dtype(self._p()))]

    def session(self):
        """A new Session: the scratch of one caller thread."""
        return Session(self)

    def _session(self):
        s = getattr(self._local, "session", None)
        if s is None or s.closed:
            s = self._local.session = Session(self)
        return s

    def recommend(self, batch, first=0, n=None):
        """Session.recommend on this thread's own session."""
        return self._session().recommend(batch, first, n)

    def embed(self, batch, first=0, n=None):
        """Session.embed on this thread's own session."""
        return self._session().embed(batch, first, n)

    def query(self, batch, first=0, n=None):
        """Session.query on this thread's own session."""
        return self._session().query(batch, first, n)

    def search(self, queries):
        """Session.search on this thread's own session."""
        return self._session().search(queries)


class Session(_Handle):
    """One caller's scratch for an Engine: one call at a time."""

    def __init__(self, engine):
        super().__init__()
        self.engine = engine
        self._lock = threading.Lock()
        out = ffi.new("nu_session **")
        _check(lib.nu_session_create(engine._p(), out))
        self._ptr = out[0]
        engine._adopt(self)

    def _release(self, p):
        with self._lock:  # not while a call of another thread runs on it
            lib.nu_session_free(p)

    def set_threads(self, threads):
        """Runs this session's next calls on `threads` of the engine's
        threads (0: all of them); the results do not change."""
        with self._lock:
            _check(lib.nu_session_set_threads(self._p(), int(threads)))

    def _range(self, batch, first, n):
        count = len(batch)
        first = int(first)
        n = count - first if n is None else int(n)
        if first < 0 or n < 0 or first + n > count:
            raise ValueError("items [%d, %d) outside the %d items of the batch"
                             % (first, first + n, count))
        return first, n

    def recommend(self, batch, first=0, n=None):
        """Top k users of items [first, first + n) of batch (n: to the
        end), leaving out each item's known users: (rows uint32 [n, k],
        scores float32 [n, k]), best first; rows past the eligible users
        are NO_USER."""
        first, n = self._range(batch, first, n)
        k, B = self.engine.k, self.engine.max_batch
        rows = np.empty((n, k), np.uint32)
        scores = np.empty((n, k), np.float32)
        with self._lock:
            s, b = self._p(), batch._p()
            for c0 in range(0, n, B):
                c1 = min(n, c0 + B)
                _check(lib.nu_session_recommend(
                    s, b, first + c0, c1 - c0,
                    ffi.from_buffer("uint32_t[]", rows[c0:c1], require_writable=True),
                    ffi.from_buffer("float[]", scores[c0:c1], require_writable=True)))
        return rows, scores

    def _vectors(self, fn, width, batch, first, n):
        # One float32 row of `width` per item, max_batch items per call.
        first, n = self._range(batch, first, n)
        B = self.engine.max_batch
        out = np.empty((n, width), np.float32)
        with self._lock:
            s, b = self._p(), batch._p()
            for c0 in range(0, n, B):
                c1 = min(n, c0 + B)
                _check(fn(s, b, first + c0, c1 - c0,
                          ffi.from_buffer("float[]", out[c0:c1], require_writable=True)))
        return out

    def embed(self, batch, first=0, n=None):
        """û_next of items [first, first + n) of batch: float32 [n, dim]."""
        return self._vectors(lib.nu_session_embed, self.engine.model.dim, batch, first, n)

    def query(self, batch, first=0, n=None):
        """The search queries of items [first, first + n) of batch:
        float32 [n, query_dim] (û_next, then the item's feature-prior
        indicators when the model weighs a feature prior)."""
        return self._vectors(lib.nu_session_query, self.engine.model.query_dim, batch, first, n)

    def search(self, queries):
        """Top k users of query vectors (float32 [n, query_dim], or one
        vector [query_dim]), nothing left out: (rows, scores) as recommend.
        A C-contiguous float32 array, or one whose rows are contiguous, is
        read in place; anything else is converted first."""
        qd = self.engine.model.query_dim
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        if q.ndim != 2 or q.shape[1] != qd:
            raise ValueError("queries must be [n, %d] (the model's query_dim), got shape %s"
                             % (qd, np.shape(queries)))
        n, k, B = q.shape[0], self.engine.k, self.engine.max_batch
        rows = np.empty((n, k), np.uint32)
        scores = np.empty((n, k), np.float32)
        if n == 0:
            return rows, scores
        f32 = q.dtype == np.float32 and q.flags.aligned
        if f32 and q.flags.c_contiguous:
            base, ldq = ffi.from_buffer("float[]", q), qd
        elif f32 and q.strides[1] == 4 and q.strides[0] >= 4 * qd and q.strides[0] % 4 == 0:
            # Rows ldq floats apart (a slice of a wider array): the library
            # takes the stride, so nothing is copied.  q stays referenced
            # for the whole call.
            base, ldq = ffi.cast("float *", q.ctypes.data), q.strides[0] // 4
        else:
            q = np.ascontiguousarray(q, dtype=np.float32)
            base, ldq = ffi.from_buffer("float[]", q), qd
        with self._lock:
            s = self._p()
            for c0 in range(0, n, B):
                c1 = min(n, c0 + B)
                _check(lib.nu_session_search(
                    s, base + c0 * ldq, c1 - c0, ldq,
                    ffi.from_buffer("uint32_t[]", rows[c0:c1], require_writable=True),
                    ffi.from_buffer("float[]", scores[c0:c1], require_writable=True)))
        return rows, scores
