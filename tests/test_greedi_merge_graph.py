"""Each GreeDi merge builds its similarity once: the merge's greedy and
RandGreeDi's evaluation of the candidates read the same matrix, and the
evaluation runs in one compiled loop per candidate.

Oracles: the merge as it was (``_greedi_tree._build_once`` replaced by the
identity, so the evaluator builds the similarity again, and ``_replay`` by
the one-call-per-pick Python loop), compared to the bit on real GreeDi runs (random and
k-means partitions, with and without a class budget, one merge and a merge
tree, dense and kNN similarities, an optimizer whose merge loses to a child);
and a real similarity subclass that records every matrix it builds."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from coreset import GreeDi, SubmodularSelector
from coreset.optimizers import SampleGreedy
from coreset.selectors import ClassBalanced
from coreset.selectors import _greedi_tree
from coreset._registry import OBJECTIVES
from coreset.objectives._base import Data
from coreset.selectors._greedi_tree import _replay, _replay_python, merge_union
from coreset.similarity import DenseSimilarity, KNNGraph
from _greedi_helpers import blobs, same


class CountingKNN(KNNGraph):
    """A kNN graph that records the bytes of every X it is built on (shared
    by the copies ``resolve`` makes)."""

    def __init__(self, n_neighbors=8, **kw):
        super().__init__(n_neighbors, **kw)
        self._built = []

    def build(self, X, callback=None):
        self._built.append(hashlib.sha1(np.ascontiguousarray(X).tobytes()).hexdigest())
        return super().build(X, callback)


def two_builds(monkeypatch):
    """The merge as before: the evaluator builds the similarity a second time
    and values the candidates one protocol call per pick."""
    monkeypatch.setattr(_greedi_tree, "_build_once", lambda sim: sim)
    monkeypatch.setattr(_greedi_tree, "_replay", _greedi_tree._replay_python)


def greedi_meta(sel):
    g = sel.meta["greedi"]
    return (g["chosen"], g["merge_candidates"], g["union_size"],
            [(lv.get("chosen"), lv["ground_sizes"]) for lv in g["levels"] or []])


def fit_both(monkeypatch, make, X, y):
    new = make().fit(X, y).selection_
    with monkeypatch.context() as m:
        two_builds(m)
        old = make().fit(X, y).selection_
    return old, new


# ------------------------------------------------------------------ identical to the two-build path
AXES = [(s, p, b, c) for s in ("dense", "knn") for p in ("random", "kmeans") for b in (False, True)
        for c in (None, 120)]
# every value of every axis (a class budget on kNN graphs, many tiny FAISS searches, only in the slow set)
FAST = [("dense", "random", False, None), ("knn", "random", False, 120), ("dense", "kmeans", True, None),
        ("knn", "kmeans", False, None), ("dense", "random", True, 120)]


@pytest.mark.parametrize("similarity, partition, budget, merge_cap",
                         [a if a in FAST else pytest.param(*a, marks=pytest.mark.slow) for a in AXES])
def test_greedi_identical_to_two_builds(monkeypatch, similarity, partition, budget, merge_cap):
    X, y = blobs(n=1600, seed=3)
    # SampleGreedy: a merge that sees a sample of its union loses to a child now and then (the best-of rule's
    # values decide); lazy greedy: the merge is the greedy on the union
    for seed, opt in [(0, "lazy_greedy"), (1, SampleGreedy(fraction=0.2))]:
        def make():
            sim = KNNGraph(8) if similarity == "knn" else "dense"
            sel = SubmodularSelector(similarity=sim, optimizer=opt)
            if budget:
                sel = ClassBalanced(sel, policy="proportional")
            return GreeDi(sel, 8, n_select=40, partition=partition, merge_cap=merge_cap, random_state=seed)

        old, new = fit_both(monkeypatch, make, X, y)
        same(old, new)
        assert greedi_meta(old) == greedi_meta(new)
        if merge_cap is not None and not (budget and partition == "kmeans"):  # (k-means: one class a part)
            assert len(new.meta["greedi"]["levels"]) >= 2  # a real tree


def test_merge_union_identical_when_a_child_wins(monkeypatch):
    """One merge, its candidates' values and a child's win compared to the
    bit (the union of 200 rows, the merge greedy on a 3% sample)."""
    X, _ = blobs(n=400, seed=5)
    k = 6
    union = np.arange(0, 400, 2)
    good = union[SubmodularSelector(k, similarity="dense", random_state=0).fit(X[union]).selection_.indices]
    rest = np.setdiff1d(union, good)
    children = [{"indices": rest[:94], "weights": np.ones(94), "gains": np.zeros(94), "codes": None},
                {"indices": np.concatenate([good, rest[94:]]), "weights": np.arange(1.0, 107.0),
                 "gains": np.zeros(106), "codes": None}]
    for similarity in ["dense", KNNGraph(10)]:
        sel = SubmodularSelector(similarity=similarity, optimizer=SampleGreedy(fraction=0.03))

        def run():
            return merge_union(sel, lambda rows: X[rows], X.shape[1], X.dtype, children, k, None,
                               np.random.default_rng(0), "cosine")

        res, info = run()
        with monkeypatch.context() as m:
            two_builds(m)
            ref, ref_info = run()
        assert info["chosen"] == ref_info["chosen"] == "partition 1"
        assert info["merge_candidates"] == ref_info["merge_candidates"]
        for a in ("indices", "gains", "weights"):
            np.testing.assert_array_equal(getattr(res, a), getattr(ref, a))
        assert res.objective == ref.objective


# ------------------------------------------------------------------ one build per merge
def test_one_build_per_merge_ground_set():
    X, y = blobs(n=1600, seed=3)
    sim = CountingKNN(8)
    g = GreeDi(SubmodularSelector(similarity=sim), 8, n_select=40, merge_cap=120, random_state=0).fit(X)
    levels = g.selection_.meta["greedi"]["levels"]
    n_merges = sum(lv["n_nodes"] for lv in levels)
    assert n_merges >= 4  # 3 intermediate merges, then the last
    counts = Counter(sim._built)
    assert max(counts.values()) == 1  # no X built twice: partitions and merges once each
    assert len(sim._built) == 8 + n_merges


def test_one_build_per_class_merge():
    """With a class budget every class's merge builds its own ground set once."""
    X, y = blobs(n=1600, seed=3)
    sim = CountingKNN(8)
    sel = ClassBalanced(SubmodularSelector(similarity=sim), policy="proportional")
    GreeDi(sel, 8, n_select=40, merge_cap=120, random_state=0).fit(X, y)
    counts = Counter(sim._built)
    assert len(counts) > 8 and max(counts.values()) == 1


