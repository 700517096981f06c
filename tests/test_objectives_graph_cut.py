"""Graph cut: hand-computed values, brute force on tiny inputs, apricot and
submodlib as live oracles, dense == kNN, naive == lazy, torch == numba."""

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from coreset._registry import OBJECTIVES
from coreset.exceptions import ValidationError
from coreset.objectives import Data, GraphCut, Objective, TorchGraphCut
from coreset.optimizers import LazyGreedy, NaiveGreedy
from coreset.similarity import dense_similarity, knn_graph


def f_numpy(S, A, lam):
    """The formula, independently: sum_{j in A} sum_i S[j, i] - lam * sum_{a, b in A} S[a, b]."""
    A = list(A)
    if not A:
        return 0.0
    S = np.asarray(S, dtype=np.float64)
    return S[A].sum() - lam * S[np.ix_(A, A)].sum()


def _sym(n, seed):
    rng = np.random.default_rng(seed)
    M = rng.random((n, n))
    return (M + M.T) / 2


def _asym_sparse(n, seed, density=0.4):
    rng = np.random.default_rng(seed)
    M = rng.random((n, n)) * (rng.random((n, n)) < density)
    np.fill_diagonal(M, 1.0)
    return M


def test_hand_computed():
    S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]])
    f = GraphCut(S, lambda_=0.5)
    assert isinstance(f, Objective)
    # r = [1.5, 1.7, 1.2]; gain = r - 0.5 * diag
    np.testing.assert_allclose(f.gains([0, 1, 2]), [1.0, 1.2, 0.7])
    assert f.update(1) == pytest.approx(1.2)
    # pen = 2 * row 1 = [1.0, 2.0, 0.4]
    np.testing.assert_allclose(f.gains([0, 2]), [1.5 - 0.5 * 2.0, 1.2 - 0.5 * 1.4])
    f.update(0)
    assert f.value == pytest.approx(1.7 + 1.5 - 0.5 * (1 + 1 + 0.5 + 0.5))
    assert f.evaluate([0, 1]) == pytest.approx(f.value)


