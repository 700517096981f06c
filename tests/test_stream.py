"""Streaming selection: select_stream, the sieve kernel, checkpoints, bad input.

Oracles: a reference Sieve-Streaming++ written here from the paper, sharing no
code with the library's rules or kernels (``oracle_stream``), against the
compiled sieve state and ``select_stream`` (several chunk sizes, checkpoint
and resume: identical picks and weights); the compiled sieve against the
in-memory SieveStreaming optimizer; a hand-checked Sieve-Streaming++ run; an
interrupted run (callback exception, SIGKILLed subprocess) resumed equals an
uninterrupted one exactly; the stream's value against offline greedy on the
same objective.
"""

from __future__ import annotations

import errno
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import coreset
from coreset._stream import CheckpointError
from coreset.optimizers._sieve_state import EMPTY, SieveState, normalise
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
    sv = SieveState(12, 0.2, n_neighbors=n).start(Xs, np.arange(n))
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
    from coreset.optimizers._sieve_kernels import window

    assert window(1.0, 0.0, 1, 1.0) == (-1, 0)
    assert window(np.sqrt(2), 1.0, 1, 1.0) == (0, 0)
    R = np.eye(4, dtype=np.float32)
    sv = SieveState(1, 1.0, n_neighbors=4).start(R, np.arange(4))
    sv.feed(normalise(np.array([[1, 0, 0, 0]], np.float32), "A"), 0)
    slots = sv.slots
    live = sorted(int(e) for e in slots.expo if e != EMPTY)
    assert live == [-1, 0] and list(slots.size[slots.expo != EMPTY]) == [1, 1]
    sv.feed(normalise(np.array([[0, 1, 1, 0]], np.float32), "B"), 1)
    assert sorted(int(e) for e in slots.expo if e != EMPTY) == [0]
    res = sv.finish(2)
    assert list(res["indices"]) == [0] and res["info"]["candidates"] == 1
    assert res["info"]["reservoir_value"] == pytest.approx(1.0)
    assert res["weights"].sum() == pytest.approx(2.0)


# ---------------------------------------------------------------- the reference sieve (an oracle)

def _seq_sum(v) -> float:
    """Left-to-right float64 sum (np.cumsum is sequential; np.sum is pairwise)."""
    v = np.asarray(v, np.float64)
    return float(np.cumsum(v)[-1]) if v.size else 0.0


def oracle_sieve(nbr, sims, k, eps, snapshots=()):
    """Sieve-Streaming++ (Kazemi et al. 2019) written from the paper, one row
    at a time, sharing no code with coreset's rules or kernels. Facility
    location over ``r`` ground rows, each stream row given by its neighbour
    lists; a sieve is ``{exponent: [members, coverage (float32), value]}``.
    Returns the live sieves and how many rows any sieve ever accepted; with
    ``snapshots`` (row counts), a list of ``{exponent: (members, value)}``
    taken after that many rows instead of the sieves."""
    base = math.log1p(eps)
    delta = lb = 0.0
    sieves, accepted, taken = {}, set(), []
    for t in range(nbr.shape[0]):
        if t in snapshots:
            taken.append({e: (list(v[0]), v[2]) for e, v in sieves.items()})
        s = sims[t]
        delta = max(delta, _seq_sum(s[s > 0]))
        if delta <= 0:
            continue
        lo = math.ceil(math.log(max(delta, lb) / (2 * k)) / base - 1e-12)
        hi = math.floor(math.log(delta) / base + 1e-12)
        sieves = {e: v for e, v in sieves.items() if e >= lo}
        for e in range(lo, hi + 1):
            sieves.setdefault(e, [[], None, 0.0])
        for e in range(lo, hi + 1):
            members, cover, value = sieves[e]
            if len(members) >= k:
                continue
            if cover is None:
                cover = sieves[e][1] = np.zeros(int(nbr.max()) + 1 if nbr.size else 1, np.float32)
            diff = (s - cover[nbr[t]]).astype(np.float32)  # float32 coverage, as the state keeps it
            gain = _seq_sum(diff[diff > 0])
            if gain > 0 and gain >= (1.0 + eps) ** e:
                np.maximum.at(cover, nbr[t], s)
                members.append(t)
                accepted.add(t)
                sieves[e][2] = value + gain
                lb = max(lb, value + gain)
    if snapshots:
        return taken + [{e: (list(v[0]), v[2]) for e, v in sieves.items()}]
    return sieves, len(accepted)


