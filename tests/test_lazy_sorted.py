"""Lazy greedy's bucket walk (``optimizers/_kernels.py``: ``bucket_init`` /
``bucket_steps``, and the hand-over to the loser tree) against naive greedy
and a from-scratch Python greedy: the same picks and gains, ties to the
lowest index, with costs, candidate subsets, warm starts, progress chunks,
and on both sides of ``BUCKET_MIN`` and ``BUCKET_MAX``."""

import functools

import numpy as np
import pytest

from coreset.data import make_zipf
from coreset.objectives import (Data, FacilityLocation, FeatureBased, GraphCut, LogDeterminant, Mixture,
                                SaturatedCoverage, SumRedundancy)
from coreset.optimizers import LazyGreedy, NaiveGreedy, SampleGreedy
from coreset.optimizers import _kernels as K
from coreset.optimizers._lazy import BUCKET_MIN
from coreset.similarity import dense_similarity, knn_graph

N = 640  # above BUCKET_MIN: LazyGreedy takes the bucket walk


@functools.lru_cache(maxsize=None)
def _features(n, seed, d=12):
    X = np.abs(np.random.default_rng(seed).standard_normal((n, d)))
    X[X < 0.4] = 0.0  # sparse-ish rows: gains of many sizes
    return X


@functools.lru_cache(maxsize=None)  # one array per input: gains summed with reassociation
def _sim(n, seed, d=6):  # (saturated coverage) may round by the data's alignment
    return dense_similarity(np.random.default_rng(seed).standard_normal((n, d)), "cosine")


def _python_greedy(f, k, cands=None, costs=None, budget=np.inf):
    """Naive greedy from the protocol alone: every remaining candidate's gain
    each step, the first maximum of gain / cost among those that fit."""
    cands = np.arange(f.n) if cands is None else np.asarray(cands)
    left = np.ones(cands.size, bool)
    out, gains = [], []
    while len(out) < k:
        c = np.ones(f.n) if costs is None else costs
        ok = left & (c[cands] <= budget)
        if not ok.any():
            break
        g = np.asarray(f.gains(cands[ok]), np.float64)
        t = int(np.argmax(g / c[cands[ok]]))
        j = int(cands[ok][t])
        f.update(j)
        out.append(j)
        gains.append(g[t])
        left[np.searchsorted(cands, j)] = False
        budget -= c[j]
    return np.array(out, np.int64), np.array(gains)


MAKERS = {
    "feature_based_sqrt": lambda s: FeatureBased(_features(N, s), concave_func="sqrt"),
    "feature_based_log": lambda s: FeatureBased(_features(N, s), concave_func="log"),
    "facility_location": lambda s: FacilityLocation(_sim(N, s)),
    "facility_location_knn": lambda s: FacilityLocation.from_knn(
        *knn_graph(np.random.default_rng(s).standard_normal((N, 8)).astype(np.float32), 10, backend="faiss")),
    "graph_cut_nonmonotone": lambda s: GraphCut(_sim(N, s), lambda_=0.9),  # gains turn negative
    "saturated_coverage": lambda s: SaturatedCoverage(_sim(N, s), alpha=0.1),
    "sum_redundancy": lambda s: SumRedundancy(_sim(N, s)),
    "log_determinant": lambda s: LogDeterminant(_sim(N, s, d=40), reg=1.0),
    "mixture": lambda s: Mixture(Data(features=_features(N, s), similarity=_sim(N, s)),
                                 components=["facility_location", "feature_based"], weights=[0.7, 0.3]),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_bucket_walk_equals_naive(name):
    k = 40
    a = NaiveGreedy().maximize(MAKERS[name](1), k)
    b = LazyGreedy().maximize(MAKERS[name](1), k)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_zipf_feature_based_equals_python_greedy():
    # the benchmark's kind of input, small: many near-equal gains decaying together
    X = np.abs(make_zipf(1500, 16, n_classes=30, random_state=3).X)
    F = (X - X.min(0)) / (X.max(0) - X.min(0))
    a = _python_greedy(FeatureBased(F, concave_func="sqrt"), 120)
    b = LazyGreedy().maximize(FeatureBased(F, concave_func="sqrt"), 120)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12)


def test_duplicate_rows_tie_to_the_lowest_index():
    # every row twice (row i and i + 350): each pair ties for ever; the lower one goes first
    X = _features(350, 7)
    F = np.vstack([X, X])
    a = NaiveGreedy().maximize(FeatureBased(F), 60)
    b = LazyGreedy().maximize(FeatureBased(F), 60)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    order = {int(j): t for t, j in enumerate(b[0])}
    copies = [j for j in order if j >= 350]
    assert copies and all(order.get(j - 350, 10**9) < order[j] for j in copies)  # a copy only after its original
    # identical rows everywhere: all gains tie at every step -> 0, 1, 2, ...
    idx, gains = LazyGreedy().maximize(FeatureBased(np.ones((700, 3))), 5)
    assert idx.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(gains[1], 3 * (np.sqrt(2) - 1))


