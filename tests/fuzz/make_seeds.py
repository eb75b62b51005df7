#!/usr/bin/env python3
"""Writes the seed corpora (tests/fuzz/<target>/corpus) and dictionaries
(tests/fuzz/<target>/dict) of the libFuzzer targets: small valid inputs and
a few invalid ones.  Run from anywhere; rewrites the seeds it owns.

usage: make_seeds.py [NEXTUSER]
With the nextuser executable it also writes complete valid models
(safetensors/corpus/model_complete_*: `nextuser init` of tiny configs, 3
users, no vocabulary files needed), so the fuzzer starts past
nu_model_load's shape checks; without it those seeds are left as they are.
test_hard_fuzz_seeds checks that they still load."""
import json, os, shutil, struct, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\n#--#\n"


def put(target, name, data):
    d = os.path.join(HERE, target, "corpus")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("latin-1"))


def dict_(target, words):
    with open(os.path.join(HERE, target, "dict"), "w") as f:
        for w in words:
            w = w if isinstance(w, bytes) else w.encode("latin-1")
            esc = "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else "\\x%02x" % b for b in w)
            f.write('"%s"\n' % esc)


JSON_WORDS = ["{", "}", "[", "]", ":", ",", '""', "null", "true", "false", "-", "0", "1e9",
              "1e999", "-0", "0.5", "\\u0000", "\\ud800", "\\\\", '\\"', "\xc3\xa9", "\xff", "\x00",
              "9007199254740993", "18446744073709551616", "4294967295"]

CONFIG = {"num_users": 3, "d": 32, "heads": 2, "ffn": 64, "max_users": 6,
          "prefix_fields": [{"name": "g", "kind": "multi", "vocab": 6},
                            {"name": "y", "kind": "categorical", "vocab": 4},
                            {"name": "c", "kind": "dense", "dim": 3}]}


# ---- safetensors --------------------------------------------------------
def st(tensors, meta=None, pad=b""):
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data + pad


f32 = lambda n: struct.pack("<%df" % n, *[0.25 * i for i in range(n)])
put("safetensors", "two_tensors", st([("a", "F32", [2, 3], f32(6)), ("b", "I32", [2], b"\1\0\0\0\2\0\0\0")],
                                     {"format": "x"}))
put("safetensors", "optimizer", st([("m", "F32", [4], f32(4)), ("v", "F32", [4], f32(4))],
                                   {"format": "nextuser-adam-1"}))
put("safetensors", "bf16_i8", st([("t", "BF16", [3], b"\0\x3f" * 3), ("q", "I8", [1, 4], b"\1\2\3\4")]))
put("safetensors", "empty", st([]))
put("safetensors", "model_meta", st([("user_emb", "F32", [3, 2], f32(6))],
                                    {"format": "nextuser-1", "nextuser_config": json.dumps(CONFIG)}))
put("safetensors", "bad_offsets", b"\x40\0\0\0\0\0\0\0" +
    b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,99]}}'.ljust(64) + f32(4))
