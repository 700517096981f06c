"""Embedding and label readers: every format gives back the stored numbers,
and every bad file is an InputFileError naming the path and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from coreset import InputFileError
from coreset.data import input_fingerprint
from coreset.data._readers import read_embeddings, read_labels

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=50)
    return X, y


# --------------------------------------------------------------------- .npy


def test_npy_is_memory_mapped(tmp_path, data):
    X, _ = data
    np.save(tmp_path / "x.npy", X)
    got, y = read_embeddings(tmp_path / "x.npy")
    assert isinstance(got, np.memmap) and y is None
    np.testing.assert_array_equal(got, X)
    got, _ = read_embeddings(tmp_path / "x.npy", mmap=False)
    assert not isinstance(got, np.memmap) and got.dtype == np.float32


def test_npy_refuses_pickles_and_garbage(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="o.npy.*pickled"):
        read_embeddings(tmp_path / "o.npy")
    (tmp_path / "g.npy").write_bytes(b"hello world" * 20)
    with pytest.raises(InputFileError, match="g.npy.*not an .npy file"):
        read_embeddings(tmp_path / "g.npy")


def test_truncated_npy(tmp_path, data):
    X, _ = data
    np.save(tmp_path / "t.npy", X)
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[: len(raw) // 2])
    for mmap in (True, False):
        with pytest.raises(InputFileError, match="t.npy.*corrupt or truncated"):
            read_embeddings(tmp_path / "t.npy", mmap=mmap)


# --------------------------------------------------------------------- .npz


def test_npz_single_and_named_arrays(tmp_path, data):
    X, y = data
    np.savez(tmp_path / "one.npz", emb=X)
    got, lab = read_embeddings(tmp_path / "one.npz")
    np.testing.assert_array_equal(got, X)
    assert lab is None
    np.savez(tmp_path / "two.npz", emb=X, label=y)
    got, lab = read_embeddings(tmp_path / "two.npz", labels_column="label")  # the only array left
    np.testing.assert_array_equal(got, X)
    np.testing.assert_array_equal(lab, y)
    got, _ = read_embeddings(tmp_path / "two.npz", key="label")
    np.testing.assert_array_equal(got, y)
    with pytest.raises(InputFileError, match=r"holds 2 arrays \(emb, label\)"):
        read_embeddings(tmp_path / "two.npz")
    with pytest.raises(InputFileError, match=r"has no array 'X'; it holds: emb, label"):
        read_embeddings(tmp_path / "two.npz", column="X")
    with pytest.raises(InputFileError, match=r"no labels array 'y'"):
        read_embeddings(tmp_path / "two.npz", key="emb", labels_column="y")


def test_npz_refuses_pickled_array_and_garbage(tmp_path, data):
    X, _ = data
    np.savez(tmp_path / "p.npz", emb=np.array([object(), 1], dtype=object))
    with pytest.raises(InputFileError, match="p.npz.*'emb'.*pickled"):
        read_embeddings(tmp_path / "p.npz")
    (tmp_path / "g.npz").write_bytes(b"\x00" * 100)
    with pytest.raises(InputFileError, match="not an .npz"):
        read_embeddings(tmp_path / "g.npz")
    np.savez(tmp_path / "t.npz", emb=X)
    raw = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputFileError, match="corrupt or truncated"):
        read_embeddings(tmp_path / "t.npz")


# ----------------------------------------------------------------- .parquet


def _write_parquet(path, X, y=None, *, fixed=True, extra=None, row_group_size=None):
    d = X.shape[1]
    flat = pa.array(X.reshape(-1))
    col = pa.FixedSizeListArray.from_arrays(flat, d) if fixed else pa.ListArray.from_arrays(
        pa.array(np.arange(0, X.size + 1, d, dtype=np.int32)), flat)
    cols = {"emb": col}
    if y is not None:
        cols["label"] = pa.array(y)
    cols.update(extra or {})
    pq.write_table(pa.table(cols), path, row_group_size=row_group_size)


@pytest.mark.parametrize("fixed", [True, False])
def test_parquet_list_columns(tmp_path, data, fixed):
    X, y = data
    _write_parquet(tmp_path / "e.parquet", X, y, fixed=fixed, row_group_size=7)  # several chunks
    got, lab = read_embeddings(tmp_path / "e.parquet", labels_column="label")
    assert got.shape == X.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, X)
    np.testing.assert_array_equal(lab, y)
    got, lab = read_embeddings(tmp_path / "e.parquet", column="emb")
    np.testing.assert_array_equal(got, X)
    assert lab is None


def test_parquet_string_labels(tmp_path, data):
    X, _ = data
    names = np.array(["cat", "dog"] * 25)
    _write_parquet(tmp_path / "e.parquet", X, names)
    _, lab = read_embeddings(tmp_path / "e.parquet", labels_column="label")
    assert lab.tolist() == names.tolist()


def test_parquet_errors(tmp_path, data):
    X, y = data
    p = tmp_path / "e.parquet"
    _write_parquet(p, X, y)
    with pytest.raises(InputFileError, match=r"has no column 'vec'; columns: emb, label"):
        read_embeddings(p, column="vec")
    with pytest.raises(InputFileError, match=r"no labels column 'y'; columns: emb, label"):
        read_embeddings(p, labels_column="y")
    with pytest.raises(InputFileError, match=r"column 'label' has type int64, not a list"):
        read_embeddings(p, column="label")
    _write_parquet(p, X, extra={"emb2": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), 6)})
    with pytest.raises(InputFileError, match=r"2 list columns \(emb, emb2\)"):
        read_embeddings(p)
    ragged = pa.array([[1.0, 2.0], [3.0]])
    pq.write_table(pa.table({"emb": ragged}), p)
    with pytest.raises(InputFileError, match="different lengths"):
        read_embeddings(p)
    pq.write_table(pa.table({"emb": pa.array([[1.0, 2.0], None])}), p)
    with pytest.raises(InputFileError, match="missing"):
        read_embeddings(p)
    pq.write_table(pa.table({"emb": pa.array([[1.0, None], [2.0, 3.0]])}), p)
    with pytest.raises(InputFileError, match="null"):
        read_embeddings(p)
    pq.write_table(pa.table({"emb": pa.array([["a", "b"], ["c", "d"]])}), p)
    with pytest.raises(InputFileError, match="not numbers"):
        read_embeddings(p)
    p.write_bytes(b"PAR1 but then nothing useful")
    with pytest.raises(InputFileError, match="corrupt or truncated parquet"):
        read_embeddings(p)


# ---------------------------------------------------------------------- .pt


def test_pt_tensor_and_dict(tmp_path, data):
    torch = pytest.importorskip("torch")
    X, y = data
    torch.save(torch.from_numpy(X), tmp_path / "x.pt")
    got, lab = read_embeddings(tmp_path / "x.pt")
    np.testing.assert_array_equal(got, X)
    assert lab is None
    torch.save({"emb": torch.from_numpy(X).to(torch.bfloat16), "y": torch.from_numpy(y)}, tmp_path / "d.pt")
    got, lab = read_embeddings(tmp_path / "d.pt", labels_column="y")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, X, rtol=1e-2, atol=1e-2)
    np.testing.assert_array_equal(lab, y)
    with pytest.raises(InputFileError, match=r"holds 2 entries \(emb, y\)"):
        read_embeddings(tmp_path / "d.pt")


class _Payload:  # a class only a full unpickle could rebuild
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pt_refuses_pickled_objects(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.save({"emb": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputFileError, match="evil.pt.*weights_only=True"):
        read_embeddings(tmp_path / "evil.pt")
    assert "unpickled!" not in capsys.readouterr().out
    (tmp_path / "g.pt").write_bytes(b"garbage" * 10)
    with pytest.raises(InputFileError, match=r"g.pt.*cannot be loaded by torch.load.*not a torch.save file"):
        read_embeddings(tmp_path / "g.pt")


# ------------------------------------------------------------------ general


def test_missing_folder_and_unknown_suffix(tmp_path):
    with pytest.raises(InputFileError, match="none.npy.*no such file"):
        read_embeddings(tmp_path / "none.npy")
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(InputFileError, match="folder"):
        read_embeddings(tmp_path / "d.npy")
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(InputFileError, match=r"unsupported embeddings format '.h5'"):
        read_embeddings(tmp_path / "x.h5")


# ------------------------------------------------------------------- labels


def test_read_labels_formats(tmp_path, data):
    _, y = data
    np.save(tmp_path / "y.npy", y)
    np.testing.assert_array_equal(read_labels(tmp_path / "y.npy"), y)
    (tmp_path / "y.txt").write_text("\n".join(map(str, y)) + "\n")
    got = read_labels(tmp_path / "y.txt")
    assert got.dtype == np.int64 and got.tolist() == y.tolist()
    (tmp_path / "s.txt").write_text("cat\ndog\ncat\n")
    assert read_labels(tmp_path / "s.txt").tolist() == ["cat", "dog", "cat"]
    (tmp_path / "y.csv").write_text("id,label\n0,3\n1,4\n")
    assert read_labels(tmp_path / "y.csv", column="label").tolist() == [3, 4]
    with pytest.raises(InputFileError, match=r"holds 2 columns \(id, label\)"):
        read_labels(tmp_path / "y.csv")
    pq.write_table(pa.table({"label": pa.array(y)}), tmp_path / "y.parquet")
    np.testing.assert_array_equal(read_labels(tmp_path / "y.parquet"), y)
    (tmp_path / "gap.txt").write_text("1\n\n2\n")
    with pytest.raises(InputFileError, match="empty label on data line 2"):
        read_labels(tmp_path / "gap.txt")


# -------------------------------------------------------------- fingerprint


def test_fingerprint_identifies_data_not_container(tmp_path, data):
    X, _ = data
    np.save(tmp_path / "x.npy", X)
    mm, _ = read_embeddings(tmp_path / "x.npy")
    assert input_fingerprint(mm) == input_fingerprint(X) == input_fingerprint(np.asfortranarray(X))
    assert input_fingerprint(X).startswith("sha256:")
    Y = X.copy()
    Y[0, 0] += 1
    assert input_fingerprint(Y) != input_fingerprint(X)
    assert input_fingerprint(X.astype(np.float64)) != input_fingerprint(X)
    assert input_fingerprint(X.reshape(25, 12)) != input_fingerprint(X)


def test_fingerprint_of_large_array_hashes_a_sample(tmp_path):
    big = np.zeros((600_000, 4), dtype=np.float32)  # 9.6 MB: above FULL_LIMIT, sampled
    f0 = input_fingerprint(big)
    big[70_000, 2] = 1.0  # between two sampled blocks: not hashed (docs/index-files.md)
    assert input_fingerprint(big) == f0
    big[300_000, 2] = 1.0  # the middle row: inside the block centred on the middle
    f1 = input_fingerprint(big)
    assert f1 != f0
    big[-1, -1] = 1.0
    assert input_fingerprint(big) != f1


def test_fingerprint_of_a_file(tmp_path, data):
    X, _ = data
    np.save(tmp_path / "x.npy", X)
    a = input_fingerprint(tmp_path / "x.npy")
    assert a == input_fingerprint(str(tmp_path / "x.npy"))
    np.save(tmp_path / "x.npy", X + 1)
    assert input_fingerprint(tmp_path / "x.npy") != a


def _in_thread(fn, *args, timeout=20.0, **kw):
    """``fn(*args)`` in a daemon thread: returns the exception it raised, or
    fails when it is still blocked after ``timeout`` seconds."""
    import threading

    box = {}

    def target():
        try:
            fn(*args, **kw)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["exc"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    return t, box.get("exc")


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("reader", ["embeddings", "labels", "index_file", "npy_source"])
def test_a_named_pipe_is_refused_not_waited_on(tmp_path, reader):
    """Opening a FIFO blocks until a writer comes: every reader refuses it
    with an error that says what it is (it used to hang forever)."""
    import os

    from coreset import IndexFileError, Selection
    from coreset.data._sources import NpySource

    fifo = tmp_path / "in.npy"
    os.mkfifo(fifo)
    fn = {"embeddings": read_embeddings, "labels": read_labels, "index_file": Selection.load,
          "npy_source": NpySource}[reader]
    t, exc = _in_thread(fn, str(fifo))
    if t.is_alive():  # release the blocked open before failing, so the run does not hang
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{reader} blocked on a named pipe")
    assert isinstance(exc, (InputFileError, IndexFileError)), repr(exc)
    assert "not a regular file" in str(exc) and "in.npy" in str(exc)
