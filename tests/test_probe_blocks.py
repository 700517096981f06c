"""The label filter's probe, fast path (docs/benchmarks.md, "Label filter and CCS overhead"):
unpadded prototype products in blocks run side by side and the one-pass numba kernel after
them, checked against brute force on the probe's own prototypes; the classes' k-means side by
side against one class at a time."""

import numpy as np
import pytest

from coreset.data import make_zipf
from coreset.selectors import _label_noise as L


def _codes(y):
    return np.unique(y, return_inverse=True)[1].astype(np.int64).ravel()


def _brute_probe(X, codes, n_classes, sums, counts, owner, row_proto):
    """Row by row, in float64: cosine to every prototype, the row's own prototype taken
    without it (a prototype of one row: -2), the nearest prototype, each class's best
    cosine, the own class's rank, and the votes of the nearest prototype's cell."""
    Z = X.astype(np.float64)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n = Z.shape[0]
    near = np.empty(n, np.int64)
    per_class = np.empty((n, n_classes))
    for i in range(n):
        cos = np.empty(owner.size)
        for p in range(owner.size):
            s = sums[p] - (Z[i] if p == row_proto[i] else 0.0)
            if p == row_proto[i] and counts[p] == 1:
                cos[p] = -2.0
            else:
                cos[p] = Z[i] @ s / np.linalg.norm(s)
        near[i] = np.argmax(cos)
        per_class[i] = [cos[owner == c].max() for c in range(n_classes)]
    rank = 1 + (per_class > per_class[np.arange(n), codes][:, None]).sum(axis=1)
    own = np.array([np.sum((near == near[i]) & (codes == codes[i])) - 1 for i in range(n)], float)
    other = np.array([max([np.sum((near == near[i]) & (codes == c)) for c in range(n_classes) if c != codes[i]])
                      for i in range(n)], float)
    return near, per_class, rank, own, other


@pytest.mark.parametrize("n_classes", [3, 7])  # 7 (+1): classes with 1 to 4 prototypes (unpadded columns)
def test_probe_matches_brute_force_on_its_prototypes(n_classes, monkeypatch):
    d = make_zipf(400, 8, n_classes, s=1.5, n_modes=3, class_sep=0.5, random_state=n_classes, label_noise=0.1)
    y = d.y.copy()
    y[0] = y.max() + 1  # a class of one row: its only prototype, without the row, is empty (-2)
    codes, n_classes = _codes(y), n_classes + 1
    monkeypatch.setattr(L, "BATCH_ROWS", 64)  # many blocks, run side by side
    monkeypatch.setattr(L, "ROWS_PER_PROTOTYPE", 16)
    own, other, scores, rank = L._probe(d.X, codes, n_classes, np.random.default_rng(3), keep_scores=True)
    Z, _ = L._unit_rows(d.X)
    sums, counts, owner, row_proto = L._prototypes(Z, codes, n_classes, np.random.default_rng(3))
    per_class_counts = np.bincount(owner, minlength=n_classes)
    if n_classes == 8:
        assert per_class_counts.min() < per_class_counts.max()  # the unpadded case is the one tested
    assert (counts == 1).any()
    near_b, per_class_b, rank_b, own_b, other_b = _brute_probe(d.X, codes, n_classes, sums, counts, owner, row_proto)
    np.testing.assert_allclose(scores, per_class_b, atol=1e-5)
    np.testing.assert_array_equal(rank, rank_b)
    np.testing.assert_array_equal(own, own_b)
    np.testing.assert_array_equal(other, other_b)


def _serial_prototypes(Z, codes, n_classes, rng):
    """The probe's prototypes one class after another (its first version)."""
    import math

    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_classes + 1))
    row_proto = np.empty(codes.size, np.int64)
    sums, counts, owner = [], [], []
    for c in range(n_classes):
        rows = order[bounds[c]:bounds[c + 1]]
        Zc = Z[rows]
        m = min(L.MAX_PROTOTYPES, max(1, math.ceil(rows.size / L.ROWS_PER_PROTOTYPE)))
        assign = np.zeros(rows.size, np.int64)
        if m > 1:
            cent = Zc[rng.choice(rows.size, m, replace=False)]
            for _ in range(L.KMEANS_ITERATIONS):
                a = np.argmax(Zc @ cent.T, axis=1)
                s = np.zeros((m, Zc.shape[1]), np.float64)
                np.add.at(s, a, Zc)
                norm = np.linalg.norm(s, axis=1)
                live = norm > 0
                cent[live] = (s[live] / norm[live, None]).astype(np.float32)
            assign = np.argmax(Zc @ cent.T, axis=1)
        used, assign = np.unique(assign, return_inverse=True)
        s = np.zeros((used.size, Zc.shape[1]), np.float64)
        np.add.at(s, assign, Zc.astype(np.float64))
        sums.append(s)
        counts.append(np.bincount(assign, minlength=used.size))
        row_proto[rows] = len(owner) + assign
        owner.extend([c] * used.size)
    return np.concatenate(sums), np.concatenate(counts), np.asarray(owner, np.int64), row_proto


@pytest.mark.parametrize("batch_rows", [1, 300, 10_000])  # one class per task, a few, all in one
def test_prototypes_side_by_side_equal_one_class_at_a_time(batch_rows, monkeypatch):
    d = make_zipf(3000, 8, 9, s=1.2, n_modes=3, class_sep=0.5, random_state=1)
    codes = _codes(d.y)
    Z, _ = L._unit_rows(d.X)
    monkeypatch.setattr(L, "BATCH_ROWS", batch_rows)
    got = L._prototypes(Z, codes, 9, np.random.default_rng(5))
    ref = _serial_prototypes(Z, codes, 9, np.random.default_rng(5))
    for name, u, v in zip(("sums", "counts", "owner", "row_proto"), got, ref):
        if name == "sums":
            np.testing.assert_allclose(u, v, atol=1e-4)
        else:
            np.testing.assert_array_equal(u, v, err_msg=name)
    assert np.bincount(got[2]).max() == L.MAX_PROTOTYPES  # k-means ran (classes of several prototypes)


@pytest.mark.parametrize("sizes", [[4, 4, 4], [1, 3, 2, 1, 4]])
def test_kernel_matches_numpy_with_ties(sizes):
    """The one-pass kernel against numpy's argmax (first of equal values), per-class max and
    rank, on values drawn from a few levels so that ties are everywhere."""
    from coreset.selectors._probe_kernel import nearest_prototypes

    rng = np.random.default_rng(0)
    n, first = 500, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    SR = rng.integers(-2, 3, size=(n, sum(sizes))).astype(np.float32) / 2
    codes = rng.integers(0, len(sizes), n).astype(np.int64)
    near, rank = np.empty(n, np.int64), np.empty(n, np.int64)
    per_class = np.empty((n, len(sizes)), np.float32)
    nearest_prototypes(SR, first, codes, near, rank, per_class)
    ref_pc = np.maximum.reduceat(SR, first, axis=1)
    np.testing.assert_array_equal(near, np.argmax(SR, axis=1))
    np.testing.assert_array_equal(per_class, ref_pc)
    np.testing.assert_array_equal(rank, 1 + (ref_pc > ref_pc[np.arange(n), codes][:, None]).sum(axis=1))
    assert (rank > 1).any() and (rank == 1).any()
