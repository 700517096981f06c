"""Log-determinant: brute force (numpy slogdet) on tiny inputs, the Cholesky
factor, submodlib as a live oracle, naive == lazy, torch == numba."""

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from coreset._registry import OBJECTIVES
from coreset.exceptions import ValidationError
from coreset.objectives import Data, LogDeterminant, Objective, TorchLogDeterminant
from coreset.optimizers import LazyGreedy, NaiveGreedy
from coreset.similarity import dense_similarity


def f_numpy(S, A, reg):
    """log det(S_AA + reg I), independently (0 for the empty set, -inf if not positive definite)."""
    A = list(A)
    if not A:
        return 0.0
    M = np.asarray(S, dtype=np.float64)[np.ix_(A, A)] + reg * np.eye(len(A))
    sign, logdet = np.linalg.slogdet(M)
    return logdet if sign > 0 else -math.inf


def _psd(n, d, seed):
    """A non-negative PSD kernel with a varying diagonal: Gram matrix of non-negative vectors."""
    Z = np.random.default_rng(seed).random((n, d))
    return Z @ Z.T / d


def test_hand_computed():
    S = np.array([[1.0, 0.5], [0.5, 2.0]])
    f = LogDeterminant(S, reg=0.5)
    assert isinstance(f, Objective)
    np.testing.assert_allclose(f.gains([0, 1]), [math.log(1.5), math.log(2.5)])
    assert f.update(1) == pytest.approx(math.log(2.5))
    # Schur complement of 0: 1.5 - 0.5^2 / 2.5
    assert f.gains([0])[0] == pytest.approx(math.log(1.5 - 0.25 / 2.5))
    assert f.gains([1])[0] == 0.0  # already in the set
    f.update(0)
    assert f.value == pytest.approx(math.log(1.5 * 2.5 - 0.25))


@pytest.mark.parametrize("reg", [0.0, 0.1, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_gains_are_brute_force_differences(reg, seed):
    n = 9
    S = _psd(n, 12, seed)  # full rank: reg = 0 stays finite
    f = LogDeterminant(S, reg=reg)
    A = []
    for j in np.random.default_rng(seed).permutation(n)[:7]:
        rest = np.setdiff1d(np.arange(n), A)
        want = [f_numpy(S, A + [int(c)], reg) - f_numpy(S, A, reg) for c in rest]
        np.testing.assert_allclose(f.gains(rest), want, rtol=1e-9, atol=1e-9)
        f.update(int(j))
        A.append(int(j))
        assert f.value == pytest.approx(f_numpy(S, A, reg), abs=1e-9)
        assert f.evaluate(A[::-1]) == pytest.approx(f_numpy(S, A, reg), abs=1e-9)
    L = f.cholesky()
    order = f.order
    assert order.tolist() == A
    np.testing.assert_allclose(L @ L.T, S[np.ix_(order, order)] + reg * np.eye(len(A)), atol=1e-12)
    assert np.allclose(np.triu(L, 1), 0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reg", [1.0, 3.0])
def test_greedy_is_within_1_minus_1_over_e_of_brute_force(seed, reg):
    n, k = 10, 4
    S = _psd(n, 3, 20 + seed) * 4  # rank 3: strongly non-modular
    f = LogDeterminant(S, reg=reg)
    assert f.monotone
    idx, gains = NaiveGreedy().maximize(f, k)
    assert (gains >= -1e-12).all()
    best = max(f_numpy(S, A, reg) for A in itertools.combinations(range(n), k))
    assert f_numpy(S, idx, reg) >= (1 - 1 / math.e) * best - 1e-12


def test_monotone_flags():
    assert LogDeterminant.monotone is True  # the default configuration: reg = 1
    assert LogDeterminant().monotone
    assert not LogDeterminant(reg=0.5).monotone
    S = _psd(8, 2, 0)  # rank 2: lambda_min = 0
    assert LogDeterminant(S, reg=1.0).monotone
    assert not LogDeterminant(S, reg=0.5).monotone  # picks beyond the rank gain log(0.5) < 0
    f = LogDeterminant(S, reg=0.5)
    _, gains = NaiveGreedy().maximize(f, 4)
    assert gains[-1] < 0
    big = S + 0.6 * np.eye(8)  # lambda_min >= 0.6: every Schur complement >= 1.1 with reg 0.5
    assert LogDeterminant(big, reg=0.5).monotone
    assert all(f_numpy(big, list(A) + [j], 0.5) >= f_numpy(big, A, 0.5)
               for r in range(8) for A in itertools.combinations(range(8), r) for j in range(8) if j not in A)
    clipped = dense_similarity(np.random.default_rng(0).standard_normal((50, 3)), "cosine")
    assert np.linalg.eigvalsh(clipped.astype(np.float64))[0] < -1e-3  # clipping at 0 broke PSD
    assert not LogDeterminant(clipped, reg=1.0).monotone


@pytest.mark.parametrize("metric, reg", [("euclidean", 0.05), ("euclidean", 1.0), ("cosine", 1.0)])
def test_naive_equals_lazy_exactly(reg, metric):
    """Exact in floating point: d2 only loses e^2 >= 0 (stale gains are upper bounds), and the
    gains are read from a state both optimizers evolve identically. Holds on the clipped
    (not PSD) cosine too, as long as the picked pivots stay positive."""
    X = np.random.default_rng(1).standard_normal((400, 8))
    S = dense_similarity(X, metric).astype(np.float32)
    a = NaiveGreedy().maximize(LogDeterminant(S, reg=reg), 60)
    b = LazyGreedy().maximize(LogDeterminant(S, reg=reg), 60)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.all(np.diff(a[1]) <= 0)  # greedy gains never increase


def test_clipped_cosine_can_run_out_of_positive_definite_picks():
    """Clipped cosine on 8-d data has lambda_min ~ -1.7: with reg = 0.05, after 28 picks every
    remaining Schur complement is <= 0 and greedy stops with a clear error (naive and lazy alike)."""
    X = np.random.default_rng(1).standard_normal((400, 8))
    S = dense_similarity(X, "cosine").astype(np.float32)
    for opt in (NaiveGreedy(), LazyGreedy()):
        f = LogDeterminant(S, reg=0.05)
        with pytest.raises(ValidationError, match="not positive definite"):
            opt.maximize(f, 60)
        assert f.selected.sum() == 28


def test_not_positive_definite():
    S = np.ones((4, 4))  # rank 1: with reg = 0 a second pick is singular
    f = LogDeterminant(S, reg=0.0)
    f.update(2)
    g = f.gains([0, 1, 3])
    assert np.all(g < -25) or np.all(np.isneginf(g))  # Schur complement 0 (or rounding residue)
    T = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])  # eigenvalues 1, 1 +- sqrt(2)
    h = LogDeterminant(T, reg=0.0)
    h.update(0)
    assert np.isneginf(h.gains([1])[0])
    assert h.evaluate([0, 1]) == -math.inf
    with pytest.raises(ValidationError, match="not positive definite"):
        h.update(1)


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0, 0.2], [0.5, 1.0]]), "symmetric"),
    (sp.eye(3, format="csr"), "dense similarity"),
    (-np.eye(2), "non-negative"),
])
def test_rejects_bad_similarities(bad, message):
    with pytest.raises(ValidationError, match=message):
        LogDeterminant(bad)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "1"])
