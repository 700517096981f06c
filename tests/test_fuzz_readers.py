"""Fuzzers (hypothesis) of every reader of a file the library wrote: index
files (.npz, .parquet), stream checkpoints and compare's results.json.

Each example mutates a real file: bytes (flip, set, insert, delete,
truncate) or structure (arrays' dtypes and shapes swapped, values made NaN /
huge / negative / repeated, JSON fields given wrong types, members and
columns dropped or added; for checkpoints with or without a recomputed
digest, as a deliberate editor would). Property: the reader raises a
CoresetError or returns a correct load, never another exception and never a
crash:

* index file: a valid Selection (consistent lengths, int64 indices >= 0 and
  unique, finite weights >= 0, storable labels) that saves and reads back
  equal; after a byte mutation, equal to the original;
* checkpoint: the resumed stream's result equals the uninterrupted run's;
* results.json: well-formed rows that compare can summarise and write back
  (equal to the original when the JSON is unchanged).

The readers run in a separate process (tests/_fuzz_worker.py), so a
segfault or an abort inside compiled code is a failure naming the input, not
a dead test session. CI: a few hundred mutations per reader (about 40 s in
all); the slow runs (``-m slow``) try 2,000 per reader, and
``CORESET_FUZZ_EXAMPLES=N`` makes each slow test try N (a longer campaign).
"""

from __future__ import annotations

import io
import json
import os
import selectors
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import coreset  # noqa: E402
from _fuzz_mutations import (VALUES, apply_arrays, apply_bytes, apply_json, array_ops, arrow_array,  # noqa: E402
                             byte_ops, json_ops, json_values, savez_bytes)

CI_EXAMPLES = {"index": 300, "checkpoint": 200, "compare": 300}
#: the slow run: 2,000 mutations per reader; CORESET_FUZZ_EXAMPLES=N runs N per test (a longer campaign)
SLOW_EXAMPLES = int(os.environ.get("CORESET_FUZZ_EXAMPLES", 0)) or None


def fuzz_settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------- the worker process

