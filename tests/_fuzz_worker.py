"""The process that runs the readers for tests/test_fuzz_readers.py.

One request per line on stdin (JSON), one answer per line on the protocol
stream: ``{"status": "ok" | "error" | "bad", ...}``: "error" is a CoresetError
(the reader refused the file), "bad" a broken property or another exception
(with its traceback). A crash (SIGSEGV, SIGABRT) ends this process; the test
sees it die and reports the input that killed it. Anything a library prints
on stdout goes to stderr, so the protocol stays clean.
"""

from __future__ import annotations

import faulthandler
import json
import math
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

faulthandler.enable()
PROTO = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import coreset  # noqa: E402
from coreset.exceptions import CoresetError  # noqa: E402

_cache: dict = {}
SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz-worker-"))


def _meta_text(meta) -> str:
    return json.dumps(meta, sort_keys=True, default=str)


def valid_selection(sel) -> list[str]:
    """What a load must be: consistent lengths, int64 indices >= 0 and unique,
    finite weights >= 0, storable labels, a JSON meta; and it saves and reloads."""
    out = []
    n = sel.indices.shape[0]
    if sel.indices.dtype != np.int64 or sel.indices.ndim != 1:
        out.append(f"indices {sel.indices.dtype} {sel.indices.shape}")
    if n and (sel.indices.min() < 0 or np.unique(sel.indices).size != n):
        out.append("indices negative or repeated")
    if sel.weights.shape != (n,) or sel.gains.shape != (n,) or sel.weights.dtype != np.float64:
        out.append(f"weights {sel.weights.shape} gains {sel.gains.shape}")
    elif n and not (np.isfinite(sel.weights).all() and sel.weights.min() >= 0):
        out.append("weights not finite or negative")
    if sel.labels is not None and (sel.labels.shape != (n,) or sel.labels.dtype.kind not in "biuUS"):
        out.append(f"labels {sel.labels.dtype} {sel.labels.shape}")
    if not isinstance(sel.meta, dict):
        out.append(f"meta {type(sel.meta).__name__}")
    if isinstance(sel.meta.get("n_samples"), int) and n and sel.indices.max() >= sel.meta["n_samples"]:
        out.append("an index beyond meta n_samples")
    if out:
        return out
    for fmt in ("npz", "parquet"):
        p = SCRATCH / f"again.{fmt}"
        try:
            sel.save(p)
            back = coreset.Selection.load(p)
        except CoresetError as exc:
            return [f"loaded but cannot be saved again as {fmt}: {exc}"]
        if not same_selection(sel, back):
            return [f"saved again as {fmt}, reads back different"]
    return []


def same_selection(a, b) -> bool:
    labels = (a.labels is None and b.labels is None) or (
        a.labels is not None and b.labels is not None and a.labels.dtype == b.labels.dtype
        and np.array_equal(a.labels, b.labels))
    obj = a.objective == b.objective or (math.isnan(a.objective) and math.isnan(b.objective))
    return (np.array_equal(a.indices, b.indices) and np.array_equal(a.weights, b.weights)
            and np.array_equal(a.gains, b.gains, equal_nan=True) and obj and labels
            and _meta_text(a.meta) == _meta_text(b.meta))


def index_file(req):
    from coreset.selection import read_index_file

    sel, _ = read_index_file(req["path"])
    bad = valid_selection(sel)
    if not bad and req.get("original"):
        orig = _cache.setdefault(req["original"], coreset.Selection.load(req["original"]))
        if not same_selection(sel, orig):
            bad = ["a changed file loaded as a different selection"]
    return bad