put("safetensors", "bad_len", b"\xff\xff\xff\xff\0\0\0\0{}")
put("safetensors", "short", b"\x02\0")
TINY = {"num_users": 3, "d": 4, "heads": 1, "ffn": 4, "enc_layers": 1, "dec_layers": 1, "max_users": 2}
if len(sys.argv) > 1:
    work = tempfile.mkdtemp(prefix="nu_seeds_")
    for name, fields in [("model_complete_dense", [{"name": "c", "kind": "dense", "dim": 2}]),
                         ("model_complete_no_prefix", [])]:
        cfg = os.path.join(work, name + ".json")
        with open(cfg, "w") as f:
            json.dump(dict(TINY, prefix_fields=fields), f)
        out = os.path.join(work, name)
        subprocess.run([sys.argv[1], "init", "--config", cfg, "--out", out, "--seed", "7"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            put("safetensors", name, f.read())
    shutil.rmtree(work)
dict_("safetensors", JSON_WORDS + ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"',
                                   '"BF16"', '"I8"', '"I32"', '"F16"', '"format"', '"nextuser_config"',
                                   '"nextuser-1"', '"nextuser-adam-1"', '"m"', '"v"',
                                   "\x08\x00\x00\x00\x00\x00\x00\x00", "\x00\x00\x00\x00"])

# ---- model config -------------------------------------------------------
put("config", "full", json.dumps(CONFIG))
put("config", "defaults", "{}")
put("config", "keys", json.dumps({"num_users": 10, "d": 64, "heads": 4, "ffn": 256, "layers": 2,
                                  "max_users": 8, "prefix_fields": []}))
put("config", "dup_key", '{"d": 32, "d": 64}')
put("config", "trailing", '{"d": 32} x')
put("config", "huge", '{"num_users": 4294967295, "d": 4096}')
dict_("config", JSON_WORDS + ['"num_users"', '"d"', '"heads"', '"ffn"', '"layers"', '"max_users"',
                              '"prefix_fields"', '"name"', '"kind"', '"vocab"', '"dim"', '"multi"',
                              '"categorical"', '"dense"'])

# ---- items JSONL line (model: users u0..u49, g multi, y categorical, c dense 3)
put("items_line", "full", '{"id": "it1", "users": ["u1", "u7", "nobody"], "features": '
    '{"g": ["v1", "v2"], "y": "v3", "c": [0.1, -0.5, 2]}}')
put("items_line", "numeric_id", '{"id": 42, "users": []}')
put("items_line", "two_lines", '{"id": "a"}\n{"id": "b", "users": ["u0"]}\n{"id": "a"}')
put("items_line", "unknown_value", '{"id": "x", "features": {"g": ["zzz"], "y": "<unk>"}}')
put("items_line", "bad_key", '{"id": "x", "features": {"nope": 1}}')
put("items_line", "two_objects", '{"id":"a"}{"id":"b"}')
put("items_line", "long_users", '{"id": "l", "users": [%s]}' % ", ".join('"u%d"' % i for i in range(40)))
dict_("items_line", JSON_WORDS + ['"id"', '"users"', '"features"', '"g"', '"y"', '"c"', '"u1"',
                                  '"v1"', '"<unk>"', "\n"])

# ---- prepare: byte 0 = format (bits 0-1: 0 or 3 movielens, 1 ml100k, 2 csv) | 4 skip_bad | 8 item features (csv)
ml_ratings = "userId,movieId,rating,timestamp\n1,10,5.0,964982703\n1,20,1.0,964982800\n2,10,4.5,964983000\n3,30,3.0,1\n"
ml_movies = ('movieId,title,genres\n10,Toy Story (1995),Adventure|Animation\n'
             '20,"Heat, the (1995)",Action|Crime\n30,Nothing,(no genres listed)\n')
ml_tags = "userId,movieId,tag,timestamp\n1,10,pixar,1\n2,20,pixar,2\n2,10,Fun,3\n"
put("prepare", "movielens", b"\x00" + ml_ratings.encode() + SEP + ml_movies.encode() + SEP + ml_tags.encode())
put("prepare", "movielens_ratings_only", b"\x00" + ml_ratings.encode())
put("prepare", "movielens_bad_skip", b"\x04" + b"userId,movieId,rating,timestamp\n1,10,x,1\n\x001,2,5,1\n2,10,5,2\n")
uitem = "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n" \
        "20|Heat (1995)|01-Jan-1995||http://x|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
put("prepare", "ml100k", b"\x01" + b"1\t10\t5\t881250949\n2\t20\t1\t881250950\n2\t10\t4\t1\n" + SEP + uitem.encode())
csv_r = "user,item,timestamp,signal\nalice,m1,10,positive\nbob,m1,11,exposed\nbob,m2,12,4.5\ncarol,m2,13,1\n"
put("prepare", "csv", b"\x02" + csv_r.encode() + SEP + b"item,title,genres\nm1,One (2001),Drama\nm2,Two,Comedy|Drama\n")
put("prepare", "csv_features", b"\x0a" + csv_r.encode() + SEP +
    b"item,features\nm1,color=red|size=big\nm2,color=blue|color=green|size=small\nm9,color=x\n")
put("prepare", "csv_quotes", b"\x06" + b'user,item,timestamp,signal\n"a,b",m1,1,positive\n"x""y",m2,2,exposed\n')
dict_("prepare", ["userId,movieId,rating,timestamp\n", "movieId,title,genres\n", "userId,movieId,tag,timestamp\n",
                  "user,item,timestamp,signal\n", "item,features\n", "item,title,genres\n", ",", "|", "\t", '"',
                  "\n", "\r\n", "positive", "exposed", "5.0", "nan", "inf", "-1", "1e999", "(1995)",
                  "(no genres listed)", "<unk>", "=", "\x00", "\xff", SEP, "9223372036854775808"])

# ---- training data directory: data.json, users.txt, items.jsonl, vocab_g.txt, vocab_y.txt
data_json = {"format": "nextuser-data-1", "num_users": 3, "num_items": 2,
             "prefix_fields": [{"name": "g", "kind": "multi", "vocab": 3},
                               {"name": "y", "kind": "categorical", "vocab": 2},
                               {"name": "c", "kind": "dense", "dim": 2}],
             "seed": 1, "source": "fuzz"}
items = ('{"id": "m1", "split": "train", "features": {"g": ["a", "b"], "y": "1990s", "c": [0.5, 1]}, '
         '"positives": [["u0", 5], ["u1", 6]], "negatives": [["u2", 7]]}\n'
         '{"id": "m2", "split": "test", "features": {"g": [], "y": "<unk>", "c": [0, 0]}, "positives": [["u2", 1]]}\n')
parts = [json.dumps(data_json), "u0\nu1\nu2\n", items, "<unk>\na\nb\n", "<unk>\n1990s\n"]
put("dataset", "valid", SEP.join(p.encode() for p in parts))
put("dataset", "dup_item", SEP.join(p.encode() for p in
                                    [parts[0], parts[1], items.replace("m2", "m1"), parts[3], parts[4]]))
put("dataset", "no_fields", SEP.join([json.dumps(dict(data_json, prefix_fields=[], num_items=1)).encode(),
                                      b"u0\nu1\nu2\n", b'{"id": "a", "split": "val"}\n']))
put("dataset", "missing_files", json.dumps(data_json))
dict_("dataset", JSON_WORDS + [SEP, '"format"', '"nextuser-data-1"', '"num_users"', '"num_items"',
                               '"prefix_fields"', '"seed"', '"source"', '"id"', '"split"', '"train"', '"val"',
                               '"test"', '"features"', '"positives"', '"negatives"', '"name"', '"kind"',
                               '"vocab"', '"dim"', '"multi"', '"categorical"', '"dense"', '"u0"', "<unk>", "\n"])

# ---- checkpoint train_state.json
# (64-bit counters are decimal strings: JSON numbers are doubles)
state = {"format": "nextuser-train-state-1", "step": "10", "epoch": "1", "position": "3", "seed": "1",
         "rng_state": "12345", "adam_step": "10", "windows": "all", "best_score": 0.25, "best_step": "8",
         "evals_since_best": "1", "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                           "clip_norm": 1.0, "warmup_steps": "5", "total_steps": "100",
                                           "min_lr_ratio": 0.1}}
