"""Minimal safetensors reader and writer (numpy only, F32 tensors only).

File layout (https://github.com/huggingface/safetensors, format description):
  8 bytes   little-endian u64 N = length of the JSON header in bytes
  N bytes   UTF-8 JSON object: {"__metadata__": {str: str}, name: {"dtype": "F32",
            "shape": [...], "data_offsets": [begin, end]}, ...}
  rest      data section; offsets are relative to its start.

The reader is deliberately strict, because the C library parses the same files
and the reference is what corrupt-file tests compare against: every problem is a
ValueError whose message names the tensor or field at fault.  Like the official
implementation, it requires the tensors to tile the data section exactly (no
overlap, no gap, no trailing bytes).
"""

import json
import os
import tempfile

import numpy as np

__all__ = ["read_safetensors", "write_safetensors", "atomic_write", "SUPPORTED_DTYPE"]

SUPPORTED_DTYPE = "F32"
_ITEMSIZE = 4
_TENSOR_KEYS = ("dtype", "shape", "data_offsets")


def _is_int(v):
    # bool is a subclass of int in Python; JSON true/false must not pass as sizes.
    return isinstance(v, int) and not isinstance(v, bool)


def _no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("header: duplicate key %r in JSON object" % key)
        obj[key] = value
    return obj


def _reject_constant(name):
    raise ValueError("header: non-standard JSON constant %s" % name)


def read_safetensors(path):
    """Read an F32 safetensors file.

    Returns (tensors, metadata): tensors maps name -> writable float32 numpy array
    of the declared shape; metadata is the "__metadata__" string map ({} if absent).
    Raises ValueError on any malformed or unsupported content, and OSError if the
    file cannot be read.
    """
    with open(path, "rb") as f:
        blob = f.read()
    where = str(path)
    size = len(blob)
    if size < 8:
        raise ValueError("%s: file is %d bytes, too short for the 8-byte header length"
                         % (where, size))
    header_len = int.from_bytes(blob[:8], "little")
    if header_len == 0:
        raise ValueError("%s: header length is 0" % where)
    if header_len > size - 8:
        raise ValueError("%s: header length %d exceeds the %d bytes after the length field "
                         "(truncated file or bad header length)" % (where, header_len, size - 8))
    try:
        text = blob[8:8 + header_len].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("%s: header is not valid UTF-8 (%s)" % (where, e)) from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                            parse_constant=_reject_constant)
    except ValueError as e:  # json.JSONDecodeError is a ValueError
        raise ValueError("%s: header is not valid JSON (%s)" % (where, e)) from None
    if not isinstance(header, dict):
        raise ValueError("%s: header JSON is a %s, expected an object"
                         % (where, type(header).__name__))

    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise ValueError("%s: __metadata__ must be an object of strings" % where)
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise ValueError("%s: __metadata__[%r] must be a string, got %s"
                             % (where, key, type(value).__name__))

    data = blob[8 + header_len:]
    data_len = len(data)
    spans = []  # (begin, end, name)
    for name, info in header.items():
        what = "%s: tensor %r" % (where, name)
        if name == "":
            raise ValueError("%s: empty tensor name" % where)
        if not isinstance(info, dict):
            raise ValueError("%s: entry must be an object" % what)
        for key in _TENSOR_KEYS:
            if key not in info:
                raise ValueError("%s: missing field %r" % (what, key))
        for key in info:
            if key not in _TENSOR_KEYS:
                raise ValueError("%s: unknown field %r" % (what, key))
        dtype = info["dtype"]
        if dtype != SUPPORTED_DTYPE:
            raise ValueError("%s: dtype %r not supported (only %s)"
                             % (what, dtype, SUPPORTED_DTYPE))
        shape = info["shape"]
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise ValueError("%s: shape %r must be a list of non-negative integers"
                             % (what, shape))
        offsets = info["data_offsets"]
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(_is_int(o) for o in offsets)):
            raise ValueError("%s: data_offsets %r must be [begin, end] integers" % (what, offsets))
        begin, end = offsets
        if begin < 0 or end < begin:
            raise ValueError("%s: data_offsets [%d, %d] are not 0 <= begin <= end"
                             % (what, begin, end))
        if end > data_len:
            raise ValueError("%s: data_offsets [%d, %d] extend past the %d-byte data section "
                             "(truncated file?)" % (what, begin, end, data_len))
        count = 1
        for s in shape:
            count *= s
        if end - begin != count * _ITEMSIZE:
            raise ValueError("%s: data_offsets [%d, %d] span %d bytes but shape %r needs %d"
                             % (what, begin, end, end - begin, shape, count * _ITEMSIZE))
        spans.append((begin, end, name))

    # The tensors must tile [0, data_len) exactly: sorted by offset, each begins
    # where the previous ended.  Empty tensors occupy no bytes and may sit anywhere.
    spans.sort()
    cursor = 0
    prev_name = None
    for begin, end, name in spans:
        if begin == end:
            continue
        if begin < cursor:
            raise ValueError("%s: tensor %r (bytes %d..%d) overlaps tensor %r (ends at %d)"
                             % (where, name, begin, end, prev_name, cursor))
        if begin > cursor:
            raise ValueError("%s: tensor %r starts at %d, leaving a gap of unused bytes after %d"
                             % (where, name, begin, cursor))
        cursor = end
        prev_name = name
    if cursor != data_len:
        raise ValueError("%s: %d trailing bytes in the data section after the last tensor"
                         % (where, data_len - cursor))

    tensors = {}
    for begin, end, name in spans:
        shape = header[name]["shape"]
        arr = np.frombuffer(data, dtype="<f4", count=(end - begin) // _ITEMSIZE, offset=begin)
        tensors[name] = arr.astype(np.float32).reshape(tuple(shape))  # astype copies: writable
    return tensors, dict(metadata)


def _to_f32(name, value):
    if hasattr(value, "detach"):  # torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise ValueError("tensor %r: dtype %s cannot be written as F32" % (name, arr.dtype))
    # (not ascontiguousarray: it turns 0-d arrays into 1-d ones)
    return np.asarray(arr, dtype="<f4", order="C")


def write_safetensors(path, tensors, metadata=None):
    """Write tensors (name -> array-like or torch tensor) as F32 safetensors.

    Tensors are laid out sorted by name, contiguously.  The header is padded with
    spaces to a multiple of 8 bytes (as the official writer does) so the data
    section starts 8-byte aligned.  The file is written atomically: a temp file in
    the same directory, flushed and fsynced, then renamed over `path`.
    """
    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError("metadata %r: keys and values must be strings" % (key,))
    arrays = {}
    for name in tensors:
        if not isinstance(name, str) or name == "" or name == "__metadata__":
            raise ValueError("invalid tensor name %r" % (name,))
        arrays[name] = _to_f32(name, tensors[name])

    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    order = sorted(arrays)
    for name in order:
        nbytes = arrays[name].nbytes
        header[name] = {"dtype": SUPPORTED_DTYPE, "shape": list(arrays[name].shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    head += b" " * (-len(head) % 8)

    def emit(f):
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for name in order:
            f.write(arrays[name].tobytes())

    atomic_write(path, emit)


def atomic_write(path, emit):
    """Create or replace `path` atomically: emit(binary_file) writes the content
    into a temp file in the same directory, which is flushed, fsynced and renamed
    over `path`.  On any error the temp file is removed and `path` is untouched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp creates 0600; give the file the permissions open() would.
            mask = os.umask(0)
            os.umask(mask)
            os.fchmod(f.fileno(), 0o666 & ~mask)
            emit(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    # Make the rename durable; not all platforms allow opening a directory.
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
