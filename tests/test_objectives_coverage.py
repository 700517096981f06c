"""Saturated coverage and sum redundancy: apricot as a live oracle, brute
force on tiny inputs, dense == kNN(k = N), naive == lazy, torch == numba."""

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from coreset._registry import OBJECTIVES
from coreset.exceptions import ValidationError
from coreset.objectives import Data, Objective, SaturatedCoverage, SumRedundancy
from coreset.optimizers import LazyGreedy, NaiveGreedy
from coreset.similarity import dense_similarity, knn_graph


# -------------------------------------------------------------- independent formulas
def sc_numpy(S, A, alpha):
    """sum_i min(sum_{j in A} S[j, i], alpha * sum_{j in V} S[j, i])."""
    S = np.asarray(S.todense() if sp.issparse(S) else S, dtype=np.float64)
    cov = S[list(A)].sum(0) if len(A) else np.zeros(S.shape[0])
    return float(np.minimum(cov, alpha * S.sum(0)).sum())


def sr_numpy(S, A):
    """sum_{a, b in V} S[a, b] - sum_{a, b in A} S[a, b]."""
    S = np.asarray(S.todense() if sp.issparse(S) else S, dtype=np.float64)
    A = list(A)
    return float(S.sum() - S[np.ix_(A, A)].sum())


# -------------------------------------------------------------- data
def _digits(n=400):
    from sklearn.datasets import load_digits

    return load_digits().data[:n].astype(np.float64)


