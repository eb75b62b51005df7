#!/usr/bin/python3
"""PyTorch reference of the Next-User Retrieval model (docs/model-format.md).

This module is the executable statement of the spec that the C library is held
to: it reads and writes the same model directories, parses the same items files
and computes the same forward.  It offers two forward paths:

  * a per-item path written as plainly as possible (explicit key ranges instead
    of masks, one query row at a time) that mirrors the spec's wording, and
  * a batched path that pads the items of a batch to a common length and uses an
    attention mask; it is the PyTorch performance peer and must agree with the
    per-item path to float rounding.

Run `python3 tools/reference/nextuser_ref.py --help` for the command line.
Only the standard library, numpy and torch are used.
"""

import argparse
import copy
import json
import math
import os
import random
import re
import sys
from collections import namedtuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402  (needs the path set up above)

FORMAT = "nextuser-1"
MODEL_FILE = "model.safetensors"
USERS_FILE = "users.txt"
UNK = "<unk>"
INIT_STD = 0.02

# ----------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------

CONFIG_KEYS = ("d", "heads", "enc_layers", "dec_layers", "ffn", "max_users", "num_users",
               "prefix_fields", "similarity", "tau", "attention", "use_cls", "ln_eps",
               "prior_weight", "feature_prior_weight")
# Serving-only tensors of trained models (docs/model-format.md, step 7): the
# forward does not read them.
USER_PRIOR = "user_prior"
FEATURE_PRIOR = ("user_feature_prior", "feature_prior_values")
FIELD_KINDS = ("categorical", "multi", "dense")
# Field names become tensor-name components and file names (vocab_<field>.txt),
# so they must not contain '.', '/', whitespace or anything exotic.
FIELD_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(ValueError):
    """Invalid configuration; the message starts with the key at fault."""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _check_int(where, value, minimum):
    if not _is_int(value):
        raise ConfigError("%s: must be an integer, got %r" % (where, value))
    if value < minimum:
        raise ConfigError("%s: must be >= %d, got %d" % (where, minimum, value))
    return value


def normalize_config(raw):
    """Apply the spec's defaults to a config object and validate it.

    Returns a new dict holding every key in CONFIG_KEYS order (the form that is
    written to model.safetensors).  Raises ConfigError naming the key at fault.
    """
    if not isinstance(raw, dict):
        raise ConfigError("config: must be a JSON object, got %s" % type(raw).__name__)
    for key in raw:
        if key not in CONFIG_KEYS:
            raise ConfigError("%s: unknown config key (known: %s)" % (key, ", ".join(CONFIG_KEYS)))
    cfg = {}
    cfg["d"] = _check_int("d", raw.get("d", 64), 1)
    cfg["heads"] = _check_int("heads", raw.get("heads", 4), 1)
    if cfg["d"] % cfg["heads"] != 0:
        raise ConfigError("heads: d (%d) must be divisible by heads (%d)" % (cfg["d"], cfg["heads"]))
    cfg["enc_layers"] = _check_int("enc_layers", raw.get("enc_layers", 2), 1)
    cfg["dec_layers"] = _check_int("dec_layers", raw.get("dec_layers", 1), 1)
    cfg["ffn"] = _check_int("ffn", raw.get("ffn", 4 * cfg["d"]), 1)
    cfg["max_users"] = _check_int("max_users", raw.get("max_users", 50), 1)
    if "num_users" not in raw:
        raise ConfigError("num_users: required (it has no default)")
    cfg["num_users"] = _check_int("num_users", raw["num_users"], 1)

    fields = raw.get("prefix_fields", [])
    if not isinstance(fields, list):
        raise ConfigError("prefix_fields: must be a list, got %r" % (fields,))
    cfg["prefix_fields"] = []
    seen = set()
    for i, f in enumerate(fields):
        where = "prefix_fields[%d]" % i
        if not isinstance(f, dict):
            raise ConfigError("%s: must be an object, got %r" % (where, f))
        name = f.get("name")
        if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
            raise ConfigError("%s.name: must be a non-empty string of [A-Za-z0-9_-], got %r"
                              % (where, name))
        where = "prefix_fields[%d] (%s)" % (i, name)
        if name in seen:
            raise ConfigError("%s.name: duplicate field name %r" % (where, name))
        seen.add(name)
        kind = f.get("kind")
        if kind not in FIELD_KINDS:
            raise ConfigError("%s.kind: unknown kind %r (expected one of %s)"
                              % (where, kind, ", ".join(FIELD_KINDS)))
        size_key = "dim" if kind == "dense" else "vocab"
        allowed = ("name", "kind", size_key)
        for key in f:
            if key not in allowed:
                raise ConfigError("%s.%s: not a key of a %s field (allowed: %s)"
                                  % (where, key, kind, ", ".join(allowed)))
        if size_key not in f:
            raise ConfigError("%s.%s: required for a %s field" % (where, size_key, kind))
        size = _check_int("%s.%s" % (where, size_key), f[size_key], 1)
        cfg["prefix_fields"].append({"name": name, "kind": kind, size_key: size})

    cfg["similarity"] = raw.get("similarity", "cosine")
    if cfg["similarity"] not in ("cosine", "dot"):
        raise ConfigError("similarity: must be \"cosine\" or \"dot\", got %r" % (cfg["similarity"],))
    cfg["tau"] = raw.get("tau", 0.1)
    if not _is_number(cfg["tau"]) or cfg["tau"] <= 0:
        raise ConfigError("tau: must be a finite number > 0, got %r" % (cfg["tau"],))
    cfg["attention"] = raw.get("attention", "causal")
    if cfg["attention"] not in ("causal", "bidirectional"):
        raise ConfigError("attention: must be \"causal\" or \"bidirectional\", got %r"
                          % (cfg["attention"],))
    cfg["use_cls"] = raw.get("use_cls", True)
    if not isinstance(cfg["use_cls"], bool):
        raise ConfigError("use_cls: must be true or false, got %r" % (cfg["use_cls"],))
    cfg["ln_eps"] = raw.get("ln_eps", 1e-5)
    if not _is_number(cfg["ln_eps"]) or cfg["ln_eps"] <= 0:
        raise ConfigError("ln_eps: must be a finite number > 0, got %r" % (cfg["ln_eps"],))
    cfg["prior_weight"] = raw.get("prior_weight", 0.0)
    if not _is_number(cfg["prior_weight"]) or not 0 <= cfg["prior_weight"] <= 1000:
        raise ConfigError("prior_weight: must be a number in [0, 1000], got %r"
                          % (cfg["prior_weight"],))
    cfg["feature_prior_weight"] = raw.get("feature_prior_weight", 0.0)
    if (not _is_number(cfg["feature_prior_weight"])
            or not 0 <= cfg["feature_prior_weight"] <= 1000):
        raise ConfigError("feature_prior_weight: must be a number in [0, 1000], got %r"
                          % (cfg["feature_prior_weight"],))
    return cfg


