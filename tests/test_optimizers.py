import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from coreset.exceptions import ValidationError
from coreset.objectives import FacilityLocation
from coreset.testing import ProtocolOnly as _ProtocolOnly
from coreset.optimizers import LazyGreedy, NaiveGreedy, StochasticGreedy
from coreset.similarity import dense_similarity, knn_graph


def ProtocolOnly(S):  # noqa: N802 - facility location seen only through the protocol
    return _ProtocolOnly(FacilityLocation(S))


def _random_sim(n, seed, d=5):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return dense_similarity(X, "cosine")


def brute_force_value(S, k):
    S = np.asarray(S, np.float64)
    return max(S[list(c)].max(0).sum() for c in itertools.combinations(range(S.shape[0]), k))


def test_hand_computed_instance():
    # 3 points; candidate rows. Greedy: gains [1.5, 1.7, 1.1] -> pick 1;
    # then gains of 0: sum(max(S0 - cur)) with cur = [.5, 1, .2] -> .5 + 0 + 0 = .5;
    # candidate 2: 0 + 0 + .8 = .8 -> pick 2.
    S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.1, 0.0, 1.0]])
    idx, gains = NaiveGreedy().maximize(FacilityLocation(S), 2)
    assert idx.tolist() == [1, 2]
    np.testing.assert_allclose(gains, [1.7, 0.8])


@pytest.mark.parametrize("seed", range(6))
def test_greedy_is_within_1_minus_1_over_e_of_brute_force(seed):
    S = _random_sim(10, seed)
    for k in (1, 2, 3, 4):
        f = FacilityLocation(S)
        LazyGreedy().maximize(f, k)
        opt = brute_force_value(S, k)
        assert f.value >= (1 - 1 / math.e) * opt - 1e-9
        assert f.value <= opt + 1e-9


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("sparse_input", [False, True])
def test_lazy_equals_naive_exactly(seed, sparse_input):
    X = np.random.default_rng(seed).standard_normal((400, 8)).astype(np.float32)
    if sparse_input:
        idx, sims = knn_graph(X, 10, backend="faiss")
        make = lambda: FacilityLocation.from_knn(idx, sims)  # noqa: E731
    else:
        S = dense_similarity(X, "cosine")
        make = lambda: FacilityLocation(S)  # noqa: E731
    a = NaiveGreedy().maximize(make(), 60)
    b = LazyGreedy().maximize(make(), 60)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_ties_go_to_the_lowest_index():
    # 6 identical, isolated points: every gain ties; greedy must go 0, 1, 2 ...
    S = np.eye(6)
    for opt in (NaiveGreedy(), LazyGreedy()):
        idx, gains = opt.maximize(FacilityLocation(S), 4)
        assert idx.tolist() == [0, 1, 2, 3]
    # duplicated rows: pairs (0, 3) and (1, 4) are identical columns and rows
    S = np.array([[1, .2, 0, 1, .2], [.2, 1, 0, .2, 1], [0, 0, 1, 0, 0], [1, .2, 0, 1, .2], [.2, 1, 0, .2, 1]], float)
    for opt in (NaiveGreedy(), LazyGreedy()):
        idx, _ = opt.maximize(FacilityLocation(S), 3)
        assert idx.tolist() == [0, 1, 2]


@pytest.mark.parametrize("opt", [NaiveGreedy, LazyGreedy, StochasticGreedy])
def test_generic_protocol_path_matches_fused_kernels(opt):
    S = _random_sim(150, 7)
    kw = dict(rng=np.random.default_rng(0)) if opt is StochasticGreedy else {}
    fused = opt().maximize(FacilityLocation(S), 25, **kw)
    if opt is StochasticGreedy:  # different samplers: compare quality, not picks
        g = ProtocolOnly(S)
        opt().select(g, 25, rng=np.random.default_rng(0))
        f = FacilityLocation(S)
        assert g.value >= 0.97 * f.evaluate(fused[0])
        return
    generic = opt().maximize(ProtocolOnly(S), 25)
    np.testing.assert_array_equal(fused[0], generic[0])
    np.testing.assert_array_equal(fused[1], generic[1])


