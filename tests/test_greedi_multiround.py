"""Multi-round GreeDi (``GreeDi(..., merge_cap=...)``): the merge tree.

Oracles: single-round GreeDi (a tree of one level must equal it exactly),
the cap itself on every merge's recorded ground set, brute-force facility
location (dense cosine) for RandGreeDi's best-of choice, class counts from
allocate_budget, the local executor against a real local Ray cluster."""

from __future__ import annotations

import numpy as np
import pytest

from coreset import GreeDi, SubmodularSelector, ValidationError
from coreset.optimizers import SampleGreedy
from coreset.selectors import ClassBalanced, allocate_budget
from coreset.selectors._greedi_tree import merge_union, plan_tree
from _greedi_helpers import blobs, inner, same


def fl(X, ground, picks):
    """Facility location on ``ground`` (rows of X), brute force: sum over the
    ground of max(0, the best cosine to a pick)."""
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    return float(np.maximum(Z[ground] @ Z[picks].T, 0).max(axis=1).sum())


def merges(sel):
    return sel.meta["greedi"]["levels"]


# ------------------------------------------------------------------ one level = single round
@pytest.mark.parametrize("budget", [{}, {"class_budget": "proportional"}])
def test_a_tree_of_one_level_is_single_round_greedi(budget):
    X, y = blobs()
    kw = dict(n_select=30, random_state=4, **budget)
    ref = GreeDi(inner(), 5, **kw).fit(X, y).selection_
    got = GreeDi(inner(), 5, merge_cap=5 * 30 + 40, **kw).fit(X, y).selection_  # 5 x 30 picks fit: one level
    same(ref, got)
    assert len(merges(got)) == 1 and merges(got)[0]["ground_sizes"] == [ref.meta["greedi"]["union_size"]]
    assert got.meta["greedi"]["merge_cap"] == 190 and ref.meta["greedi"]["merge_cap"] is None


# ------------------------------------------------------------------ the cap holds on every merge
@pytest.mark.parametrize("oversample, cap", [(1.0, 60), ([1.0, 0.5], 45), (0.5, 40), ([2.0, 1.0], 100)])
def test_every_merge_ground_set_is_under_the_cap(oversample, cap):
    X, _ = blobs(n=2000, seed=2)
    k, P = 20, 20
    g = GreeDi(inner(), P, n_select=k, merge_cap=cap, oversample=oversample, random_state=1).fit(X)
    sel, levels = g.selection_, merges(g.selection_)
    assert len(levels) >= 2  # a real tree: P x ceil(o k) > cap
    for lv in levels:
        assert max(lv["ground_sizes"]) <= cap
        assert len(lv["ground_sizes"]) == lv["n_nodes"]
    assert [lv["n_nodes"] for lv in levels][-1] == 1
    # each level's nodes are the groups of the level below: their ground sets add up to the children's picks
    assert sum(levels[0]["ground_sizes"]) == sum(min(s, max(int(np.ceil(np.atleast_1d(oversample)[0] * k)), 1))
                                                 for s in g.greedi_["partition_sizes"])
    assert sel.indices.size == k and np.unique(sel.indices).size == k
    assert sel.weights.sum() == pytest.approx(X.shape[0])
    # quality: the tree against single-round GreeDi, both valued exactly on all the points
    one = GreeDi(inner(), P, n_select=k, random_state=1).fit(X).selection_
    allpts = np.arange(X.shape[0])
    assert fl(X, allpts, sel.indices) >= 0.95 * fl(X, allpts, one.indices)


