"""Feature-based functions: apricot and submodlib as live oracles, brute
force on tiny inputs, dense == CSR, naive == lazy, torch == numba, validation."""

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from coreset._registry import OBJECTIVES
from coreset.exceptions import ValidationError
from coreset.objectives import Data, FeatureBased, Objective
from coreset.optimizers import LazyGreedy, NaiveGreedy

PHI = {"sqrt": np.sqrt, "log": np.log1p, "sigmoid": lambda x: x / (1.0 + x)}


def f_numpy(X, S, phi, w=None):
    """The formula, written independently: sum_u w_u * phi(sum_{j in S} X[j, u])."""
    X = np.asarray(X.todense() if sp.issparse(X) else X, dtype=np.float64)
    tot = X[list(S)].sum(0) if len(S) else np.zeros(X.shape[1])
    w = np.ones(X.shape[1]) if w is None else np.asarray(w, np.float64)
    return float((w * PHI[phi](tot)).sum())


def _digits(n=400):
    from sklearn.datasets import load_digits

    return load_digits().data[:n].astype(np.float64)


def _sparse_X(n=300, d=80, density=0.08, seed=0):
    rng = np.random.default_rng(seed)
    M = sp.random(n, d, density=density, random_state=seed, format="csr",
                  data_rvs=lambda k: rng.exponential(1.0, k)).astype(np.float64)
    M.indices = M.indices.astype(np.int32)
    M.indptr = M.indptr.astype(np.int32)
    return M


def test_registered_and_configured_by_default():
    cls = OBJECTIVES.get("feature_based")
    assert cls is FeatureBased
    f = cls()
    assert not f.is_bound and f.inputs == "features" and f.monotone
    assert not f.supports_sparse  # no kNN-graph form (sparse features are accepted: see below)
    assert f.get_params() == {"concave_func": "sqrt", "weights": None}
    X = np.abs(np.random.default_rng(0).standard_normal((20, 4)))
    g = f.bind(Data(features=X, similarity=np.eye(20)))
    assert isinstance(g, Objective) and g.n == 20
    assert g.evaluate([0, 3]) == pytest.approx(f_numpy(X, [0, 3], "sqrt"))


@pytest.mark.parametrize("phi", ["sqrt", "log", "sigmoid"])
def test_hand_computed(phi):
    X = np.array([[1.0, 0.0, 3.0], [0.0, 2.0, 1.0], [4.0, 0.0, 0.0]])
    p = PHI[phi]
    f = FeatureBased(X, concave_func=phi)
    np.testing.assert_allclose(f.gains([0, 1, 2]), [p(1.0) + p(3.0), p(2.0) + p(1.0), p(4.0)])
    f.update(0)
    assert f.value == pytest.approx(p(1.0) + p(3.0))
    np.testing.assert_allclose(f.gains([1, 2]), [p(2.0) + p(4.0) - p(3.0), p(5.0) - p(1.0)])
    np.testing.assert_array_equal(f.cur, [1.0, 0.0, 3.0])


# apricot 0.6.1 cannot run sparse + sigmoid: its sigmoid is compiled for arrays
# only and its sparse kernel calls it on scalars (numba TypingError); the dense
# == CSR test below covers our sparse sigmoid.
@pytest.mark.slow
@pytest.mark.parametrize("phi, form", [(p, f) for f in ("dense", "sparse") for p in ("sqrt", "log", "sigmoid")
                                       if (p, f) != ("sigmoid", "sparse")])
