#!/usr/bin/python3
"""Tests of the PyTorch reference (tools/reference/).  Plain Python, no pytest:

    /usr/bin/python3 tests/reference/test_reference.py [-v] [name-substring ...]

Prints one line per failure, then "N passed, N failed"; exit status 1 on failure.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REF_DIR = os.path.join(ROOT, "tools", "reference")
sys.path.insert(0, REF_DIR)
import nextuser_ref as nr  # noqa: E402
import safetensors_io as st  # noqa: E402

REF_CLI = os.path.join(REF_DIR, "nextuser_ref.py")
PY = sys.executable

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Tmp:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="nu-ref-test-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def expect_error(fn, *needles, exc=ValueError):
    """fn() must raise `exc` whose message contains every needle."""
    try:
        fn()
    except exc as e:
        msg = str(e)
        for n in needles:
            assert n in msg, "error message %r lacks %r" % (msg, n)
        return msg
    raise AssertionError("no %s raised (expected one mentioning %s)" % (exc.__name__, needles))


FIELDS = [{"name": "genres", "kind": "multi", "vocab": 6},
          {"name": "year", "kind": "categorical", "vocab": 5},
          {"name": "content", "kind": "dense", "dim": 3}]


def small_config(**over):
    cfg = {"d": 16, "heads": 4, "enc_layers": 2, "dec_layers": 2, "ffn": 24, "max_users": 6,
           "num_users": 30, "prefix_fields": FIELDS}
    cfg.update(over)
    return cfg


def make_loaded(cfg, seed=1, scale_up=True):
    """A LoadedModel with synthetic names.  scale_up multiplies the biases and
    layernorm parameters by random values: init sets them to 0/1, which would
    leave parts of the computation (bias placement, LN gain) untested."""
    cfg = nr.normalize_config(cfg)
    users = nr.synthetic_users(cfg["num_users"])
    vocabs = {f["name"]: nr.synthetic_vocab(f["vocab"]) for f in cfg["prefix_fields"]
              if f["kind"] != "dense"}
    model = nr.init_model(cfg, seed, users, vocabs)
    if scale_up:
        g = torch.Generator().manual_seed(seed + 1000)
        with torch.no_grad():
            for name, shape, how in nr.tensor_specs(cfg):
                p = dict(model.named_parameters())[name]
                if how == "zeros":
                    p.copy_(0.1 * torch.randn(shape, generator=g))
                elif how == "ones":
                    p.copy_(1.0 + 0.2 * torch.randn(shape, generator=g))
                elif how == "normal":
                    p.mul_(25.0)  # O(0.5) embeddings make attention weights uneven
    return nr.LoadedModel(model, users, vocabs)


def random_items(loaded, count, seed, **kw):
    parser = nr.item_parser(loaded)
    objs = nr.make_items(loaded, count, seed, **kw)
    return parser.parse_lines([json.dumps(o) for o in objs]), parser


# ----------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------

def _sample_tensors():
    rng = np.random.default_rng(0)
    return {"b.weight": rng.standard_normal((3, 4)).astype(np.float32),
            "a": rng.standard_normal(5).astype(np.float32),
            "scalar": np.array(2.5, dtype=np.float32),
            "empty": np.zeros((0, 4), dtype=np.float32),
            "z.cube": rng.standard_normal((2, 3, 2)).astype(np.float32)}


@test
def safetensors_round_trip():
    with Tmp() as d:
        path = os.path.join(d, "t.safetensors")
        tensors = _sample_tensors()
        meta = {"format": "x", "note": "héllo"}
        st.write_safetensors(path, tensors, meta)
        got, got_meta = st.read_safetensors(path)
        assert got_meta == meta, got_meta
        assert sorted(got) == sorted(tensors)
        for name, arr in tensors.items():
            assert got[name].dtype == np.float32 and got[name].shape == arr.shape, name
            assert np.array_equal(got[name], arr), name
        got["a"][0] = 1.0  # arrays are writable copies
        # Layout: header padded to 8 bytes, tensors in name order, contiguous.
        blob = open(path, "rb").read()
        n = struct.unpack("<Q", blob[:8])[0]
        assert n % 8 == 0
        header = json.loads(blob[8:8 + n])
        offs = [(header[k]["data_offsets"], k) for k in sorted(tensors)]
        cursor = 0
        for (b, e), _ in offs:
            assert b == cursor
            cursor = e
        assert cursor == len(blob) - 8 - n
        # No temp files left behind; the file is readable by others per umask.
        assert os.listdir(d) == ["t.safetensors"], os.listdir(d)


@test
def safetensors_writer_accepts_torch_and_rejects_bad_names():
    with Tmp() as d:
        path = os.path.join(d, "t.safetensors")
        st.write_safetensors(path, {"x": torch.arange(6, dtype=torch.float64).reshape(2, 3)})
        got, meta = st.read_safetensors(path)
        assert meta == {} and np.array_equal(got["x"], np.arange(6).reshape(2, 3))
        expect_error(lambda: st.write_safetensors(path, {"__metadata__": np.zeros(1)}), "__metadata__")
        expect_error(lambda: st.write_safetensors(path, {"": np.zeros(1)}), "invalid tensor name")
        expect_error(lambda: st.write_safetensors(path, {"x": np.zeros(1)}, {"k": 1}), "metadata")
        assert os.listdir(d) == ["t.safetensors"]


def _raw_file(header_obj=None, data=b"", header_bytes=None, length=None):
    if header_bytes is None:
        header_bytes = json.dumps(header_obj).encode()
    if length is None:
        length = len(header_bytes)
    return struct.pack("<Q", length) + header_bytes + data


def _good_header():
    return {"__metadata__": {"format": "nextuser-1"},
            "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
            "b": {"dtype": "F32", "shape": [3], "data_offsets": [16, 28]}}


CORRUPT_CASES = [
    # (label, file bytes, substrings the message must contain)
    ("empty file", b"", ["too short"]),
    ("7 bytes", b"\x01" * 7, ["too short"]),
    ("header length 0", _raw_file(header_bytes=b""), ["header length is 0"]),
    ("header length past end", _raw_file(_good_header(), b"\0" * 28, length=10 ** 6),
     ["header length 1000000", "exceeds"]),
    ("truncated header", _raw_file(_good_header())[:30], ["exceeds"]),
    ("truncated data", _raw_file(_good_header(), b"\0" * 20), ["'b'", "past the 20-byte data"]),
    ("bad JSON", _raw_file(header_bytes=b'{"a": {"dtype": "F32",'), ["not valid JSON"]),
    ("not UTF-8", _raw_file(header_bytes=b'{"\xff": 1}'), ["UTF-8"]),
    ("JSON not an object", _raw_file([1, 2]), ["expected an object"]),
    ("duplicate key", _raw_file(header_bytes=b'{"a": {"dtype": "F32", "shape": [1], '
                                             b'"data_offsets": [0, 4]}, "a": {}}', data=b"\0" * 4),
     ["duplicate key 'a'"]),
    ("NaN constant", _raw_file(header_bytes=b'{"a": NaN}'), ["NaN"]),
    ("metadata not strings", _raw_file(dict(_good_header(), __metadata__={"format": 1}), b"\0" * 28),
     ["__metadata__['format']"]),
    ("metadata not object", _raw_file(dict(_good_header(), __metadata__=[]), b"\0" * 28),
     ["__metadata__"]),
    ("entry not object", _raw_file({"a": 5}), ["'a'", "must be an object"]),
    ("missing dtype", _raw_file({"a": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
     ["'a'", "missing field 'dtype'"]),
    ("unknown field", _raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4],
                                       "extra": 1}}, b"\0" * 4), ["'a'", "unknown field 'extra'"]),
    ("wrong dtype F16", _raw_file({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}},
                                  b"\0" * 4), ["'a'", "F16", "only F32"]),
    ("wrong dtype F64", _raw_file({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}},
                                  b"\0" * 8), ["'a'", "F64"]),
    ("negative shape", _raw_file({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
                                 b"\0" * 4), ["'a'", "shape"]),
    ("bool shape", _raw_file({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}},
                             b"\0" * 4), ["'a'", "shape"]),
    ("shape not list", _raw_file({"a": {"dtype": "F32", "shape": 4, "data_offsets": [0, 16]}},
                                 b"\0" * 16), ["'a'", "shape"]),
    ("offsets not pair", _raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}},
                                   b"\0" * 4), ["'a'", "data_offsets"]),
    ("offsets reversed", _raw_file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}},
                                   b"\0" * 4), ["'a'", "begin <= end"]),
    ("shape/offset mismatch", _raw_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}},
                                        b"\0" * 8), ["'a'", "span 8 bytes", "needs 12"]),
    ("overlap", _raw_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
     ["'b'", "overlaps", "'a'"]),
    ("identical ranges", _raw_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                   b"\0" * 8), ["overlaps"]),
    ("gap", _raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
     ["'a'", "gap"]),
    ("trailing bytes", _raw_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                                 b"\0" * 9), ["5 trailing bytes"]),
]


@test
def safetensors_corrupt_files_raise_value_error():
    with Tmp() as d:
        # The good file parses, so every failure below is due to its one defect.
        good = os.path.join(d, "good.safetensors")
        with open(good, "wb") as f:
            f.write(_raw_file(_good_header(), np.arange(7, dtype="<f4").tobytes()))
        t, m = st.read_safetensors(good)
        assert np.array_equal(t["b"], [4, 5, 6]) and m == {"format": "nextuser-1"}
        for label, blob, needles in CORRUPT_CASES:
            path = os.path.join(d, "bad.safetensors")
            with open(path, "wb") as f:
                f.write(blob)
            try:
                expect_error(lambda: st.read_safetensors(path), *needles)
            except AssertionError as e:
                raise AssertionError("case %r: %s" % (label, e)) from None


@test
def safetensors_truncation_anywhere_is_detected():
    with Tmp() as d:
        path = os.path.join(d, "t.safetensors")
        st.write_safetensors(path, _sample_tensors(), {"format": "x"})
        blob = open(path, "rb").read()
        for cut in list(range(0, 40)) + list(range(len(blob) - 40, len(blob))):
            with open(path, "wb") as f:
                f.write(blob[:cut])
            expect_error(lambda: st.read_safetensors(path))


# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

@test
def config_defaults():
    c = nr.normalize_config({"num_users": 10})
    assert list(c) == list(nr.CONFIG_KEYS)
    assert (c["d"], c["heads"], c["enc_layers"], c["dec_layers"], c["ffn"], c["max_users"]) == \
        (64, 4, 2, 1, 256, 50)
    assert c["prefix_fields"] == [] and c["similarity"] == "cosine" and c["tau"] == 0.1
    assert c["attention"] == "causal" and c["use_cls"] is True and c["ln_eps"] == 1e-5
    assert nr.normalize_config({"num_users": 1, "d": 8, "heads": 2})["ffn"] == 32  # 4*d of this d
    assert nr.normalize_config(c) == c  # idempotent


CONFIG_ERRORS = [
    ({"d": 10, "heads": 4}, ["heads", "divisible"]),
    ({"d": 0}, ["d:", ">= 1"]),
    ({"d": -8}, ["d:"]),
    ({"d": 16.0}, ["d:", "integer"]),
    ({"d": True}, ["d:", "integer"]),
    ({"heads": 0}, ["heads:"]),
    ({"enc_layers": 0}, ["enc_layers:"]),
    ({"dec_layers": -1}, ["dec_layers:"]),
    ({"ffn": 0}, ["ffn:"]),
    ({"max_users": 0}, ["max_users:"]),
    ({"num_users": 0}, ["num_users:"]),
    ({"similarity": "l2"}, ["similarity:"]),
    ({"tau": 0}, ["tau:"]),
    ({"tau": "0.1"}, ["tau:"]),
    ({"attention": "sliding"}, ["attention:", "causal"]),
    ({"use_cls": 1}, ["use_cls:"]),
    ({"ln_eps": -1e-5}, ["ln_eps:"]),
    ({"dropout": 0.1}, ["dropout", "unknown config key"]),
    ({"prefix_fields": {}}, ["prefix_fields:"]),
    ({"prefix_fields": [{"name": "g", "kind": "tags", "vocab": 3}]}, ["prefix_fields[0] (g).kind", "tags"]),
    ({"prefix_fields": [{"name": "a.b", "kind": "multi", "vocab": 3}]}, ["prefix_fields[0].name"]),
    ({"prefix_fields": [{"name": "", "kind": "multi", "vocab": 3}]}, ["prefix_fields[0].name"]),
    ({"prefix_fields": [{"name": "g", "kind": "multi", "vocab": 0}]}, ["(g).vocab", ">= 1"]),
    ({"prefix_fields": [{"name": "g", "kind": "multi"}]}, ["(g).vocab", "required"]),
    ({"prefix_fields": [{"name": "g", "kind": "dense", "vocab": 3}]}, ["(g).vocab", "not a key"]),
    ({"prefix_fields": [{"name": "g", "kind": "dense", "dim": 0}]}, ["(g).dim"]),
    ({"prefix_fields": [{"name": "g", "kind": "dense", "dim": 2},
                        {"name": "g", "kind": "categorical", "vocab": 2}]}, ["prefix_fields[1]", "duplicate"]),
    ("not an object", ["config"]),
]


@test
def config_validation_names_the_field():
    for over, needles in CONFIG_ERRORS:
        raw = dict({"num_users": 5}, **over) if isinstance(over, dict) else over
        try:
            expect_error(lambda: nr.normalize_config(raw), *needles, exc=nr.ConfigError)
        except AssertionError as e:
            raise AssertionError("config %r: %s" % (over, e)) from None
    expect_error(lambda: nr.normalize_config({}), "num_users", "required", exc=nr.ConfigError)
    assert issubclass(nr.ConfigError, ValueError)


@test
def parameter_names_match_spec():
    for cfg in (small_config(), small_config(prefix_fields=[], use_cls=False),
                small_config(prefix_fields=[{"name": "type", "kind": "categorical", "vocab": 3},
                                            {"name": "float", "kind": "dense", "dim": 2}])):
        model = nr.NextUserModel(cfg)
        specs = {n: tuple(s) for n, s, _ in nr.tensor_specs(cfg)}
        params = {n: tuple(p.shape) for n, p in model.named_parameters()}
        assert params == specs, set(params) ^ set(specs)
        assert set(model.state_dict()) == set(specs)
    names = [n for n, _, _ in nr.tensor_specs(small_config())]
    for must in ("user_emb", "prefix.genres.emb", "prefix.content.w", "prefix.content.b",
                 "pos.prefix", "pos.user", "cls", "pos.cls", "enc.0.attn.wqkv", "enc.1.ffn.w2",
                 "enc.ln.g", "dec.query_pos", "dec.1.attn.wkv", "dec.0.attn.bq", "dec.ln.b"):
        assert must in names, must
    assert "pos.prefix" not in [n for n, _, _ in nr.tensor_specs(small_config(prefix_fields=[]))]


# ----------------------------------------------------------------------------
# Initialisation and model directories
# ----------------------------------------------------------------------------

@test
def init_is_deterministic_and_per_spec():
    cfg = nr.normalize_config(small_config(d=32, ffn=64, num_users=2000))
    a = nr.init_model(cfg, 7).spec_tensors()
    b = nr.init_model(cfg, 7).spec_tensors()
    c = nr.init_model(cfg, 8).spec_tensors()
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["user_emb"], c["user_emb"])
    for name, shape, how in nr.tensor_specs(cfg):
        t = a[name]
        if how == "ones":
            assert np.all(t == 1), name
        elif how == "zeros":
            assert np.all(t == 0), name
        elif how == "linear":
            bound = 1 / math.sqrt(shape[0])
            assert np.abs(t).max() <= bound and np.abs(t).max() > 0.8 * bound, name
    assert abs(a["user_emb"].std() - 0.02) < 0.001 and abs(a["user_emb"].mean()) < 0.001


def _outputs(loaded, items):
    with torch.no_grad():
        return (loaded.model.embed(items), loaded.model.decode_all(items),
                loaded.model.embed(items, float64=True))


@test
def model_dir_round_trip_identical_outputs():
    loaded = make_loaded(small_config())
    items, _ = random_items(loaded, 20, 5)
    with Tmp() as d:
        nr.save_model_dir(d, loaded.model, loaded.users, loaded.vocabs)
        assert sorted(os.listdir(d)) == ["model.safetensors", "users.txt", "vocab_genres.txt",
                                         "vocab_year.txt"], os.listdir(d)
        _, meta = st.read_safetensors(os.path.join(d, "model.safetensors"))
        assert meta["format"] == "nextuser-1"
        # The file leaves out prior weights of 0 (as nextuser writes them).
        written = dict(loaded.model.config)
        assert written.pop("prior_weight") == 0
        assert written.pop("feature_prior_weight") == 0
        assert json.loads(meta["nextuser_config"]) == written
        back = nr.load_model_dir(d)
        assert back.users == loaded.users and back.vocabs == loaded.vocabs
        assert back.model.config == loaded.model.config
        e1, d1, f1 = _outputs(loaded, items)
        e2, d2, f2 = _outputs(back, items)
        assert torch.equal(e1, e2) and torch.equal(f1, f2)
        assert all(torch.equal(x, y) for x, y in zip(d1, d2))
        # Saving again over the same directory gives byte-identical files.
        before = open(os.path.join(d, "model.safetensors"), "rb").read()
        nr.save_model_dir(d, back.model, back.users, back.vocabs)
        assert open(os.path.join(d, "model.safetensors"), "rb").read() == before


@test
def model_dir_load_errors():
    loaded = make_loaded(small_config())
    with Tmp() as base:
        def fresh():
            d = tempfile.mkdtemp(dir=base)
            nr.save_model_dir(d, loaded.model, loaded.users, loaded.vocabs)
            return d

        def rewrite(d, edit_tensors=None, edit_meta=None):
            path = os.path.join(d, "model.safetensors")
            t, m = st.read_safetensors(path)
            if edit_tensors:
                edit_tensors(t)
            if edit_meta:
                edit_meta(m)
            st.write_safetensors(path, t, m)

        d = fresh()
        rewrite(d, edit_tensors=lambda t: t.pop("enc.1.ffn.b1"))
        expect_error(lambda: nr.load_model_dir(d), "missing tensor 'enc.1.ffn.b1'")
        d = fresh()
        rewrite(d, edit_tensors=lambda t: t.__setitem__("enc.2.ln1.g", np.zeros(16)))
        expect_error(lambda: nr.load_model_dir(d), "unexpected tensor 'enc.2.ln1.g'")
        d = fresh()
        rewrite(d, edit_tensors=lambda t: t.__setitem__("dec.query_pos", np.zeros((6, 16))))
        expect_error(lambda: nr.load_model_dir(d), "'dec.query_pos'", "[7, 16]")
        d = fresh()
        rewrite(d, edit_meta=lambda m: m.__setitem__("format", "nextuser-2"))
        expect_error(lambda: nr.load_model_dir(d), "format")
        d = fresh()
        rewrite(d, edit_meta=lambda m: m.pop("nextuser_config"))
        expect_error(lambda: nr.load_model_dir(d), "nextuser_config")
        d = fresh()
        rewrite(d, edit_meta=lambda m: m.__setitem__("nextuser_config", '{"d": 16, "heads": 5}'))
        expect_error(lambda: nr.load_model_dir(d), "nextuser_config", "heads", exc=nr.ConfigError)
        d = fresh()
        with open(os.path.join(d, "users.txt"), "a") as f:
            f.write("extra\n")
        expect_error(lambda: nr.load_model_dir(d), "users", "31 ids", "30")
        d = fresh()
        with open(os.path.join(d, "users.txt"), "w") as f:
            f.write("".join("u%d\n" % (i % 29) for i in range(30)))
        expect_error(lambda: nr.load_model_dir(d), "users: line 30", "duplicates line 1")
        d = fresh()
        with open(os.path.join(d, "vocab_year.txt"), "w") as f:
            f.write("x\nv1\nv2\nv3\nv4\n")
        expect_error(lambda: nr.load_model_dir(d), "vocab_year", "<unk>")
        d = fresh()
        os.unlink(os.path.join(d, "vocab_genres.txt"))
        expect_error(lambda: nr.load_model_dir(d), "vocab_genres.txt", exc=OSError)
        # Files without a final newline are fine.
        d = fresh()
        with open(os.path.join(d, "users.txt"), "w") as f:
            f.write("\n".join(loaded.users))
        assert nr.load_model_dir(d).users == loaded.users


# ----------------------------------------------------------------------------
# Items
# ----------------------------------------------------------------------------

@test
def items_parsing():
    loaded = make_loaded(small_config())
    p = nr.item_parser(loaded)
    lines = [
        json.dumps({"id": "a", "features": {"genres": ["v2", "nope", "v5"], "year": "v3",
                                            "content": [1, 2.5, -3]}, "users": ["u1", "u2"]}),
        "",
        json.dumps({"id": "b"}),
        json.dumps({"id": "c", "features": {"year": "zzz", "genres": [], "content": None},
                    "users": ["x", "u4", "y"]}),
    ]
    items = p.parse_lines(lines, "f.jsonl")
    assert [it.id for it in items] == ["a", "b", "c"]
    a, b, c = items
    assert a.values == [[2, 0, 5], 3, [1.0, 2.5, -3.0]] and a.users == [1, 2]
    assert b.values == [[], 0, [0.0, 0.0, 0.0]] and b.users == []
    assert c.values == [[], 0, [0.0, 0.0, 0.0]] and c.users == [4]
    # Dense values are rounded to float32 when parsed (the model's input precision).
    (d,) = p.parse_lines([json.dumps({"id": "d", "features": {"content": [0.1, 1e-3, 3]}})])
    assert d.values[2] == [float(np.float32(0.1)), float(np.float32(1e-3)), 3.0]
    assert p.stats.items == 4 and p.stats.unknown_users == 2 and p.stats.unknown_values == 2, \
        p.stats.summary()


@test
def items_errors_name_the_line():
    loaded = make_loaded(small_config())
    good = json.dumps({"id": "ok", "users": []})
    cases = [
        ('{"id": "x", "users": [', ["f.jsonl:2", "malformed JSON"]),
        ('[1, 2]', ["f.jsonl:2", "JSON object"]),
        (json.dumps({"id": "x", "features": {"color": "red"}}), ["f.jsonl:2", "'color'", "no prefix field"]),
        (json.dumps({"id": "x", "user": ["u1"]}), ["f.jsonl:2", "unknown item key 'user'"]),
        (json.dumps({"users": []}), ["f.jsonl:2", "id"]),
        (json.dumps({"id": 5}), ["f.jsonl:2", "id"]),
        (json.dumps({"id": "a\tb"}), ["f.jsonl:2", "id"]),
        (json.dumps({"id": "x", "users": "u1"}), ["f.jsonl:2", "users"]),
        (json.dumps({"id": "x", "users": ["u1", 3]}), ["f.jsonl:2", "users"]),
        (json.dumps({"id": "x", "features": []}), ["f.jsonl:2", "features"]),
        (json.dumps({"id": "x", "features": {"year": 1990}}), ["f.jsonl:2", "'year'", "categorical"]),
        (json.dumps({"id": "x", "features": {"genres": "v1"}}), ["f.jsonl:2", "'genres'", "multi"]),
        (json.dumps({"id": "x", "features": {"content": [1, 2]}}), ["f.jsonl:2", "'content'", "3"]),
        (json.dumps({"id": "x", "features": {"content": [1, "2", 3]}}), ["f.jsonl:2", "'content'"]),
        (json.dumps({"id": "x", "features": {"content": [1, 1e39, 3]}}), ["f.jsonl:2", "float32"]),
        (json.dumps({"id": "x", "features": {"content": [1, True, 3]}}), ["f.jsonl:2", "'content'"]),
        ('{"id": "x", "features": {"content": [1, NaN, 3]}}', ["f.jsonl:2", "NaN"]),
        ('{"id": "x", "id": "y"}', ["f.jsonl:2", "duplicate key"]),
    ]
    for bad, needles in cases:
        p = nr.item_parser(loaded)
        try:
            expect_error(lambda: p.parse_lines([good, bad, good], "f.jsonl"), *needles)
        except AssertionError as e:
            raise AssertionError("line %r: %s" % (bad, e)) from None


@test
def max_users_truncation_keeps_most_recent():
    loaded = make_loaded(small_config(max_users=4))
    p = nr.item_parser(loaded)
    ids = ["u1", "u2", "ghost", "u3", "u4", "u5", "u6", "phantom"]
    (it,) = p.parse_lines([json.dumps({"id": "t", "users": ids})])
    assert it.users == [3, 4, 5, 6], it.users   # unknown skipped first, then last 4 kept
    assert p.stats.truncated_items == 1 and p.stats.dropped_users == 2
    assert p.stats.unknown_users == 2
    # What the truncation must do: the truncated item is the same model input
    # as an item that lists only its 4 most recent users.
    (it2,) = p.parse_lines([json.dumps({"id": "t2", "users": ["u3", "u4", "u5", "u6"]})])
    assert it.users == it2.users and it.values == it2.values
    # So the embeddings agree up to float32 rounding: bit equality is not
    # asked for, as it depends on which BLAS kernel a batch shape selects
    # (OPENBLAS_CORETYPE); 1e-5 as in the batched-vs-per-item checks.
    with torch.no_grad():
        e = loaded.model.embed([it, it2])
        e64 = loaded.model.embed([it, it2], float64=True)
    assert (e[0] - e[1]).abs().max().item() <= 1e-5
    assert (e64[0] - e64[1]).abs().max().item() <= 1e-12
    expect_error(lambda: loaded.model.embed([nr.Item("x", it.values, [1] * 5)]), "max_users")


@test
def multi_field_empty_missing_and_unk_agree():
    # spec: multi with no values -> emb[0]; missing -> <unk>; unknown value -> <unk>.
    loaded = make_loaded(small_config())
    p = nr.item_parser(loaded)
    objs = [{"id": "a", "features": {"genres": []}, "users": ["u1"]},
            {"id": "b", "features": {}, "users": ["u1"]},
            {"id": "c", "features": {"genres": ["???"]}, "users": ["u1"]},
            {"id": "d", "features": {"genres": ["<unk>", "<unk>"]}, "users": ["u1"]},
            {"id": "e", "features": {"genres": ["v1"]}, "users": ["u1"]}]
    items = p.parse_lines([json.dumps(o) for o in objs])
    with torch.no_grad():
        e = loaded.model.embed(items)
        e2 = loaded.model.embed(items, batched=False)
    for i in range(1, 4):
        assert torch.allclose(e[0], e[i], atol=1e-6), i
        assert torch.allclose(e2[0], e2[i], atol=1e-6), i
    assert not torch.allclose(e[0], e[4], atol=1e-3)


# ----------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------

VARIANTS = {
    "causal": small_config(),
    "bidirectional": small_config(attention="bidirectional"),
    "no-cls": small_config(use_cls=False),
    "no-prefix": small_config(prefix_fields=[]),
    "no-prefix-no-cls": small_config(prefix_fields=[], use_cls=False),
    "one-head": small_config(heads=1, enc_layers=1, dec_layers=1),
    "eps": small_config(ln_eps=0.5),
}


@test
def batched_equals_per_item():
    for name, cfg in VARIANTS.items():
        loaded = make_loaded(cfg, seed=3)
        items, _ = random_items(loaded, 40, 11, max_users=9, unknown_rate=0.1)
        items.append(nr.Item("zero", items[0].values, []))     # n = 0 in a batch of others
        with torch.no_grad():
            eb = loaded.model.embed(items, batch_size=7)
            ep = loaded.model.embed(items, batched=False)
            db = loaded.model.decode_all(items, batch_size=13)
            dp = loaded.model.decode_all(items, batched=False)
        diff = (eb - ep).abs().max().item()
        assert diff <= 1e-5, "%s: embed batched vs per-item %g" % (name, diff)
        for x, y, it in zip(db, dp, items):
            assert x.shape == (len(it.users) + 1, cfg["d"])
            diff = (x - y).abs().max().item()
            assert diff <= 1e-5, "%s: decode %s batched vs per-item %g" % (name, it.id, diff)
            # û_{n+1} from the training pass is the inference output.
            assert (x[-1] - eb[items.index(it)]).abs().max().item() <= 1e-5
        assert torch.isfinite(eb).all()


@test
def float64_agrees_with_float32():
    for name in ("causal", "no-prefix-no-cls"):
        loaded = make_loaded(VARIANTS[name], seed=4)
        items, _ = random_items(loaded, 30, 12)
        with torch.no_grad():
            e32 = loaded.model.embed(items)
            e64 = loaded.model.embed(items, float64=True)
            p64 = loaded.model.embed(items, float64=True, batched=False)
        assert e32.dtype == torch.float32 and e64.dtype == torch.float64
        assert (e32.double() - e64).abs().max().item() <= 1e-5, name
        assert (p64 - e64).abs().max().item() <= 1e-12, name
        assert next(loaded.model.parameters()).dtype == torch.float32  # model left untouched


@test
def zero_users():
    for name, cfg in VARIANTS.items():
        loaded = make_loaded(cfg, seed=5)
        items = [nr.Item("a", random_items(loaded, 1, 1)[0][0].values, [])]
        with torch.no_grad():
            e = loaded.model.embed(items)
            ep = loaded.model.embed(items, batched=False)
            dec = loaded.model.decode_all(items)
        assert e.shape == (1, cfg["d"]) and torch.isfinite(e).all(), name
        assert (e - ep).abs().max() <= 1e-5 and len(dec) == 1 and dec[0].shape == (1, cfg["d"])
        assert torch.equal(dec[0][0], e[0]) or (dec[0][0] - e[0]).abs().max() <= 1e-6
    # Empty batch.
    loaded = make_loaded(small_config())
    assert loaded.model.embed([]).shape == (0, 16) and loaded.model.decode_all([]) == []


@test
def empty_range_gives_zero_attention():
    # Without prefix fields, decoder query 1 sees no key: its attention output is
    # zero, so û_1 is the same for every item and equals a hand computation.
    loaded = make_loaded(VARIANTS["no-prefix"], seed=6)
    m = loaded.model
    items, _ = random_items(loaded, 10, 2, min_users=1)
    with torch.no_grad():
        outs = m.decode_all(items)
        outs_p = m.decode_all(items, batched=False)
        q = m.dec["query_pos"][0]
        for blk in m.dec_blocks():
            q = q + blk.attn.bo                         # zero attention, then ·wo + bo
            q = q + blk.ffn(blk.ln2(q))
        want = m.dec["ln"](q)
    for o, op in zip(outs, outs_p):
        assert torch.isfinite(o).all()
        assert (o[0] - want).abs().max() <= 1e-6 and (op[0] - want).abs().max() <= 1e-6
    # The masked path has no NaN in its gradient either (training will use it).
    m.zero_grad()
    out = m.decode_all(items)
    sum(o.sum() for o in out).backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


@test
def causal_property():
    base = ["u1", "u2", "u3", "u4", "u5"]
    loaded = make_loaded(small_config(), seed=8)
    p = nr.item_parser(loaded)
    feats = {"genres": ["v1", "v3"], "year": "v2", "content": [0.5, -1.0, 2.0]}
    seqs = [base]
    for m in range(5):  # change user m+1 (1-based) onwards
        seqs.append(base[:m] + ["u%d" % (20 + i) for i in range(m, 5)])
    items = p.parse_lines([json.dumps({"id": str(i), "features": feats, "users": s})
                           for i, s in enumerate(seqs)])
    n = 5
    for path in (True, False):
        with torch.no_grad():
            dec = loaded.model.decode_all(items, batched=path)
            enc = loaded.model.encode(items)
        for m in range(5):
            changed = dec[m + 1]
            # û_j for j <= m+1 sees users before j only: unchanged.
            for j in range(1, m + 2):
                assert torch.equal(changed[j - 1], dec[0][j - 1]) or \
                    (changed[j - 1] - dec[0][j - 1]).abs().max() <= 1e-6, (m, j)
            # Later positions and û_{n+1} do see the change.
            for j in range(m + 2, n + 2):
                assert (changed[j - 1] - dec[0][j - 1]).abs().max() > 1e-4, (m, j)
            # Encoder: prefix rows and users 1..m are unchanged; later rows change.
            k = 3
            assert (enc[m + 1][:k + m] - enc[0][:k + m]).abs().max() <= 1e-6, m
            assert ((enc[m + 1][k + m:] - enc[0][k + m:]).abs().max(dim=1).values > 1e-4).all(), m
    # Bidirectional: changing only the last user changes every encoder output
    # (the prefix rows too), hence every û_j, j = 1 included (it sees the prefix).
    bi = make_loaded(small_config(attention="bidirectional"), seed=8)
    with torch.no_grad():
        enc = bi.model.encode([items[0], items[5]])
        dec = bi.model.decode_all([items[0], items[5]])
    rowdiff = (enc[0] - enc[1]).abs().max(dim=1).values
    assert (rowdiff > 1e-4).all(), rowdiff
    for j in range(1, n + 2):
        assert (dec[0][j - 1] - dec[1][j - 1]).abs().max() > 1e-4, j


def _numpy_forward(model, item, positions):
    """Independent float64 numpy implementation of the spec's steps 1-5, used
    to check both torch paths against a literal reading of the text."""
    c = model.config
    W = {n: t.astype(np.float64) for n, t in model.spec_tensors().items()}
    d, heads, eps = c["d"], c["heads"], c["ln_eps"]
    dh = d // heads
    k, n = len(c["prefix_fields"]), len(item.users)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[p + ".g"] + W[p + ".b"]

    def gelu(x):
        return 0.5 * x * (1 + np.vectorize(math.erf, otypes=[np.float64])(x / math.sqrt(2)))

    def attn(q, kk, v, lims):
        out = np.zeros((q.shape[0], d))
        for r, lim in enumerate(lims):
            for h in range(heads):
                s = slice(h * dh, (h + 1) * dh)
                if lim == 0:
                    continue
                sc = kk[:lim, s] @ q[r, s] / math.sqrt(dh)
                w = np.exp(sc - sc.max())
                out[r, s] = (w / w.sum()) @ v[:lim, s]
        return out

    rows = []
    for f, fld in enumerate(c["prefix_fields"]):
        v = item.values[f]
        if fld["kind"] == "categorical":
            t = W["prefix.%s.emb" % fld["name"]][v]
        elif fld["kind"] == "multi":
            t = W["prefix.%s.emb" % fld["name"]][v or [0]].mean(0)
        else:
            t = np.array(v, dtype=np.float32).astype(np.float64) @ W["prefix.%s.w" % fld["name"]] \
                + W["prefix.%s.b" % fld["name"]]
        rows.append(t + W["pos.prefix"][f])
    for i in range(1, n + 1):
        rows.append(W["user_emb"][item.users[i - 1]] + W["pos.user"][i - 1])
    if c["use_cls"]:
        rows.append(W["cls"] + W["pos.cls"])
    T = len(rows)
    x = np.array(rows).reshape(T, d)
    if c["attention"] == "causal":
        lims = [k] * k + [k + i for i in range(1, n + 1)] + [T] * int(c["use_cls"])
    else:
        lims = [T] * T
    for l in range(c["enc_layers"]):
        p = "enc.%d" % l
        h = ln(x, p + ".ln1")
        qkv = h @ W[p + ".attn.wqkv"] + W[p + ".attn.bqkv"]
        x = x + attn(qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:], lims) @ W[p + ".attn.wo"] + W[p + ".attn.bo"]
        x = x + gelu(ln(x, p + ".ln2") @ W[p + ".ffn.w1"] + W[p + ".ffn.b1"]) @ W[p + ".ffn.w2"] + W[p + ".ffn.b2"]
    enc = ln(x, "enc.ln")
    out = []
    for j in positions:
        q = W["dec.query_pos"][j - 1][None, :]
        lim = [k + j - 1 if j <= n else T]
        for l in range(c["dec_layers"]):
            p = "dec.%d" % l
            qq = ln(q, p + ".ln1") @ W[p + ".attn.wq"] + W[p + ".attn.bq"]
            kv = enc @ W[p + ".attn.wkv"] + W[p + ".attn.bkv"]
            q = q + attn(qq, kv[:, :d], kv[:, d:], lim) @ W[p + ".attn.wo"] + W[p + ".attn.bo"]
            q = q + gelu(ln(q, p + ".ln2") @ W[p + ".ffn.w1"] + W[p + ".ffn.b1"]) @ W[p + ".ffn.w2"] + W[p + ".ffn.b2"]
        out.append(ln(q, "dec.ln")[0])
    return np.array(out)


@test
def matches_independent_numpy_reading_of_spec():
    for name, cfg in VARIANTS.items():
        loaded = make_loaded(cfg, seed=9)
        items, _ = random_items(loaded, 6, 21, max_users=8)
        items.append(nr.Item("zero", items[0].values, []))
        with torch.no_grad():
            dec64 = loaded.model.decode_all(items, float64=True)
            dec32 = loaded.model.decode_all(items)
        for it, o64, o32 in zip(items, dec64, dec32):
            want = _numpy_forward(loaded.model, it, range(1, len(it.users) + 2))
            diff64 = np.abs(o64.numpy() - want).max()
            diff32 = np.abs(o32.numpy() - want).max()
            assert diff64 <= 1e-9, "%s item %s: float64 vs numpy %g" % (name, it.id, diff64)
            assert diff32 <= 1e-5, "%s item %s: float32 vs numpy %g" % (name, it.id, diff32)


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def run_cli(*args, ok=True):
    r = subprocess.run([PY, REF_CLI] + [str(a) for a in args], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise AssertionError("CLI %s failed (%d): %s" % (args, r.returncode, r.stderr))
    return r


@test
def cli_end_to_end():
    with Tmp() as d:
        cfg = os.path.join(d, "cfg.json")
        with open(cfg, "w") as f:
            json.dump({"d": 8, "heads": 2, "max_users": 5, "prefix_fields": FIELDS}, f)
        model = os.path.join(d, "m")
        run_cli("init", "--config", cfg, "--out", model, "--seed", 3, "--users", 12)
        loaded = nr.load_model_dir(model)
        assert loaded.users == ["u%d" % i for i in range(12)]
        assert loaded.vocabs["genres"] == ["<unk>", "v1", "v2", "v3", "v4", "v5"]
        assert loaded.model.config["ffn"] == 32 and loaded.model.config["num_users"] == 12
        # init is deterministic from the seed.
        model2 = os.path.join(d, "m2")
        run_cli("init", "--config", cfg, "--out", model2, "--seed", 3, "--users", 12)
        assert open(os.path.join(model, "model.safetensors"), "rb").read() == \
            open(os.path.join(model2, "model.safetensors"), "rb").read()

        items = os.path.join(d, "items.jsonl")
        run_cli("make-items", "--model", model, "--out", items, "--count", 25, "--seed", 4,
                "--max-users", 8, "--unknown-rate", 0.2)
        lines = open(items).read().splitlines()
        assert len(lines) == 25 and all(json.loads(l)["id"] for l in lines)

        out = os.path.join(d, "emb.tsv")
        r = run_cli("embed", "--model", model, "--items", items, "--out", out)
        assert "25 items" in r.stderr and "unknown user ids skipped" in r.stderr
        rows = open(out).read().splitlines()
        assert len(rows) == 25
        for i, row in enumerate(rows):
            item_id, vals = row.split("\t")
            assert item_id == "item-%d" % i
            vals = vals.split(" ")
            assert len(vals) == 8
            for v in vals:
                digits = v.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
                assert len(digits) <= 9, v
        # Same numbers as the library API.
        parser = nr.item_parser(loaded)
        parsed = parser.parse_file(items)
        with torch.no_grad():
            e = loaded.model.embed(parsed).numpy()
        got = np.array([[float(v) for v in row.split("\t")[1].split()] for row in rows])
        assert np.abs(got - e).max() <= 1e-6 * max(1.0, np.abs(e).max())

        out64 = os.path.join(d, "emb64.tsv")
        run_cli("embed", "--model", model, "--items", items, "--out", out64, "--float64")
        got64 = np.array([[float(v) for v in row.split("\t")[1].split()]
                          for row in open(out64).read().splitlines()])
        assert np.abs(got64 - got).max() <= 1e-5

        outp = os.path.join(d, "emb-per-item.tsv")
        run_cli("embed", "--model", model, "--items", items, "--out", outp, "--per-item")
        gotp = np.array([[float(v) for v in row.split("\t")[1].split()]
                         for row in open(outp).read().splitlines()])
        assert np.abs(gotp - got).max() <= 1e-5

        dec = os.path.join(d, "dec.tsv")
        run_cli("decode", "--model", model, "--items", items, "--out", dec)
        drows = [r.split("\t") for r in open(dec).read().splitlines()]
        assert len(drows) == sum(len(it.users) + 1 for it in parsed)
        last = {}
        for item_id, j, vals in drows:
            last[item_id] = (int(j), vals)
        for i, it in enumerate(parsed):
            j, vals = last[it.id]
            assert j == len(it.users) + 1
            assert np.abs(np.array([float(v) for v in vals.split()]) - got[i]).max() <= 1e-5

        # Errors: exit 1 with a message naming the line.
        bad = os.path.join(d, "bad.jsonl")
        with open(bad, "w") as f:
            f.write(lines[0] + "\n" + '{"id": "x", "features": {"colour": "red"}}\n')
        r = run_cli("embed", "--model", model, "--items", bad, "--out", out, ok=False)
        assert r.returncode == 1 and "bad.jsonl:2" in r.stderr and "colour" in r.stderr, r.stderr
        with open(bad, "w") as f:
            f.write(lines[0] + "\n" + lines[1] + "\n{oops\n")
        r = run_cli("embed", "--model", model, "--items", bad, "--out", out, ok=False)
        assert r.returncode == 1 and "bad.jsonl:3" in r.stderr and "malformed" in r.stderr
        with open(cfg, "w") as f:
            json.dump({"d": 10, "heads": 4}, f)
        r = run_cli("init", "--config", cfg, "--out", os.path.join(d, "m3"), "--seed", 1,
                    "--users", 5, ok=False)
        assert r.returncode == 1 and "heads" in r.stderr
        r = run_cli("--help")
        assert "embed" in r.stdout and "make-items" in r.stdout


# ----------------------------------------------------------------------------

def main(argv):
    verbose = "-v" in argv
    wanted = [a for a in argv if a != "-v"]
    torch.manual_seed(0)
    passed = failed = 0
    for fn in TESTS:
        if wanted and not any(w in fn.__name__ for w in wanted):
            continue
        try:
            fn()
        except Exception:
            failed += 1
            print("FAIL %s\n%s" % (fn.__name__, traceback.format_exc()))
        else:
            passed += 1
            if verbose:
                print("ok   %s" % fn.__name__)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