def test_walk_gives_way_to_the_tree_and_keeps_the_picks():
    # facility location on 40 tight clusters: after ~40 picks every gain is about 0 and
    # most exactly 0, one bucket of ties that the walk would drain at every step
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((40, 6))
    X = centres[rng.integers(0, 40, 900)] + 1e-3 * rng.standard_normal((900, 6))
    S = dense_similarity(X, "cosine")
    S[S < 0.9] = 0.0
    f = FacilityLocation(S)
    cands = np.arange(f.n, dtype=np.int64)
    costs = np.ones(1)
    head, nxt, key, base, top, size, _ = K.bucket_init(f.state, cands, costs, False)
    stats = np.zeros(3, np.int64)
    k = 300
    out_idx, out_gain = np.empty(k, np.int64), np.empty(k)
    size, top, _, n_out = K.bucket_steps(f.state, cands, head, nxt, key, base, top, size, stats, costs, False,
                                         np.inf, k, out_idx, out_gain, 0)
    assert stats[2] == 1 and 0 < n_out < k  # it gave way part-way
    assert stats[1] > stats[0] - stats[1] + K.BUCKET_SLACK
    nk, ns, M, size = K.tree_from_keys(key)
    assert size == f.n - n_out
    fresh, fresh_gain = np.full(f.n, -1, np.int64), np.zeros(f.n)
    K.lazy_steps(f.state, cands, nk, ns, M, size, fresh, fresh_gain, 0, costs, False, np.inf, k - n_out,
                 out_idx, out_gain, n_out)
    a = NaiveGreedy().maximize(FacilityLocation(S), k)
    np.testing.assert_array_equal(a[0], out_idx)
    np.testing.assert_array_equal(a[1], out_gain)
    b = LazyGreedy().maximize(FacilityLocation(S), k)  # the same through the public path
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("n", [BUCKET_MIN - 1, BUCKET_MIN])
def test_both_sides_of_the_threshold(n):
    S = _sim(n, 11)
    a = NaiveGreedy().maximize(FacilityLocation(S), 50)
    b = LazyGreedy().maximize(FacilityLocation(S), 50)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("n", [600, 601])
def test_both_sides_of_the_upper_threshold(n, monkeypatch):
    import coreset.optimizers._lazy as lazy

    monkeypatch.setattr(lazy, "BUCKET_MAX", 600)  # the real bound (2^18) is too large for a test
    X = _features(n, 12)
    a = NaiveGreedy().maximize(FeatureBased(X), 50)
    b = LazyGreedy().maximize(FeatureBased(X), 50)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("make", ["facility_location", "feature_based_sqrt"])
def test_costs_and_budget(make):
    costs = np.random.default_rng(2).uniform(0.2, 3.0, N)
    a = NaiveGreedy().maximize(MAKERS[make](4), 200, costs=costs, budget=25.0)
    b = LazyGreedy().maximize(MAKERS[make](4), 200, costs=costs, budget=25.0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert costs[b[0]].sum() <= 25.0 and b[0].size < 200  # the budget, not n_select, ended it
    c = _python_greedy(MAKERS[make](4), 200, costs=costs, budget=25.0)
    np.testing.assert_array_equal(c[0], b[0])


def test_candidate_subset_through_sample_greedy():
    # SampleGreedy runs the lazy loop on a sorted sample of the candidates (here 0.8 * 900 >= BUCKET_MIN)
    F = _features(900, 9)
    idx, gains = SampleGreedy(fraction=0.8).maximize(FeatureBased(F), 50, rng=0)
    cands = np.sort(np.random.default_rng(0).choice(np.arange(900), size=720, replace=False))
    a = _python_greedy(FeatureBased(F), 50, cands=cands)
    np.testing.assert_array_equal(a[0], idx)
    np.testing.assert_allclose(a[1], gains, rtol=1e-12)


def test_warm_start_and_progress_chunks():
    S = _sim(N, 13)
    init = np.array([5, 77, 300])
    seen = []
    a = NaiveGreedy().maximize(FacilityLocation(S), 120, initial=init)
    b = LazyGreedy().maximize(FacilityLocation(S), 120, initial=init,
                              callback=lambda stage, done, total: seen.append((stage, done, total)))
    c = LazyGreedy().maximize(FacilityLocation(S), 120, initial=init)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(b[0], c[0])
    assert not np.isin(b[0], init).any()
    done = [d for _, d, _ in seen]
    assert done == sorted(done) and done[-1] == 120 and len(set(done)) > 10  # reported in chunks
    assert {s for s, _, t in seen} == {"optimize"} and {t for _, _, t in seen} == {120}


def test_code_preserves_float_order():
    from numba import njit

    code = njit(lambda x: K._code(x))
    xs = np.array([-np.inf, -1e300, -2.0, -1.0, -1e-300, -5e-324, -0.0, 0.0, 5e-324, 1e-300, 0.25, 1.0,
                   1.0 + 2**-52, 2.0, 1e300, np.inf])
    cs = [code(x) for x in xs]
    assert cs[6] == cs[7]  # -0.0 and 0.0 share a code (they compare equal)
    assert all(cs[i] < cs[i + 1] for i in range(len(cs) - 1) if i != 6)
    rng = np.random.default_rng(0)
    v = np.sort(rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000))
    c = np.array([code(x) for x in v])
    assert (np.diff(c) >= 0).all()


def test_keys_crowded_in_one_bucket_go_to_the_tree_from_the_start():
    # sum redundancy on a dense S: every singleton gain is -S[j, j] = -1, one bucket of N keys;
    # LazyGreedy hands them to the loser tree before any step (same picks as naive)
    from coreset.objectives import SumRedundancy

    rng = np.random.default_rng(2)
    S = dense_similarity(rng.standard_normal((700, 5)), "cosine")
    f = SumRedundancy(S)
    *_, fullest = K.bucket_init(f.state, np.arange(f.n, dtype=np.int64), np.ones(1), False)
    assert fullest == f.n
    a = NaiveGreedy().maximize(SumRedundancy(S), 60)
    b = LazyGreedy().maximize(SumRedundancy(S), 60)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
