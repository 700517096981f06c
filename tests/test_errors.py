"""No silent wrong results: inputs at the edges of float32, bad kernel widths,
float or missing labels, unsafe or exotic .pt files, sparse embeddings, odd
index-file meta, interrupted writes and folder targets each give either the
right answer or an error whose message names the input, what is allowed and
the value received."""

from __future__ import annotations

import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from coreset import Selection
from coreset._io import atomic_write, save_selection
from coreset.selection import load_selection
from coreset._validation import as_embeddings, check_labels
from coreset.data._readers import read_embeddings, read_labels
from coreset.exceptions import DegenerateInputError, IndexFileError, InputFileError, ValidationError
from coreset.similarity import build_knn, dense_similarity, euclidean_gamma, knn_graph

F32_MAX = float(np.finfo(np.float32).max)


@pytest.fixture
def X():
    """Four well-separated clusters, so that no similarity ties decide anything."""
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((4, 8)) * 3
    lab = rng.integers(0, 4, size=80)
    return (centers[lab] + rng.standard_normal((80, 8))).astype(np.float32)


def greedy_facility_location(S: np.ndarray, k: int) -> list[int]:
    """Reference greedy: pick the row j maximising sum_i max(S[j, i] - cur[i], 0)."""
    S = np.asarray(S, dtype=np.float64)
    cur = np.zeros(S.shape[0])
    picks = []
    for _ in range(k):
        gains = np.maximum(S - cur[None, :], 0).sum(1)
        gains[picks] = -1
        j = int(np.argmax(gains))
        picks.append(j)
        cur = np.maximum(cur, S[j])
    return picks


def graph_to_dense(idx: np.ndarray, sims: np.ndarray) -> np.ndarray:
    n = idx.shape[0]
    S = np.zeros((n, n))
    S[np.repeat(np.arange(n), idx.shape[1]), idx.ravel()] = sims.ravel()
    return S


def scaled_row(X: np.ndarray, row: int, to: float) -> np.ndarray:
    Y = X.copy()
    Y[row] = (Y[row].astype(np.float64) * (to / np.abs(Y[row]).max())).astype(np.float32)
    assert np.isfinite(Y).all()
    return Y


def largest_norm_in(msg: str) -> float:
    m = re.search(r"largest row norm is ([0-9.e+-]+)", msg)
    assert m, msg
    return float(m.group(1))


# ------------------------------------------------- 1. values near the float32 limit


def test_cosine_is_scale_invariant_even_at_the_float32_limit(X):
    Y = scaled_row(X, 5, 3e38)  # finite, but its squared norm overflows float32
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.linalg.norm(Y[5]))  # the trap the code must avoid
    Sx, Sy = dense_similarity(X), dense_similarity(Y)
    assert np.isfinite(Sy).all()
    np.testing.assert_allclose(Sy, Sx, atol=1e-6)
    assert greedy_facility_location(Sy, 10) == greedy_facility_location(Sx, 10)

    ix, sx = knn_graph(X, 10, backend="torch")
    iy, sy = knn_graph(Y, 10, backend="torch")
    np.testing.assert_array_equal(iy, ix)
    np.testing.assert_allclose(sy, sx, atol=1e-6)
    assert greedy_facility_location(graph_to_dense(iy, sy), 10) == greedy_facility_location(graph_to_dense(ix, sx), 10)


def test_cosine_of_float64_rows_beyond_the_float32_range(X):
    X64 = X.astype(np.float64)
    Y = X64.copy()
    Y[5] *= 1e305  # fine in float64, inf once cast to float32 for the kNN search
    Y[9] *= 1e-310  # float64 subnormal, 0 in float32
    np.testing.assert_allclose(dense_similarity(Y), dense_similarity(X64), atol=1e-12)
    ix, sx = knn_graph(X64, 10, backend="torch")
    iy, sy = knn_graph(Y, 10, backend="torch")
    np.testing.assert_array_equal(iy, ix)
    np.testing.assert_allclose(sy, sx, atol=1e-6)