@pytest.mark.parametrize("form", ["dense", "sparse_sym", "dense_asym", "sparse_asym"])
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0, 2.5])
def test_gains_are_brute_force_differences(form, lam):
    n = 9
    M = _sym(n, 1) if form in ("dense", "sparse_sym") else _asym_sparse(n, 2)
    if form == "sparse_sym":
        M = M * (_sym(n, 5) < 0.6)
    S = sp.csr_matrix(M) if form.startswith("sparse") else M
    f = GraphCut(S, lambda_=lam)
    assert f.symmetric == (form in ("dense", "sparse_sym"))
    rng = np.random.default_rng(0)
    A = []
    for j in rng.permutation(n)[:6]:
        rest = np.setdiff1d(np.arange(n), A)
        want = [f_numpy(M, A + [int(c)], lam) - f_numpy(M, A, lam) for c in rest]
        np.testing.assert_allclose(f.gains(rest), want, rtol=1e-12, atol=1e-12)
        g = f.update(int(j))
        assert g == pytest.approx(f_numpy(M, A + [int(j)], lam) - f_numpy(M, A, lam), abs=1e-12)
        A.append(int(j))
        assert f.value == pytest.approx(f_numpy(M, A, lam), abs=1e-12)
        assert f.evaluate(A) == pytest.approx(f_numpy(M, A, lam), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lam", [0.1, 0.5])
def test_greedy_is_within_1_minus_1_over_e_of_brute_force(seed, lam):
    n, k = 10, 4
    M = _sym(n, 10 + seed) ** 3
    f = GraphCut(M, lambda_=lam)
    assert f.monotone
    idx, _ = NaiveGreedy().maximize(f, k)
    best = max(f_numpy(M, A, lam) for A in itertools.combinations(range(n), k))
    assert f_numpy(M, idx, lam) >= (1 - 1 / math.e) * best - 1e-12


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("lam", [0.3, 0.5, 0.6, 1.0])
def test_monotone_flag_is_the_truth_by_brute_force(seed, lam):
    n = 7
    M = _asym_sparse(n, seed, density=0.7) if seed % 2 else _sym(n, seed)
    f = GraphCut(M, lambda_=lam)
    truth = all(f_numpy(M, list(A) + [j], lam) >= f_numpy(M, A, lam) - 1e-12
                for r in range(n) for A in itertools.combinations(range(n), r) for j in range(n) if j not in A)
    assert f.monotone == truth
    if seed % 2 == 0 and lam <= 0.5:  # symmetric: lambda_ <= 0.5 is always monotone
        assert truth


def test_monotone_on_the_class_and_configured():
    assert GraphCut.monotone is True  # the default configuration, lambda_=0.5
    assert GraphCut().monotone and GraphCut(lambda_=0.5).monotone
    assert not GraphCut(lambda_=0.51).monotone
    assert GraphCut().get_params() == {"lambda_": 0.5}


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.5", True])
def test_rejects_bad_lambda(bad):
    with pytest.raises(ValidationError, match="lambda_"):
        GraphCut(lambda_=bad)


def test_registry_and_bind():
    cls = OBJECTIVES.get("graph_cut")
    assert cls is GraphCut
    S = _sym(20, 0)
    f = cls(lambda_=0.25).bind(Data(features=np.ones((20, 3)), similarity=S))
    assert f.is_bound and f.n == 20 and f.lambda_ == 0.25
    g = GraphCut(S, lambda_=0.25)
    np.testing.assert_array_equal(f.gains(np.arange(20)), g.gains(np.arange(20)))


@pytest.mark.parametrize("lam", [0.2, 1.0, 3.0])
@pytest.mark.parametrize("form", ["dense", "knn"])
def test_naive_equals_lazy_exactly(lam, form):
    X = np.random.default_rng(1).standard_normal((400, 8)).astype(np.float32)
    if form == "dense":
        make = lambda: GraphCut(dense_similarity(X), lambda_=lam)  # noqa: E731
    else:
        idx, sims = knn_graph(X, 15)
        make = lambda: GraphCut.from_knn(idx, sims, lambda_=lam)  # noqa: E731
    a = NaiveGreedy().maximize(make(), 60)
    b = LazyGreedy().maximize(make(), 60)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_dense_equals_knn_with_k_equal_n():
    X = np.random.default_rng(2).standard_normal((150, 5)).astype(np.float32)
    idx, sims = knn_graph(X, 150)
    a = NaiveGreedy().maximize(GraphCut(dense_similarity(X), lambda_=0.7), 40)
    b = NaiveGreedy().maximize(GraphCut.from_knn(idx, sims, lambda_=0.7), 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6, atol=1e-6)


def test_asymmetric_knn_graph_uses_both_directions():
    """On a kNN graph s(a, b) != s(b, a): the penalty counts both (ordered pairs)."""
    X = np.random.default_rng(3).standard_normal((60, 4)).astype(np.float32)
    idx, sims = knn_graph(X, 5)
    f = GraphCut.from_knn(idx, sims, lambda_=0.8)
    assert not f.symmetric
    M = f._arrays.csr().toarray().astype(np.float64)
    picks, gains = NaiveGreedy().maximize(f, 12)
    ref = [f_numpy(M, picks[:t + 1], 0.8) - f_numpy(M, picks[:t], 0.8) for t in range(12)]
    np.testing.assert_allclose(gains, ref, atol=1e-9)


@pytest.mark.parametrize("form", ["dense", "dense_asym", "knn"])
def test_torch_matches_numba(form):
    pytest.importorskip("torch")
    X = np.random.default_rng(4).standard_normal((300, 6)).astype(np.float32)
    if form == "dense":
        make = lambda: GraphCut(dense_similarity(X), lambda_=0.9)  # noqa: E731
    elif form == "dense_asym":
        M = _asym_sparse(300, 4).astype(np.float32)
        make = lambda: GraphCut(M, lambda_=0.9)  # noqa: E731
    else:
        idx, sims = knn_graph(X, 10)
        make = lambda: GraphCut.from_knn(idx, sims, lambda_=0.9)  # noqa: E731
    a = NaiveGreedy().maximize(make(), 40)
    t = make().to_torch("cpu")
    assert isinstance(t, TorchGraphCut)
    b = NaiveGreedy().maximize(t, 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert t.value == pytest.approx(make().evaluate(a[0]), rel=1e-12)


# ------------------------------------------------------------------ live peers
@pytest.fixture(scope="module")
def digits_S():
    from sklearn.datasets import load_digits

    X = load_digits().data[:500].astype(np.float64)
    return dense_similarity(X, "cosine")  # float64, symmetric, non-negative


@pytest.mark.slow
@pytest.mark.parametrize("lam", [0.25, 0.5, 1.0])
def test_matches_apricot_with_alpha_one_over_lambda(digits_S, lam):
    """apricot: f_a = alpha * sum_{j in S} r_j - sum_{a, b in S} s_ab = alpha * f(lambda_ = 1 / alpha)."""
    apricot = pytest.importorskip("apricot")
    alpha = 1.0 / lam
    peer = apricot.GraphCutSelection(40, metric="precomputed", alpha=alpha, optimizer="naive").fit(digits_S)
    idx, gains = NaiveGreedy().maximize(GraphCut(digits_S, lambda_=lam), 40)
    np.testing.assert_array_equal(idx, peer.ranking)
    np.testing.assert_allclose(gains * alpha, peer.gains, rtol=0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("lam", [0.25, 0.5, 1.0])
def test_matches_submodlib_same_lambda(digits_S, lam):
    """submodlib's GraphCutFunction: the same formula and lambdaVal (held as float32 in C++: the lambdas
    here are exact in float32); its kernel is float32, so ours gets the same float32 S."""
    submodlib = pytest.importorskip("submodlib")
    S32 = digits_S.astype(np.float32)
    n = S32.shape[0]
    obj = submodlib.GraphCutFunction(n=n, mode="dense", lambdaVal=lam, ggsijs=S32, separate_rep=False)
    out = obj.maximize(budget=40, optimizer="NaiveGreedy", stopIfZeroGain=False, stopIfNegativeGain=False,
                       show_progress=False)
    idx, gains = NaiveGreedy().maximize(GraphCut(S32, lambda_=lam), 40)
    np.testing.assert_array_equal(idx, [i for i, _ in out])
    np.testing.assert_allclose(gains, [g for _, g in out], rtol=1e-6, atol=1e-4)


@pytest.mark.gpu
def test_torch_on_cuda_matches_numba():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    X = np.random.default_rng(7).standard_normal((2000, 16)).astype(np.float32)
    idx, sims = knn_graph(X, 16)
    for make in (lambda: GraphCut(dense_similarity(X), lambda_=0.8),
                 lambda: GraphCut.from_knn(idx, sims, lambda_=0.8)):
        a = NaiveGreedy().maximize(make(), 100)
        b = NaiveGreedy().maximize(make().to_torch("cuda"), 100)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=1e-9)
