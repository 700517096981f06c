"""Facility location over many groups in one pass (``facility_location_groups``)
against the engine's class-budgeted ``select`` (the oracle: the same picks,
gains, weights and objective, bit for bit), and the partitioned adaptive
selection built on it."""

from __future__ import annotations

import numpy as np
import pytest

from coreset import select
from coreset.selectors import allocate_budget
from coreset.selectors._grouped_fl import facility_location_groups
from coreset.similarity import euclidean_gamma


def _groups(y):
    classes, inverse = np.unique(y, return_inverse=True)
    members = np.argsort(inverse, kind="stable")
    sizes = np.bincount(inverse)
    return np.split(members, np.cumsum(sizes)[:-1]), sizes


def _data(seed, n=400, d=12, n_classes=9, dtype=np.float32):
    rng = np.random.default_rng(seed)
    sizes = np.maximum(1, (n / np.arange(1, n_classes + 1) ** 1.2).astype(int) // 3)  # long tail, down to 1 row
    y = rng.permutation(np.repeat(np.arange(n_classes), sizes))
    X = (rng.standard_normal((n_classes, d))[y] * 2 + rng.standard_normal((y.size, d))).astype(dtype)
    return X, y


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "inner_product"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("policy,fraction", [("proportional", 0.3), ("tempered", 0.5), ("equal", 0.9)])
def test_groups_equal_select_class_by_class(metric, dtype, policy, fraction):
    X, y = _data(3, dtype=dtype)
    if metric == "inner_product":
        X = np.abs(X)  # a non-negative similarity without clipping
    n_select = int(fraction * y.size)
    # the grouped pass is facility location with no label filter (AdaptiveReselection selects on gradient
    # proxies, where a label-consistency vote means nothing): its oracle is select with the filter off
    ref = select(X, n_select=n_select, y=y, class_budget=policy, min_per_class=1, metric=metric, n_neighbors=None,
                 random_state=0, label_filter=None)
    groups, sizes = _groups(y)
    budgets = allocate_budget(sizes, n_select, policy, min_per_class=1)
    gamma = euclidean_gamma(X) if metric == "euclidean" else None
    idx, w, gains, value = facility_location_groups(X, groups, budgets, metric=metric, gamma=gamma)
    np.testing.assert_array_equal(idx, ref.indices)  # the same rows in the same (merged by gain) order
    np.testing.assert_array_equal(w, ref.weights)
    np.testing.assert_array_equal(gains, ref.gains)
    assert w.sum() == y.size  # every row is represented by one pick of its own class
    for rows in groups:  # and by a pick of its class: weights add up per class
        assert w[np.isin(idx, rows)].sum() == rows.size


def test_groups_against_brute_force_greedy_on_a_tiny_case():
    """Every pick is a greedy step: it maximises the marginal gain over its
    group, given the picks before it (up to ties, which rounding may break
    either way), with the RBF block computed here from the formula."""
    X, y = _data(8, n=60, d=3, n_classes=3, dtype=np.float64)
    groups, sizes = _groups(y)
    budgets = np.minimum(sizes, [4, 3, 2])
    gamma = 0.37
    idx, w, gains, value = facility_location_groups(X, groups, budgets, metric="euclidean", gamma=gamma)
    total = 0.0
    for rows, k in zip(groups, budgets):
        S = np.exp(-gamma * ((X[rows][:, None, :] - X[rows][None, :, :]) ** 2).sum(-1))
        mine = [int(np.flatnonzero(rows == r)[0]) for r in idx if r in rows]  # this group's picks, in order
        assert len(mine) == k
        cur = np.zeros(rows.size)
        for step, j in enumerate(mine):
            g = np.maximum(S - cur[None, :], 0).sum(1)
            g[mine[:step]] = -np.inf
            assert g[j] == pytest.approx(g.max(), rel=1e-12, abs=1e-12)
            assert gains[idx == rows[j]][0] == pytest.approx(g[j], rel=1e-12)
            cur = np.maximum(cur, S[j])
        total += cur.sum()
    assert value == pytest.approx(total, rel=1e-12)


def test_cosine_points_no_pick_reaches_go_to_the_nearest_pick_as_in_select():
    # opposite directions: cosine clipped at 0 leaves rows with no similarity to the one pick
    X = np.array([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [-0.8, -0.3], [0.0, 1.0], [0.1, 0.9]], np.float32)
    y = np.array([0, 0, 0, 0, 1, 1])
    ref = select(X, n_select=2, y=y, class_budget="equal", metric="cosine", n_neighbors=None, random_state=0)
    groups, sizes = _groups(y)
    idx, w, _, _ = facility_location_groups(X, groups, [1, 1], metric="cosine")
    np.testing.assert_array_equal(idx, ref.indices)
    np.testing.assert_array_equal(w, ref.weights)
    assert w.sum() == 6


def test_groups_edge_cases():
    X, y = _data(1, n=50, d=4, n_classes=3)
    groups, sizes = _groups(y)
    idx, w, gains, value = facility_location_groups(X, groups, [0, 0, 0], gamma=0.5)
    assert idx.size == 0 and value == 0.0
    full = facility_location_groups(X, groups, sizes, gamma=0.5)[0]  # every row of every group
    assert sorted(full.tolist()) == list(range(y.size))
    with pytest.raises(ValueError, match="cannot give"):
        facility_location_groups(X, groups, sizes + 1, gamma=0.5)
    with pytest.raises(ValueError, match="differ in length"):
        facility_location_groups(X, groups, [1, 1], gamma=0.5)
