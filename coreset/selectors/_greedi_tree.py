"""Multi-round GreeDi: a merge tree whose every merge ground set stays under a
cap, whatever the number of partitions P and the number of picks k.

The algorithm followed is the multi-round, partition-based distributed
greedy of Böther, Sebastian, Awasthi, Klimovic and Ramalingam ("On
Distributed Larger-Than-Memory Subset Selection With Pairwise Submodular
Functions", MLSys 2025, run there at 13 billion points), which runs
GreeDi (Mirzasoleiman, Karbasi, Sarkar and Krause, NeurIPS 2013) again on the
union of the picks until it fits one machine, with RandGreeDi's rule
(Barbosa, Ene, Nguyen and Ward, ICML 2015) at every merge: keep the better of
the merged selection and the best single child's selection, both valued by
the inner objective on the merge's ground set.

    level 0: P partitions, each selects kappa_0 = max(ceil(o_0 k), ceil(k / P))
    level l: the nodes of level l - 1 in groups of at most F_l children, with
             F_l = merge_cap // (the most picks any child can return), so a
             merge's ground set (the union of its children's picks) has at
             most merge_cap rows; each group selects
             kappa_l = max(ceil(o_l k), ceil(k / groups_l)) (the floor keeps
             the last union at k rows or more), or k at the last level, which
             is the first whose whole union fits under merge_cap. Without
             class budgets kappa_l rises where small nodes would leave the
             next level short of k rows, and the level before the last fills
             the last merge up to merge_cap (it chooses from as many
             candidates as the cap allows).

``o_l`` (``oversample``) may be below 1 at any level: the merge ground sets
then shrink faster and hold fewer candidates. With one level (P x kappa_0 <=
merge_cap) the tree is single-round GreeDi, exactly. Intermediate merges run
on the executor, like the partitions (a task reads its union's rows itself);
the last merge runs on the driver.
"""

from __future__ import annotations

import math
import numbers
import resource
import time

import numpy as np

from .._validation import check_float, check_random_state
from ..exceptions import ValidationError
from ._base import Group, GroupResult, Progress, gain_order

__all__ = ["check_oversample", "leaf_picks", "plan_tree", "merge_union", "merge_task", "run_levels"]


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------ parameters and the plan
def check_oversample(oversample, merge_cap, class_budget) -> tuple[float, ...]:
    """``oversample`` as a tuple of per-level factors (level 0 = the
    partitions; the last one repeats). Without ``merge_cap`` one number >= 1
    (single-round GreeDi, where RandGreeDi's guarantee holds); with it any
    positive numbers (at least 1 with a class budget, so that every class's
    union can reach its budget)."""
    if isinstance(oversample, (str, bytes)) or not isinstance(oversample, (numbers.Real, list, tuple, np.ndarray)):
        raise ValidationError(f"oversample must be a number or a sequence of numbers; got {oversample!r}")
    values = [oversample] if isinstance(oversample, numbers.Real) else list(oversample)
    if not values:
        raise ValidationError("oversample must be a number or a non-empty sequence of numbers; got []")
    out = tuple(check_float(v, "oversample", low=0.0, low_open=True) for v in values)
    if merge_cap is None:
        if len(values) > 1 or not isinstance(oversample, numbers.Real):
            raise ValidationError(f"oversample per level (a sequence) needs merge_cap; got oversample={oversample!r} "
                                  "with merge_cap=None")
        if out[0] < 1:
            raise ValidationError(f"oversample must be >= 1 without merge_cap (single-round GreeDi); got {out[0]} "
                                  "(below 1 needs merge_cap, the multi-round merge tree)")
    elif class_budget is not None and min(out) < 1:
        raise ValidationError(f"oversample must be >= 1 at every level with class_budget (below 1 a class's union "
                              f"can fall short of its budget); got oversample={oversample!r}")
    return out


def level_factor(oversample: tuple, level: int) -> float:
    return oversample[min(level, len(oversample) - 1)]


def leaf_picks(k: int, P: int, oversample: tuple, tree: bool) -> int:
    """Picks per partition: ceil(o_0 k); with the tree at least ceil(k / P)."""
    kappa = math.ceil(oversample[0] * k)
    return max(kappa, math.ceil(k / P)) if tree else kappa


