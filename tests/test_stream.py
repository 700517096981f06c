"""Streaming selection: select_stream, the sieve kernel, checkpoints, bad input.

Oracles: the compiled sieve against the in-memory SieveStreaming optimizer
(the same rules written through the Objective protocol); a hand-checked
Sieve-Streaming++ run; an interrupted run (callback exception, SIGKILLed
subprocess) resumed equals an uninterrupted one exactly; the stream's value
against offline greedy on the same objective.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import coreset
from coreset._stream import CheckpointError, StreamSieve, normalise
from coreset.exceptions import CoresetError, ValidationError


def blobs(n=3000, d=8, centers=20, seed=0):
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((centers, d)) * 3
    return (C[rng.integers(0, centers, n)] + rng.standard_normal((n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def X():
    return blobs()


def same(a, b):
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.weights, b.weights)
    assert np.array_equal(a.gains, b.gains)
    assert a.objective == b.objective


# ---------------------------------------------------------------- the algorithm

def test_compiled_sieve_matches_the_protocol_optimizer():
    """The chunk kernel (reservoir = all rows, full neighbourhoods) makes the
    picks the registered in-memory optimizer makes on the same dense objective."""
    from coreset.objectives import FacilityLocation
    from coreset.optimizers import SieveStreaming

    Xs = blobs(200, 6, 5, seed=1)
    n = Xs.shape[0]
    U = normalise(Xs, "X").astype(np.float64)
    S = np.maximum(U @ U.T, 0)
    sv = StreamSieve(12, 0.2, n_neighbors=n).start(Xs, np.arange(n))
    sv.feed(normalise(Xs, "X"), 0)
    res = sv.finish(n)
    f = FacilityLocation(S.astype(np.float32))
    idx, gains = SieveStreaming(epsilon=0.2).maximize(f, 12)
    assert set(res["indices"]) == set(idx)
    assert res["info"]["reservoir_value"] == pytest.approx(f.value, rel=1e-5)


def test_sieve_by_hand():
    """Sieve-Streaming++ with k=1, epsilon=1 (thresholds powers of 2), reservoir
    = the unit vectors e0..e3. Row A = e0: singleton value 1, window
    [1/2, 1] -> sieves tau=1/2 and tau=1 both take A (LB = 1). Row B =
    (e1 + e2)/sqrt(2): value sqrt(2), window [sqrt(2)/2, sqrt(2)] -> only
    tau=1 lives, and it is full. B is never kept, so the result is A (value 1)
    although greedy would take B (value sqrt(2)): the sieve's known weakness."""
    from coreset.optimizers._sieve import EMPTY, _window

    assert _window(1.0, 0.0, 1, 1.0) == (-1, 0)
    assert _window(np.sqrt(2), 1.0, 1, 1.0) == (0, 0)
    R = np.eye(4, dtype=np.float32)
    sv = StreamSieve(1, 1.0, n_neighbors=4).start(R, np.arange(4))
    sv.feed(normalise(np.array([[1, 0, 0, 0]], np.float32), "A"), 0)
    live = sorted(int(e) for e in sv.st["expo"] if e != EMPTY)
    assert live == [-1, 0] and list(sv.st["size"][sv.st["expo"] != EMPTY]) == [1, 1]
    sv.feed(normalise(np.array([[0, 1, 1, 0]], np.float32), "B"), 1)
    assert sorted(int(e) for e in sv.st["expo"] if e != EMPTY) == [0]
    res = sv.finish(2)
    assert list(res["indices"]) == [0] and res["info"]["candidates"] == 1
    assert res["info"]["reservoir_value"] == pytest.approx(1.0)
    assert res["weights"].sum() == pytest.approx(2.0)


def test_stream_close_to_offline_greedy(X):
    """On the stream's own objective (facility location on the reservoir with
    full neighbourhoods) the result is within the sieve's guarantee of greedy,
    and in practice close to it."""
    from coreset.objectives import FacilityLocation
    from coreset.optimizers import LazyGreedy

    X = X[:1500]
    n = X.shape[0]
    sel = coreset.select_stream(X, 20, reservoir=n, n_neighbors=n, chunk_size=700, random_state=0)
    U = normalise(X, "X").astype(np.float64)
    S = np.maximum(U @ U.T, 0).astype(np.float32)
    f = FacilityLocation(S)
    LazyGreedy().maximize(f, 20)
    stream_value = FacilityLocation(S).evaluate(sel.indices)
    assert stream_value >= 0.5 * f.value  # Sieve-Streaming++'s 1/2 - epsilon guarantee, roughly
    assert stream_value >= 0.95 * f.value
    assert sel.objective == pytest.approx(stream_value, rel=1e-4)


