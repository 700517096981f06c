"""Index files: exact round trips, atomic writes, and clear refusals of
corrupt, truncated, foreign, pickled or too-new files."""

from __future__ import annotations

import json
import os
import stat
import zipfile

import numpy as np
import pytest

from coreset import IndexFileError, Selection, ValidationError
from coreset._io import FORMAT_VERSION, format_for_path, save_selection
from coreset.selection import load_selection, read_index_file


def make_selection(labels="int", n=7, objective=12.5):
    rng = np.random.default_rng(3)
    idx = rng.permutation(max(100, n))[:n].astype(np.int64)
    lab = None
    if labels == "int":
        lab = rng.integers(0, 4, size=n).astype(np.int32)
    elif labels == "str":
        lab = np.array([f"class_{i % 3}" for i in range(n)])
    meta = {
        "method": "submodular",
        "objective_name": "facility_location",
        "n_neighbors": None,
        "random_state": 0,
        "class_budget": {"policy": "tempered", "alpha": 0.5},
        "timings": {"graph": 0.25, "optimize": 1.5, "total": 1.75},
        "note": "ünïcode ✓",
    }
    gains = np.sort(rng.random(n))[::-1].copy()
    gains[-1] = np.nan
    return Selection(idx, rng.random(n) * 10, gains, objective=objective, labels=lab, meta=meta)


# ------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
@pytest.mark.parametrize("labels", ["int", "str", None])
def test_full_formats_round_trip_exactly(tmp_path, suffix, labels):
    sel = make_selection(labels)
    path = tmp_path / f"sel{suffix}"
    save_selection(sel, path)
    back = load_selection(path)
    assert back.equals(sel)
    assert back.indices.dtype == np.int64 and back.weights.dtype == np.float64
    if labels is not None:
        assert back.labels.dtype == sel.labels.dtype
    else:
        assert back.labels is None
    # Selection.save / Selection.load delegate here and agree
    path2 = tmp_path / f"again{suffix}"
    sel.save(path2)
    assert Selection.load(path2).equals(sel)


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_nan_objective_and_empty_selection_round_trip(tmp_path, suffix):
    sel = Selection(np.array([], dtype=np.int64), np.array([]), np.array([]), meta={"method": "random"})
    save_selection(sel, tmp_path / f"e{suffix}")
    back = load_selection(tmp_path / f"e{suffix}")
    assert back.equals(sel) and np.isnan(back.objective) and len(back) == 0


@pytest.mark.parametrize("suffix", [".npy", ".txt"])
def test_bare_formats_keep_indices_only(tmp_path, suffix):
    sel = make_selection("int")
    path = tmp_path / f"sel{suffix}"
    save_selection(sel, path)
    back = load_selection(path)
    np.testing.assert_array_equal(back.indices, sel.indices)  # order kept
    np.testing.assert_array_equal(back.weights, np.ones(len(sel)))
    assert np.isnan(back.gains).all() and np.isnan(back.objective)
    assert back.labels is None and back.meta == {}
    _, info = read_index_file(path)
    assert info.format_version is None and info.format == suffix[1:]