def test_rejects_bad_reg(bad):
    with pytest.raises(ValidationError, match="reg"):
        LogDeterminant(reg=bad)


def test_registry_bind_copy():
    cls = OBJECTIVES.get("log_determinant")
    assert cls is LogDeterminant
    S = _psd(30, 5, 1)
    f = cls(reg=0.3).bind(Data(features=np.ones((30, 2)), similarity=S))
    assert f.is_bound and f.get_params() == {"reg": 0.3}
    f.update(3)
    g = f.copy()
    g.update(7)
    assert f.order.tolist() == [3] and g.order.tolist() == [3, 7]
    assert len(f.state.rows) == 1 and f.state.rows[0] is not g.state.rows[0]
    assert f.evaluate([3, 7]) == pytest.approx(g.value)
    assert f.order.tolist() == [3]  # evaluate left the state alone


def test_torch_matches_numba():
    pytest.importorskip("torch")
    X = np.random.default_rng(4).standard_normal((300, 6))
    S = dense_similarity(X, "euclidean").astype(np.float32)
    a = NaiveGreedy().maximize(LogDeterminant(S, reg=0.2), 50)
    t = LogDeterminant(S, reg=0.2).to_torch("cpu")
    assert isinstance(t, TorchLogDeterminant)
    b = NaiveGreedy().maximize(t, 50)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9, atol=1e-12)
    assert t.value == pytest.approx(a[1].sum(), rel=1e-9)


# ------------------------------------------------------------------ live peer
@pytest.mark.slow
@pytest.mark.parametrize("reg", [0.1, 1.0])
def test_matches_submodlib_naive_greedy(reg):
    """submodlib's LogDeterminantFunction: log det(S_SS + lambdaVal I), same incremental Cholesky.
    A varying diagonal (inner products of the raw digits, scaled) keeps the first step free of
    ties (submodlib breaks ties in hash order); its kernel is float32, so ours gets the same
    float32 S. Gains go negative with reg < 1: submodlib must not stop early there."""
    submodlib = pytest.importorskip("submodlib")
    from sklearn.datasets import load_digits

    X = load_digits().data[:400]
    X = X / np.linalg.norm(X, axis=1).max()
    S = (X @ X.T).astype(np.float32)
    obj = submodlib.LogDeterminantFunction(n=400, mode="dense", lambdaVal=reg, sijs=S)
    out = obj.maximize(budget=40, optimizer="NaiveGreedy", stopIfZeroGain=False, stopIfNegativeGain=False,
                       show_progress=False)
    assert len(out) == 40
    idx, gains = NaiveGreedy().maximize(LogDeterminant(S, reg=reg), 40)
    np.testing.assert_array_equal(idx, [i for i, _ in out])
    np.testing.assert_allclose(gains, [g for _, g in out], rtol=0, atol=1e-4)
    if reg < 1:
        assert gains[-1] < 0


@pytest.mark.gpu
def test_torch_on_cuda_matches_numba():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    X = np.random.default_rng(8).standard_normal((3000, 16))
    S = dense_similarity(X, "euclidean").astype(np.float32)
    a = NaiveGreedy().maximize(LogDeterminant(S, reg=0.3), 150)
    b = NaiveGreedy().maximize(LogDeterminant(S, reg=0.3).to_torch("cuda"), 150)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9, atol=1e-9)
