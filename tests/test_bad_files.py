"""Readers of files the library wrote (or reads), given bad ones: each case
here is one the fuzzers (tests/test_fuzz_readers.py) or the issue found, kept
as a plain regression test. The answer is always one CoresetError naming the
file and what is wrong, never another exception."""

from __future__ import annotations

import json

import numpy as np
import pytest

import coreset
from coreset.selection import read_index_file
from coreset.exceptions import IndexFileError, InputFileError, ValidationError


# ---------------------------------------------------------------- index files

@pytest.fixture
def sel():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    return coreset.select(X, 12, y=rng.integers(0, 3, 200), random_state=0)


def _npz(path, sel, **changes):
    arrays = dict(indices=sel.indices, weights=sel.weights, gains=sel.gains, objective=np.float64(sel.objective),
                  labels=sel.labels, meta=np.array(json.dumps({"format_version": 1, **sel.meta})))
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("change, match", [
    (dict(indices=lambda s: np.r_[s.indices[:-1], s.indices[0]]), r"indices must be unique; row \d+ is selected 2"),
    (dict(weights=lambda s: np.r_[s.weights[:-1], np.nan]), r"weights must be finite and >= 0; found nan"),
    (dict(weights=lambda s: -s.weights), r"weights must be finite and >= 0; found -"),
    (dict(indices=lambda s: s.indices.astype(np.uint64) | np.uint64(2 ** 63)), r"indices must fit in int64"),
    (dict(labels=lambda s: s.labels.astype(np.float64)), r"labels must be a 1-D array of integers, booleans or str"),
    (dict(labels=lambda s: s.labels.reshape(-1, 1)), r"labels must be a 1-D array"),
    (dict(weights=lambda s: s.weights.reshape(-1, 1)), r"weights must be a 1-D numeric array"),
    (dict(meta=lambda s: np.array("[" * 5000 + "]" * 5000)), r"its meta is not valid JSON \(RecursionError"),
    (dict(meta=lambda s: np.array(json.dumps({"format_version": 1, "n_samples": 5}))),
     r"indices must be below meta n_samples \(5\)"),
    (dict(meta=lambda s: np.array(json.dumps({"format_version": 1, "timings": [1, 2]}))), r"meta timings must be"),
    (dict(meta=lambda s: np.array(json.dumps({"format_version": 1, "input_fingerprint": {"a": 1}}))),
     r"meta input_fingerprint must be a string"),
])
def test_npz_index_file_fields_checked(sel, tmp_path, change, match):
    """Found by the fuzzer: each loaded before (repeated rows, NaN / negative
    weights, uint64 indices wrapping to negative int64, float labels that
    cannot be saved again, meta of the wrong types) or raised RecursionError."""
    p = _npz(tmp_path / "s.npz", sel, **{k: f(sel) for k, f in change.items()})
    with pytest.raises(IndexFileError, match=match):
        read_index_file(p)


def test_unsorted_unsigned_suspects_refused(sel, tmp_path):
    """Found by the fuzzer: uint64 suspects out of order passed the sorted check
    (unsigned differences wrap around) and the selection could not be saved again."""
    p = _npz(tmp_path / "s.npz", sel, suspects=np.array([5, 9, 0], np.uint64))
    with pytest.raises(IndexFileError, match="suspects must be sorted and unique"):
        read_index_file(p)


def test_big_endian_labels_read_as_native(sel, tmp_path):
    """Found by the fuzzer: '>i8' labels loaded, then saving the selection as
    parquet raised ArrowNotImplementedError."""
    p = _npz(tmp_path / "s.npz", sel, labels=sel.labels.astype(">i8"))
    got = coreset.Selection.load(p)
    assert got.labels.dtype == np.int64 and np.array_equal(got.labels, sel.labels)
    got.save(tmp_path / "s.parquet")
    assert coreset.Selection.load(tmp_path / "s.parquet").equals(got)


def test_parquet_index_file_changed_bytes_refused(sel, tmp_path):
    """Found by the fuzzer: parquet has no checksum over its footer (meta) and
    none over its pages by default, so one flipped bit loaded as another
    selection. Now pages carry checksums and the file a sha256 of its content."""
    p = tmp_path / "s.parquet"
    sel.save(p)
    assert coreset.Selection.load(p).equals(sel)
    import pyarrow.parquet as pq

    raw = p.read_bytes()
    chunk = pq.ParquetFile(p).metadata.row_group(0).column(0)  # the indices column: pages, headers, statistics
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    footer = list(range(raw.index(b"coreset.meta"), len(raw) - 8, 5))  # meta as text, and inside ARROW:schema
    said = {}
    for pos in footer + list(range(start, start + chunk.total_compressed_size)):
        bad = bytearray(raw)
        bad[pos] ^= 1
        (tmp_path / "m.parquet").write_bytes(bytes(bad))
        try:
            said[pos] = "equal" if coreset.Selection.load(tmp_path / "m.parquet").equals(sel) else "different"
        except IndexFileError:
            said[pos] = "error"
    assert "different" not in said.values(), [p for p, v in said.items() if v == "different"]
    assert [said[p] for p in footer].count("error") > len(footer) // 3
    assert list(said.values()).count("error") > chunk.total_compressed_size // 2  # statistics do not matter