def plan_tree(bounds, k: int, merge_cap: int | None, oversample: tuple, budgets=None) -> list[dict]:
    """The merge levels over leaves that return at most ``bounds[i]`` picks
    each: per level the groups (children's positions), the fan-in, the picks
    per node (k at the last level) and each node's ground-set bound. With
    ``merge_cap=None`` one level (single round). ``budgets``: per-class totals
    (a node then returns at most sum(ceil(o_l b_c)) picks)."""
    bounds = [int(b) for b in bounds]
    if merge_cap is None or sum(bounds) <= merge_cap:
        return [{"groups": [list(range(len(bounds)))], "fan_in": len(bounds), "picks": k,
                 "ground_bounds": [sum(bounds)]}]
    levels, level = [], 1
    while sum(bounds) > merge_cap:
        m, widest = len(bounds), max(bounds)
        fan_in = merge_cap // widest
        if fan_in < 2:
            raise ValidationError(
                f"merge_cap must hold at least 2 children's picks ({widest} rows each at level {level}, so >= "
                f"{2 * widest}) for the merge tree to make progress; got merge_cap={merge_cap} (raise merge_cap "
                f"or lower oversample={list(oversample) if len(oversample) > 1 else oversample[0]})")
        n_groups = math.ceil(m / fan_in)
        groups = [g.tolist() for g in np.array_split(np.arange(m), n_groups)]
        o = level_factor(oversample, level)
        ground = [sum(bounds[c] for c in g) for g in groups]
        kappa = max(math.ceil(o * k), math.ceil(k / n_groups))
        if budgets is None:
            kappa = _smallest(ground, kappa, lambda total: total >= k)  # small nodes: the others pick more
            if _rows(ground, kappa) <= merge_cap:  # the next merge is the last: fill it up to the cap
                kappa = max(kappa, _smallest(ground, kappa, lambda total: total > merge_cap) - 1)
        node_max = kappa if budgets is None else int(np.ceil(o * np.asarray(budgets)).sum())
        levels.append({"groups": groups, "fan_in": fan_in, "picks": kappa, "ground_bounds": ground})
        bounds = [min(gs, node_max) for gs in ground]
        level += 1
    levels.append({"groups": [list(range(len(bounds)))], "fan_in": len(bounds), "picks": k,
                   "ground_bounds": [sum(bounds)]})
    return levels


def _rows(ground, kappa) -> int:
    """Rows the next level receives when each node picks min(ground, kappa)."""
    return int(np.minimum(ground, kappa).sum())


def _smallest(ground, low, ok) -> int:
    """The smallest kappa >= low with ok(_rows(ground, kappa)) (max(ground) + 1
    when none: every node then returns its whole ground set)."""
    hi = max(ground) + 1  # from here on, every node returns its whole ground set
    if low >= hi or ok(_rows(ground, low)):
        return low
    if not ok(_rows(ground, hi)):
        return hi
    while hi - low > 1:  # ok(low) false, ok(hi) true
        mid = (low + hi) // 2
        low, hi = (low, mid) if ok(_rows(ground, mid)) else (mid, hi)
    return hi


# ------------------------------------------------------------------ one merge
def by_gain(selector, res: GroupResult) -> GroupResult:
    if not getattr(selector, "merge_by_gain", False):
        return res
    order = gain_order(res.gains)
    return GroupResult(res.indices[order], res.gains[order], res.weights[order], res.objective)


def merge_union(selector, read, d, dtype, results, k, budgets, rng, metric):
    """Select ``k`` from the union of ``results`` (children's picks, global
    row numbers; ``read(sorted_rows)`` gives their embeddings), or
    ``budgets[c]`` of each class c; RandGreeDi's best-of rule per group.
    Returns the result (global row numbers) and an info dict."""
    U = np.concatenate([r["indices"] for r in results])
    w = np.concatenate([r["weights"] for r in results])
    part = np.concatenate([np.full(r["indices"].size, p) for p, r in enumerate(results)])
    order = np.argsort(U, kind="stable")
    XU = np.empty((U.size, d), dtype)
    XU[order] = read(U[order])
    if budgets is None:
        return _merge_group(selector, XU, U, w, part, np.arange(U.size), k, rng, metric)
    codes = np.concatenate([r["codes"] for r in results])
    pieces, infos, objective = [], {}, 0.0
    for c in np.flatnonzero(budgets):
        members = np.flatnonzero(codes == c)
        r, info = _merge_group(selector, XU, U, w, part, members, int(budgets[c]), rng, metric)
        pieces.append((r, np.full(r.indices.size, c, np.int64)))
        infos[int(c)] = info["chosen"]
        objective += r.objective
    res = GroupResult(*(np.concatenate([getattr(p, a) for p, _ in pieces]) for a in ("indices", "gains", "weights")),
                      objective)
    picked_codes = np.concatenate([c for _, c in pieces]) if pieces else np.zeros(0, np.int64)
    if getattr(selector, "merge_by_gain", False):
        picked_codes = picked_codes[gain_order(res.gains)]
    return by_gain(selector, res), {"chosen": infos, "merge_candidates": None, "union_size": int(U.size),
                                    "codes": picked_codes}


