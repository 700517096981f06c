"""Facility location within many small groups at once, on dense blocks.

The class budget's generic split -> select -> merge
(``BaseSelector._select_groups``) runs the whole selector machinery once per
class: a configured selector copy, a bound objective, an optimizer run, the
weights. That set-up costs ~0.06 ms per class, which is most of a selection
on small classes and most of an adaptive reselection's cost (a selection
every few epochs). :func:`facility_location_groups` does the same work with
none of it: per group one dense block built by the engine's own
``dense_block`` (the same bits), then lazy greedy on the engine's compiled
facility-location state and loop (``tree_init`` / ``lazy_steps``) in one
compiled call, among the group's candidates (the label filter's guarded
ones). ``SubmodularSelector._select_groups`` runs it for class budgets when
the result is the same, and ``AdaptiveReselection`` for its partitioned
classes. So the picks, gains, CRAIG weights and objective are the engine's,
bit for bit (``tests/test_select_groups.py`` compares them with the
class-by-class path, ``tests/test_grouped_fl.py`` with ``select`` class by class).
"""

from __future__ import annotations

import numpy as np
import time

from numba import njit

from ..objectives._facility_location import FacilityLocationState
from ..optimizers._kernels import lazy_steps, tree_init
from ..similarity import small_product_guard as _small_product_guard
from ._base import merge_groups, weights_from_assign

__all__ = ["facility_location_groups"]


@njit(cache=True, nogil=True)
def _lazy_dense(S, k, cands):
    """Lazy greedy for ``k`` picks of facility location on the dense block
    ``S`` (row = candidate) among ``cands`` (sorted rows of ``S``; the others
    are covered, never picked): the engine's state and loop, no costs. Returns
    ``(picks, gains, assign, cur, counts, lost)``: ``cur`` each point's coverage,: ``counts`` the points
    each pick represents (valid unless ``lost``: some point has no positive
    similarity to any pick and ``assign`` -1)."""
    n = S.shape[0]
    state = FacilityLocationState(0, S, np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, S.dtype),
                                  np.zeros(n, np.float64), np.full(n, -1, np.int64), np.zeros(n, np.bool_),
                                  np.zeros(1, np.float64))
    costs = np.ones(1)
    nk, ns, M, size = tree_init(state, cands, costs, False)
    fresh = np.full(n, -1, np.int64)
    fresh_gain = np.zeros(n, np.float64)
    out_idx = np.empty(k, np.int64)
    out_gain = np.empty(k, np.float64)
    size, stamp, budget, n_out = lazy_steps(state, cands, nk, ns, M, size, fresh, fresh_gain, 0, costs, False,
                                            np.inf, k, out_idx, out_gain, 0)
    pos = np.full(n, -1, np.int64)
    for t in range(n_out):
        pos[out_idx[t]] = t
    counts = np.zeros(n_out, np.float64)  # CRAIG weights, when every point has a representative
    lost = False
    for i in range(n):
        if state.assign[i] < 0:
            lost = True
        else:
            counts[pos[state.assign[i]]] += 1.0
    return out_idx[:n_out], out_gain[:n_out], state.assign, state.cur, counts, lost


def facility_location_groups(X, groups, budgets, *, metric="euclidean", gamma=None, candidates=None,
                             timings=None, on_group=None):
    """Facility location within each group of rows of ``X``, on its dense
    similarity, ``budgets[g]`` picks in group ``g``.

    ``X`` is an (N, d) float32 / float64 array, validated by the caller;
    ``groups`` a list of int64 row arrays (the rows of a group in ascending
    order, as ``select`` orders a class); ``metric`` "euclidean" (the RBF
    kernel with ``gamma``; None resolves it from all of ``X``, as ``select``
    does), "cosine" or "inner_product". ``candidates``: None, or one entry
    per group, None (every row) or the sorted positions within the group that
    may be picked (the label filter's guarded candidates; the other rows are
    still covered). ``timings``: a dict whose "graph", "optimize" and
    "weights" entries get the seconds spent; ``on_group(n_rows, n_picks)`` is
    called after each group. Returns ``(indices, weights, gains, objective)``:
    rows of ``X`` in select's order (each group's greedy picks, merged by
    gain descending, ties in group order); CRAIG weights (the rows
    each pick represents within its group); each pick's gain; the sum of the
    groups' facility-location values."""
    from ..similarity import dense_block, nearest_among, prepare_dense

    if len(groups) != len(budgets):
        raise ValueError(f"groups and budgets differ in length: {len(groups)} vs {len(budgets)}")
    if candidates is not None and len(candidates) != len(groups):
        raise ValueError(f"groups and candidates differ in length: {len(groups)} vs {len(candidates)}")
    clock = {"graph": 0.0, "optimize": 0.0, "weights": 0.0}
    Xd, gamma = prepare_dense(X, metric, gamma)  # the per-block checks of dense_similarity, once
    d = X.shape[1]
    biggest = max((rows.size for rows, k in zip(groups, budgets) if int(k) > 0), default=0)
    parts = []
    total = 0.0
    with _small_product_guard(biggest * biggest * d):  # one BLAS-thread setting for every block
        for g, (rows, k) in enumerate(zip(groups, budgets)):
            k = int(k)
            if k <= 0:
                continue
            if k > rows.size:
                raise ValueError(f"a group of {rows.size} rows cannot give {k} picks")
            t0 = time.perf_counter()
            S = dense_block(Xd[rows], metric, gamma)
            t1 = time.perf_counter()
            cands = None if candidates is None else candidates[g]
            cands = np.arange(rows.size, dtype=np.int64) if cands is None else np.asarray(cands, np.int64)
            picks, gains, assign, value, counts, lost = _lazy_dense(S, k, cands)
            t2 = time.perf_counter()
            if lost:  # points no pick is similar to (cosine clipped at 0): the nearest pick, as the engine does
                out = np.flatnonzero(assign < 0)
                assign[out] = picks[nearest_among(X[rows], out, picks, metric=metric, backend=None)]
                counts = weights_from_assign(assign, picks)
            parts.append((rows[picks], gains, counts))
            total += float(value.sum())  # numpy's sum, as the engine's objective value
            clock["graph"] += t1 - t0
            clock["optimize"] += t2 - t1
            clock["weights"] += time.perf_counter() - t2
            if on_group is not None:
                on_group(rows.size, picks.size)
    res = merge_groups(parts, by_gain=True)  # merged by gain, descending, as select merges classes
    if timings is not None:
        for key, v in clock.items():
            timings[key] += v
    return res.indices, res.weights, res.gains, float(total)