def test_parquet_written_before_the_digest_still_reads(sel, tmp_path):
    import pyarrow.parquet as pq

    p = tmp_path / "s.parquet"
    sel.save(p)
    t = pq.read_table(p)
    md = {k: v for k, v in t.schema.metadata.items() if k != b"coreset.sha256"}
    pq.write_table(t.replace_schema_metadata(md), p)
    assert coreset.Selection.load(p).equals(sel)


# ---------------------------------------------------------------- compare's results.json

@pytest.fixture
def compare_run(tmp_path):
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X, Xt = rng.standard_normal((60, 4)).astype(np.float32), rng.standard_normal((30, 4)).astype(np.float32)
    y, yt = np.arange(60) % 3, np.arange(30) % 3
    out = tmp_path / "run"
    from coreset.pipelines import compare

    def run():
        return compare((X, y, Xt, yt), methods=("random",), fractions=(0.5,), seeds=(0,), epochs=1, out=out,
                       plots=False)
    run()
    return out, run


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.__setitem__("config", [1, 2]), r"config must be a JSON object; got 'list'"),
    (lambda d: d.__setitem__("rows", {"a": 1}), r"rows must be a JSON list"),
    (lambda d: d["rows"][0].__setitem__("fraction", "0.5"), r"rows\[0\]\.fraction must be a number in \(0, 1\]"),
    (lambda d: d["rows"][0].__setitem__("per_class_accuracy", [0.5]), r"rows\[0\]\.per_class_accuracy must be a "
                                                                      r"list of 3 numbers"),
    (lambda d: d["rows"][0].__setitem__("accuracy", 1.5), r"rows\[0\]\.accuracy must be a number in \[0, 1\]"),
    (lambda d: d["rows"].append(d["rows"][0]), r"rows\[1\] repeats the cell"),
    (lambda d: d.__setitem__("classes", [0, 1, 2, 3]), r"holds results for other classes"),
])
def test_compare_resume_checks_results_json(compare_run, edit, match):
    """Issue 17: a results.json whose config is not an object gave AttributeError
    on resume; the fuzzer found more (rows of the wrong types, repeated cells)."""
    out, run = compare_run
    doc = json.loads((out / "results.json").read_text())
    edit(doc)
    (out / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ValidationError, match=match) as exc:
        run()
    assert "results.json" in str(exc.value)


def test_compare_resume_refuses_non_json(compare_run):
    out, run = compare_run
    for text in (b"\xff\xfe", b"[" * 100_000, b'{"config": NaN}', b"null"):
        (out / "results.json").write_bytes(text)
        with pytest.raises(ValidationError, match="results.json"):
            run()


# ---------------------------------------------------------------- parquet inputs

@pytest.fixture
def ragged_parquet(tmp_path):
    """Two row groups of embeddings of 4 and of 5 numbers (a list column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    p = tmp_path / "emb.parquet"
    tables = [pa.table({"emb": pa.array(list(rng.standard_normal((300, w)).astype(np.float32)),
                                        type=pa.list_(pa.float32()))}) for w in (4, 5)]
    with pq.ParquetWriter(p, tables[0].schema) as w:
        for t in tables:
            w.write_table(t)
    return p


def test_parquet_row_groups_of_different_widths_chunk_reader(ragged_parquet):
    """Issue 17: a raw ValueError from np.concatenate in the chunk reader."""
    from coreset.data._chunks import open_source

    src = open_source(ragged_parquet, 256)
    with pytest.raises(InputFileError, match=r"emb\.parquet'.*row group 1 \(rows 300 to 555\) has 5 numbers per "
                                             r"row, row group 0 has 4"):
        list(src.chunks(0))
    with pytest.raises(InputFileError, match="row group 1"):
        src.read_rows(np.array([0, 599]))


def test_parquet_row_groups_of_different_widths_reader(ragged_parquet):
    from coreset.data import read_embeddings

    with pytest.raises(InputFileError, match=r"emb\.parquet'.*row group 1 \(row 300\) has 5 numbers, row 0 has 4"):
        read_embeddings(ragged_parquet)
