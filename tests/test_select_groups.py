"""The class budget's split -> select -> merge inside the submodular selector:
its grouped dense facility location (every class in one pass) against the
generic path (``BaseSelector._select_groups``: the full selector run class by
class). The oracle is that generic path on the same input: the same picks,
order, gains, weights, objective, suspects and provenance, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from coreset import select
from coreset.selectors import SubmodularSelector
from coreset.selectors import _grouped_fl
from coreset.selectors._base import BaseSelector

_VOLATILE = {"timings", "created", "created_at", "seconds", "total_seconds"}


def _data(seed, n=900, d=10, n_classes=12, dtype=np.float32, noise=0.0):
    rng = np.random.default_rng(seed)
    sizes = np.maximum(2, (n / np.arange(1, n_classes + 1) ** 1.1).astype(int) // 3)  # long tail
    y = rng.permutation(np.repeat(np.arange(n_classes), sizes))
    X = (rng.standard_normal((n_classes, d))[y] * 2 + rng.standard_normal((y.size, d))).astype(dtype)
    if noise:
        flip = rng.random(y.size) < noise
        y = y.copy()
        y[flip] = (y[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    return X, y


def _strip(meta):
    out = {k: v for k, v in meta.items() if k not in _VOLATILE}
    if isinstance(out.get("label_filter"), dict):  # the filter's own seconds
        out["label_filter"] = {k: v for k, v in out["label_filter"].items() if k not in _VOLATILE}
    return out


def _both(monkeypatch, X, y, **kw):
    calls = []
    real = _grouped_fl.facility_location_groups

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    events = {"fast": [], "generic": []}
    monkeypatch.setattr(_grouped_fl, "facility_location_groups", counted)
    fast = select(X, y=y, callback=lambda *e: events["fast"].append(e), **kw)
    used_fast = bool(calls)
    monkeypatch.setattr(SubmodularSelector, "_select_groups", BaseSelector._select_groups)
    generic = select(X, y=y, callback=lambda *e: events["generic"].append(e), **kw)
    return fast, generic, used_fast, events


def _assert_same(a, b):
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.gains, b.gains)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.objective == b.objective
    if b.suspects is None:
        assert a.suspects is None
    else:
        np.testing.assert_array_equal(a.suspects, b.suspects)
    assert _strip(a.meta) == _strip(b.meta)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("policy,fraction", [("equal", 0.1), ("proportional", 0.3), ("tempered", 0.5)])
def test_grouped_pass_equals_the_class_by_class_path(monkeypatch, metric, dtype, policy, fraction):
    X, y = _data(1, dtype=dtype)
    fast, generic, used, events = _both(monkeypatch, X, y, fraction=fraction, class_budget=policy, metric=metric,
                                        random_state=3, label_filter=None)
    assert used  # the grouped pass ran
    _assert_same(fast, generic)
    assert events["fast"][-1] == events["generic"][-1]  # progress ends at the same counts


@pytest.mark.parametrize("similarity", ["auto", "dense"])
def test_grouped_pass_keeps_the_label_filter_suspects_out(monkeypatch, similarity):
    """With labels flipped, the default filter's suspects are kept out of
    each class's candidates (guarded when a class has too few left): the
    same as the class-by-class path, and no suspect is picked."""
    X, y = _data(4, n=1200, noise=0.15)
    fast, generic, used, _ = _both(monkeypatch, X, y, fraction=0.2, class_budget="equal", similarity=similarity,
                                   random_state=0)
    assert used
    assert fast.suspects is not None and fast.suspects.size > 0  # the filter found suspects to keep out
    _assert_same(fast, generic)


def test_a_guarded_class_takes_back_its_least_suspect_rows(monkeypatch):
    """A class whose budget exceeds its unflagged rows: both paths take back
    the same least-suspect rows (the inner guard), so some picks are suspects."""
    X, y = _data(7, n=600, noise=0.3)
    fast, generic, used, _ = _both(monkeypatch, X, y, fraction=0.9, class_budget="equal", random_state=1)
    assert used
    assert np.isin(fast.indices, fast.suspects).any()  # the guard was exercised
    _assert_same(fast, generic)


def test_a_class_too_large_for_a_dense_block_goes_class_by_class(monkeypatch):
    """One class above the dense limit (2,000 rows): the kNN path, through
    the generic per-class selection (no grouped pass)."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [2100, 40, 30])
    X = (rng.standard_normal((3, 8))[y] + rng.standard_normal((y.size, 8))).astype(np.float32)
    fast, generic, used, _ = _both(monkeypatch, X, y, n_select=60, class_budget="equal", random_state=0,
                                   label_filter=None)
    assert not used
    _assert_same(fast, generic)


@pytest.mark.parametrize("kw", [dict(optimizer="stochastic_greedy"), dict(objective="graph_cut"),
                                dict(n_neighbors=5)])
def test_other_configurations_go_class_by_class(monkeypatch, kw):
    X, y = _data(2, n=500)
    fast, generic, used, _ = _both(monkeypatch, X, y, fraction=0.2, class_budget="equal", random_state=0,
                                   label_filter=None, **kw)
    assert not used
    _assert_same(fast, generic)


def test_grouped_pass_matches_a_brute_force_greedy_per_class(monkeypatch):
    """Independent of both paths: each class's picks are greedy steps of
    facility location on that class's RBF block (computed here from the
    formula with the selection's own gamma), and the weights count, for each
    pick, the class rows whose most similar pick it is."""
    X, y = _data(9, n=150, d=3, n_classes=4, dtype=np.float64)
    sel = select(X, y=y, n_select=12, class_budget="equal", metric="euclidean", random_state=0, label_filter=None)
    gamma = sel.meta["gamma"]
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        S = np.exp(-gamma * ((X[rows][:, None, :] - X[rows][None, :, :]) ** 2).sum(-1))
        mine = [int(np.flatnonzero(rows == r)[0]) for r in sel.indices if y[r] == c]
        cur = np.zeros(rows.size)
        for step, j in enumerate(mine):
            g = np.maximum(S - cur[None, :], 0).sum(1)
            g[mine[:step]] = -np.inf
            assert g[j] == pytest.approx(g.max(), rel=1e-9)
            cur = np.maximum(cur, S[j])
        best = np.argmax(S[mine], axis=0)  # each row's most similar pick (the earlier among ties)
        where = {int(r): t for t, r in enumerate(sel.indices)}
        got = np.array([sel.weights[where[int(rows[j])]] for j in mine])
        np.testing.assert_array_equal(got, np.bincount(best, minlength=len(mine)))


def test_similarity_and_its_knobs_together_are_refused():
    """``similarity=`` with flat similarity knobs: the knobs would be
    dropped, so it is an error naming them (it was "n_neighbors is not known;
    did you mean 'n_neighbors'?")."""
    from coreset.exceptions import ValidationError

    X, y = _data(2, n=200)
    with pytest.raises(ValidationError, match=r"n_neighbors=5 configures the similarity"):
        select(X, fraction=0.1, similarity="knn", n_neighbors=5)
    with pytest.raises(ValidationError, match=r"metric='euclidean' configures the similarity"):
        select(X, fraction=0.1, similarity="dense", metric="euclidean")