def _merge_group(selector, XU, U, w, part, members, k, rng, metric):
    """Select ``k`` of ``members`` (positions in the union); RandGreeDi's
    choice between the merged and the best child's solution."""
    from ..similarity import nearest_among

    X = XU[members]
    group = Group(X, None, False, Progress(None, {}))
    prepared = selector._prepare(group, rng)
    if getattr(prepared, "_similarity", None) is not None:
        prepared._similarity = _build_once(prepared._similarity)  # the greedy's S, reused by the evaluator
    res = prepared._select_group(group, min(k, members.size), rng)
    candidates = {"merged": (res.indices, res.gains)}
    values = {}
    evaluate = _evaluator(prepared, X)
    if evaluate is not None:
        for p in np.unique(part[members]):
            own = np.flatnonzero(part[members] == p)[:k]  # the child's first k picks, in order
            candidates[f"partition {int(p)}"] = (own, None)
        for name, (pos, _) in candidates.items():
            values[name], gains = evaluate(pos)
            if name != "merged":
                candidates[name] = (pos, gains)
        best = max(values, key=lambda name: (values[name], name == "merged"))
    else:
        best = "merged"
    del evaluate, prepared  # the similarity is freed before the exact search of the weights
    pos, gains = candidates[best]
    assign = nearest_among(X, np.arange(X.shape[0]), pos, metric=metric, backend=None)
    weights = np.bincount(assign, weights=w[members], minlength=pos.size).astype(np.float64)
    objective = values.get(best, res.objective)
    info = {"chosen": best, "merge_candidates": {n: float(v) for n, v in values.items()} or None,
            "union_size": int(U.size)}
    return GroupResult(U[members[pos]], np.asarray(gains, np.float64), weights, float(objective)), info


class _BuiltOnce:
    """A resolved similarity whose ``build`` runs once for one X (the same
    array object): the merge's greedy and RandGreeDi's evaluation of the
    candidates then read one matrix, the one the greedy selected on. Every
    other attribute is the wrapped similarity's."""

    def __init__(self, sim):
        self._sim, self._X, self._built = sim, None, None

    def build(self, X, callback=None):
        if self._X is not X:
            self._built, self._X = self._sim.build(X, callback), X
        return self._built

    def __getattr__(self, name):
        if name == "_sim":  # not set yet (a copy in the making)
            raise AttributeError(name)
        return getattr(self._sim, name)


def _build_once(sim):
    return sim if isinstance(sim, _BuiltOnce) else _BuiltOnce(sim)


def _evaluator(prepared, X):
    """``evaluate(positions) -> (value, gains)``: the inner objective on the
    union, on the similarity the merge's greedy built (``_BuiltOnce``); None
    when the inner selector has no objective."""
    obj, sim = getattr(prepared, "_objective", None), getattr(prepared, "_similarity", None)
    if obj is None or sim is None:
        return None
    from ..objectives._base import Data

    S, _ = sim.build(X)

    def evaluate(pos):
        return _replay(obj.bind(Data(features=X, similarity=S)), pos)

    return evaluate


def _replay(f, pos):
    """``(value, gains)`` of the empty ``f`` after adding ``pos`` in order,
    each pick's gain as it was added; a kernel objective in one compiled loop
    (the modular optimizer's ``commit_many``: the same gain and update kernels
    as :func:`_replay_python`, to the bit)."""
    from ..optimizers._base import is_kernel

    if not is_kernel(f):
        return _replay_python(f, pos)
    from ..optimizers._kernels import commit_many

    pos = np.ascontiguousarray(pos, np.int64)
    out_idx, gains = np.empty(pos.size, np.int64), np.empty(pos.size, np.float64)
    _, n_out = commit_many(f.state, pos, np.ones(1), False, math.inf, pos.size, out_idx, gains)
    if n_out != pos.size or not np.array_equal(out_idx, pos):  # a repeated position: never from a merge
        raise RuntimeError(f"positions must be distinct; committed {n_out} of {pos.size}")
    return float(f.value), gains