def _sym_knn(X, k):
    """A symmetric sparse similarity (the kNN graph or its transpose, whichever
    is larger): the same matrix is valid under either row convention."""
    idx, sims = knn_graph(X, k)
    n = X.shape[0]
    G = sp.csr_matrix((sims.ravel().astype(np.float64), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    G = G.maximum(G.T).tocsr()
    G.sort_indices()
    G.indices, G.indptr = G.indices.astype(np.int32), G.indptr.astype(np.int32)
    return G


def _small_S(n, seed, symmetric=True):
    rng = np.random.default_rng(seed)
    S = rng.random((n, n)) * (rng.random((n, n)) < 0.7)
    return (S + S.T) / 2 if symmetric else S


# ============================================================== saturated coverage
def test_sc_registered_and_configured_by_default():
    cls = OBJECTIVES.get("saturated_coverage")
    assert cls is SaturatedCoverage
    f = cls()
    assert not f.is_bound and f.inputs == "similarity" and f.monotone and f.supports_sparse
    assert f.get_params() == {"alpha": 0.1}
    S = _small_S(12, 0)
    g = f.bind(Data(features=np.ones((12, 2)), similarity=S))
    assert isinstance(g, Objective) and g.n == 12
    assert g.evaluate([1, 5]) == pytest.approx(sc_numpy(S, [1, 5], 0.1))


def test_sc_hand_computed_caps_are_column_sums():
    # row = candidate, column = point; column sums 1.5, 2.0, 1.0 -> caps (alpha=.5) .75, 1, .5
    S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.5, 0.8]])
    f = SaturatedCoverage(S, alpha=0.5)
    np.testing.assert_allclose(f.cap, [0.75, 1.0, 0.5])
    np.testing.assert_allclose(f.gains([0, 1, 2]), [0.75 + 0.5, 0.5 + 1.0 + 0.2, 0.5 + 0.5])
    assert f.update(1) == pytest.approx(1.7)
    np.testing.assert_allclose(f.remaining, [0.25, 0.0, 0.3])
    np.testing.assert_allclose(f.gains([0, 2]), [0.25, 0.3])
    assert f.evaluate([1, 2]) == pytest.approx(0.5 + 1.0 + 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_sc_matches_apricot_naive(alpha, form):
    apricot = pytest.importorskip("apricot")
    X = _digits()
    S = dense_similarity(X) if form == "dense" else _sym_knn(X, 20)
    f = SaturatedCoverage(S, alpha=alpha)
    idx, gains = NaiveGreedy().maximize(f, 30)
    S_peer = S.astype(np.float64)
    m = apricot.SaturatedCoverageSelection(30, metric="precomputed", alpha=alpha, optimizer="naive").fit(S_peer)
    np.testing.assert_array_equal(idx, m.ranking)
    np.testing.assert_allclose(gains, m.gains, atol=1e-4, rtol=0)
    if alpha < 0.3:
        assert (f.remaining == 0).sum() > 10  # the saturation is really exercised


@pytest.mark.parametrize("symmetric", [True, False])
def test_sc_brute_force_gains_and_greedy_bound(symmetric):
    rng = np.random.default_rng(5)
    n, k = 9, 3
    S = _small_S(n, 5, symmetric)
    for alpha in (0.15, 0.4, 1.0):
        f = SaturatedCoverage(S, alpha=alpha)
        A = []
        for j in rng.permutation(n)[:6]:
            rest = [i for i in range(n) if i not in A]
            expect = [sc_numpy(S, A + [i], alpha) - sc_numpy(S, A, alpha) for i in rest]
            np.testing.assert_allclose(f.gains(rest), expect, rtol=1e-12, atol=1e-12)
            f.update(int(j))
            A.append(int(j))
            assert f.value == pytest.approx(sc_numpy(S, A, alpha), rel=1e-12)
            assert f.evaluate(A) == pytest.approx(sc_numpy(S, A, alpha), rel=1e-12)
        idx, _ = NaiveGreedy().maximize(SaturatedCoverage(S, alpha=alpha), k)
        opt = max(sc_numpy(S, c, alpha) for c in itertools.combinations(range(n), k))
        assert sc_numpy(S, idx, alpha) >= (1 - 1 / math.e) * opt - 1e-12


def test_sc_dense_equals_knn_with_k_n_and_naive_equals_lazy():
    X = np.random.default_rng(0).standard_normal((150, 8)).astype(np.float32)
    S = dense_similarity(X)
    idx, sims = knn_graph(X, 150)
    naive = NaiveGreedy().maximize(SaturatedCoverage(S, alpha=0.2), 40)
    lazy = LazyGreedy().maximize(SaturatedCoverage(S, alpha=0.2), 40)
    np.testing.assert_array_equal(naive[0], lazy[0])
    np.testing.assert_array_equal(naive[1], lazy[1])  # exactly: same kernel, stale gains are upper bounds
    # the kNN graph with k = N holds the same similarities up to float32 rounding
    # (computed by another routine): same picks, gains to ~1e-7
    for opt in (NaiveGreedy(), LazyGreedy()):
        knn = opt.maximize(SaturatedCoverage.from_knn(idx, sims, alpha=0.2), 40)
        np.testing.assert_array_equal(naive[0], knn[0])
        np.testing.assert_allclose(naive[1], knn[1], rtol=1e-6, atol=1e-6)
    # the sparse code path on exactly the dense values: same picks, gains to rounding
    G = SaturatedCoverage.from_knn(idx, sims, alpha=0.2)._arrays.csr()
    a = NaiveGreedy().maximize(SaturatedCoverage(G.toarray(), alpha=0.2), 40)
    b = LazyGreedy().maximize(SaturatedCoverage(G, alpha=0.2), 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_sc_torch_cpu_matches_numba(form):
    pytest.importorskip("torch")
    X = np.random.default_rng(1).standard_normal((300, 6)).astype(np.float32)
    if form == "dense":
        make = lambda: SaturatedCoverage(dense_similarity(X), alpha=0.03)  # noqa: E731
    else:
        idx, sims = knn_graph(X, 15)
        make = lambda: SaturatedCoverage.from_knn(idx, sims, alpha=0.2)  # noqa: E731
    a = NaiveGreedy().maximize(make(), 40)
    t = make().to_torch("cpu")
    b = NaiveGreedy().maximize(t, 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9)
    assert t.value == pytest.approx(a[1].sum(), rel=1e-9)


@pytest.mark.parametrize("alpha", [0, -0.1, float("nan"), "a"])
def test_sc_rejects_bad_alpha(alpha):
    with pytest.raises(ValidationError, match="alpha must be"):
        SaturatedCoverage(alpha=alpha)


def test_sc_rejects_negative_similarity():
    with pytest.raises(ValidationError, match="non-negative for saturated coverage"):
        SaturatedCoverage(-np.eye(3))


# ============================================================== sum redundancy
def test_sr_registered_and_configured_by_default():
    cls = OBJECTIVES.get("sum_redundancy")
    assert cls is SumRedundancy
    f = cls()
    assert not f.is_bound and f.inputs == "similarity" and not f.monotone and f.supports_sparse
    assert f.get_params() == {}
    S = _small_S(10, 1)
    g = f.bind(Data(similarity=S))
    assert isinstance(g, Objective) and g.n == 10
    assert g.value == pytest.approx(S.sum())
    assert g.evaluate([2, 7]) == pytest.approx(sr_numpy(S, [2, 7]))


def test_sr_hand_computed():
    S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.6]])
    f = SumRedundancy(S)
    assert f.value == pytest.approx(4.0)
    np.testing.assert_allclose(f.gains([0, 1, 2]), [-1.0, -1.0, -0.6])
    assert f.update(2) == pytest.approx(-0.6)
    np.testing.assert_allclose(f.gains([0, 1]), [-1.0, -1.4])
    assert f.value == pytest.approx(3.4)
    assert f.evaluate([0, 2]) == pytest.approx(3.4 - 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_sr_matches_apricot_naive(form):
    apricot = pytest.importorskip("apricot")
    X = _digits()
    S = dense_similarity(X) if form == "dense" else _sym_knn(X, 20)
    idx, gains = NaiveGreedy().maximize(SumRedundancy(S), 30)
    m = apricot.SumRedundancySelection(30, metric="precomputed", optimizer="naive").fit(S.astype(np.float64))
    np.testing.assert_array_equal(idx, m.ranking)
    np.testing.assert_allclose(gains, m.gains, atol=1e-4, rtol=0)


@pytest.mark.parametrize("symmetric", [True, False])
def test_sr_brute_force_gains_submodular_not_monotone(symmetric):
    rng = np.random.default_rng(7)
    n = 8
    S = _small_S(n, 7, symmetric)
    f = SumRedundancy(S)
    A = []
    for j in rng.permutation(n):
        rest = [i for i in range(n) if i not in A]
        expect = [sr_numpy(S, A + [i]) - sr_numpy(S, A) for i in rest]
        np.testing.assert_allclose(f.gains(rest), expect, rtol=1e-12, atol=1e-12)
        f.update(int(j))
        A.append(int(j))
        assert f.value == pytest.approx(sr_numpy(S, A), rel=1e-12)
    assert f.value == pytest.approx(0.0, abs=1e-12)  # f(V) = 0 < f(empty): not monotone
    # diminishing returns on every pair A subset B (brute force over subsets)
    for B in itertools.chain.from_iterable(itertools.combinations(range(n), r) for r in range(1, 4)):
        for r in range(len(B)):
            for Asub in itertools.combinations(B, r):
                for i in set(range(n)) - set(B):
                    gA = sr_numpy(S, list(Asub) + [i]) - sr_numpy(S, Asub)
                    gB = sr_numpy(S, list(B) + [i]) - sr_numpy(S, B)
                    assert gA >= gB - 1e-12


def test_sr_dense_equals_knn_with_k_n_and_naive_equals_lazy():
    X = np.random.default_rng(0).standard_normal((150, 8)).astype(np.float32)
    S = dense_similarity(X)
    idx, sims = knn_graph(X, 150)
    naive = NaiveGreedy().maximize(SumRedundancy(S), 40)
    lazy = LazyGreedy().maximize(SumRedundancy(S), 40)
    np.testing.assert_array_equal(naive[0], lazy[0])
    np.testing.assert_array_equal(naive[1], lazy[1])  # exactly: same kernel, stale gains are upper bounds
    # the kNN graph with k = N holds the same similarities up to float32 rounding
    # (computed by another routine): same picks, gains to ~1e-7
    for opt in (NaiveGreedy(), LazyGreedy()):
        knn = opt.maximize(SumRedundancy.from_knn(idx, sims), 40)
        np.testing.assert_array_equal(naive[0], knn[0])
        np.testing.assert_allclose(naive[1], knn[1], rtol=1e-6, atol=1e-6)


def test_sr_asymmetric_dense_equals_sparse_bit_for_bit():
    S = _small_S(60, 3, symmetric=False).astype(np.float32)
    a = NaiveGreedy().maximize(SumRedundancy(S), 25)
    b = LazyGreedy().maximize(SumRedundancy(sp.csr_matrix(S)), 25)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_sr_torch_cpu_matches_numba(form):
    pytest.importorskip("torch")
    X = np.random.default_rng(2).standard_normal((300, 6)).astype(np.float32)
    if form == "dense":
        make = lambda: SumRedundancy(dense_similarity(X))  # noqa: E731
    else:
        idx, sims = knn_graph(X, 15)
        make = lambda: SumRedundancy.from_knn(idx, sims)  # noqa: E731
    a = NaiveGreedy().maximize(make(), 40)
    t = make().to_torch("cpu")
    b = NaiveGreedy().maximize(t, 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)
    ref = make()
    assert t.value == pytest.approx(ref.evaluate(a[0]), rel=1e-9)