def test_weights_gains_and_indices(X):
    sel = coreset.select_stream(X, 30, reservoir=500, chunk_size=512, random_state=0)
    assert sel.indices.dtype == np.int64 and np.unique(sel.indices).size == 30
    assert ((sel.indices >= 0) & (sel.indices < X.shape[0])).all()
    assert sel.weights.sum() == pytest.approx(X.shape[0])
    assert (sel.weights >= 0).all()
    assert sel.gains.sum() == pytest.approx(sel.objective)
    assert sel.meta["stream"]["reservoir"] == 500 and sel.meta["n_samples"] == X.shape[0]


def test_sources_agree(X, tmp_path):
    """.npy (explicit reads), parquet row groups and an array with the same
    chunking give the same selection; an iterator (reservoir = first rows) too
    when the reservoir is the whole input."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    npy = tmp_path / "x.npy"
    np.save(npy, X)
    pqt = tmp_path / "x.parquet"
    col = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    pq.write_table(pa.table({"emb": col}), pqt, row_group_size=450)
    kw = dict(reservoir=400, chunk_size=600, random_state=3)
    a = coreset.select_stream(X, 25, **kw)
    same(a, coreset.select_stream(npy, 25, **kw))
    same(a, coreset.select_stream(str(pqt), 25, **kw))
    full = dict(reservoir=X.shape[0], chunk_size=600, random_state=3)
    b = coreset.select_stream(X, 25, **full)
    c = coreset.select_stream((X[i:i + 600] for i in range(0, X.shape[0], 600)), 25, **full)
    same(b, c)


def test_epsilon_and_reservoir_change_the_result(X):
    a = coreset.select_stream(X, 25, reservoir=300, random_state=0)
    b = coreset.select_stream(X, 25, reservoir=300, random_state=1)
    assert not np.array_equal(a.indices, b.indices)  # the reservoir draw is seeded


# ---------------------------------------------------------------- partial_fit and the registry

def test_partial_fit_feeds_the_sieve(X):
    """partial_fit over chunks == select_stream over the same chunks when the
    reservoir is the first chunk whole."""
    est = coreset.SubmodularSelector(40, optimizer="sieve_streaming", random_state=0)
    chunks = [X[:1000], X[1000:2200], X[2200:]]
    y = np.arange(X.shape[0]) % 3
    for lo, c in zip((0, 1000, 2200), chunks):
        est.partial_fit(c, y[lo:lo + c.shape[0]])
    sel = est.selection_
    ref = coreset.select_stream(iter(chunks), 40, reservoir=1000, random_state=0)
    assert np.array_equal(sel.indices, ref.indices)
    assert np.array_equal(sel.labels, y[sel.indices])
    assert sel.weights.sum() == pytest.approx(X.shape[0])
    assert est.n_chunks_ == 3


def test_partial_fit_other_optimizers_unchanged(X):
    est = coreset.SubmodularSelector(10, optimizer="lazy_greedy", random_state=0)
    est.partial_fit(X[:500]).partial_fit(X[500:1000])
    assert est.selection_.meta["optimizer"] == "lazy_greedy" and len(est.selection_) == 10


# ---------------------------------------------------------------- checkpoints and resume

class Stop(Exception):
    pass


def _stopper(after_rows):
    def cb(stage, done, total):
        if done >= after_rows:
            raise Stop
    return cb


def test_resume_after_an_exception_equals_one_run(X, tmp_path):
    npy = tmp_path / "x.npy"
    np.save(npy, X)
    kw = dict(reservoir=500, chunk_size=256, random_state=7, checkpoint_every=2)
    ref = coreset.select_stream(npy, 30, **kw)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(Stop):
        coreset.select_stream(npy, 30, checkpoint=ck, callback=_stopper(1800), **kw)
    assert ck.exists()
    got = coreset.select_stream(npy, 30, checkpoint=ck, **kw)
    assert got.meta["stream"]["resumed"]
    same(ref, got)


def test_resume_with_an_ivf_reservoir(tmp_path):
    """A reservoir above EXACT_RESERVOIR is searched with an IVF index; the
    checkpoint carries the trained index, so the resumed run matches."""
    from coreset._stream import EXACT_RESERVOIR

    Xb = blobs(9000, 8, 30, seed=2)
    kw = dict(reservoir=EXACT_RESERVOIR + 1000, chunk_size=1000, random_state=0, checkpoint_every=2)
    ref = coreset.select_stream(Xb, 30, **kw)
    ck = tmp_path / "ivf.ckpt"
    with pytest.raises(Stop):
        coreset.select_stream(Xb, 30, checkpoint=ck, callback=_stopper(5000), **kw)
    with np.load(ck) as z:
        assert "ivf_centroids" in z.files and "index" not in z.files  # plain arrays, never faiss bytes
    same(ref, coreset.select_stream(Xb, 30, checkpoint=ck, **kw))


def test_resume_an_iterator(X, tmp_path):
    chunks = lambda: (X[i:i + 300] for i in range(0, X.shape[0], 300))  # noqa: E731
    kw = dict(reservoir=700, random_state=0, checkpoint_every=1)
    ref = coreset.select_stream(chunks(), 20, **kw)
    ck = tmp_path / "it.ckpt"
    with pytest.raises(Stop):
        coreset.select_stream(chunks(), 20, checkpoint=ck, callback=_stopper(1500), **kw)
    same(ref, coreset.select_stream(chunks(), 20, checkpoint=ck, **kw))
    # an iterator whose first chunk matches but whose later chunks differ is refused
    ck2 = tmp_path / "it2.ckpt"
    with pytest.raises(Stop):
        coreset.select_stream(chunks(), 20, checkpoint=ck2, callback=_stopper(1500), **kw)
    other = [X[:300]] + [X[i:i + 400] for i in range(300, X.shape[0], 400)]
    with pytest.raises(CheckpointError, match="does not repeat"):
        coreset.select_stream(iter(other), 20, checkpoint=ck2, **kw)


def test_resume_after_sigkill(tmp_path):
    """A real process killed with SIGKILL mid-stream; the resumed run equals
    an uninterrupted one."""
    Xb = blobs(20000, 8, 30, seed=5)
    npy = tmp_path / "x.npy"
    np.save(npy, Xb)
    ck = tmp_path / "kill.ckpt"
    flag = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        import coreset
        def cb(stage, done, total):
            if done >= 12000:
                open({str(flag)!r}, "w").close()
                os.kill(os.getpid(), signal.SIGKILL)
        coreset.select_stream({str(npy)!r}, 40, reservoir=800, chunk_size=1000, random_state=1,
                              checkpoint={str(ck)!r}, checkpoint_every=3, callback=cb)
    """)
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert flag.exists() and ck.exists()
    kw = dict(reservoir=800, chunk_size=1000, random_state=1, checkpoint_every=3)
    got = coreset.select_stream(npy, 40, checkpoint=ck, **kw)
    assert got.meta["stream"]["resumed"]
    same(coreset.select_stream(npy, 40, **kw), got)