class Worker:
    """The reader process; restarted after it dies (the death is the finding)."""

    def __init__(self):
        self.proc = None
        self.err = tempfile.TemporaryFile()

    def _start(self):
        here = Path(__file__).resolve().parent
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(here.parent), os.environ.get("PYTHONPATH", "")]))
        self.err.seek(0)
        self.err.truncate()
        self.proc = subprocess.Popen([sys.executable, str(here / "_fuzz_worker.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, env=env, text=True)

    def ask(self, req: dict, timeout: float = 120.0) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout)
        sel.close()
        line = self.proc.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        if not ready:
            self.proc.kill()
        rc = self.proc.wait()
        self.err.seek(0)
        raw = self.err.read()  # faulthandler's report first, then its list of extension modules (long)
        tail = (raw if len(raw) <= 6000 else raw[:4000] + b"\n[...]\n" + raw[-2000:]).decode(errors="replace")
        self.proc = None
        return {"status": "bad", "detail": f"the reader process {'hung' if not ready else 'died'} (exit {rc})",
                "traceback": tail}

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="fuzz-") as d:
        yield Path(d)


class Files(dict):
    """Original files by name (a short repr: hypothesis prints the fixtures of a failing example)."""

    def __repr__(self):
        return f"<files {', '.join(self)}>"


def check(answer: dict, what: str):
    if answer["status"] == "error":  # pytest --hypothesis-show-statistics: what the readers said
        hypothesis.event(answer["detail"].split("':", 1)[-1].split("' ", 1)[-1][:60].split(";")[0])
    else:
        hypothesis.event(answer.get("note", answer["status"]))
    assert answer["status"] in ("ok", "error"), f"{what}: {answer['detail']}\n{answer.get('traceback', '')}"


def fuzz(body, n, slow=False):
    """``body`` as a hypothesis test of ``n`` examples (``slow``: marked slow)."""
    test = fuzz_settings(SLOW_EXAMPLES or n if slow else n)(given(data=st.data())(body))
    return pytest.mark.slow(test) if slow else test


# ---------------------------------------------------------------- (a) index files

@pytest.fixture(scope="module")
def index_files(scratch):
    """Real index files written by Selection.save: int and string labels, .npz and .parquet."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 8)).astype(np.float32)
    y = rng.integers(0, 5, 400)
    sel = coreset.select(X, 30, y=y, random_state=0)
    files = Files()
    for kind, s in (("int", sel), ("str", sel.__class__(sel.indices, sel.weights, sel.gains, objective=sel.objective,
                                                         labels=np.array([f"c{v}" for v in sel.labels]),
                                                         meta=sel.meta))):
        for fmt in ("npz", "parquet"):
            p = scratch / f"orig-{kind}.{fmt}"
            s.save(p)
            files[f"{kind}.{fmt}"] = (p, p.read_bytes())
    return files


def _index_bytes(worker, scratch, index_files, data):
    name = data.draw(st.sampled_from(sorted(index_files)), label="file")
    orig, raw = index_files[name]
    ops = data.draw(byte_ops(len(raw)), label="ops")
    p = scratch / f"mutated{orig.suffix}"
    p.write_bytes(apply_bytes(raw, ops))
    check(worker.ask({"reader": "index", "path": str(p), "original": str(orig)}), f"{name} {ops}")


META_PATHS = [("format_version",), ("method",), ("n_samples",), ("input_fingerprint",), ("timings",),
              ("timings", "total"), ("library_version",), ("n_select",)]
RAW_META = ["", "null", "[]", '"x"', '{"format_version": 1', '{"format_version": 1e400}', "[" * 5000,
            '{"format_version": 1, "n_samples": 3}', '{"format_version": 99}', "\udcff"]


def _index_npz_structure(worker, scratch, index_files, data):
    name = data.draw(st.sampled_from([k for k in index_files if k.endswith("npz")]), label="file")
    orig, raw = index_files[name]
    with np.load(orig) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    if data.draw(st.booleans(), label="edit meta"):
        if data.draw(st.booleans(), label="raw meta"):
            text = data.draw(st.sampled_from(RAW_META), label="meta text")
        else:
            text = json.dumps(apply_json(meta, data.draw(json_ops(META_PATHS), label="meta ops")))
        try:
            arrays["meta"] = np.array(text)
        except UnicodeEncodeError:  # pragma: no cover
            arrays["meta"] = np.array("")
    ops = data.draw(st.one_of(st.just([]), array_ops(arrays)), label="array ops")
    p = scratch / "mutated.npz"
    p.write_bytes(savez_bytes(apply_arrays(arrays, ops)))
    check(worker.ask({"reader": "index", "path": str(p)}), f"{name} {ops}")


MD_KEYS = [b"coreset.meta", b"coreset.objective", b"coreset.labels_dtype", b"coreset.suspects", b"coreset.sha256"]
MD_VALUES = [b"", b"nan", b"inf", b"1e999", b"abc", b"<f8", b"|O", b"<U3", b"V8", b"M8[s]", b"\xff\xfe", b"[]",
             b'{"format_version": 1}', b'{"format_version": 2}', b'{"format_version": 1, "n_samples": 3}',
             b"[1,2]", b"[[1],[2,3]]", b"[" * 5000, b"[-1]", b'["a"]', b"[1e400]", b"[" + b"9" * 5000 + b"]"]


def _parquet_types():
    import pyarrow as pa

    return [pa.int8(), pa.int32(), pa.uint64(), pa.float32(), pa.float64(), pa.string(), pa.bool_(),
            pa.large_string(), pa.list_(pa.int64()), pa.dictionary(pa.int32(), pa.string()), pa.null()]


def _index_parquet_structure(worker, scratch, index_files, data):
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = data.draw(st.sampled_from([k for k in index_files if k.endswith("parquet")]), label="file")
    orig, raw = index_files[name]
    table = pq.read_table(orig)
    md = dict(table.schema.metadata)
    cols = {c: table.column(c).combine_chunks() for c in table.column_names}
    n_types = len(_parquet_types())
    ops = data.draw(st.lists(st.one_of(
        st.tuples(st.just("drop"), st.sampled_from(sorted(cols)), st.none()),
        st.tuples(st.just("cast"), st.sampled_from(sorted(cols)), st.integers(0, n_types - 1)),
        st.tuples(st.just("null"), st.sampled_from(sorted(cols)), st.integers(0, 29)),
        st.tuples(st.just("value"), st.sampled_from(["indices", "weights", "gains"]),
                  st.tuples(st.integers(0, 29), st.sampled_from(VALUES))),
        st.tuples(st.just("md_set"), st.sampled_from(MD_KEYS), st.sampled_from(MD_VALUES)),
        st.tuples(st.just("md_del"), st.sampled_from(MD_KEYS), st.none()),
        st.tuples(st.just("meta"), st.none(), json_ops(META_PATHS)),
    ), min_size=1, max_size=3), label="ops")
    for op, c, arg in ops:
        if op == "drop":
            cols.pop(c, None)
        elif op == "cast" and c in cols:
            t = _parquet_types()[arg]
            try:
                cols[c] = cols[c].cast(t)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                cols[c] = pa.nulls(len(cols[c]), t)
        elif op == "null" and c in cols and len(cols[c]):
            v = cols[c].to_pylist()
            v[arg % len(v)] = None
            cols[c] = arrow_array(v, cols[c], type=cols[c].type)
        elif op == "value" and c in cols and len(cols[c]):
            try:
                v = cols[c].to_numpy(zero_copy_only=False).copy()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                continue
            pos, val = arg
            try:
                v[pos % len(v)] = v[0] if val == "dup" else val
            except (TypeError, ValueError, OverflowError, IndexError):
                pass
            cols[c] = arrow_array(v, cols[c])
        elif op == "md_set":
            md[c] = arg
        elif op == "md_del":
            md.pop(c, None)
        elif op == "meta" and b"coreset.meta" in md:
            try:
                meta = json.loads(md[b"coreset.meta"])
            except ValueError:
                continue
            md[b"coreset.meta"] = json.dumps(apply_json(meta, arg)).encode()
    rg = data.draw(st.sampled_from([None, 1, 7]), label="row group size")
    buf = io.BytesIO()
    pq.write_table(pa.table(cols).replace_schema_metadata(md) if cols else pa.table({"x": [1]}), buf,
                   row_group_size=rg)
    p = scratch / "mutated.parquet"
    p.write_bytes(buf.getvalue())
    check(worker.ask({"reader": "index", "path": str(p)}), f"{name} {ops} row groups {rg}")


test_index_file_bytes = fuzz(_index_bytes, CI_EXAMPLES["index"])
test_index_npz_structure = fuzz(_index_npz_structure, CI_EXAMPLES["index"] // 2)
test_index_parquet_structure = fuzz(_index_parquet_structure, CI_EXAMPLES["index"] // 2)
test_index_file_bytes_long = fuzz(_index_bytes, 1000, slow=True)
test_index_npz_structure_long = fuzz(_index_npz_structure, 500, slow=True)
test_index_parquet_structure_long = fuzz(_index_parquet_structure, 500, slow=True)


# ---------------------------------------------------------------- (b) stream checkpoints

CK = dict(k=20, chunk=250, kw=dict(reservoir=300, random_state=0, checkpoint_every=2))


@pytest.fixture(scope="module")
def checkpoints(scratch):
    """Checkpoints of a real interrupted stream (chunk 4 of 12): over an .npy and over an iterator."""
    X = np.random.default_rng(1).standard_normal((3000, 8)).astype(np.float32)
    npy = scratch / "x.npy"
    np.save(npy, X)

    def stop(stage, done, total):
        if done >= 1500:
            raise KeyboardInterrupt  # not an Exception: nothing in the library swallows it
    out = Files()
    for source in ("npy", "iter"):
        ck = scratch / f"orig-{source}.ckpt"
        src = npy if source == "npy" else (X[i:i + CK["chunk"]] for i in range(0, 3000, CK["chunk"]))
        kw = dict(CK["kw"], chunk_size=CK["chunk"]) if source == "npy" else CK["kw"]
        with pytest.raises(KeyboardInterrupt):
            coreset.select_stream(src, CK["k"], checkpoint=ck, callback=stop, **kw)
        out[source] = (ck.read_bytes(), kw)
    return npy, out


def _ask_checkpoint(worker, scratch, checkpoints, source, content, what, strict=True):
    npy, originals = checkpoints
    p = scratch / "mutated.ckpt"
    p.write_bytes(content)
    req = {"reader": "checkpoint", "path": str(p), "npy": str(npy), "source": source, "k": CK["k"],
           "chunk": CK["chunk"], "kw": originals[source][1], "strict": strict}
    check(worker.ask(req), what)


def _checkpoint_bytes(worker, scratch, checkpoints, data):
    source = data.draw(st.sampled_from(["npy", "iter"]), label="source")
    raw = checkpoints[1][source][0]
    ops = data.draw(byte_ops(len(raw)), label="ops")
    _ask_checkpoint(worker, scratch, checkpoints, source, apply_bytes(raw, ops), f"{source} {ops}")


HEADER_PATHS = [("rows_done",), ("chunks_done",), ("d",), ("sha256",), ("input",), ("settings",),
                ("settings", "version"), ("settings", "n_select"), ("settings", "chunk_size"),
                ("settings", "reservoir"), ("input", "input_fingerprint"), ("input", "first_chunk_sha256"),
                ("extra",)]


def _checkpoint_structure(worker, scratch, checkpoints, data):
    from coreset._checkpoint import _digest

    source = data.draw(st.sampled_from(["npy", "iter"]), label="source")
    with np.load(io.BytesIO(checkpoints[1][source][0])) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays.pop("header")))
    kind = data.draw(st.sampled_from(["header", "arrays", "arrays", "both"]), label="what is edited")
    hops = data.draw(json_ops(HEADER_PATHS), label="header ops") if kind != "arrays" else []
    header = apply_json(header, hops)
    aops = data.draw(array_ops(arrays), label="array ops") if kind != "header" else []
    arrays = apply_arrays(arrays, aops)
    redigest = data.draw(st.sampled_from([True, True, True, False]), label="digest recomputed")
    if redigest and isinstance(header, dict):
        try:
            header["sha256"] = _digest(header, arrays)
        except (TypeError, ValueError):  # an array the digest cannot hash (a pickled object)
            pass
    try:
        arrays["header"] = np.array(json.dumps(header))
    except UnicodeEncodeError:  # pragma: no cover
        arrays["header"] = np.array("{}")
    _ask_checkpoint(worker, scratch, checkpoints, source, savez_bytes(arrays),
                    f"{source} header {hops} arrays {aops} redigest {redigest}", strict=not redigest)


test_checkpoint_bytes = fuzz(_checkpoint_bytes, CI_EXAMPLES["checkpoint"])
test_checkpoint_structure = fuzz(_checkpoint_structure, CI_EXAMPLES["checkpoint"])
test_checkpoint_bytes_long = fuzz(_checkpoint_bytes, 1000, slow=True)
test_checkpoint_structure_long = fuzz(_checkpoint_structure, 1000, slow=True)


# ---------------------------------------------------------------- (c) compare's results.json

@pytest.fixture(scope="module")
def results(scratch):
    """A results.json written by compare's own writer (rows shaped as compare makes them)."""
    from coreset.pipelines._compare import COLUMNS, METRICS, _save

    rng = np.random.default_rng(2)
    classes, counts = np.arange(5), np.array([50, 20, 10, 5, 2])
    config = dict(dataset="toy", model="linear", epochs=3, batch_size=32, lr=0.05, optimizer="sgd",
                  standardize=True, breadth_threshold=0.5, select_params={})
    rows = []
    for method, fractions in (("full", [1.0]), ("random", [0.1, 0.3]), ("facility_location:tempered", [0.1, 0.3])):
        for f in fractions:
            for seed in (0, 1):
                row = {c: None for c in COLUMNS}
                row.update(dataset="toy", method=method, fraction=f, seed=seed)
                row.update({m: float(rng.uniform(0, 1)) for m in METRICS})
                row.update(breadth=int(rng.integers(0, 6)), n_train_rows=int(f * 87), sample_gradients=100)
                row["per_class_accuracy"] = [float(a) for a in rng.uniform(0, 1, 5)]
                row["per_class_accuracy"][4] = None
                rows.append(row)
    out = scratch / "compare-orig"
    out.mkdir()
    _save(out, rows, config, classes, counts)
    return out / "results.json", config, classes.tolist(), counts.tolist()


COMPARE_PATHS = [("config",), ("config", "dataset"), ("config", "epochs"), ("rows",), ("rows", 0),
                 ("rows", 1, "fraction"),
                 ("rows", 0, "seed"), ("rows", 2, "per_class_accuracy"), ("rows", 1, "per_class_accuracy", 0),
                 ("rows", 0, "balanced_accuracy"), ("rows", 0, "dataset"), ("rows", 3, "method"), ("classes",),
                 ("class_counts",), ("columns",), ("rows", 0, "n_train_rows"), ("rows", 4, "breadth"),
                 ("rows", 2, "total_seconds"), ("rows", 1, "label_noise"), ("classes", 0), ("class_counts", 1)]


def _ask_compare(worker, scratch, results, text: bytes, what):
    path, config, classes, counts = results
    orig = json.loads(path.read_text())
    try:
        same = json.loads(text) == orig
    except (ValueError, RecursionError):
        same = False
    p = scratch / "compare-mut" / "results.json"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(text)
    check(worker.ask({"reader": "compare", "path": str(p), "config": config, "classes": classes, "counts": counts,
                      "original_rows": orig["rows"], "same_json": same}), what)


def _compare_bytes(worker, scratch, results, data):
    raw = results[0].read_bytes()
    ops = data.draw(byte_ops(len(raw)), label="ops")
    _ask_compare(worker, scratch, results, apply_bytes(raw, ops), f"{ops}")


def _compare_structure(worker, scratch, results, data):
    doc = json.loads(results[0].read_text())
    if data.draw(st.integers(0, 9), label="whole document") == 0:
        doc = data.draw(json_values, label="document")
    else:
        doc = apply_json(doc, data.draw(json_ops(COMPARE_PATHS), label="ops"))
        rows = doc.get("rows") if isinstance(doc, dict) else None
        if data.draw(st.booleans(), label="repeat a row") and isinstance(rows, list) and rows:
            rows.append(rows[0])
    _ask_compare(worker, scratch, results, json.dumps(doc).encode(), f"{str(doc)[:300]}")


test_compare_results_bytes = fuzz(_compare_bytes, CI_EXAMPLES["compare"] // 2)
test_compare_results_structure = fuzz(_compare_structure, CI_EXAMPLES["compare"] // 2)
test_compare_results_bytes_long = fuzz(_compare_bytes, 1000, slow=True)
test_compare_results_structure_long = fuzz(_compare_structure, 1000, slow=True)


def test_a_crash_in_the_reader_process_is_a_failure(worker):
    """The harness itself: a segfault in the reader process is reported (with
    faulthandler's traceback), not lost, and the next request gets a new process."""
    answer = worker.ask({"reader": "crash"})
    assert answer["status"] == "bad" and "died (exit -11)" in answer["detail"]
    assert "Segmentation fault" in answer["traceback"] and "in crash" in answer["traceback"]
    assert worker.ask({"reader": "index", "path": "/nonexistent.npz"})["status"] == "error"