def load_config_file(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except ValueError as e:
        raise ConfigError("%s: not valid JSON (%s)" % (path, e)) from None
    return raw


def tensor_specs(config):
    """[(name, shape, init)] for every tensor of the model, in canonical order.

    init is how `init` fills it: "normal" N(0, 0.02^2), "ones", "zeros" or
    "linear" U(-1/sqrt(in), 1/sqrt(in)) with in = shape[0].
    """
    c = normalize_config(config)
    d, ffn, k = c["d"], c["ffn"], len(c["prefix_fields"])
    specs = [("user_emb", (c["num_users"], d), "normal")]
    for f in c["prefix_fields"]:
        if f["kind"] == "dense":
            specs.append(("prefix.%s.w" % f["name"], (f["dim"], d), "linear"))
            specs.append(("prefix.%s.b" % f["name"], (d,), "zeros"))
        else:
            specs.append(("prefix.%s.emb" % f["name"], (f["vocab"], d), "normal"))
    if k > 0:
        specs.append(("pos.prefix", (k, d), "normal"))
    specs += [("pos.user", (c["max_users"], d), "normal"),
              ("cls", (d,), "normal"),
              ("pos.cls", (d,), "normal")]

    def ln(p):
        return [(p + ".g", (d,), "ones"), (p + ".b", (d,), "zeros")]

    def ffn_specs(p):
        return [(p + ".ffn.w1", (d, ffn), "linear"), (p + ".ffn.b1", (ffn,), "zeros"),
                (p + ".ffn.w2", (ffn, d), "linear"), (p + ".ffn.b2", (d,), "zeros")]

    for layer in range(c["enc_layers"]):
        p = "enc.%d" % layer
        specs += ln(p + ".ln1")
        specs += [(p + ".attn.wqkv", (d, 3 * d), "linear"), (p + ".attn.bqkv", (3 * d,), "zeros"),
                  (p + ".attn.wo", (d, d), "linear"), (p + ".attn.bo", (d,), "zeros")]
        specs += ln(p + ".ln2") + ffn_specs(p)
    specs += ln("enc.ln")
    specs.append(("dec.query_pos", (c["max_users"] + 1, d), "normal"))
    for layer in range(c["dec_layers"]):
        p = "dec.%d" % layer
        specs += ln(p + ".ln1")
        specs += [(p + ".attn.wq", (d, d), "linear"), (p + ".attn.bq", (d,), "zeros"),
                  (p + ".attn.wkv", (d, 2 * d), "linear"), (p + ".attn.bkv", (2 * d,), "zeros"),
                  (p + ".attn.wo", (d, d), "linear"), (p + ".attn.bo", (d,), "zeros")]
        specs += ln(p + ".ln2") + ffn_specs(p)
    specs += ln("dec.ln")
    return specs


# ----------------------------------------------------------------------------
# Model: modules laid out so that named_parameters() yields the spec's names
# ----------------------------------------------------------------------------

def _param(*shape):
    return nn.Parameter(torch.zeros(*shape, dtype=torch.float32))


class _Node(nn.Module):
    """A container whose children and parameters may have any name without a
    '.', including names that clash with nn.Module attributes (a prefix field
    called "type" or "float").  Entries are reached with node[name]."""

    def put(self, name, thing):
        if not name or "." in name:
            raise ValueError("bad parameter/module name %r" % (name,))
        if isinstance(thing, nn.Parameter):
            self._parameters[name] = thing
        else:
            self._modules[name] = thing
        return thing

    def __getitem__(self, name):
        if name in self._parameters:
            return self._parameters[name]
        return self._modules[name]

    def __contains__(self, name):
        return name in self._parameters or name in self._modules


class _LayerNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.g = _param(d)
        self.b = _param(d)
        self.eps = eps

    def forward(self, x):
        # Biased variance (mean of squared deviations), eps inside the sqrt.
        return F.layer_norm(x, (x.shape[-1],), self.g, self.b, self.eps)


class _FFN(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.w1, self.b1 = _param(d, hidden), _param(hidden)
        self.w2, self.b2 = _param(hidden, d), _param(d)

    def forward(self, x):
        # approximate="none" is the exact erf GELU the spec requires.
        return F.gelu(x @ self.w1 + self.b1, approximate="none") @ self.w2 + self.b2


class _EncAttn(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.wqkv, self.bqkv = _param(d, 3 * d), _param(3 * d)
        self.wo, self.bo = _param(d, d), _param(d)


class _DecAttn(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.wq, self.bq = _param(d, d), _param(d)
        self.wkv, self.bkv = _param(d, 2 * d), _param(2 * d)
        self.wo, self.bo = _param(d, d), _param(d)


class _Block(nn.Module):
    def __init__(self, d, hidden, eps, attn):
        super().__init__()
        self.ln1 = _LayerNorm(d, eps)
        self.attn = attn
        self.ln2 = _LayerNorm(d, eps)
        self.ffn = _FFN(d, hidden)


# ----------------------------------------------------------------------------
# Attention, two ways
# ----------------------------------------------------------------------------

def _attend_ranges(q, k, v, limits, heads):
    """Per-item reference attention. q [Tq, d], k/v [Tk, d]; query row r sees
    keys [0, limits[r]).  An empty range gives a zero output row.  Written one
    row and one head at a time, with slicing instead of masks, to read like
    the spec."""
    tq, d = q.shape
    dh = d // heads
    scale = 1.0 / math.sqrt(dh)
    out = torch.zeros(tq, d, dtype=q.dtype)
    for h in range(heads):
        cols = slice(h * dh, (h + 1) * dh)
        for r in range(tq):
            lim = int(limits[r])
            if lim == 0:
                continue  # no visible key: zero attention output
            scores = (k[:lim, cols] @ q[r, cols]) * scale          # [lim]
            weights = torch.softmax(scores, dim=0)
            out[r, cols] = weights @ v[:lim, cols]
    return out


def _attend_masked(q, k, v, limits, heads):
    """Batched attention. q [B, Tq, d], k/v [B, Tk, d], limits [B, Tq] (long):
    query (b, r) sees keys [0, limits[b, r]).  Rows with no visible key get a
    zero output; no NaN is produced, in the forward or the backward pass."""
    b, tq, d = q.shape
    tk = k.shape[1]
    dh = d // heads
    scale = 1.0 / math.sqrt(dh)
    qh = q.reshape(b, tq, heads, dh).transpose(1, 2)              # [B, H, Tq, dh]
    kh = k.reshape(b, tk, heads, dh).transpose(1, 2)              # [B, H, Tk, dh]
    vh = v.reshape(b, tk, heads, dh).transpose(1, 2)
    scores = (qh @ kh.transpose(-1, -2)) * scale                  # [B, H, Tq, Tk]
    visible = (torch.arange(tk)[None, None, :] < limits[:, :, None])[:, None]  # [B,1,Tq,Tk]
    # A finite "minus infinity": a fully masked row becomes a uniform softmax
    # (instead of NaN) that the multiplication below turns into zeros.
    scores = scores.masked_fill(~visible, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1) * visible
    out = weights @ vh                                            # [B, H, Tq, dh]
    return out.transpose(1, 2).reshape(b, tq, d)


# ----------------------------------------------------------------------------
# Items
# ----------------------------------------------------------------------------

class Item:
    """A parsed item: `values[f]` is, per prefix field in config order, a vocab
    index (categorical), a list of vocab indices (multi, may be empty) or a list
    of `dim` floats (dense); `users` are user_emb rows, oldest first, already
    filtered and truncated to max_users."""

    __slots__ = ("id", "values", "users")

    def __init__(self, item_id, values, users):
        self.id = item_id
        self.values = values
        self.users = list(users)

    def __repr__(self):
        return "Item(%r, users=%r)" % (self.id, self.users)


class ItemStats:
    def __init__(self):
        self.items = 0
        self.unknown_users = 0      # ids not in users.txt, skipped
        self.truncated_items = 0    # items with more than max_users known users
        self.dropped_users = 0      # older users dropped by the truncation
        self.unknown_values = 0     # categorical/multi values mapped to <unk>

    def summary(self):
        return ("%d items, %d unknown user ids skipped, %d items truncated to max_users "
                "(%d older users dropped), %d unknown feature values mapped to <unk>"
                % (self.items, self.unknown_users, self.truncated_items, self.dropped_users,
                   self.unknown_values))


def _no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key %r" % key)
        obj[key] = value
    return obj


def _reject_constant(name):
    raise ValueError("non-standard JSON constant %s" % name)


# Largest finite float32: values beyond it would round to infinity.
_F32_MAX = float(np.finfo(np.float32).max)


def _bad_id(s):
    return any(ch in s for ch in "\t\r\n")


class ItemParser:
    """Turns items-file lines into Items using a model's users and vocabularies."""

    ITEM_KEYS = ("id", "features", "users")

    def __init__(self, config, users, vocabs):
        self.config = normalize_config(config)
        self.fields = self.config["prefix_fields"]
        self.field_pos = {f["name"]: i for i, f in enumerate(self.fields)}
        self.user_row = {u: r for r, u in enumerate(users)}
        self.vocab_index = {name: {v: i for i, v in enumerate(values)}
                            for name, values in vocabs.items()}
        self.stats = ItemStats()

    def parse_object(self, obj, where):
        """Parse one decoded JSON object; `where` (e.g. "items.jsonl:3") prefixes errors."""
        if not isinstance(obj, dict):
            raise ValueError("%s: an item must be a JSON object" % where)
        for key in obj:
            if key not in self.ITEM_KEYS:
                raise ValueError("%s: unknown item key %r (expected %s)"
                                 % (where, key, ", ".join(self.ITEM_KEYS)))
        item_id = obj.get("id")
        if not isinstance(item_id, str) or _bad_id(item_id):
            raise ValueError("%s: \"id\" must be a string without tabs or newlines, got %r"
                             % (where, item_id))
        where = "%s (item %r)" % (where, item_id)

        users = obj.get("users", [])
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise ValueError("%s: \"users\" must be a list of strings" % where)
        rows = []
        for u in users:
            r = self.user_row.get(u)
            if r is None:
                self.stats.unknown_users += 1
            else:
                rows.append(r)
        max_users = self.config["max_users"]
        if len(rows) > max_users:
            # Unknown ids are skipped first; then the most recent max_users remain.
            self.stats.truncated_items += 1
            self.stats.dropped_users += len(rows) - max_users
            rows = rows[-max_users:]

        feats = obj.get("features", {})
        if not isinstance(feats, dict):
            raise ValueError("%s: \"features\" must be an object" % where)
        for key in feats:
            if key not in self.field_pos:
                raise ValueError("%s: feature %r names no prefix field (fields: %s)"
                                 % (where, key, ", ".join(self.field_pos) or "none"))
        values = []
        for f in self.fields:
            name, kind = f["name"], f["kind"]
            v = feats.get(name)  # missing and null both mean "no value"
            if kind == "categorical":
                if v is None:
                    values.append(0)
                elif isinstance(v, str):
                    values.append(self._index(name, v))
                else:
                    raise ValueError("%s: feature %r (categorical) must be a string" % (where, name))
            elif kind == "multi":
                if v is None:
                    values.append([])
                elif isinstance(v, list) and all(isinstance(s, str) for s in v):
                    values.append([self._index(name, s) for s in v])
                else:
                    raise ValueError("%s: feature %r (multi) must be a list of strings"
                                     % (where, name))
            else:
                dim = f["dim"]
                if v is None:
                    values.append([0.0] * dim)
                elif (isinstance(v, list) and len(v) == dim
                      and all(_is_number(x) and abs(x) <= _F32_MAX for x in v)):
                    # The model's inputs are float32, as in the C library
                    # (strtod, then one rounding to float): round here so the
                    # float64 mode computes on exactly the same inputs.
                    values.append([float(np.float32(x)) for x in v])
                else:
                    raise ValueError("%s: feature %r (dense) must be a list of %d finite numbers "
                                     "within float32 range" % (where, name, dim))
        self.stats.items += 1
        return Item(item_id, values, rows)

    def _index(self, field, value):
        i = self.vocab_index[field].get(value)
        if i is None:
            self.stats.unknown_values += 1
            return 0
        return i

    def parse_lines(self, lines, source="<items>"):
        items = []
        for lineno, line in enumerate(lines, 1):
            where = "%s:%d" % (source, lineno)
            if not line.strip():
                continue  # blank lines (e.g. a trailing one) carry no item
            try:
                obj = json.loads(line, object_pairs_hook=_no_duplicate_keys,
                                 parse_constant=_reject_constant)
            except ValueError as e:
                raise ValueError("%s: malformed JSON (%s)" % (where, e)) from None
            items.append(self.parse_object(obj, where))
        return items

    def parse_file(self, path):
        with open(path, "rb") as f:
            data = f.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError("%s: not valid UTF-8 (%s)" % (path, e)) from None
        return self.parse_lines(text.split("\n"), str(path))


# ----------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------

class NextUserModel(nn.Module):
    """The Next-User Retrieval network.  named_parameters() / state_dict() use
    exactly the tensor names of docs/model-format.md, so
    `model.load_state_dict({spec name: tensor})` and `model.state_dict()` are
    the file's tensors."""

    def __init__(self, config):
        super().__init__()
        c = self.config = normalize_config(config)
        d, ffn, eps = c["d"], c["ffn"], c["ln_eps"]
        self.fields = c["prefix_fields"]
        self.k = len(self.fields)

        self.user_emb = _param(c["num_users"], d)
        self.prefix = _Node()
        for f in self.fields:
            node = self.prefix.put(f["name"], _Node())
            if f["kind"] == "dense":
                node.put("w", _param(f["dim"], d))
                node.put("b", _param(d))
            else:
                node.put("emb", _param(f["vocab"], d))
        self.pos = _Node()
        if self.k > 0:
            self.pos.put("prefix", _param(self.k, d))
        self.pos.put("user", _param(c["max_users"], d))
        self.pos.put("cls", _param(d))
        self.cls = _param(d)

        self.enc = _Node()
        for layer in range(c["enc_layers"]):
            self.enc.put(str(layer), _Block(d, ffn, eps, _EncAttn(d)))
        self.enc.put("ln", _LayerNorm(d, eps))
        self.dec = _Node()
        self.dec.put("query_pos", _param(c["max_users"] + 1, d))
        for layer in range(c["dec_layers"]):
            self.dec.put(str(layer), _Block(d, ffn, eps, _DecAttn(d)))
        self.dec.put("ln", _LayerNorm(d, eps))

    # -- spec-named tensors ---------------------------------------------------

    def enc_blocks(self):
        return [self.enc[str(i)] for i in range(self.config["enc_layers"])]

    def dec_blocks(self):
        return [self.dec[str(i)] for i in range(self.config["dec_layers"])]

    def spec_tensors(self):
        """{spec name: float32 numpy array} of every tensor (a copy)."""
        return {name: p.detach().to(torch.float32).cpu().numpy().copy()
                for name, p in self.named_parameters()}

    def load_spec_tensors(self, tensors, source="tensors"):
        """Copy {spec name: array} into the parameters; the set of names and
        every shape must match the config exactly (ValueError naming the tensor)."""
        expected = {name: shape for name, shape, _ in tensor_specs(self.config)}
        for name in expected:
            if name not in tensors:
                raise ValueError("%s: missing tensor %r" % (source, name))
        for name in tensors:
            if name not in expected:
                raise ValueError("%s: unexpected tensor %r (not in the spec for this config)"
                                 % (source, name))
        params = dict(self.named_parameters())
        with torch.no_grad():
            for name, shape in expected.items():
                value = torch.as_tensor(np.asarray(tensors[name]))
                if tuple(value.shape) != tuple(shape):
                    raise ValueError("%s: tensor %r has shape %s, config needs %s"
                                     % (source, name, list(value.shape), list(shape)))
                params[name].copy_(value)

    # -- inputs -----------------------------------------------------------------

    def _check_items(self, items):
        for it in items:
            if len(it.users) > self.config["max_users"]:
                raise ValueError("item %r: %d users > max_users %d (parse items with ItemParser)"
                                 % (it.id, len(it.users), self.config["max_users"]))

    def _prefix_token(self, f, value, dtype):
        """Prefix token of field number f for one item (spec step 1)."""
        field = self.fields[f]
        node = self.prefix[field["name"]]
        if field["kind"] == "categorical":
            tok = node["emb"][value]
        elif field["kind"] == "multi":
            tok = node["emb"][list(value) or [0]].mean(dim=0)   # no values: emb[0]
        else:
            x = torch.tensor(value, dtype=dtype)
            tok = x @ node["w"] + node["b"]
        return tok + self.pos["prefix"][f]

    def _encoder_input(self, item, dtype):
        """X = [prefix tokens, user tokens, CLS] for one item (spec steps 1-3)."""
        rows = [self._prefix_token(f, item.values[f], dtype) for f in range(self.k)]
        for i, u in enumerate(item.users):            # i is 0-based: pos.user[i-1] in 1-based terms
            rows.append(self.user_emb[u] + self.pos["user"][i])
        if self.config["use_cls"]:
            rows.append(self.cls + self.pos["cls"])
        if not rows:
            return torch.zeros(0, self.config["d"], dtype=dtype)
        return torch.stack(rows)

    def _encoder_limits(self, n):
        """Per encoder row, the end of its visible key range [0, limit)."""
        k, t = self.k, self.k + n + int(self.config["use_cls"])
        if self.config["attention"] == "bidirectional":
            return [t] * t
        # prefix rows see the prefix; user i (1-based) sees prefix + users 1..i; CLS sees all.
        return [k] * k + [k + i for i in range(1, n + 1)] + [t] * int(self.config["use_cls"])

    def _decoder_limits(self, n, positions):
        """Visible encoder rows for decoder queries j (1-based) of an item with n users."""
        t = self.k + n + int(self.config["use_cls"])
        return [self.k + j - 1 if j <= n else t for j in positions]

    # -- per-item reference path ---------------------------------------------

    def _encode_one(self, item, dtype):
        x = self._encoder_input(item, dtype)
        limits = self._encoder_limits(len(item.users))
        d = self.config["d"]
        for blk in self.enc_blocks():
            h = blk.ln1(x)
            qkv = h @ blk.attn.wqkv + blk.attn.bqkv
            q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
            a = _attend_ranges(q, k, v, limits, self.config["heads"])
            x = x + a @ blk.attn.wo + blk.attn.bo
            x = x + blk.ffn(blk.ln2(x))
        return self.enc["ln"](x)

    def _decode_one(self, item, enc, positions):
        n, d = len(item.users), self.config["d"]
        q = self.dec["query_pos"][[j - 1 for j in positions]]
        limits = self._decoder_limits(n, positions)
        for blk in self.dec_blocks():
            qq = blk.ln1(q) @ blk.attn.wq + blk.attn.bq
            kv = enc @ blk.attn.wkv + blk.attn.bkv
            a = _attend_ranges(qq, kv[:, :d], kv[:, d:], limits, self.config["heads"])
            q = q + a @ blk.attn.wo + blk.attn.bo
            q = q + blk.ffn(blk.ln2(q))
        return self.dec["ln"](q)

    # -- batched, padded path ----------------------------------------------------

    def _batch_encoder_input(self, items, dtype):
        """Padded X [B, Tmax, d]: row layout per item is [prefix, users, CLS,
        padding], so every visible key range starts at 0 and the padding is
        never visible to a real row."""
        d, k, use_cls = self.config["d"], self.k, int(self.config["use_cls"])
        b = len(items)
        ns = torch.tensor([len(it.users) for it in items], dtype=torch.long)
        nmax = int(ns.max()) if b else 0
        x = torch.zeros(b, k + nmax + use_cls, d, dtype=dtype)
        parts = []
        for f, field in enumerate(self.fields):
            node = self.prefix[field["name"]]
            if field["kind"] == "categorical":
                tok = node["emb"][torch.tensor([it.values[f] for it in items], dtype=torch.long)]
            elif field["kind"] == "multi":
                lists = [list(it.values[f]) or [0] for it in items]
                width = max(len(v) for v in lists)
                idx = torch.tensor([v + [0] * (width - len(v)) for v in lists], dtype=torch.long)
                cnt = torch.tensor([len(v) for v in lists], dtype=dtype)
                mask = (torch.arange(width)[None, :] < cnt[:, None]).to(dtype)
                tok = (node["emb"][idx] * mask[:, :, None]).sum(dim=1) / cnt[:, None]
            else:
                xs = torch.tensor([it.values[f] for it in items], dtype=dtype)
                tok = xs @ node["w"] + node["b"]
            parts.append(tok + self.pos["prefix"][f])
        if k:
            x[:, :k] = torch.stack(parts, dim=1)
        if nmax:
            rows = torch.tensor([it.users + [0] * (nmax - len(it.users)) for it in items],
                                dtype=torch.long)
            x[:, k:k + nmax] = self.user_emb[rows] + self.pos["user"][:nmax]
        if use_cls:
            # CLS goes right after each item's own users, overwriting a padding row.
            x[torch.arange(b), k + ns] = self.cls + self.pos["cls"]
        return x, ns

    def _batch_encode(self, items, dtype):
        x, ns = self._batch_encoder_input(items, dtype)
        b, tmax, d = x.shape
        k, use_cls = self.k, int(self.config["use_cls"])
        t = k + ns + use_cls                                   # [B] real lengths
        r = torch.arange(tmax)[None, :].expand(b, tmax)
        if self.config["attention"] == "bidirectional":
            limits = t[:, None].expand(b, tmax)
        else:
            # prefix rows: k; user rows: own index + 1; CLS and padding rows: t.
            limits = torch.where(r < k, torch.full_like(r, k),
                                 torch.where(r < (k + ns)[:, None], r + 1, t[:, None].expand(b, tmax)))
        for blk in self.enc_blocks():
            h = blk.ln1(x)
            qkv = h @ blk.attn.wqkv + blk.attn.bqkv
            a = _attend_masked(qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:], limits,
                               self.config["heads"])
            x = x + a @ blk.attn.wo + blk.attn.bo
            x = x + blk.ffn(blk.ln2(x))
        return self.enc["ln"](x), ns, t

    def _batch_decode(self, enc, q, limits):
        d = self.config["d"]
        for blk in self.dec_blocks():
            qq = blk.ln1(q) @ blk.attn.wq + blk.attn.bq
            kv = enc @ blk.attn.wkv + blk.attn.bkv
            a = _attend_masked(qq, kv[..., :d], kv[..., d:], limits, self.config["heads"])
            q = q + a @ blk.attn.wo + blk.attn.bo
            q = q + blk.ffn(blk.ln2(q))
        return self.dec["ln"](q)

    # -- public forward ----------------------------------------------------------

    def _prepare(self, float64):
        """The module to compute with: self, or a float64 copy of it."""
        return copy.deepcopy(self).double() if float64 else self

    def encode(self, items, float64=False):
        """Encoder outputs [k + n + use_cls, d] per item (per-item path)."""
        self._check_items(items)
        m = self._prepare(float64)
        dtype = torch.float64 if float64 else torch.float32
        return [m._encode_one(it, dtype) for it in items]

    def embed(self, items, float64=False, batched=True, batch_size=256):
        """û_next = û_{n+1} for each item: tensor [B, d] (only that query is computed)."""
        self._check_items(items)
        m = self._prepare(float64)
        dtype = torch.float64 if float64 else torch.float32
        d = self.config["d"]
        if not items:
            return torch.zeros(0, d, dtype=dtype)
        if not batched:
            outs = []
            for it in items:
                n = len(it.users)
                outs.append(m._decode_one(it, m._encode_one(it, dtype), [n + 1])[0])
            return torch.stack(outs)
        outs = []
        for s in range(0, len(items), batch_size):
            chunk = items[s:s + batch_size]
            enc, ns, t = m._batch_encode(chunk, dtype)
            q = m.dec["query_pos"][ns][:, None, :]          # query n+1 uses query_pos[n]
            outs.append(m._batch_decode(enc, q, t[:, None])[:, 0])
        return torch.cat(outs)

    def decode_all(self, items, float64=False, batched=True, batch_size=256):
        """Training mode: û_1..û_{n+1} (teacher-forced) per item, a list of [n+1, d]."""
        self._check_items(items)
        m = self._prepare(float64)
        dtype = torch.float64 if float64 else torch.float32
        if not batched:
            return [m._decode_one(it, m._encode_one(it, dtype), range(1, len(it.users) + 2))
                    for it in items]
        outs = []
        for s in range(0, len(items), batch_size):
            chunk = items[s:s + batch_size]
            enc, ns, t = m._batch_encode(chunk, dtype)
            b, nmax = len(chunk), int(ns.max())
            j = torch.arange(1, nmax + 2)[None, :].expand(b, nmax + 1)   # 1-based positions
            q = m.dec["query_pos"][j - 1]
            # j <= n: prefix + users before j; j = n+1 (and padding queries): everything.
            limits = torch.where(j <= ns[:, None], m.k + j - 1, t[:, None].expand(b, nmax + 1))
            out = m._batch_decode(enc, q, limits)
            outs += [out[i, :len(it.users) + 1] for i, it in enumerate(chunk)]
        return outs


# ----------------------------------------------------------------------------
# Initialisation, model directories
# ----------------------------------------------------------------------------

LoadedModel = namedtuple("LoadedModel", "model users vocabs")


def synthetic_users(n):
    return ["u%d" % i for i in range(n)]


def synthetic_vocab(size):
    return [UNK] + ["v%d" % i for i in range(1, size)]


def init_model(config, seed, users=None, vocabs=None):
    """A freshly initialised NextUserModel, deterministic from `seed`.

    If `users` is given and the config has no num_users, num_users = len(users);
    users/vocabs given are checked against the config."""
    config = dict(config)
    if users is not None and "num_users" not in config:
        config["num_users"] = len(users)
    model = NextUserModel(config)
    if users is not None or vocabs is not None:
        _check_names(model.config, users, vocabs)
    gen = torch.Generator().manual_seed(int(seed))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, shape, how in tensor_specs(model.config):
            p = params[name]
            if how == "normal":
                p.normal_(0.0, INIT_STD, generator=gen)
            elif how == "linear":
                bound = 1.0 / math.sqrt(shape[0])
                p.uniform_(-bound, bound, generator=gen)
            elif how == "ones":
                p.fill_(1.0)
            else:
                p.zero_()
    return model


def _check_names(config, users, vocabs):
    """Validate users/vocab lists against a (normalised) config."""
    if users is not None:
        if len(users) != config["num_users"]:
            raise ValueError("users: %d ids but num_users is %d" % (len(users), config["num_users"]))
        _check_unique_lines(users, "users")
    for f in config["prefix_fields"]:
        if f["kind"] == "dense":
            continue
        if vocabs is None or f["name"] not in vocabs:
            raise ValueError("vocab_%s: missing vocabulary for field %r" % (f["name"], f["name"]))
        vals = vocabs[f["name"]]
        if len(vals) != f["vocab"]:
            raise ValueError("vocab_%s: %d values but the config says vocab = %d"
                             % (f["name"], len(vals), f["vocab"]))
        if vals[0] != UNK:
            raise ValueError("vocab_%s: line 1 must be %s, got %r" % (f["name"], UNK, vals[0]))
        _check_unique_lines(vals, "vocab_%s" % f["name"])


def _check_unique_lines(values, what):
    first = {}
    for i, v in enumerate(values, 1):
        if not isinstance(v, str) or v == "" or _bad_id(v):
            raise ValueError("%s: line %d: %r must be a non-empty string without tabs or newlines"
                             % (what, i, v))
        if v in first:
            raise ValueError("%s: line %d: %r duplicates line %d" % (what, i, v, first[v]))
        first[v] = i


def _read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("%s: not valid UTF-8 (%s)" % (path, e)) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()   # the final newline ends the last line; it does not start another
    return lines


def _write_lines(path, lines):
    body = "".join(s + "\n" for s in lines).encode("utf-8")
    safetensors_io.atomic_write(path, lambda f: f.write(body))


def config_json(config):
    cfg = dict(normalize_config(config))
    for key in ("prior_weight", "feature_prior_weight"):
        if not cfg.get(key):
            cfg.pop(key, None)  # as nextuser writes them: only when used
    return json.dumps(cfg)


def save_model_dir(path, model, users, vocabs):
    """Write users.txt, vocab_<field>.txt and model.safetensors into `path`
    (created if needed).  `vocabs` maps field name -> list of values incl. <unk>
    at index 0, for every categorical/multi field.  Each file is replaced
    atomically; model.safetensors is written last."""
    config = model.config
    _check_names(config, users, vocabs)
    os.makedirs(path, exist_ok=True)
    _write_lines(os.path.join(path, USERS_FILE), users)
    for f in config["prefix_fields"]:
        if f["kind"] != "dense":
            _write_lines(os.path.join(path, "vocab_%s.txt" % f["name"]), vocabs[f["name"]])
    metadata = {"nextuser_config": config_json(config), "format": FORMAT}
    safetensors_io.write_safetensors(os.path.join(path, MODEL_FILE), model.spec_tensors(),
                                     metadata)


def load_model_dir(path):
    """Read a model directory; returns LoadedModel(model, users, vocabs).
    Raises ValueError naming the file/tensor/field at fault."""
    mpath = os.path.join(path, MODEL_FILE)
    tensors, metadata = safetensors_io.read_safetensors(mpath)
    if metadata.get("format") != FORMAT:
        raise ValueError("%s: __metadata__ format is %r, expected %r"
                         % (mpath, metadata.get("format"), FORMAT))
    if "nextuser_config" not in metadata:
        raise ValueError("%s: __metadata__ has no nextuser_config" % mpath)
    try:
        raw = json.loads(metadata["nextuser_config"])
    except ValueError as e:
        raise ValueError("%s: nextuser_config is not valid JSON (%s)" % (mpath, e)) from None
    try:
        model = NextUserModel(raw)
    except ConfigError as e:
        raise ConfigError("%s: nextuser_config: %s" % (mpath, e)) from None
    prior = tensors.pop(USER_PRIOR, None)
    if prior is None and model.config["prior_weight"] > 0:
        raise ValueError("%s: prior_weight is set but tensor %r is missing" % (mpath, USER_PRIOR))
    feature_prior = [tensors.pop(name, None) for name in FEATURE_PRIOR]
    # `is None`, not `in`: the tensors are arrays, whose == is elementwise.
    if any(t is None for t in feature_prior) and model.config["feature_prior_weight"] > 0:
        raise ValueError("%s: feature_prior_weight is set but tensors %s are missing"
                         % (mpath, " and ".join(FEATURE_PRIOR)))
    model.load_spec_tensors(tensors, mpath)
    users = _read_lines(os.path.join(path, USERS_FILE))
    vocabs = {}
    for f in model.config["prefix_fields"]:
        if f["kind"] != "dense":
            vocabs[f["name"]] = _read_lines(os.path.join(path, "vocab_%s.txt" % f["name"]))
    try:
        _check_names(model.config, users, vocabs)
    except ValueError as e:
        raise ValueError("%s: %s" % (path, e)) from None
    return LoadedModel(model, users, vocabs)


def item_parser(loaded):
    return ItemParser(loaded.model.config, loaded.users, loaded.vocabs)


# ----------------------------------------------------------------------------
# Output formats
# ----------------------------------------------------------------------------

def format_values(row):
    """d values with 9 significant digits, separated by spaces (spec)."""
    return " ".join("%.9g" % v for v in row)


def embedding_lines(items, emb):
    """Spec's embedding output: item id, TAB, the d values."""
    arr = emb.detach().cpu().numpy()
    return ["%s\t%s" % (it.id, format_values(arr[i])) for i, it in enumerate(items)]


def decode_lines(items, outs):
    """Training-mode output: item id, TAB, position j (1-based), TAB, the d values."""
    lines = []
    for it, out in zip(items, outs):
        arr = out.detach().cpu().numpy()
        for j in range(arr.shape[0]):
            lines.append("%s\t%d\t%s" % (it.id, j + 1, format_values(arr[j])))
    return lines


def _write_output(path, lines):
    if path == "-":
        sys.stdout.write("".join(s + "\n" for s in lines))
        sys.stdout.flush()
    else:
        _write_lines(path, lines)


# ----------------------------------------------------------------------------
# Training loss (docs/model.md, "Training loss")
# ----------------------------------------------------------------------------

LOSS_LAMBDAS = (1.0, 0.5, 0.1)


def training_loss(uhat, table, targets, shared, exposed=None, similarity="cosine", tau=0.1,
                  lambdas=LOSS_LAMBDAS):
    """The three-term loss L = l1 L_con + l2 L_CE + l3 L_aux, each term a mean,
    written per position as the spec words it (autograd gives the gradients).

    uhat [R, d] and table [U, d] are tensors (same dtype); targets: R user rows,
    None (or a negative number) for a position that trains nothing; shared: the
    M shared negative rows; exposed: per position, a list of exposed-negative
    rows (None: none).  f(u, h) = cos(u, h) / tau ("cosine", F.normalize's
    x / max(|x|, 1e-12)) or u . h ("dot").  A negative (shared or exposed)
    equal to the position's target is left out (accidental hit).  L_aux uses
    the raw vectors and a stop-gradient on the table row.
    Returns a dict of 0-d tensors con, ce, aux, total and ints positions, pairs."""
    if similarity not in ("cosine", "dot"):
        raise ValueError("similarity: must be \"cosine\" or \"dot\", got %r" % (similarity,))

    def f(u, h):   # u [n, d], h [d] -> [n]
        if similarity == "cosine":
            return (F.normalize(u, dim=-1) @ F.normalize(h, dim=0)) / tau
        return u @ h

    zero = uhat.new_zeros(())
    con, ce, aux = zero, zero, zero
    positions = pairs = 0
    for i in range(uhat.shape[0]):
        t = targets[i]
        if t is None or t < 0:
            continue
        t = int(t)
        positions += 1
        h, ut = uhat[i], table[t]
        negs = [int(j) for j in shared if int(j) != t]
        z = f(table[[t] + negs], h)                    # positive first
        con = con + torch.logsumexp(z, dim=0) - z[0]
        hard = [int(e) for e in (exposed[i] if exposed is not None and exposed[i] else [])
                if int(e) != t]
        zc = f(table[[t] + hard], h)
        labels = torch.zeros_like(zc)
        labels[0] = 1.0
        ce = ce + F.binary_cross_entropy_with_logits(zc, labels, reduction="sum")
        pairs += len(hard) + 1
        aux = aux + ((ut.detach() - h) ** 2).sum()
    con = con / positions if positions else zero
    aux = aux / positions if positions else zero
    ce = ce / pairs if pairs else zero
    l1, l2, l3 = lambdas
    total = l1 * con + l2 * ce + l3 * aux
    return {"con": con, "ce": ce, "aux": aux, "total": total, "positions": positions,
            "pairs": pairs}


# ----------------------------------------------------------------------------
# Random items (for parity tests)
# ----------------------------------------------------------------------------

def make_items(loaded, count, seed, min_users=0, max_users=None, unknown_rate=0.0,
               missing_rate=0.1):
    """`count` random items as JSON-ready dicts using the model's users and
    vocabularies.  Dense values are float32-representable so that any correct
    parser (strtof or strtod + rounding) reads the same numbers."""
    rng = random.Random(seed)
    cfg = loaded.model.config
    if max_users is None:
        max_users = cfg["max_users"]
    if min_users < 0 or max_users < min_users:
        raise ValueError("need 0 <= min_users <= max_users")
    items = []
    for i in range(count):
        feats = {}
        for f in cfg["prefix_fields"]:
            if rng.random() < missing_rate:
                continue
            if f["kind"] == "dense":
                feats[f["name"]] = [float(np.float32(rng.gauss(0.0, 1.0))) for _ in range(f["dim"])]
                continue
            vocab = loaded.vocabs[f["name"]]

            def value():
                if rng.random() < unknown_rate or len(vocab) == 1:
                    return "unknown-%d" % rng.randrange(10 ** 6)
                return vocab[rng.randrange(1, len(vocab))]
            if f["kind"] == "categorical":
                feats[f["name"]] = value()
            else:
                feats[f["name"]] = [value() for _ in range(rng.randint(0, 3))]
        users = []
        for _ in range(rng.randint(min_users, max_users)):
            if rng.random() < unknown_rate:
                users.append("unknown-user-%d" % rng.randrange(10 ** 6))
            else:
                users.append(loaded.users[rng.randrange(len(loaded.users))])
        items.append({"id": "item-%d" % i, "features": feats, "users": users})
    return items


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def _cmd_init(args):
    raw = load_config_file(args.config)
    if not isinstance(raw, dict):
        raise ConfigError("%s: the config must be a JSON object" % args.config)
    users = None
    if args.users_file and args.users is not None:
        raise ValueError("give --users or --users-file, not both")
    if args.users_file:
        users = _read_lines(args.users_file)
    elif args.users is not None or "num_users" in raw:
        n = args.users if args.users is not None else raw["num_users"]
        if not _is_int(n) or n < 1:
            raise ConfigError("num_users: must be an integer >= 1, got %r" % (n,))
        users = synthetic_users(n)
    if users is not None:
        if "num_users" in raw and raw["num_users"] != len(users):
            raise ConfigError("num_users: config says %r but %d users were given"
                              % (raw["num_users"], len(users)))
        raw = dict(raw, num_users=len(users))
    config = normalize_config(raw)  # errors if num_users is still unknown
    vocabs = {}
    for f in config["prefix_fields"]:
        if f["kind"] == "dense":
            continue
        if args.vocab_dir:
            vocabs[f["name"]] = _read_lines(os.path.join(args.vocab_dir, "vocab_%s.txt" % f["name"]))
        else:
            vocabs[f["name"]] = synthetic_vocab(f["vocab"])
    model = init_model(config, args.seed, users, vocabs)
    save_model_dir(args.out, model, users, vocabs)
    print("init: wrote %s (%d parameters)"
          % (args.out, sum(p.numel() for p in model.parameters())), file=sys.stderr)


def _load_and_parse(args):
    loaded = load_model_dir(args.model)
    parser = item_parser(loaded)
    items = parser.parse_file(args.items)
    print("%s: %s" % (args.cmd, parser.stats.summary()), file=sys.stderr)
    return loaded, items


def _cmd_embed(args):
    loaded, items = _load_and_parse(args)
    with torch.no_grad():
        emb = loaded.model.embed(items, float64=args.float64, batched=not args.per_item,
                                 batch_size=args.batch_size)
    _write_output(args.out, embedding_lines(items, emb))


def _cmd_decode(args):
    loaded, items = _load_and_parse(args)
    with torch.no_grad():
        outs = loaded.model.decode_all(items, float64=args.float64, batched=not args.per_item,
                                       batch_size=args.batch_size)
    _write_output(args.out, decode_lines(items, outs))


def _cmd_make_items(args):
    loaded = load_model_dir(args.model)
    items = make_items(loaded, args.count, args.seed, args.min_users, args.max_users,
                       args.unknown_rate, args.missing_rate)
    _write_output(args.out, [json.dumps(it, ensure_ascii=False) for it in items])


def build_arg_parser():
    p = argparse.ArgumentParser(
        prog="nextuser_ref.py",
        description="PyTorch reference of the Next-User Retrieval model. It reads and writes "
                    "model directories and computes the forward exactly as docs/model-format.md "
                    "specifies; the C library's parity tests compare against it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  nextuser_ref.py init --config cfg.json --out model --seed 1 --users 1000\n"
               "  nextuser_ref.py make-items --model model --out items.jsonl --count 100 --seed 2\n"
               "  nextuser_ref.py embed --model model --items items.jsonl --out emb.tsv\n"
               "  nextuser_ref.py decode --model model --items items.jsonl --out dec.tsv\n")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("init", help="write a randomly initialised model directory",
                       description="Create a model directory with weights initialised per the "
                                   "spec (deterministic from --seed). Users are u0..u{N-1} and "
                                   "vocabularies <unk>, v1..v{vocab-1} unless --users-file / "
                                   "--vocab-dir supply real ones.")
    s.add_argument("--config", required=True, help="config JSON (missing keys take the defaults)")
    s.add_argument("--out", required=True, help="model directory to create or overwrite")
    s.add_argument("--seed", required=True, type=int, help="random seed")
    s.add_argument("--users", type=int, help="number of users (sets num_users)")
    s.add_argument("--users-file", help="users.txt to use instead of synthetic ids")
    s.add_argument("--vocab-dir", help="directory holding vocab_<field>.txt files to use")
    s.set_defaults(func=_cmd_init)

    for name, func, what in (
            ("embed", _cmd_embed,
             "û_next per item: one line 'id<TAB>v1 v2 ... vd', 9 significant digits"),
            ("decode", _cmd_decode,
             "training-mode outputs û_1..û_{n+1} (teacher-forced): one line per item and "
             "position, 'id<TAB>j<TAB>v1 ... vd'")):
        s = sub.add_parser(name, help=what, description=what)
        s.add_argument("--model", required=True, help="model directory")
        s.add_argument("--items", required=True, help="items JSON Lines file")
        s.add_argument("--out", required=True, help="output file ('-' for stdout)")
        s.add_argument("--float64", action="store_true", help="compute in float64 (default float32)")
        s.add_argument("--per-item", action="store_true",
                       help="use the per-item reference loops instead of the padded batched path")
        s.add_argument("--batch-size", type=int, default=256, help="items per padded batch")
        s.set_defaults(func=func)

    s = sub.add_parser("make-items", help="write random items for a model (parity tests)",
                       description="Random items drawn from the model's users and vocabularies.")
    s.add_argument("--model", required=True, help="model directory")
    s.add_argument("--out", required=True, help="items JSON Lines file ('-' for stdout)")
    s.add_argument("--count", required=True, type=int, help="number of items")
    s.add_argument("--seed", required=True, type=int, help="random seed")
    s.add_argument("--min-users", type=int, default=0, help="fewest users per item (default 0)")
    s.add_argument("--max-users", type=int, default=None,
                   help="most users per item (default: the model's max_users; more exercises "
                        "truncation)")
    s.add_argument("--unknown-rate", type=float, default=0.0,
                   help="probability that a user id or feature value is unknown (default 0)")
    s.add_argument("--missing-rate", type=float, default=0.1,
                   help="probability that a feature is left out (default 0.1)")
    s.set_defaults(func=_cmd_make_items)
    return p


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    if getattr(args, "batch_size", 1) < 1:
        print("nextuser_ref.py: error: --batch-size must be >= 1", file=sys.stderr)
        return 2
    try:
        args.func(args)
    except (ValueError, OSError) as e:
        print("nextuser_ref.py %s: error: %s" % (args.cmd, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