def oracle_finish(nbr, sims, k, eps, sieves, r):
    """Greedy over the kept candidates (row order, ties to the earlier) vs the
    best full sieve (the lowest slot ``e % T`` on ties; the sieve on ties with
    greedy); returns (rows picked, reservoir value)."""
    T = int(math.floor(math.log(2 * k) / math.log1p(eps))) + 3
    cands = sorted(set(range(min(k, nbr.shape[0]))) | {j for v in sieves.values() for j in v[0]})
    cur = np.zeros(r, np.float64)
    picks, g_value = [], 0.0
    left = list(cands)
    while left and len(picks) < k:
        gains = []
        for j in left:
            d = sims[j].astype(np.float64) - cur[nbr[j]]
            gains.append(_seq_sum(d[d > 0]))
        t = int(np.argmax(gains))  # the first maximum
        j = left.pop(t)
        np.maximum.at(cur, nbr[j], sims[j].astype(np.float64))
        picks.append(j)
        g_value += gains[t]
    best = None
    for e in sorted(sieves, key=lambda e: e % T):
        if best is None or sieves[e][2] > sieves[best][2]:
            best = e
    if best is not None and len(sieves[best][0]) == k and sieves[best][2] >= g_value:
        return list(sieves[best][0]), sieves[best][2]
    return picks, g_value


def oracle_stream(X, k, *, reservoir, n_neighbors, epsilon=0.1, seed=0, chunk_size):
    """select_stream's result computed by the reference sieve: the reservoir
    drawn the documented way (sorted uniform rows, seeded), each chunk's
    neighbours by an exact FAISS search (the search is not the sieve), the
    weights by each reservoir row's most similar pick."""
    import faiss

    n = X.shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(reservoir, n), replace=False))
    U = (X / np.linalg.norm(X, axis=1)[:, None]).astype(np.float32)
    R = np.ascontiguousarray(U[rows])
    ix = faiss.IndexFlatIP(X.shape[1])
    ix.add(R)
    m = min(n_neighbors, R.shape[0])
    parts = [ix.search(np.ascontiguousarray(U[a:a + chunk_size]), m) for a in range(0, n, chunk_size)]
    sims = np.concatenate([p[0] for p in parts])
    nbr = np.concatenate([p[1] for p in parts]).astype(np.int64)
    sieves, _ = oracle_sieve(nbr, sims, k, epsilon)
    picks, value = oracle_finish(nbr, sims, k, epsilon, sieves, R.shape[0])
    P = faiss.IndexFlatIP(X.shape[1])
    P.add(np.ascontiguousarray(U[picks]))
    nearest = P.search(R, 1)[1][:, 0]
    weights = np.bincount(nearest, minlength=len(picks)) * (n / R.shape[0])
    return np.array(picks, np.int64), weights, value * n / R.shape[0]


def _same_as_oracle(sel, want):
    idx, weights, objective = want
    assert np.array_equal(sel.indices, idx)
    assert np.array_equal(sel.weights, weights)
    assert sel.objective == pytest.approx(objective, rel=1e-9)


@pytest.mark.parametrize("chunk_size", [256, 1000, 3000])
def test_select_stream_equals_the_reference_sieve(X, chunk_size):
    """Whatever the chunking, the stream makes the reference sieve's picks
    with its weights (the behaviour recorded before the sieve state was
    rebuilt: identical)."""
    kw = dict(reservoir=400, n_neighbors=16, epsilon=0.1)
    want = oracle_stream(X, 25, seed=3, chunk_size=chunk_size, **kw)
    _same_as_oracle(coreset.select_stream(X, 25, chunk_size=chunk_size, random_state=3, **kw), want)