@pytest.mark.parametrize("metric", ["inner_product", "euclidean"])
@pytest.mark.parametrize("how", ["knn", "dense"])
def test_similarities_that_overflow_float32_are_refused(X, metric, how):
    Y = scaled_row(X, 5, 3e38)
    with pytest.raises(ValidationError) as exc:
        if how == "knn":
            knn_graph(Y, 5, metric=metric, gamma=1.0, backend="torch")
        else:
            dense_similarity(Y, metric, gamma=1.0)
    msg = str(exc.value)
    assert msg.startswith("X ") and f"metric={metric!r}" in msg and "row 5" in msg
    assert largest_norm_in(msg) == pytest.approx(np.linalg.norm(Y[5].astype(np.float64)), rel=1e-3)
    assert "Rescale X" in msg


def test_the_refusal_comes_from_the_magnitude_not_from_a_threshold_on_values(X):
    # squared norms just below the float32 limit are fine for inner_product ...
    ok = scaled_row(X, 5, 1e19 / np.sqrt(X.shape[1]))
    idx, sims = knn_graph(ok, 5, metric="inner_product", backend="torch")
    assert np.isfinite(sims).all() and sims[5, 0] == pytest.approx(np.sum(ok[5].astype(np.float64) ** 2), rel=1e-5)
    S = dense_similarity(ok, "inner_product")
    assert np.isfinite(S).all()
    # ... and above it they are not
    with pytest.raises(ValidationError, match="inner_product"):
        knn_graph(scaled_row(X, 5, 3e19), 5, metric="inner_product", backend="torch")


@pytest.mark.parametrize("metric", ["inner_product", "euclidean"])
def test_similarities_that_underflow_float32_are_refused(X, metric):
    tiny = X * np.float32(1e-25)
    with pytest.raises(ValidationError) as exc:
        knn_graph(tiny, 5, metric=metric, gamma=1.0, backend="torch")
    msg = str(exc.value)
    assert "X is too small" in msg and f"metric={metric!r}" in msg and "Rescale X" in msg
    assert largest_norm_in(msg) == pytest.approx(np.linalg.norm(tiny.astype(np.float64), axis=1).max(), rel=1e-3)


def test_euclidean_gamma_refuses_what_float32_cannot_hold(X):
    with pytest.raises(ValidationError, match=r"X is too small for metric='euclidean'.*median squared distance"):
        euclidean_gamma(X * np.float32(1e-22))
    with pytest.raises(ValidationError, match=r"X is too large for metric='euclidean'.*largest row norm"):
        euclidean_gamma(X.astype(np.float64) * 1e200)
    # float64 data keeps the float64 range: the dense float64 kernel handles it
    g = euclidean_gamma(X.astype(np.float64) * 1e-100)
    assert np.isfinite(g) and g > F32_MAX


# ------------------------------------------------------------- 2. subnormal rows


def test_subnormal_rows_are_valid_rows_for_cosine(X):
    Y = X.copy()
    Y[3] = (X[10].astype(np.float64) * (1e-39 / np.abs(X[10]).max())).astype(np.float32)  # same direction
    assert Y[3].any() and (np.abs(Y[3]) < np.finfo(np.float32).tiny).all()  # float32 subnormals
    S = dense_similarity(Y)
    assert S[3, 10] == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(np.delete(S[3], [3, 10]), np.delete(S[10], [3, 10]), atol=1e-3)
    idx, sims = knn_graph(Y, 5, backend="torch")
    assert idx[3, 0] == 3 and idx[3, 1] == 10 and sims[3, 1] == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("how", ["knn", "dense"])
def test_only_truly_zero_rows_are_all_zero_rows(X, how):
    Y = X.copy()
    Y[3] = np.float32(1e-39)
    Y[7] = 0.0
    with pytest.raises(DegenerateInputError) as exc:
        knn_graph(Y, 5, backend="torch") if how == "knn" else dense_similarity(Y)
    msg = str(exc.value)
    assert "all-zero row" in msg and "row 7" in msg and "row 3" not in msg


# ------------------------------------------------------------------ 3. gamma


BAD_GAMMAS = [float("nan"), -1.0, 0.0, float("inf"), -float("inf"), 1e39, 1e-50]