def test_plan_fan_in_and_sizes_by_hand():
    # 10 leaves of 20 picks, k = 20, cap 60: fan-in 3 -> 4 groups (3, 3, 2, 2) of <= 60 rows, 20 picks each;
    # then 80 > 60: fan-in 3 -> 2 groups (2, 2) of 40 rows, whose 2 x 20 picks would fit the cap: the last
    # merge is next, so they fill it (60 // 2 = 30 picks each); the last merge picks 20 of 60
    plan = plan_tree([20] * 10, 20, 60, (1.0,))
    assert [lv["fan_in"] for lv in plan] == [3, 3, 2]
    assert [len(lv["groups"]) for lv in plan] == [4, 2, 1]
    assert plan[0]["groups"] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert [lv["ground_bounds"] for lv in plan] == [[60, 60, 40, 40], [40, 40], [60]]
    assert [lv["picks"] for lv in plan] == [20, 30, 20]
    # oversample 0.1 below the partitions: ceil(0.1 x 20) = 2 picks, but the next merge is the last: 60 // 4
    plan = plan_tree([20] * 10, 20, 60, (1.0, 0.1))
    assert [lv["picks"] for lv in plan] == [15, 20] and plan[-1]["ground_bounds"] == [60]
    # cap = k, leaves of 5: 3 groups of <= 20 rows; 2 picks each would leave the last merge short of k, so a
    # node picks at least ceil(k / groups) = 7; 21 > 20: one more level of 2 groups (14 and 7 rows): 10 each
    # would give 17 < k, so the larger picks 13: the last merge has 20 = k rows
    plan = plan_tree([5] * 10, 20, 20, (0.25, 0.1))
    assert [lv["picks"] for lv in plan] == [7, 13, 20]
    assert [lv["ground_bounds"] for lv in plan] == [[20, 15, 15], [14, 7], [20]]
    assert plan_tree([20] * 4, 20, 100, (1.0,)) == [{"groups": [[0, 1, 2, 3]], "fan_in": 4, "picks": 20,
                                                     "ground_bounds": [80]}]


@pytest.mark.parametrize("policy", ["proportional", "equal"])
def test_class_budgets_exact_through_the_tree(policy):
    X, y = blobs(n=1600, seed=3)
    k = 40
    g = GreeDi(ClassBalanced(inner(), policy=policy), 8, n_select=k, merge_cap=120, random_state=0).fit(X, y)
    sel = g.selection_
    assert len(merges(sel)) >= 2 and all(max(lv["ground_sizes"]) <= 120 for lv in merges(sel))
    classes, counts = np.unique(y, return_counts=True)
    want = allocate_budget(counts, k, policy)
    assert np.array_equal([(sel.labels == c).sum() for c in classes], want)
    assert np.array_equal(y[sel.indices], sel.labels)


# ------------------------------------------------------------------ RandGreeDi's best-of rule
def test_best_of_keeps_a_child_that_beats_the_merge():
    """The merge runs greedy on a random sample of 6 of the union's 200 rows
    (SampleGreedy, fraction 0.03): child 1 hands in the exact greedy picks
    on the union, which beat it; the rule must return child 1's picks, its
    value the brute-force facility location on the union."""
    X, _ = blobs(n=400, seed=5)
    k = 6
    union = np.arange(0, 400, 2)  # the merge's ground set: 200 rows
    greedy = inner(n_select=k, random_state=0).fit(X[union]).selection_.indices
    good = union[greedy]
    rest = np.setdiff1d(union, good)
    children = [{"indices": rest[:94], "weights": np.ones(94), "gains": np.zeros(94), "codes": None},
                {"indices": np.concatenate([good, rest[94:]]), "weights": np.ones(106), "gains": np.zeros(106),
                 "codes": None}]
    sel = SubmodularSelector(similarity="dense", optimizer=SampleGreedy(fraction=0.03))

    def read(rows):
        return X[rows]

    res, info = merge_union(sel, read, X.shape[1], X.dtype, children, k, None, np.random.default_rng(0), "cosine")
    assert info["chosen"] == "partition 1"
    assert np.array_equal(res.indices, good)
    vals = info["merge_candidates"]
    assert vals["partition 1"] == pytest.approx(fl(X, union, good), rel=1e-5)
    assert vals["partition 0"] == pytest.approx(fl(X, union, rest[:k]), rel=1e-5)
    assert vals["partition 1"] > vals["merged"] and vals["partition 1"] > vals["partition 0"]
    assert res.objective == pytest.approx(vals["partition 1"])
    assert res.weights.sum() == pytest.approx(200)
    # with lazy greedy the merge is the greedy on the union: it wins (ties go to the merge)
    res2, info2 = merge_union(inner(), read, X.shape[1], X.dtype, children, k, None, np.random.default_rng(0),
                              "cosine")
    assert info2["chosen"] == "merged"
    assert info2["merge_candidates"]["merged"] == pytest.approx(fl(X, union, res2.indices), rel=1e-5)
    assert info2["merge_candidates"]["merged"] >= max(v for n, v in info2["merge_candidates"].items() if n != "merged")