def _replay_python(f, pos):
    """:func:`_replay` for any objective (one protocol call per pick)."""
    gains = np.empty(pos.size)
    for t, j in enumerate(pos):
        gains[t] = float(f.gains(np.array([j], np.int64))[0])
        f.update(int(j))
    return float(f.value), gains


# ------------------------------------------------------------------ the intermediate merges (tasks)
def merge_task(task: dict) -> dict:
    """One intermediate merge: ``task["children"]`` (their picks, weights and
    codes), the union's rows read from ``task["source"]`` or shipped as
    ``task["shard"]`` (sorted by ``task["shard_rows"]``); returns picks like a
    partition task."""
    t0 = time.perf_counter()
    if task.get("shard") is not None:
        shard, shard_rows = task["shard"], task["shard_rows"]

        def read(rows):
            return shard[np.searchsorted(shard_rows, rows)]
        d, dtype = shard.shape[1], shard.dtype
    else:
        source = task["source"]
        read, d, dtype = source.read, source.d, source.dtype
    rng = check_random_state(task["seed"])
    res, info = merge_union(task["selector"], read, d, dtype, task["children"], int(task["k"]), task["caps"], rng,
                            task["metric"])
    return {"indices": np.asarray(res.indices, np.int64), "gains": np.asarray(res.gains, np.float64),
            "weights": np.asarray(res.weights, np.float64), "codes": info.pop("codes", None),
            "objective": float(res.objective), "n": info["union_size"], "chosen": info["chosen"],
            "seconds": time.perf_counter() - t0, "bytes_read": int(info["union_size"] * d * np.dtype(dtype).itemsize),
            "maxrss_mb": _maxrss_mb()}


def _children(results):
    return [{"indices": r["indices"], "weights": r["weights"], "gains": r["gains"], "codes": r.get("codes")}
            for r in results]


def run_levels(selector, source, executor, results, plan, k, budgets, oversample, rng, metric, callback):
    """Run the intermediate levels of ``plan`` on ``executor``; the last
    level's merge is the caller's. Returns the last level's children and the
    per-level info (sizes, seconds, choices, bytes)."""
    infos = []
    ship = source.in_memory and not getattr(executor, "shares_memory", False)
    for level, spec in enumerate(plan[:-1], start=1):
        o = level_factor(oversample, level)
        caps = None if budgets is None else np.ceil(o * np.asarray(budgets)).astype(np.int64)
        seeds = [int(s) for s in rng.integers(0, 2**63 - 1, len(spec["groups"]))]
        tasks = []
        for group, seed in zip(spec["groups"], seeds):
            children = _children([results[c] for c in group])
            task = {"selector": selector, "children": children, "k": spec["picks"], "caps": caps, "seed": seed,
                    "metric": metric}
            if ship:
                rows = np.sort(np.concatenate([c["indices"] for c in children]))
                task["shard"], task["shard_rows"] = source.read(rows), rows
            else:
                task["source"] = source
            tasks.append(task)
        t = time.perf_counter()
        results = executor.map(merge_task, tasks, stage=f"merge level {level}", callback=callback)
        infos.append({"level": level, "n_nodes": len(tasks), "fan_in": spec["fan_in"], "picks": spec["picks"],
                      "oversample": o, "ground_sizes": [r["n"] for r in results],
                      "seconds": [round(r["seconds"], 4) for r in results],
                      "wall_seconds": round(time.perf_counter() - t, 4),
                      "bytes_read": [r["bytes_read"] for r in results],
                      "worker_maxrss_mb": [round(r["maxrss_mb"], 1) for r in results],
                      "chosen": [r["chosen"] for r in results],
                      "bytes_shipped": int(sum(t["shard"].nbytes for t in tasks if "shard" in t)),
                      "bytes_returned": int(sum(r["indices"].nbytes + r["gains"].nbytes + r["weights"].nbytes
                                                for r in results))})
    return results, infos