def test_checkpoint_of_other_input_or_settings_refused(X, tmp_path):
    npy = tmp_path / "x.npy"
    np.save(npy, X)
    ck = tmp_path / "c.ckpt"
    kw = dict(reservoir=300, chunk_size=500, random_state=0, checkpoint_every=1)
    with pytest.raises(Stop):
        coreset.select_stream(npy, 10, checkpoint=ck, callback=_stopper(1000), **kw)
    before = ck.read_bytes()
    with pytest.raises(CheckpointError, match="n_select"):
        coreset.select_stream(npy, 11, checkpoint=ck, **kw)
    with pytest.raises(CheckpointError, match="epsilon"):
        coreset.select_stream(npy, 10, checkpoint=ck, epsilon=0.2, **kw)
    other = tmp_path / "y.npy"
    Y = X.copy()
    Y[5] += 1
    np.save(other, Y)
    with pytest.raises(CheckpointError, match="another input"):
        coreset.select_stream(other, 10, checkpoint=ck, **kw)
    assert ck.read_bytes() == before  # never overwritten


def test_full_disk_keeps_the_previous_checkpoint(X, tmp_path, monkeypatch):
    """ENOSPC is simulated by making the low-level write fail (the one fault
    the tests simulate); the previous checkpoint stays as it was."""
    import coreset._checkpoint as ckpt_mod

    ck = tmp_path / "c.ckpt"
    kw = dict(reservoir=300, chunk_size=500, random_state=0, checkpoint_every=1)
    with pytest.raises(Stop):
        coreset.select_stream(X, 10, checkpoint=ck, callback=_stopper(1000), **kw)
    before = ck.read_bytes()
    real = ckpt_mod._savez

    def full(fh, **arrays):
        real(fh, **arrays)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt_mod, "_savez", full)
    with pytest.raises(CheckpointError, match="No space left on device.*previous checkpoint"):
        coreset.select_stream(X, 10, checkpoint=ck, **kw)
    assert ck.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ckpt"]  # no temporary left behind


# ---------------------------------------------------------------- bad input

def test_wrong_width_chunk_named(X):
    chunks = [X[:500], X[500:1000, :5]]
    with pytest.raises(ValidationError, match=r"chunk 1 \(rows 500 to 999\) has 5 columns"):
        coreset.select_stream(iter(chunks), 5, reservoir=100)


