"""Mixture: brute force against the components' formulas, apricot's
MixtureSelection as a live oracle, naive == lazy, torch == numba, validation."""

import itertools
import math

import numpy as np
import pytest

from coreset._registry import OBJECTIVES
from coreset.exceptions import UnknownNameError, ValidationError
from coreset.objectives import (Data, FacilityLocation, FeatureBased, GraphCut, KernelObjective, LogDeterminant,
                                Mixture, Objective, TorchMixture)
from coreset.objectives._mixture import KernelMixture, MixtureState
from coreset.optimizers import LazyGreedy, ModularGreedy, NaiveGreedy, SampleGreedy
from coreset.similarity import dense_similarity


def fl(S, A):
    return float(np.asarray(S, np.float64)[list(A)].max(0).sum()) if len(A) else 0.0


def gc(S, A, lam):
    A = list(A)
    S = np.asarray(S, np.float64)
    return float(S[A].sum() - lam * S[np.ix_(A, A)].sum()) if A else 0.0


def fb(X, A):
    return float(np.sqrt(np.asarray(X, np.float64)[list(A)].sum(0)).sum()) if len(A) else 0.0


def _data(n=9, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    return X, dense_similarity(X, "cosine").astype(np.float64)


def test_is_an_objective_and_sums_gains_hand_computed():
    X, S = _data()
    m = Mixture(Data(features=X, similarity=S),
                components=["facility_location", GraphCut(lambda_=0.3), "feature_based"], weights=[0.5, 2.0, 1.5])
    assert isinstance(m, Objective) and m.is_bound and m.n == 9
    assert m.inputs == "both" and m.monotone
    A = []
    for j in [4, 0, 7, 2]:
        rest = np.setdiff1d(np.arange(9), A)
        want = [0.5 * (fl(S, A + [c]) - fl(S, A)) + 2.0 * (gc(S, A + [c], 0.3) - gc(S, A, 0.3))
                + 1.5 * (fb(X, A + [c]) - fb(X, A)) for c in rest]
        np.testing.assert_allclose(m.gains(rest), want, rtol=1e-12, atol=1e-12)
        m.update(j)
        A.append(j)
        v = 0.5 * fl(S, A) + 2.0 * gc(S, A, 0.3) + 1.5 * fb(X, A)
        assert m.value == pytest.approx(v, abs=1e-12)
        assert m.evaluate(A) == pytest.approx(v, abs=1e-12)
    assert m.selected.sum() == 4


@pytest.mark.parametrize("seed", range(3))
def test_greedy_is_within_1_minus_1_over_e_of_brute_force(seed):
    X, S = _data(10, 3, 30 + seed)
    m = Mixture(Data(features=X, similarity=S), components=["facility_location", GraphCut(lambda_=0.4),
                                                            LogDeterminant(reg=1.0)], weights=[1.0, 0.5, 2.0])
    assert m.monotone
    idx, _ = NaiveGreedy().maximize(m, 4)
    best = max(m.evaluate(A) for A in itertools.combinations(range(10), 4))
    assert m.evaluate(idx) >= (1 - 1 / math.e) * best - 1e-12


def test_monotone_and_inputs_follow_the_components():
    assert Mixture.monotone is True and Mixture.inputs == "both"
    assert not Mixture(components=["facility_location", GraphCut(lambda_=1.0)]).monotone
    assert Mixture(components=["facility_location", GraphCut(lambda_=1.0)], weights=[1, 0]).monotone
    assert Mixture(components=["facility_location", "graph_cut"]).inputs == "similarity"
    assert Mixture(components=["feature_based"]).inputs == "features"
    assert Mixture(components=["facility_location", "graph_cut"]).supports_sparse


def test_default_is_facility_location_plus_feature_based():
    m = Mixture()
    assert [type(c) for c in m.components] == [FacilityLocation, FeatureBased]
    assert m.weights == (0.5, 0.5) and not m.is_bound
    X, S = _data(30, 5, 1)
    b = m.bind(Data(features=X, similarity=S))
    assert b.is_bound and b.n == 30 and not m.is_bound
    assert b.evaluate([1, 2]) == pytest.approx(0.5 * fl(S, [1, 2]) + 0.5 * fb(X, [1, 2]))
    assert OBJECTIVES.get("mixture") is Mixture
    r = OBJECTIVES.create("mixture", components=["graph_cut"], weights=[2.0])
    assert r.get_params()["weights"] == [2.0]


def test_binds_each_component_to_what_it_needs():
    def boom():
        raise AssertionError("the similarity was built, but no component needs it")

    X, _ = _data(20, 3)
    m = Mixture(components=["feature_based", FeatureBased(concave_func="log")], weights=[1, 1])
    b = m.bind(Data(features=X, build_similarity=boom))
    assert b.n == 20


@pytest.mark.parametrize("kwargs, message", [
    ({"weights": [1.0, -0.5]}, "finite and >= 0"),
    ({"weights": [1.0, float("nan")]}, "finite and >= 0"),
    ({"weights": [0, 0]}, "not all be 0"),
    ({"weights": [1.0]}, "one entry per component"),
    ({"weights": ["a", 1]}, "numbers"),
    ({"components": []}, "non-empty"),
    ({"components": "facility_location"}, "non-empty list"),
    ({"components": [FacilityLocation]}, "pass an instance"),
    ({"components": [42]}, "must be an objective"),
])
def test_validation(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Mixture(**kwargs)


def test_unknown_name_and_mismatched_components():
    with pytest.raises(UnknownNameError, match="facility_locaton"):
        Mixture(components=["facility_locaton"])
    X, S = _data(9)
    with pytest.raises(ValidationError, match="all bound or all configured"):
        Mixture(components=[FacilityLocation(S), GraphCut()])
    with pytest.raises(ValidationError, match="different ground sets"):
        Mixture(components=[FacilityLocation(S), GraphCut(_data(10)[1])])
    with pytest.raises(ValidationError, match="not bound"):
        Mixture().gains([0])


def test_bound_components_copy_reset_nesting():
    X, S = _data(12, 3, 2)
    inner = Mixture(components=[FacilityLocation(S), GraphCut(S, lambda_=0.2)], weights=[1, 1])
    m = Mixture(components=[inner, FeatureBased(X)], weights=[2.0, 1.0])
    assert m.is_bound and m.inputs == "both"
    m.update(3)
    c = m.copy()
    c.update(5)
    assert m.selected.sum() == 1 and c.selected.sum() == 2
    want = 2.0 * (fl(S, [3, 5]) + gc(S, [3, 5], 0.2)) + fb(X, [3, 5])
    assert c.value == pytest.approx(want) and m.evaluate([3, 5]) == pytest.approx(want)
    m.reset()
    assert m.value == 0.0 and not m.selected.any()
    with pytest.raises(ValidationError, match="already in the set"):
        c.update(5)


@pytest.mark.parametrize("components, weights", [
    (["facility_location", "feature_based"], [1.0, 3.0]),
    (["facility_location", GraphCut(lambda_=1.5), LogDeterminant(reg=0.5)], [1.0, 0.2, 4.0]),
])
def test_naive_equals_lazy_exactly(components, weights):
    X = np.abs(np.random.default_rng(5).standard_normal((300, 6)))
    S = dense_similarity(X, "cosine")
    data = Data(features=X, similarity=S)
    m = Mixture(components=components, weights=weights)
    a = NaiveGreedy().maximize(m.bind(data), 40)
    b = LazyGreedy().maximize(m.bind(data), 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


class _ProtocolMixture(Mixture):
    """A Mixture subclass: left on the Python protocol path (the reference)."""


def test_kernel_components_give_a_compiled_mixture():
    X, S = _data(12, 3, 2)
    m = Mixture(Data(features=X, similarity=S), components=["facility_location", GraphCut(lambda_=0.2),
                                                            "feature_based"], weights=[1.0, 0.0, 2.0])
    assert isinstance(m, KernelMixture) and isinstance(m, KernelObjective) and isinstance(m, Mixture)
    assert isinstance(m.state, MixtureState) and m.is_bound
    # children: the active components' own states (w > 0), in order
    assert len(m.state.children) == 2 and m.state.children[0] is m.components[0].state
    assert m.state.children[1] is m.components[2].state and m.state.weights.tolist() == [1.0, 2.0]
    assert m.selected is m.state.selected
    # configured, rebound, re-created from its parameters: the same choice again
    assert type(m.bind(Data(features=X, similarity=S))) is KernelMixture
    again = type(m)(**m.get_params())  # bound components: bound again
    assert type(again) is KernelMixture and again.n == 12 and again.components[0] is m.components[0]
    configured = type(m)(components=["facility_location", "graph_cut"])
    assert type(configured) is Mixture and not configured.is_bound
    assert not isinstance(Mixture(), KernelObjective)
    # one component object twice (here also inside a nested mixture): the Python path, which refuses
    # the second update of the same element rather than adding it twice
    f = FacilityLocation(S)
    for nested in (False, True):
        twice = Mixture(components=[Mixture(components=[f, GraphCut(S)]) if nested else f, f])
        assert type(twice) is Mixture
        with pytest.raises(ValidationError, match="already in the set"):
            twice.update(0)
        f.reset()


def test_compiled_mixture_keeps_children_consistent_copy_reset():
    X, S = _data(12, 3, 2)
    inner = Mixture(components=[FacilityLocation(S), GraphCut(S, lambda_=0.2)], weights=[1, 1])
    m = Mixture(components=[inner, FeatureBased(X)], weights=[2.0, 1.0])
    assert isinstance(inner, KernelMixture) and isinstance(m, KernelMixture)
    idx, gains = LazyGreedy().maximize(m, 4)
    want = 2.0 * (fl(S, idx) + gc(S, idx, 0.2)) + fb(X, idx)
    assert m.value == pytest.approx(want) and m.state.total[0] == pytest.approx(want)
    assert sum(gains) == pytest.approx(want)
    for c in (inner, *inner.components, m.components[1]):
        np.testing.assert_array_equal(np.flatnonzero(c.selected), np.sort(idx))
    assert inner.components[1].value == pytest.approx(gc(S, idx, 0.2))
    c = m.copy()
    c.update(int(np.setdiff1d(np.arange(12), idx)[0]))
    assert m.selected.sum() == 4 and c.selected.sum() == 5
    assert inner.components[0].selected.sum() == 4 and c.components[0].components[0].selected.sum() == 5
    assert c.state.children[0].children[0] is c.components[0].components[0].state
    m.reset()
    assert m.value == 0.0 and not m.selected.any() and m.state.total[0] == 0.0
    assert not inner.components[0].selected.any() and m.state.children[0] is inner.state
    assert LazyGreedy().maximize(m, 4)[0].tolist() == idx.tolist()


@pytest.mark.parametrize("opt", [NaiveGreedy(), LazyGreedy(), ModularGreedy(), SampleGreedy()])
def test_compiled_path_matches_the_protocol_path(opt):
    X = np.abs(np.random.default_rng(7).standard_normal((200, 5)))
    S = dense_similarity(X, "cosine")
    data = Data(features=X, similarity=S)
    kw = dict(components=["facility_location", GraphCut(lambda_=0.5), "feature_based"], weights=[1.0, 0.5, 2.0])
    a = opt.maximize(Mixture(data, **kw), 25, rng=3)
    b = opt.maximize(_ProtocolMixture(data, **kw), 25, rng=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-12, atol=0)


def test_torch_matches_numba():
    pytest.importorskip("torch")
    X = np.abs(np.random.default_rng(6).standard_normal((300, 6)))
    S = dense_similarity(X, "cosine")
    m = Mixture(Data(features=X, similarity=S),
                components=["facility_location", "feature_based", GraphCut(lambda_=0.7), LogDeterminant(reg=0.5)],
                weights=[1.0, 2.0, 0.5, 3.0])
    t = m.to_torch("cpu")
    assert isinstance(t, TorchMixture)
    a = NaiveGreedy().maximize(m, 40)
    b = NaiveGreedy().maximize(t, 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9, atol=1e-9)
    assert t.value == pytest.approx(m.value, rel=1e-9)


def test_to_torch_needs_every_component_to_have_one():
    class Plain:  # an Objective-protocol object with no torch path
        def __init__(self, n):
            self.n = n
            self.value = 0.0

        def gains(self, c):
            return np.zeros(len(c))

        def update(self, j):
            return 0.0

    X, S = _data(9)
    m = Mixture(components=[FacilityLocation(S), Plain(9)])
    assert type(m) is Mixture and not isinstance(m, KernelObjective)  # the Python protocol path
    assert NaiveGreedy().maximize(m, 3)[0].size == 3
    with pytest.raises(ValidationError, match="no torch path"):
        Mixture(components=[FacilityLocation(S), Plain(9)]).to_torch("cpu")


# ------------------------------------------------------------------ live peer
@pytest.fixture(scope="module")
def digits_S():
    from sklearn.datasets import load_digits

    return dense_similarity(load_digits().data[:400].astype(np.float64), "cosine")


@pytest.mark.slow
@pytest.mark.parametrize("alpha, w", [(1.0, [1.0, 0.5]), (2.0, [1.0, 0.3])])
def test_matches_apricot_facility_location_plus_graph_cut(digits_S, alpha, w):
    """apricot's MixtureSelection hands the same precomputed S to every function. Its graph cut
    is alpha times ours at lambda_ = 1 / alpha, so our weight is w * alpha."""
    apricot = pytest.importorskip("apricot")
    funcs = [apricot.FacilityLocationSelection(30, metric="precomputed"),
             apricot.GraphCutSelection(30, metric="precomputed", alpha=alpha)]
    peer = apricot.MixtureSelection(30, funcs, weights=np.array(w, np.float64), optimizer="naive").fit(digits_S)
    m = Mixture(digits_S, components=[FacilityLocation(), GraphCut(lambda_=1.0 / alpha)], weights=[w[0], w[1] * alpha])
    idx, gains = NaiveGreedy().maximize(m, 30)
    np.testing.assert_array_equal(idx, peer.ranking)
    np.testing.assert_allclose(gains, peer.gains, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_matches_apricot_facility_location_plus_feature_based(digits_S):
    """The same S as facility location's similarity and as feature-based's features (its rows),
    as apricot's MixtureSelection shares one input."""
    apricot = pytest.importorskip("apricot")
    funcs = [apricot.FacilityLocationSelection(30, metric="precomputed"), apricot.FeatureBasedSelection(30)]
    peer = apricot.MixtureSelection(30, funcs, weights=np.array([1.0, 0.7]), optimizer="naive").fit(digits_S)
    m = Mixture(Data(features=digits_S, similarity=digits_S), components=["facility_location", "feature_based"],
                weights=[1.0, 0.7])
    idx, gains = NaiveGreedy().maximize(m, 30)
    np.testing.assert_array_equal(idx, peer.ranking)
    np.testing.assert_allclose(gains, peer.gains, rtol=0, atol=1e-4)