@pytest.mark.parametrize("gamma", BAD_GAMMAS)
@pytest.mark.parametrize("fn", ["build_knn", "knn_graph", "dense_similarity"])
def test_bad_gamma_is_refused_naming_gamma_and_the_value(X, fn, gamma):
    call = {
        "build_knn": lambda: build_knn(X, 5, metric="euclidean", gamma=gamma, backend="torch"),
        "knn_graph": lambda: knn_graph(X, 5, metric="euclidean", gamma=gamma, backend="torch"),
        "dense_similarity": lambda: dense_similarity(X, "euclidean", gamma=gamma),
    }[fn]
    with pytest.raises(ValidationError) as exc:
        call()
    msg = str(exc.value)
    assert msg.startswith("gamma ") and "> 0" in msg and f"got {gamma!r}" in msg


@pytest.mark.parametrize("gamma", ["0.5", True, [1.0]])
def test_non_number_gamma_is_refused(X, gamma):
    with pytest.raises(ValidationError, match=rf"gamma .*must be a number > 0 or None; got {re.escape(repr(gamma))}"):
        dense_similarity(X, "euclidean", gamma=gamma)


def test_good_gamma_still_works(X):
    S = dense_similarity(X, "euclidean", gamma=0.05)
    d2 = ((X[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(S, np.exp(-0.05 * d2), atol=1e-5)


# ------------------------------------------------------------------ 4. labels


def test_whole_number_float_labels_become_int64():
    y = check_labels(np.array([0.0, 1.0, 2.0, 1.0]), 4)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 1]
    sel = Selection([0, 2], [1.0, 1.0], [0.5, 0.2], labels=y[[0, 2]])
    assert sel.labels.dtype == np.int64


def test_fractional_float_labels_are_refused_naming_value_and_position():
    with pytest.raises(ValidationError, match=r"^y must hold integer or string labels; .*0\.5 at position 3"):
        check_labels(np.array([0.0, 1.0, 2.0, 0.5, 1.0]), 5)


@pytest.mark.parametrize("y, pos, shown", [
    (np.array([0, None, 1], dtype=object), 1, "None"),
    (np.array(["a", "b", None], dtype=object), 2, "None"),
    (["a", float("nan"), "b"], 1, "nan"),
])
def test_missing_labels_are_refused_naming_the_position(y, pos, shown):
    with pytest.raises(ValidationError) as exc:
        check_labels(y, 3)
    msg = str(exc.value)
    assert msg.startswith("y ") and "missing label" in msg and f"position {pos}" in msg and shown in msg


def test_unstorable_labels_name_their_dtype_and_what_is_storable(tmp_path):
    sel = Selection([1, 2], [1.0, 1.0], [0.5, 0.2], labels=np.array([0.5, 1.5]))
    with pytest.raises(ValidationError) as exc:
        save_selection(sel, tmp_path / "s.npz")
    msg = str(exc.value)
    assert "float64" in msg and "integers, booleans or strings" in msg and "pickle" not in msg
    assert list(tmp_path.iterdir()) == []


def test_float_label_files_read_as_int64(tmp_path):
    np.save(tmp_path / "y.npy", np.array([0.0, 2.0, 1.0]))
    got = read_labels(tmp_path / "y.npy")
    assert got.dtype == np.int64 and got.tolist() == [0, 2, 1]
    np.savez(tmp_path / "y.npz", lab=np.array([3.0, 1.0], np.float32))
    assert read_labels(tmp_path / "y.npz").tolist() == [3, 1]

    np.save(tmp_path / "bad.npy", np.array([0.0, 0.25]))
    with pytest.raises(InputFileError, match=r"bad\.npy.*non-integer value 0\.25 at position 1"):
        read_labels(tmp_path / "bad.npy")


def test_float_text_labels_follow_the_same_rules(tmp_path):
    (tmp_path / "y.txt").write_text("1.0\n0.0\n2.0\n")
    got = read_labels(tmp_path / "y.txt")
    assert got.dtype == np.int64 and got.tolist() == [1, 0, 2]
    (tmp_path / "y.csv").write_text("id,label\n7,1.0\n8,1.5\n")
    with pytest.raises(InputFileError, match=r"y\.csv.*non-integer value 1\.5 at position 1"):
        read_labels(tmp_path / "y.csv", column="label")
    (tmp_path / "s.txt").write_text("cat\n1.5\ndog\n")  # not all numbers: names, kept as they are
    assert read_labels(tmp_path / "s.txt").tolist() == ["cat", "1.5", "dog"]


def test_float_labels_beside_embeddings_read_as_int64(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.savez(tmp_path / "d.npz", emb=X, y=np.array([1.0, 0.0, 1.0, 2.0]))
    _, y = read_embeddings(tmp_path / "d.npz", labels_column="y")
    assert y.dtype == np.int64 and y.tolist() == [1, 0, 1, 2]
    table = pa.table({"emb": pa.array(X.tolist(), type=pa.list_(pa.float32())), "y": [1.0, 0.5, 1.0, 2.0]})
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(InputFileError, match=r"d\.parquet.*labels column 'y'.*0\.5 at position 1"):
        read_embeddings(tmp_path / "d.parquet", labels_column="y")


# ------------------------------------------------------------------- 5. .pt


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())  # harmless, but unpickling it would call a function


def test_pt_with_pickled_objects_says_so(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"emb": torch.zeros(3, 2), "extra": _RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(InputFileError) as exc:
        read_embeddings(tmp_path / "evil.pt")
    msg = str(exc.value)
    assert "evil.pt" in msg and "pickled Python objects" in msg and "weights_only=True" in msg
    assert "getcwd" in msg and "not a torch.save file" not in msg


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_plain_pickle_named_pt_says_so(tmp_path):
    pytest.importorskip("torch")
    with open(tmp_path / "x.pt", "wb") as fh:
        pickle.dump({"emb": np.zeros((3, 2))}, fh, protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(InputFileError) as exc:
        read_embeddings(tmp_path / "x.pt")
    msg = str(exc.value)
    assert "x.pt" in msg and "plain Python pickle" in msg and "pickled Python objects are refused" in msg


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_pt_becomes_float32_with_a_note(tmp_path, caplog, dtype):
    torch = pytest.importorskip("torch")
    t = torch.tensor([[1.5, -2.25], [0.0078125, 3.0e4]], dtype=getattr(torch, dtype))
    torch.save({"emb": t}, tmp_path / "h.pt")
    with caplog.at_level(logging.INFO, logger="coreset"):
        got, _ = read_embeddings(tmp_path / "h.pt")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, t.float().numpy())  # exact
    notes = [r.getMessage() for r in caplog.records if "h.pt" in r.getMessage()]
    assert notes and dtype in notes[0] and "float32" in notes[0]


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
def test_pt_tensor_numpy_cannot_hold_is_an_input_file_error(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.zeros(3, 2, dtype=torch.complex32), tmp_path / "c.pt")
    with pytest.raises(InputFileError, match=r"c\.pt.*dtype complex32"):
        read_embeddings(tmp_path / "c.pt")


# ----------------------------------------------------------- 6. sparse embeddings


@pytest.mark.parametrize("make", [sp.csr_matrix, sp.coo_array])
def test_sparse_embeddings_point_to_the_fix(make):
    M = make(np.eye(5, dtype=np.float32))
    with pytest.raises(ValidationError) as exc:
        as_embeddings(M)
    msg = str(exc.value)
    assert msg.startswith("X is a scipy sparse") and "metric='precomputed'" in msg and "X.toarray()" in msg
    assert "(5, 5)" in msg and "dtype object" not in msg
    with pytest.raises(ValidationError, match="X.toarray()"):
        knn_graph(M, 2, backend="torch")
    idx, _ = knn_graph(M, 1, metric="precomputed")  # a sparse similarity stays fine
    assert idx[:, 0].tolist() == list(range(5))


# --------------------------------------------------------- 7. coreset inspect


def test_inspect_prints_non_numeric_timings_and_markup_as_is(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    meta = {"timings": {"graph": "fast", "optimize": 0.25}, "note": "[/]"}
    sel = Selection([1, 2], [1.0, 1.0], [0.5, 0.2], labels=np.array(["[red]cat", "dog"]), meta=meta)
    save_selection(sel, tmp_path / "s.npz")
    res = CliRunner().invoke(app, ["inspect", str(tmp_path / "s.npz")])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "Traceback" not in res.output
    assert re.search(r"graph\s+fast", res.stdout) and re.search(r"optimize\s+0\.25", res.stdout)
    assert "[/]" in res.stdout and "[red]cat" in res.stdout


# -------------------------------------------------- 8. temporaries of killed writers

_WRITER = """
import sys, time
import coreset._atomic
from coreset._io import atomic_write
coreset._atomic.USE_O_TMPFILE = False  # the named-temporary scheme (on Linux a killed writer leaves nothing)
with atomic_write(sys.argv[1]) as tmp:
    with open(tmp, "wb") as fh:
        fh.write(b"\\0" * 1_000_000)
    print("writing", flush=True)
    time.sleep(120)
"""


def _temps(folder: Path, name: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))


def _sel():
    return Selection([3, 1], [2.0, 1.0], [0.5, 0.25], objective=0.75, labels=np.array([1, 0]))


@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "sel.npz"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "writing", proc.stderr.read() if proc.poll() is not None else line
        left = _temps(tmp_path, "sel.npz")
        assert len(left) == 1 and left[0].stat().st_size == 1_000_000

        save_selection(_sel(), path)  # the writer is alive: its temporary stays
        assert _temps(tmp_path, "sel.npz") == left

        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert _temps(tmp_path, "sel.npz") == left  # SIGKILL: nobody cleaned up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    save_selection(_sel(), path)  # the writer is gone: its temporary goes
    assert _temps(tmp_path, "sel.npz") == []
    assert load_selection(path).equals(_sel())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel.npz"]


def test_a_live_writer_in_this_process_keeps_its_temporary(tmp_path):
    path = tmp_path / "sel.npz"
    with atomic_write(path) as first:
        Path(first).write_bytes(b"first writer, still busy")
        save_selection(_sel(), path)
        assert Path(first).exists() and Path(first).read_bytes() == b"first writer, still busy"
    assert path.read_bytes() == b"first writer, still busy"
    assert _temps(tmp_path, "sel.npz") == []


def test_old_style_and_foreign_temporaries_go_only_when_stale(tmp_path):
    path = tmp_path / "sel.npz"
    hour_ago = time.time() - 3600
    names = {  # name: (untouched for an hour, expected to be removed)
        ".sel.npz.abcd1234.tmp": (True, True),                  # older coreset, stale
        ".sel.npz.wxyz5678.tmp": (False, False),                # older coreset, maybe still writing
        ".sel.npz.zzremotehost9-1-abcd1234.tmp": (True, True),  # another host, stale
        ".sel.npz.zzremotehost9-1-wxyz5678.tmp": (False, False),  # another host, maybe still writing
        ".other.npz.abcd1234.tmp": (True, False),               # another target
        ".sel.npz.notes.tmp": (True, False),                    # not a temporary of ours
    }
    for name, (old, _) in names.items():
        (tmp_path / name).write_bytes(b"x")
        if old:
            os.utime(tmp_path / name, (hour_ago, hour_ago))
    save_selection(_sel(), path)
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"sel.npz"} | {n for n, (_, removed) in names.items() if not removed}


# -------------------------------------------------------- 9. a folder as target


def test_a_folder_as_target_is_refused_up_front(tmp_path, monkeypatch):
    (tmp_path / "out.npz").mkdir()
    (tmp_path / "out.npz" / "keep.txt").write_text("mine")
    with pytest.raises(IndexFileError) as exc:
        save_selection(_sel(), tmp_path / "out.npz")
    msg = str(exc.value)
    assert f"cannot write path {str(tmp_path / 'out.npz')!r}: it is a folder" in msg and ".tmp" not in msg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz"]
    assert [p.name for p in (tmp_path / "out.npz").iterdir()] == ["keep.txt"]

    monkeypatch.chdir(tmp_path)
    Path("some_dir").mkdir()
    with pytest.raises(IndexFileError, match=r"^cannot write path 'some_dir': it is a folder"):
        save_selection(_sel(), "some_dir", format="npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npz", "some_dir"]