def checkpoint(req):
    kw = req["kw"]
    X = np.load(req["npy"])
    src = req["npy"] if req["source"] == "npy" else (X[i:i + req["chunk"]] for i in range(0, X.shape[0], req["chunk"]))
    sel = coreset.select_stream(src, req["k"], checkpoint=req["path"], **kw)
    key = (req["npy"], req["source"], req["k"], json.dumps(kw, sort_keys=True))
    if key not in _cache:
        src = req["npy"] if req["source"] == "npy" else (X[i:i + req["chunk"]] for i in range(0, len(X), req["chunk"]))
        _cache[key] = coreset.select_stream(src, req["k"], **kw)
    ref = _cache[key]
    n = X.shape[0]
    idx = sel.indices
    valid = (sel.meta["n_samples"] == n and idx.size == req["k"] and idx.min() >= 0 and idx.max() < n
             and np.unique(idx).size == idx.size and np.isfinite(sel.weights).all() and sel.weights.min() >= 0
             and abs(sel.weights.sum() - n) <= 1e-6 * n and np.isfinite(sel.gains).all())
    if not valid:
        return [f"resumed to an invalid result (n_samples {sel.meta['n_samples']}, weights sum {sel.weights.sum()})"]
    same = (np.array_equal(idx, ref.indices) and np.array_equal(sel.weights, ref.weights)
            and np.array_equal(sel.gains, ref.gains) and sel.objective == ref.objective)
    if not same and req.get("strict", True):
        return [f"resumed to another result ({np.setdiff1d(idx, ref.indices).size} other picks)"]
    if not same:
        _cache["note"] = "ok, another valid result (a forged checkpoint)"
    return []


def compare_results(req):
    from coreset.pipelines._compare import COLUMNS, METRICS, SUMMARY_COLUMNS, _load_previous, _save, _write_csv, \
        summarize

    classes, counts = np.array(req["classes"]), np.array(req["counts"])
    rows = _load_previous(Path(req["path"]), req["config"], classes, counts)
    bad, seen = [], set()
    for r in rows:  # an independent check of what the reader promises
        ok = (isinstance(r, dict) and isinstance(r.get("dataset"), str) and isinstance(r.get("method"), str)
              and type(r.get("fraction")) in (int, float) and 0 < r["fraction"] <= 1
              and type(r.get("seed")) is int and r["seed"] >= 0
              and all(r.get(m, 0) is None or (type(r.get(m)) in (int, float) and math.isfinite(r[m])) for m in METRICS)
              and isinstance(r.get("per_class_accuracy"), list) and len(r["per_class_accuracy"]) == classes.size
              and all(a is None or (type(a) in (int, float) and 0 <= a <= 1) for a in r["per_class_accuracy"]))
        if not ok:
            return [f"a row that is not well formed: {str(r)[:200]}"]
        key = (r["dataset"], r["method"], round(float(r["fraction"]), 10), r["seed"])
        if key in seen:
            return [f"a repeated cell {key}"]
        seen.add(key)
    out = SCRATCH / "compare"
    out.mkdir(exist_ok=True)
    _save(out, rows, req["config"], classes, counts)  # what a resumed run does with them
    _write_csv(out / "summary.csv", summarize(rows), SUMMARY_COLUMNS)
    assert set(COLUMNS) <= set().union(*rows) if rows else True
    if req.get("original_rows") is not None and req["same_json"] and rows != req["original_rows"]:
        bad.append("an unchanged file gave other rows")
    return bad


def crash(req):
    """The harness's own check: a segfault must come back as a failure."""
    import ctypes

    ctypes.string_at(0)


HANDLERS = {"index": index_file, "checkpoint": checkpoint, "compare": compare_results, "crash": crash}


def main():
    for line in sys.stdin:
        req = json.loads(line)
        try:
            bad = HANDLERS[req["reader"]](req)
            ans = {"status": "bad", "detail": "; ".join(bad)} if bad else {"status": "ok"}
            if "note" in _cache:
                ans["note"] = _cache.pop("note")
        except CoresetError as exc:
            ans = {"status": "error", "type": type(exc).__name__, "detail": str(exc)[:300]}
        except BaseException as exc:  # noqa: BLE001 - anything else is what the fuzzer looks for
            ans = {"status": "bad", "detail": f"{type(exc).__name__}: {exc}"[:300],
                   "traceback": traceback.format_exc()[-3000:]}
        PROTO.write(json.dumps(ans) + "\n")
        PROTO.flush()


if __name__ == "__main__":
    main()