put("checkpoint", "valid", json.dumps(state, indent=2))
old = {k: v for k, v in state.items() if k not in ("windows", "best_score", "best_step", "evals_since_best")}
put("checkpoint", "old", json.dumps(old))
put("checkpoint", "huge_lr", json.dumps(dict(state, adam=dict(state["adam"], lr=1e300))))
put("checkpoint", "big_step", json.dumps(state).replace('"step": "10"', '"step": "18446744073709551616"'))
dict_("checkpoint", JSON_WORDS + ['"format"', '"nextuser-train-state-1"', '"step"', '"epoch"', '"position"',
                                  '"seed"', '"rng_state"', '"adam_step"', '"windows"', '"all"', '"disjoint"',
                                  '"best_score"', '"best_step"', '"evals_since_best"', '"adam"', '"lr"',
                                  '"beta1"', '"beta2"', '"eps"', '"clip_norm"', '"warmup_steps"',
                                  '"total_steps"', '"min_lr_ratio"'])

# ---- id maps
put("idmap", "users", "u0\nu1\nu2\n")
put("idmap", "vocab", "<unk>\nAction\nDrama\n\xc3\xa9t\xc3\xa9\n")
put("idmap", "crlf", "a\r\nb\r\n")
put("idmap", "dup", "a\nb\na\n")
put("idmap", "nul", b"a\nb\x00c\n")
put("idmap", "many", "".join("id%d\n" % i for i in range(300)))
dict_("idmap", ["\n", "\r", "\t", "\x00", "<unk>", "\xc3\xa9", "\xff", "\xed\xa0\x80", "\xf4\x90\x80\x80"])

# ---- strict JSON
for name, text in [("object", '{"a": [1, 2.5, -3e2, "x"], "b": {"c": null, "d": true}}'),
                   ("numbers", "[9007199254740993, -0, 1e999, 18446744073709551615, 0.1]"),
                   ("dup", '{"a": 1, "b": {"x": 1, "x": 2}}'), ("trailing", '{"a": 1} {"b": 2}'),
                   ("escapes", '["\\u00e9\\ud83d\\ude00\\n\\t", "\\u0000"]'), ("scalar", '"str"'),
                   ("deep", "[" * 200 + "]" * 200), ("bad_utf8", b'["\xc3\x28"]')]:
    put("json_strict", name, text)
dict_("json_strict", JSON_WORDS)

# ---- service request bodies: byte 0 even = /v1/recommend, odd = /v1/embed
for name, kind, body in [
        ("recommend", 0, {"items": [{"id": "a", "users": ["u1", "u2"], "features": {"g": ["v1"], "y": "v2",
                                                                                      "c": [1, 2, 3]}}], "k": 5}),
        ("recommend_many", 0, {"items": [{"id": i, "users": ["u%d" % i]} for i in range(5)]}),
        ("embed", 1, {"items": [{"id": "e", "users": ["u3", "nobody"]}, {"id": "f"}]}),
        ("bad_k", 0, {"items": [{"id": "a"}], "k": 1000}),
        ("unknown_key", 1, {"items": [], "x": 1})]:
    put("request", name, bytes([kind]) + json.dumps(body).encode())
put("request", "trailing", b"\x00" + b'{"items": [{"id": "a"}]} x')
dict_("request", JSON_WORDS + ['"items"', '"k"', '"id"', '"users"', '"features"', '"g"', '"y"', '"c"',
                               '"u1"', '"v1"'])
