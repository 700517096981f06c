"""Mutations of files for tests/test_fuzz_readers.py: hypothesis strategies
that describe a change, and functions that apply it (bytes, arrays, JSON)."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
from hypothesis import strategies as st

def _pos(size):
    last = max(size - 1, 0)
    return st.one_of(st.integers(0, min(last, 511)), st.integers(max(0, size - 512), last), st.integers(0, last))


def byte_ops(size):
    pos = _pos(size)
    return st.lists(st.one_of(
        st.tuples(st.just("flip"), pos, st.integers(0, 7)),
        st.tuples(st.just("set"), pos, st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]) | st.integers(0, 255)),
        st.tuples(st.just("insert"), pos, st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("delete"), pos, st.integers(1, 64)),
        st.tuples(st.just("truncate"), pos, st.just(0)),
    ), min_size=1, max_size=3)


def apply_bytes(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, arg in ops:
        if not b:
            break
        pos %= len(b) + (op == "insert")
        if op == "flip":
            b[pos] ^= 1 << arg
        elif op == "set":
            b[pos] = arg
        elif op == "insert":
            b[pos:pos] = arg
        elif op == "delete":
            del b[pos:pos + arg]
        else:
            del b[pos:]
    return bytes(b)


DTYPES = ["int8", "int32", "int64", "uint64", "float16", "float32", "float64", ">f8", ">i8", "complex64", "bool",
          "U4", "S4", "M8[s]", "V8"]
SHAPES = ["0d", "2d", "empty", "longer", "shorter", "transpose", "fortran"]
VALUES = [float("nan"), float("inf"), -float("inf"), -1, 0, 1, 2 ** 31, 2 ** 62, -(2 ** 62), 1e30, 0.5, "dup"]
json_values = st.one_of(
    st.none(), st.booleans(), st.sampled_from([0, -1, 1, 10 ** 9, 2 ** 63, -(2 ** 63), 10 ** 30]),
    st.integers(), st.floats(), st.text(max_size=8), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def array_ops(names):
    name = st.sampled_from(sorted(names))
    value = st.tuples(st.just("value"), name, st.tuples(st.integers(0, 10 ** 6), st.sampled_from(VALUES)))
    op = st.sampled_from(["value"] * 5 + ["dtype"] * 2 + ["shape"] * 2 + ["drop", "pickle", "extra"])
    return st.lists(op.flatmap(lambda o: {
        "value": value,
        "drop": st.tuples(st.just("drop"), name, st.none()),
        "dtype": st.tuples(st.just("dtype"), name, st.sampled_from(DTYPES)),
        "shape": st.tuples(st.just("shape"), name, st.sampled_from(SHAPES)),
        "pickle": st.tuples(st.just("pickle"), name, st.none()),
        "extra": st.tuples(st.just("extra"), st.sampled_from(["index", "extra", "header2"]), st.none()),
    }[o]), min_size=1, max_size=3)


def apply_arrays(arrays: dict, ops) -> dict:
    with np.errstate(all="ignore"), warnings.catch_warnings():  # the casts are meant to lose values
        warnings.simplefilter("ignore")
        return _apply_arrays(arrays, ops)


def _apply_arrays(arrays: dict, ops) -> dict:
    a = dict(arrays)
    for op, name, arg in ops:
        if op == "extra":
            a[name] = np.arange(3)
            continue
        if name not in a:
            continue
        v = np.asarray(a[name])
        if op == "drop":
            del a[name]
        elif op == "dtype":
            try:
                a[name] = v.astype(arg)
            except (TypeError, ValueError, OverflowError):
                a[name] = np.zeros(v.shape, arg)
        elif op == "shape":
            if arg == "0d":
                a[name] = v.reshape(-1)[:1].reshape(()) if v.size else np.zeros((), v.dtype)
            elif arg == "2d":
                a[name] = v.reshape(-1, 1)
            elif arg == "empty":
                a[name] = v.reshape(-1)[:0]
            elif arg == "longer":
                a[name] = np.concatenate([v, v]) if v.ndim else v.reshape(1)
            elif arg == "shorter":
                a[name] = v[:-1] if v.ndim else v
            elif arg == "transpose":
                a[name] = v.T.copy() if v.ndim else v
            else:
                a[name] = np.asfortranarray(v)
        elif op == "value":
            pos, val = arg
            v = v.copy()
            if v.size:
                flat = v.reshape(-1)
                try:
                    flat[pos % v.size] = flat[0] if val == "dup" else val
                except (TypeError, ValueError, OverflowError):
                    pass
                a[name] = flat.reshape(v.shape)
        elif op == "pickle":
            a[name] = np.array([object(), 1], dtype=object)
    return a


def json_ops(paths):
    path = st.sampled_from(paths)
    return st.lists(st.one_of(
        st.tuples(st.just("set"), path, json_values),
        st.tuples(st.just("del"), path, st.none()),
    ), min_size=1, max_size=3)


def apply_json(obj, ops):
    obj = json.loads(json.dumps(obj))
    for op, path, value in ops:
        *parents, last = path
        node = obj
        for p in parents:
            try:
                node = node[p]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if isinstance(node, dict) or (isinstance(node, list) and isinstance(last, int) and last < len(node)):
            if op == "set":
                node[last] = value
            elif isinstance(node, dict):
                node.pop(last, None)
            else:
                del node[last]
    return obj


def savez_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def arrow_array(values, old, **kw):
    """``pa.array(values)``, or ``old`` when arrow cannot build it (a mutation the format cannot hold)."""
    import pyarrow as pa

    try:
        return pa.array(values, **kw)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError, OverflowError):
        return old