def test_every_level_records_its_choice():
    X, _ = blobs(n=1500, seed=6)
    sel = GreeDi(inner(), 12, n_select=15, merge_cap=45, random_state=2).fit(X).selection_
    levels = merges(sel)
    assert len(levels) >= 3
    for lv in levels[:-1]:
        assert len(lv["chosen"]) == lv["n_nodes"]
        assert all(c == "merged" or c.startswith("partition ") for c in lv["chosen"])
    assert sel.meta["greedi"]["chosen"] in ["merged"] + [f"partition {i}" for i in range(levels[-1]["fan_in"])]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, match", [
    ({"merge_cap": 19}, r"merge_cap must be in \[20, inf\]; got 19"),
    ({"merge_cap": 30}, r"merge_cap must hold at least 2 .* >= 40\).*got merge_cap=30"),
    ({"merge_cap": 100, "oversample": 0}, r"oversample must be .*got 0"),
    ({"merge_cap": 100, "oversample": [1.0, -0.5]}, r"oversample must be .*got -0.5"),
    ({"oversample": 0.5}, r"oversample must be >= 1 without merge_cap.*got 0.5"),
    ({"oversample": [1.0, 1.0]}, r"oversample per level .* needs merge_cap"),
    ({"merge_cap": "big"}, r"merge_cap must be an integer; got 'big'"),
    ({"merge_cap": 100, "oversample": 0.5, "class_budget": "equal"}, r"oversample must be >= 1 at every level "
                                                                      r"with class_budget.*got oversample=0.5"),
])
def test_bad_parameters(kwargs, match):
    X, y = blobs(n=600)
    with pytest.raises(ValidationError, match=match):
        GreeDi(inner(), 4, n_select=20, random_state=0, **kwargs).fit(X, y)


def test_cli_merge_cap(tmp_path):
    from typer.testing import CliRunner

    from coreset import Selection
    from coreset.cli import app

    X, _ = blobs(n=900, seed=7)
    np.save(tmp_path / "x.npy", X)
    base = ["select", str(tmp_path / "x.npy"), "--n-select", "10", "--n-neighbors", "dense"]
    r = CliRunner().invoke(app, base + ["--partitions", "9", "--merge-cap", "30", "-o", str(tmp_path / "t.npz")])
    assert r.exit_code == 0, r.output
    sel = Selection.load(tmp_path / "t.npz")
    ref = GreeDi(inner(), 9, n_select=10, merge_cap=30, random_state=0).fit(X).selection_
    assert np.array_equal(sel.indices, ref.indices) and len(merges(sel)) >= 2
    assert all(max(lv["ground_sizes"]) <= 30 for lv in merges(sel))
    r = CliRunner().invoke(app, base + ["--partitions", "9", "--merge-cap", "5", "-o", str(tmp_path / "b.npz")])
    assert r.exit_code == 1 and r.output.count("Error:") == 1 and "merge_cap" in r.output and "got 5" in r.output
    assert not (tmp_path / "b.npz").exists()
    r = CliRunner().invoke(app, base + ["--merge-cap", "30", "-o", str(tmp_path / "u.npz")])
    assert r.exit_code == 2 and "--merge-cap applies with --partitions" in r.output


# ------------------------------------------------------------------ a real local Ray cluster
@pytest.mark.slow
@pytest.mark.distributed
def test_ray_tree_equals_local(tmp_path):
    ray = pytest.importorskip("ray")
    X, _ = blobs(n=1500, seed=8)
    np.save(tmp_path / "x.npy", X)
    kw = dict(n_select=15, merge_cap=45, oversample=[1.0, 0.6], random_state=9)
    local = GreeDi(inner(), 10, **kw).fit(tmp_path / "x.npy").selection_
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_file = GreeDi(inner(), 10, executor="ray", **kw).fit(tmp_path / "x.npy")
        shipped = GreeDi(inner(), 10, executor="ray", **kw).fit(X)
    finally:
        ray.shutdown()
    assert on_file.greedi_["executor"]["executor"] == "ray" and len(merges(local)) >= 2
    same(local, on_file.selection_)
    same(local, shipped.selection_)
    assert shipped.greedi_["levels"][0]["bytes_shipped"] > 0 == on_file.greedi_["levels"][0]["bytes_shipped"]