def test_matches_apricot_naive(phi, form):
    apricot = pytest.importorskip("apricot")
    X = _digits() if form == "dense" else _sparse_X()
    k = 30
    idx, gains = NaiveGreedy().maximize(FeatureBased(X, concave_func=phi), k)
    m = apricot.FeatureBasedSelection(k, concave_func=phi, optimizer="naive").fit(X)
    np.testing.assert_array_equal(idx, m.ranking)
    np.testing.assert_allclose(gains, m.gains, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_integer_weights_equal_repeated_columns_in_apricot():
    """weights w (integers) == the feature repeated w times: an independent
    oracle for the weights, which apricot has no parameter for."""
    apricot = pytest.importorskip("apricot")
    X = _digits(300)
    w = np.random.default_rng(1).integers(0, 4, X.shape[1])
    Xrep = np.repeat(X, w, axis=1)
    idx, gains = NaiveGreedy().maximize(FeatureBased(X, concave_func="log", weights=w), 25)
    m = apricot.FeatureBasedSelection(25, concave_func="log", optimizer="naive").fit(Xrep)
    np.testing.assert_array_equal(idx, m.ranking)
    np.testing.assert_allclose(gains, m.gains, atol=1e-4, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("phi, mode", [("log", "logarithmic"), ("sqrt", "squareRoot"), ("sigmoid", "inverse")])
def test_weighted_matches_submodlib_naive(phi, mode):
    """submodlib's FeatureBasedFunction has the same function with feature
    weights (its "inverse" is x / (1 + x)); it min-max scales every column
    first, so it gets columns already scaled to [0, 1] (which it leaves as is)."""
    pytest.importorskip("submodlib")
    from submodlib import FeatureBasedFunction
    from submodlib_cpp import FeatureBased as Modes

    X = _digits()
    X = X[:, X.max(0) > X.min(0)]
    X = (X - X.min(0)) / (X.max(0) - X.min(0))
    w = np.random.default_rng(0).uniform(0.5, 2.0, X.shape[1])
    idx, gains = NaiveGreedy().maximize(FeatureBased(X, concave_func=phi, weights=w), 30)
    peer = FeatureBasedFunction(n=X.shape[0], features=X.tolist(), numFeatures=X.shape[1], sparse=False,
                                featureWeights=w.tolist(), mode=getattr(Modes, mode))
    out = peer.maximize(budget=30, optimizer="NaiveGreedy", stopIfZeroGain=False, stopIfNegativeGain=False,
                        verbose=False, show_progress=False)
    np.testing.assert_array_equal(idx, [i for i, _ in out])
    np.testing.assert_allclose(gains, [g for _, g in out], atol=1e-4, rtol=0)


@pytest.mark.parametrize("phi", ["sqrt", "log", "sigmoid"])
@pytest.mark.parametrize("weighted", [False, True])
def test_brute_force_gains_and_greedy_bound(phi, weighted):
    rng = np.random.default_rng(3)
    n, d, k = 9, 5, 3
    X = rng.exponential(1.0, (n, d)) * (rng.random((n, d)) < 0.6)
    w = rng.uniform(0.2, 2.0, d) if weighted else None
    f = FeatureBased(X, concave_func=phi, weights=w)
    # gains == f(S + j) - f(S) by the formula, along a random chain of sets
    S = []
    for j in rng.permutation(n)[:6]:
        rest = [i for i in range(n) if i not in S]
        expect = [f_numpy(X, S + [i], phi, w) - f_numpy(X, S, phi, w) for i in rest]
        np.testing.assert_allclose(f.gains(rest), expect, rtol=1e-12, atol=1e-12)
        f.update(int(j))
        S.append(int(j))
        assert f.value == pytest.approx(f_numpy(X, S, phi, w), rel=1e-12)
        assert f.evaluate(S) == pytest.approx(f_numpy(X, S, phi, w), rel=1e-12)
    # monotone: greedy >= (1 - 1/e) * optimum
    idx, _ = NaiveGreedy().maximize(FeatureBased(X, concave_func=phi, weights=w), k)
    opt = max(f_numpy(X, c, phi, w) for c in itertools.combinations(range(n), k))
    assert f_numpy(X, idx, phi, w) >= (1 - 1 / math.e) * opt - 1e-12


@pytest.mark.parametrize("phi", ["sqrt", "log", "sigmoid"])
def test_dense_equals_csr_and_naive_equals_lazy(phi):
    M = _sparse_X(400, 60)
    dense = np.asarray(M.todense())
    a = NaiveGreedy().maximize(FeatureBased(dense, concave_func=phi), 40)
    b = NaiveGreedy().maximize(FeatureBased(M, concave_func=phi), 40)
    c = LazyGreedy().maximize(FeatureBased(M, concave_func=phi), 40)
    d = LazyGreedy().maximize(FeatureBased(dense, concave_func=phi), 40)
    for other in (b, c, d):
        np.testing.assert_array_equal(a[0], other[0])
    # naive == lazy bit for bit within a form (the same terms summed the same way); the dense
    # gain sums its terms in four interleaved lanes, CSR in order: equal to rounding
    np.testing.assert_array_equal(a[1], d[1])
    np.testing.assert_array_equal(b[1], c[1])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=0)
    # a sparse matrix with int64 indices and float32 data is accepted as is
    M32 = M.astype(np.float32)
    M32.indices = M32.indices.astype(np.int64)
    M32.indptr = M32.indptr.astype(np.int64)
    e = NaiveGreedy().maximize(FeatureBased(M32, concave_func=phi), 40)
    assert np.intersect1d(e[0], a[0]).size >= 35


@pytest.mark.parametrize("form", ["dense", "sparse"])
@pytest.mark.parametrize("phi", ["sqrt", "log", "sigmoid"])
def test_torch_cpu_matches_numba(form, phi):
    pytest.importorskip("torch")
    M = _sparse_X(300, 50, density=0.15, seed=2)
    X = np.asarray(M.todense()).astype(np.float32) if form == "dense" else M
    w = np.linspace(0.5, 1.5, 50)
    a = NaiveGreedy().maximize(FeatureBased(X, concave_func=phi, weights=w), 30)
    t = FeatureBased(X, concave_func=phi, weights=w).to_torch("cpu")
    b = NaiveGreedy().maximize(t, 30)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9)
    assert t.value == pytest.approx(a[1].sum(), rel=1e-9)


