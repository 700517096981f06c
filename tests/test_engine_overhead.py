"""The per-group fast paths of the engine give what the general paths give:
``knn_to_csr`` built directly vs a dense brute-force transpose, and the
greedy optimizers run in one compiled call (no progress callback) vs in
chunks (with one)."""

import numpy as np
import pytest

import coreset
from coreset.objectives import FacilityLocation
from coreset.objectives._base import knn_to_csr
from coreset.optimizers import LazyGreedy, NaiveGreedy


def _dense_transpose(idx, sims, n):
    """Brute force: entry (j, i) = sum of the similarities of i's neighbour slots holding j."""
    D = np.zeros((n, n))
    for i in range(idx.shape[0]):
        for t in range(idx.shape[1]):
            D[idx[i, t], i] += sims[i, t]
    return D


def _knn(n, k, rng):
    idx = np.stack([np.concatenate([[i], rng.choice(np.delete(np.arange(n), i), k - 1, replace=False)])
                    for i in range(n)]).astype(np.int64)
    return idx, rng.random((n, k)).astype(np.float32)


@pytest.mark.parametrize("n,k", [(1, 1), (7, 3), (60, 5)])
def test_knn_to_csr_matches_brute_force(n, k):
    rng = np.random.default_rng(n)
    idx, sims = _knn(n, k, rng)
    sims[0, 0] = 0.0  # an explicit zero stays an entry, as scipy's COO path keeps it
    G = knn_to_csr(idx, sims)
    np.testing.assert_allclose(G.toarray(), _dense_transpose(idx, sims, n))
    assert G.nnz == n * k
    for j in range(n):  # columns ascending within each row
        cols = G.indices[G.indptr[j]:G.indptr[j + 1]]
        assert np.all(np.diff(cols) > 0)
    assert G.has_canonical_format


def test_knn_to_csr_repeated_pairs_are_summed():
    idx = np.array([[0, 1, 1], [1, 0, 2], [2, 2, 0]], np.int64)  # rows 0 and 2 repeat a neighbour
    sims = np.array([[1.0, 0.5, 0.25], [1.0, 0.3, 0.2], [1.0, 0.4, 0.1]], np.float32)
    G = knn_to_csr(idx, sims)
    np.testing.assert_allclose(G.toarray(), _dense_transpose(idx, sims, 3))


def test_knn_to_csr_beyond_uint16():
    n = 2**16 + 5  # past the radix-sort shortcut
    rng = np.random.default_rng(0)
    idx = np.stack([np.arange(n), (np.arange(n) * 7919 + 1) % n], axis=1).astype(np.int64)
    sims = rng.random((n, 2)).astype(np.float32)
    G = knn_to_csr(idx, sims)
    rows, cols = G.nonzero()
    got = {(int(r), int(c)): float(v) for r, c, v in zip(rows, cols, G.data)}
    want = {}
    for i in range(n):
        for t in range(2):
            want[(int(idx[i, t]), i)] = want.get((int(idx[i, t]), i), 0.0) + float(sims[i, t])
    assert got.keys() == want.keys()
    assert all(abs(got[key] - want[key]) < 1e-6 for key in want)


@pytest.mark.parametrize("opt", [LazyGreedy, NaiveGreedy])
def test_greedy_one_call_equals_chunked(opt):
    rng = np.random.default_rng(3)
    idx, sims = _knn(300, 8, rng)
    calls = []
    a_idx, a_gain = opt().maximize(FacilityLocation.from_knn(idx, sims), 120)  # no callback: one call
    b_idx, b_gain = opt().maximize(FacilityLocation.from_knn(idx, sims), 120,
                                   callback=lambda *a: calls.append(a))  # chunks of 2 picks
    assert len(calls) > 50
    np.testing.assert_array_equal(a_idx, b_idx)
    np.testing.assert_array_equal(a_gain, b_gain)


def test_class_budget_select_same_with_and_without_callback():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = np.minimum(rng.zipf(1.6, 400) - 1, 7)
    kw = dict(n_select=90, y=y, class_budget="tempered", min_per_class=1, metric="euclidean", n_neighbors=5,
              random_state=0)
    events = []
    a = coreset.select(X, **kw)
    b = coreset.select(X, callback=lambda *e: events.append(e), **kw)
    assert events
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.gains, b.gains)
    assert a.objective == b.objective