def test_nan_in_chunk_500_writes_nothing(tmp_path):
    """NaN in chunk 500: a clear error naming it; the checkpoint keeps the last
    good state (chunk 499's) and resuming from it hits the same error."""
    rng = np.random.default_rng(0)
    Xb = rng.standard_normal((510 * 20, 4)).astype(np.float32)
    Xb[500 * 20 + 3, 2] = np.nan
    npy = tmp_path / "nan.npy"
    np.save(npy, Xb)
    ck = tmp_path / "nan.ckpt"
    kw = dict(reservoir=200, chunk_size=20, random_state=0, checkpoint_every=100, checkpoint=ck)
    with pytest.raises(ValidationError, match=r"chunk 500 \(rows 10000 to 10019\) has a non-finite value \(nan\) at row 10003"):
        coreset.select_stream(npy, 5, **kw)
    import json

    with np.load(ck) as z:
        assert json.loads(str(z["header"]))["chunks_done"] == 500
    with pytest.raises(ValidationError, match="chunk 500"):
        coreset.select_stream(npy, 5, **kw)


def test_empty_and_too_small_inputs(tmp_path):
    with pytest.raises(ValidationError, match="empty"):
        coreset.select_stream(iter([]), 5)
    np.save(tmp_path / "e.npy", np.zeros((0, 4), np.float32))
    with pytest.raises(ValidationError, match="empty"):
        coreset.select_stream(tmp_path / "e.npy", 5)
    with pytest.raises(ValidationError, match=r"n_select=50 is larger than the 30 rows seen"):
        coreset.select_stream(blobs(30, 4, 3), 50)


@pytest.mark.parametrize("kw, match", [
    (dict(n_select=0), "n_select must be in"),
    (dict(epsilon=1.5), "epsilon must be in"),
    (dict(reservoir=0), "reservoir must be in"),
    (dict(chunk_size=0), "chunk_size must be in"),
    (dict(objective="graph_cut"), "objective='graph_cut' is not known"),
])
def test_parameters_validated(X, kw, match):
    args = dict(n_select=5)
    args.update(kw)
    with pytest.raises(ValidationError, match=match):
        coreset.select_stream(X, args.pop("n_select"), **args)


def test_zero_row_named(X):
    Z = X[:600].copy()
    Z[550] = 0
    with pytest.raises(CoresetError, match=r"chunk 1 .*row 50 is all zeros"):
        coreset.select_stream(Z, 5, chunk_size=500, reservoir=50, random_state=0)


def test_npy_reads_do_not_memory_map(tmp_path):
    """The .npy reader reads with explicit offsets: reading every chunk leaves
    no mapping of the file in this process."""
    Xb = blobs(5000, 8)
    npy = tmp_path / "m.npy"
    np.save(npy, Xb)
    from coreset.data._chunks import open_source

    src = open_source(npy, 700)
    got = np.concatenate([c for _, _, c in src.chunks()])
    assert np.array_equal(got, Xb)
    assert np.array_equal(src.read_rows(np.array([3, 4000])), Xb[[3, 4000]])
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert str(npy) not in maps.read_text()


# ---------------------------------------------------------------- CLI

def test_cli_stream(X, tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    npy = tmp_path / "x.npy"
    np.save(npy, X)
    out = tmp_path / "sel.npz"
    ck = tmp_path / "c.ckpt"
    r = CliRunner().invoke(app, ["select", str(npy), "--stream", "--chunk-size", "500", "--n-select", "20",
                                 "--checkpoint", str(ck), "--checkpoint-every", "2", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    sel = coreset.Selection.load(out)
    ref = coreset.select_stream(npy, 20, chunk_size=500, random_state=0)
    assert np.array_equal(sel.indices, ref.indices)
    assert ck.exists()
    bad = CliRunner().invoke(app, ["select", str(npy), "--stream", "--n-select", "21", "--checkpoint", str(ck),
                                   "-o", str(tmp_path / "s2.npz")])
    assert bad.exit_code == 1 and "Error:" in bad.output and not (tmp_path / "s2.npz").exists()
    usage = CliRunner().invoke(app, ["select", str(npy), "--chunk-size", "500", "--n-select", "5", "-o", str(out)])
    assert usage.exit_code == 2
    Xn = X.copy()
    Xn[2500, 1] = np.inf
    np.save(tmp_path / "inf.npy", Xn)
    nan = CliRunner().invoke(app, ["select", str(tmp_path / "inf.npy"), "--stream", "--chunk-size", "500",
                                   "--n-select", "5", "-o", str(tmp_path / "s3.npz")])
    assert nan.exit_code == 1 and "chunk 5" in nan.output and not (tmp_path / "s3.npz").exists()