def test_merge_union_builds_once():
    X, _ = blobs(n=400, seed=5)
    rows = np.arange(0, 400, 2)
    children = [{"indices": rows[:100], "weights": np.ones(100), "gains": np.zeros(100), "codes": None},
                {"indices": rows[100:], "weights": np.ones(100), "gains": np.zeros(100), "codes": None}]
    sim = CountingKNN(10)
    res, info = merge_union(SubmodularSelector(similarity=sim), lambda r: X[r], X.shape[1], X.dtype, children, 10,
                            None, np.random.default_rng(0), "cosine")
    assert len(info["merge_candidates"]) == 3  # the merge and two children, all valued
    assert len(sim._built) == 1
    assert sim._built[0] == hashlib.sha1(np.ascontiguousarray(X[rows]).tobytes()).hexdigest()


# ------------------------------------------------------------------ the compiled evaluation
@pytest.mark.parametrize("similarity", [DenseSimilarity(), KNNGraph(10)], ids=["dense", "knn"])
@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_replay_equals_one_call_per_pick(name, similarity):
    X, _ = blobs(n=300)
    X = np.abs(X)  # feature_based needs non-negative features
    S, _ = similarity.resolve(X, 0).build(X)
    obj = OBJECTIVES.create(name)
    if isinstance(similarity, KNNGraph) and name == "log_determinant":
        pytest.skip(f"{name} needs a dense similarity")
    pos = np.random.default_rng(0).permutation(300)[:40]
    value, gains = _replay(obj.bind(Data(features=X, similarity=S)), pos)
    ref_value, ref_gains = _replay_python(obj.bind(Data(features=X, similarity=S)), pos)
    assert value == ref_value
    np.testing.assert_array_equal(gains, ref_gains)
    # and the value is f(pos) from scratch, the gains its increments
    assert value == pytest.approx(obj.bind(Data(features=X, similarity=S)).evaluate(pos), rel=1e-12)
    empty = obj.bind(Data(features=X, similarity=S)).value
    assert gains.sum() == pytest.approx(value - empty, rel=1e-9, abs=1e-9 * abs(empty))