def test_gains_are_the_objective_increments_and_non_increasing():
    S = _random_sim(200, 1)
    f = FacilityLocation(S)
    idx, gains = LazyGreedy().maximize(f, 30)
    values = [FacilityLocation(S).evaluate(idx[: t + 1]) for t in range(30)]
    np.testing.assert_allclose(np.diff([0.0] + values), gains, rtol=1e-9, atol=1e-9)
    assert np.all(np.diff(gains) <= 1e-12)
    assert f.value == pytest.approx(values[-1])


def test_dense_and_sparse_forms_of_one_matrix_agree_exactly():
    S = _random_sim(300, 2)
    a = LazyGreedy().maximize(FacilityLocation(S), 40)
    for index_dtype in (np.int32, np.int64):
        M = sp.csr_matrix(S)
        M.indices = M.indices.astype(index_dtype)
        M.indptr = M.indptr.astype(index_dtype)
        b = LazyGreedy().maximize(FacilityLocation(M), 40)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


def test_knn_graph_with_k_equal_n_equals_dense():
    X = np.random.default_rng(4).standard_normal((250, 6)).astype(np.float32)
    S = dense_similarity(X, "cosine")
    idx, sims = knn_graph(X, 250)
    a = LazyGreedy().maximize(FacilityLocation(S), 30)
    b = LazyGreedy().maximize(FacilityLocation.from_knn(idx, sims), 30)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_stochastic_greedy_within_1_percent_of_lazy_at_10k():
    from coreset.data import make_zipf

    X = make_zipf(10_000, 32, random_state=0).X
    idx, sims = knn_graph(X, 32)
    lazy = FacilityLocation.from_knn(idx, sims)
    LazyGreedy().maximize(lazy, 1000)
    stoch = FacilityLocation.from_knn(idx, sims)
    sel, _ = StochasticGreedy().maximize(stoch, 1000, rng=np.random.default_rng(0))
    assert len(set(sel.tolist())) == 1000
    assert stoch.value >= 0.99 * lazy.value
    # and it is seeded: the same generator seed gives the same picks
    again, _ = StochasticGreedy().maximize(FacilityLocation.from_knn(idx, sims), 1000, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(sel, again)


def test_stochastic_default_epsilon_samples_more_than_one_candidate():
    # apricot's default (0.9) samples ~1 candidate a step on small inputs
    assert StochasticGreedy().sample_size(1000, 100) >= 40


def test_knapsack_costs_naive_equals_lazy_and_respects_budget():
    S = _random_sim(120, 5)
    costs = np.random.default_rng(1).uniform(0.5, 3.0, 120)
    a = NaiveGreedy().maximize(FacilityLocation(S), 120, costs=costs, budget=10.0)
    b = LazyGreedy().maximize(FacilityLocation(S), 120, costs=costs, budget=10.0)
    np.testing.assert_array_equal(a[0], b[0])
    assert costs[a[0]].sum() <= 10.0
    # nothing left out would still fit
    left = np.setdiff1d(np.arange(120), a[0])
    assert costs[left].min() > 10.0 - costs[a[0]].sum()
    # first pick maximises gain / cost
    f = FacilityLocation(S)
    ratio = f.gains(np.arange(120)) / costs
    assert a[0][0] == int(np.argmax(ratio))


def test_optimizer_errors_name_the_parameter():
    f = FacilityLocation(np.eye(4))
    with pytest.raises(ValidationError, match="n_select"):
        LazyGreedy().maximize(f, 5)
    with pytest.raises(ValidationError, match=r"costs must have shape \(4,\)"):
        LazyGreedy().maximize(f, 2, costs=[1, 2, 3], budget=1.0)
    with pytest.raises(ValidationError, match="costs must be finite and > 0"):
        LazyGreedy().maximize(f, 2, costs=[1, 0, 1, 1], budget=1.0)
    with pytest.raises(ValidationError, match="budget=2.0 needs costs="):
        LazyGreedy().maximize(f, 2, budget=2.0)
    with pytest.raises(ValidationError, match="budget"):
        LazyGreedy().maximize(f, 2, costs=[1, 1, 1, 1])
    with pytest.raises(ValidationError, match="epsilon"):
        StochasticGreedy(epsilon=1.5).maximize(f, 2)


@pytest.mark.parametrize("optimizer", [NaiveGreedy, LazyGreedy])
@pytest.mark.parametrize("path", ["kernel", "protocol"])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_warm_start_equals_the_tail_of_a_plain_selection(optimizer, path, sparse_input):
    """Selecting k - m after the first m picks of a plain k-selection returns
    exactly its last k - m picks and gains (gains counted from the warm start)."""
    X = np.random.default_rng(7).standard_normal((500, 8)).astype(np.float32)
    if sparse_input:
        idx, sims = knn_graph(X, 12)
        base = lambda: FacilityLocation.from_knn(idx, sims)  # noqa: E731
    else:
        S = dense_similarity(X, "cosine")
        base = lambda: FacilityLocation(S)  # noqa: E731
    make = base if path == "kernel" else (lambda: ProtocolOnly(base()._arrays.csr() if sparse_input else S))
    full, full_gains = optimizer().maximize(make(), 40)
    for m in (1, 15, 39):
        opt = optimizer()
        tail, tail_gains = opt.maximize(make(), 40 - m, initial=full[:m])
        np.testing.assert_array_equal(tail, full[m:])
        np.testing.assert_array_equal(tail_gains, full_gains[m:])
        np.testing.assert_allclose(opt.warm_start_gains_, full_gains[:m], rtol=1e-12)


def test_warm_start_through_select_keeps_the_initial_points_first():
    from coreset import select

    X = np.random.default_rng(3).standard_normal((400, 6))
    plain = select(X, n_select=30, n_neighbors=None)
    warm = select(X, n_select=30, n_neighbors=None, initial_subset=plain.indices[:10])
    np.testing.assert_array_equal(warm.indices, plain.indices)
    np.testing.assert_allclose(warm.gains, plain.gains)
    np.testing.assert_array_equal(warm.weights, plain.weights)
    assert warm.meta["n_initial"] == 10
    other = select(X, n_select=30, n_neighbors=None, initial_subset=[5, 6, 7])
    assert other.indices[:3].tolist() == [5, 6, 7] and np.unique(other.indices).size == 30
    with pytest.raises(ValidationError, match="initial_subset has 3 points but the selection's size is 2"):
        select(X, n_select=2, initial_subset=[5, 6, 7])
    with pytest.raises(ValidationError, match="initial_subset must not repeat an index"):
        select(X, n_select=5, initial_subset=[5, 5])
    with pytest.raises(ValidationError, match=r"initial_subset indices must be in \[0, 399\]; got 400"):
        select(X, n_select=5, initial_subset=[400])


@pytest.mark.parametrize("name", ["naive_greedy", "lazy_greedy", "stochastic_greedy", "modular", "sample"])
def test_every_optimizer_respects_a_knapsack_budget_and_prefers_cheap_gains(name):
    from coreset._registry import OPTIMIZERS

    S = _random_sim(200, 4)
    costs = np.where(np.arange(200) % 2 == 0, 1.0, 10.0)  # odd elements are 10x dearer
    idx, gains = OPTIMIZERS.create(name).maximize(FacilityLocation(S), 200, costs=costs, budget=20.0,
                                                  rng=np.random.default_rng(0))
    assert costs[idx].sum() <= 20.0
    assert (idx % 2 == 0).mean() > 0.8  # gain per cost favours the cheap ones