@pytest.mark.parametrize("bad, message", [
    (-np.eye(3), r"non-negative for feature-based; found minimum -1 \(at row 0, column 0\)"),
    (sp.csr_matrix(np.array([[0.0, 1.0], [0.0, -2.0]])), r"found minimum -2 \(at row 1, column 1\)"),
    (np.array([[1.0, np.nan]]), "must be finite"),
    (np.ones(3), r"2-D \(N x D\)"),
    (np.array([["a"]]), "real numbers"),
])
def test_rejects_bad_features(bad, message):
    with pytest.raises(ValidationError, match=message):
        FeatureBased(bad)


@pytest.mark.parametrize("params, message", [
    ({"concave_func": "exp"}, r"concave_func must be one of \['log', 'sigmoid', 'sqrt'\]; got 'exp'"),
    ({"weights": [1.0, -1.0]}, "weights must be finite and >= 0"),
    ({"weights": [[1.0]]}, "weights must be a 1-D array"),
])
def test_rejects_bad_hyperparameters(params, message):
    with pytest.raises(ValidationError, match=message):
        FeatureBased(**params)


def test_weights_shape_checked_on_bind_and_features_required():
    f = FeatureBased(weights=[1.0, 2.0])
    with pytest.raises(ValidationError, match=r"weights must have shape \(3,\)"):
        f.bind(np.ones((4, 3)))
    with pytest.raises(ValidationError, match="needs the features"):
        FeatureBased().bind(Data(similarity=np.eye(3)))
    with pytest.raises(ValidationError, match="not bound"):
        FeatureBased().gains([0])
    with pytest.raises(ValidationError, match="not on a kNN graph"):
        FeatureBased.from_knn(np.zeros((3, 1), np.int64), np.ones((3, 1)))