def test_bare_files_are_plain(tmp_path):
    sel = make_selection(None, n=3)
    save_selection(sel, tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_text() == "".join(f"{i}\n" for i in sel.indices)
    save_selection(sel, tmp_path / "a.npy")
    arr = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert arr.dtype == np.int64 and arr.tolist() == sel.indices.tolist()


def test_npz_layout_is_readable_without_coreset(tmp_path):
    sel = make_selection("str")
    save_selection(sel, tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz", allow_pickle=False) as z:
        assert set(z.files) == {"indices", "weights", "gains", "objective", "labels", "meta"}
        meta = json.loads(str(z["meta"]))
        assert meta["format_version"] == FORMAT_VERSION
        assert meta["method"] == "submodular"
        assert z["objective"] == 12.5


def test_parquet_layout_is_readable_without_coreset(tmp_path):
    import pyarrow.parquet as pq

    sel = make_selection("int")
    save_selection(sel, tmp_path / "s.parquet")
    t = pq.read_table(tmp_path / "s.parquet")
    assert t.column_names == ["indices", "weights", "gains", "labels"]
    assert t.column("indices").to_pylist() == sel.indices.tolist()
    meta = json.loads(t.schema.metadata[b"coreset.meta"])
    assert meta["format_version"] == FORMAT_VERSION


def test_format_override_and_suffix_rules(tmp_path):
    sel = make_selection("int")
    save_selection(sel, tmp_path / "subset.bin", format="npz")
    assert zipfile.is_zipfile(tmp_path / "subset.bin")
    assert load_selection(tmp_path / "subset.bin", format="npz").equals(sel)
    assert format_for_path("x.PQ") == "parquet"
    with pytest.raises(ValidationError, match="suffix '.bin'"):
        load_selection(tmp_path / "subset.bin")
    with pytest.raises(ValidationError, match="format must be one of"):
        save_selection(sel, tmp_path / "x.npz", format="hdf5")


def test_object_labels_and_unserialisable_meta_are_refused(tmp_path):
    sel = Selection([1, 2], [1.0, 1.0], [0.5, 0.2], labels=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValidationError, match="without pickle"):
        save_selection(sel, tmp_path / "x.npz")
    sel = Selection([1], [1.0], [0.5], meta={"f": object()})
    with pytest.raises(ValidationError, match="JSON"):
        save_selection(sel, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ atomic writes


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    sel = make_selection("int")
    path = tmp_path / "sel.npz"

    def boom(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_selection(sel, path)
    assert list(tmp_path.iterdir()) == []  # no target, no temp file

    monkeypatch.undo()
    save_selection(sel, path)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError):
        save_selection(make_selection("str"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sel.npz"]


def test_written_file_gets_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        save_selection(make_selection(None), tmp_path / "s.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s.npz").stat().st_mode) == 0o644


def test_missing_folder_is_an_index_file_error(tmp_path):
    with pytest.raises(IndexFileError, match="does not exist"):
        save_selection(make_selection(None), tmp_path / "nope" / "s.npz")


# ------------------------------------------------------------ bad files


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".npy"])
def test_truncated_files_are_refused(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    save_selection(make_selection("int", n=2000), path)
    _truncate(path)
    with pytest.raises(IndexFileError, match="corrupt or truncated"):
        load_selection(path)


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".npy"])
def test_garbage_is_refused(tmp_path, suffix):
    path = tmp_path / f"s{suffix}"
    path.write_bytes(b"this is not an index file at all\n" * 10)
    with pytest.raises(IndexFileError, match=r"not a readable coreset index file: not a"):
        load_selection(path)


def test_foreign_npz_names_what_is_missing(tmp_path):
    np.savez(tmp_path / "f.npz", X=np.zeros((3, 2)))
    with pytest.raises(IndexFileError, match=r"missing arrays gains, indices, meta, weights \(found: X\)"):
        load_selection(tmp_path / "f.npz")


def test_pickled_npz_is_refused(tmp_path):
    arrays = {k: np.zeros(2) for k in ("weights", "gains")}
    np.savez(tmp_path / "p.npz", indices=np.array([{"evil": 1}, 2], dtype=object),
             meta=np.array(json.dumps({"format_version": 1})), **arrays)
    with pytest.raises(IndexFileError, match="pickled"):
        load_selection(tmp_path / "p.npz")


def _npz_with_meta(path, meta_text):
    np.savez(path, indices=np.arange(2), weights=np.ones(2), gains=np.ones(2), meta=np.array(meta_text))


def test_unknown_version_and_bad_meta(tmp_path):
    p = tmp_path / "v.npz"
    _npz_with_meta(p, json.dumps({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(IndexFileError, match=f"format_version {FORMAT_VERSION + 1}, newer.*upgrade"):
        load_selection(p)
    _npz_with_meta(p, "{not json")
    with pytest.raises(IndexFileError, match="not valid JSON"):
        load_selection(p)
    _npz_with_meta(p, json.dumps({"method": "x"}))
    with pytest.raises(IndexFileError, match="no format_version"):
        load_selection(p)
    _npz_with_meta(p, json.dumps({"format_version": "1"}))
    with pytest.raises(IndexFileError, match="positive integer"):
        load_selection(p)
    # and a well-formed minimal file is accepted
    _npz_with_meta(p, json.dumps({"format_version": 1}))
    assert load_selection(p).indices.tolist() == [0, 1]


def test_inconsistent_arrays_are_refused(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, indices=np.arange(3), weights=np.ones(2), gains=np.ones(3),
             meta=np.array(json.dumps({"format_version": 1})))
    with pytest.raises(IndexFileError, match="one length"):
        load_selection(p)
    np.savez(p, indices=np.array([0.5, 1.0]), weights=np.ones(2), gains=np.ones(2),
             meta=np.array(json.dumps({"format_version": 1})))
    with pytest.raises(IndexFileError, match="integer"):
        load_selection(p)
    np.savez(p, indices=np.array([-1, 1]), weights=np.ones(2), gains=np.ones(2),
             meta=np.array(json.dumps({"format_version": 1})))
    with pytest.raises(IndexFileError, match=">= 0"):
        load_selection(p)


def test_foreign_parquet_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"indices": [1, 2]}), tmp_path / "f.parquet")
    with pytest.raises(IndexFileError, match="no coreset metadata"):
        load_selection(tmp_path / "f.parquet")


def test_bad_bare_files(tmp_path):
    np.save(tmp_path / "m.npy", np.zeros((3, 2)))
    with pytest.raises(IndexFileError, match="1-D integer"):
        load_selection(tmp_path / "m.npy")
    np.save(tmp_path / "o.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(IndexFileError, match="pickled"):
        load_selection(tmp_path / "o.npy")
    (tmp_path / "t.txt").write_text("1\n2\nthree\n")
    with pytest.raises(IndexFileError, match="line 3 is not an integer"):
        load_selection(tmp_path / "t.txt")
    (tmp_path / "t.txt").write_text("# picked by hand\n4\n\n5\n")
    assert load_selection(tmp_path / "t.txt").indices.tolist() == [4, 5]


def test_missing_and_folder_paths(tmp_path):
    with pytest.raises(IndexFileError, match="does not exist"):
        load_selection(tmp_path / "none.npz")
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IndexFileError, match="folder"):
        load_selection(tmp_path / "d.npz")


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
@pytest.mark.parametrize("method", ["submodular", "random", "k_center_greedy"])
def test_library_selections_round_trip_exactly(tmp_path, suffix, method):
    import coreset

    rng = np.random.default_rng(1)
    X = rng.standard_normal((120, 8)).astype(np.float32)
    y = np.array(["head"] * 80 + ["torso"] * 30 + ["tail"] * 10)
    sel = coreset.select(X, n_select=15, y=y, method=method, random_state=0)
    sel.save(tmp_path / f"s{suffix}")
    back = Selection.load(tmp_path / f"s{suffix}")
    assert back.equals(sel), (back.meta, sel.meta)
    assert back.labels.tolist() == y[sel.indices].tolist()