def test_resumed_stream_equals_the_reference_sieve(X, tmp_path):
    kw = dict(reservoir=500, n_neighbors=32, epsilon=0.2, chunk_size=256)
    want = oracle_stream(X, 30, seed=7, **kw)
    ck = tmp_path / "run.ckpt"
    with pytest.raises(Stop):
        coreset.select_stream(X, 30, checkpoint=ck, checkpoint_every=2, callback=_stopper(1800), random_state=7,
                              **kw)
    got = coreset.select_stream(X, 30, checkpoint=ck, checkpoint_every=2, random_state=7, **kw)
    assert got.meta["stream"]["resumed"]
    _same_as_oracle(got, want)


def test_sieve_state_equals_the_reference_through_pool_compaction():
    """Synthetic neighbour lists whose singleton values keep growing: sieves
    keep starting and dropping, the candidate pool fills and is compacted
    (``_make_room``) many times; the live sieves and the picks stay the
    reference's."""
    rng = np.random.default_rng(4)
    r, m, n, k, eps = 300, 8, 8000, 5, 0.1
    nbr = np.stack([rng.choice(r, m, replace=False) for _ in range(n)]).astype(np.int64)
    sims = (rng.random((n, m)) * np.exp(np.linspace(-2, 80, n))[:, None]).astype(np.float32)
    sv = SieveState(k, eps, n_neighbors=m).start(rng.standard_normal((r, 4)).astype(np.float32), np.arange(r))
    start_cap = sv.pool.row.shape[0]
    sieves, n_accepted = oracle_sieve(nbr, sims, k, eps)
    assert n_accepted > start_cap  # more than the pool holds: it is compacted
    want = oracle_sieve(nbr, sims, k, eps, snapshots=range(700, n, 700))
    for i, a in enumerate(range(0, n, 700)):
        sv.feed_neighbours(nbr[a:a + 700], sims[a:a + 700], a, np.zeros((min(700, n - a), 4), np.float32))
        s = sv.slots
        assert all((s.members[q, :s.size[q]] < sv.pool.n).all() for q in s.live())  # used pool slots only
        got = {int(s.expo[q]): (sv.pool.row[s.members[q, :s.size[q]]].tolist(), float(s.val[q])) for q in s.live()}
        assert got == want[i], f"after {a + 700} rows"
    assert sv.pool.row.shape[0] == start_cap  # compacted, never grown: what the sieves hold fits
    res = sv.finish(n)
    picks, value = oracle_finish(nbr, sims, k, eps, sieves, r)
    assert res["indices"].tolist() == picks
    assert res["info"]["reservoir_value"] == pytest.approx(value, rel=1e-9)


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
    from coreset.optimizers._sieve_state import EXACT_RESERVOIR

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


def test_stream_meta_from_the_one_builder(X, tmp_path):
    """The stream's meta has every key every selection has (the one builder,
    coreset._provenance.build_meta), the input's ``sha256:`` fingerprint and
    the library version under the documented name."""
    from coreset._provenance import COMMON_KEYS
    from coreset.data import input_fingerprint

    npy = tmp_path / "x.npy"
    np.save(npy, X)
    sel = coreset.select_stream(npy, 12, chunk_size=700, reservoir=300, random_state=0)
    assert set(COMMON_KEYS) <= set(sel.meta)
    assert sel.meta["input_fingerprint"] == input_fingerprint(X) and "version" not in sel.meta
    assert sel.meta["library_version"] == coreset.__version__ and sel.meta["n_select"] == 12
    assert sel.meta["optimizer"] == "sieve_streaming" and sel.meta["n_features"] == X.shape[1]
    assert sel.meta["stream"]["chunks"] == -(-X.shape[0] // 700)


def test_defaults_are_typed_once():
    """select_stream, SieveStreaming and the CLI read the same defaults."""
    import inspect

    from coreset._defaults import CHECKPOINT_EVERY, CHUNK_SIZE, RESERVOIR, STREAM_NEIGHBORS
    from coreset.cli._select import STREAM
    from coreset.optimizers import SieveStreaming

    params = inspect.signature(coreset.select_stream).parameters
    cli = {o.name: o.default for o in STREAM}
    for name, value in (("chunk_size", CHUNK_SIZE), ("reservoir", RESERVOIR), ("checkpoint_every", CHECKPOINT_EVERY)):
        assert params[name].default == cli[name] == value
    assert params["n_neighbors"].default == STREAM_NEIGHBORS
    assert SieveStreaming().check()[1:] == (RESERVOIR, STREAM_NEIGHBORS)


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
