"""``GreeDi``: distributed selection (GreeDi, Mirzasoleiman et al. 2013;
RandGreeDi, Barbosa et al. 2015).

partition -> select ``ceil(oversample * k)`` per partition, in parallel, on an
executor -> merge: select ``k`` from the union on the driver -> keep the
better of the merged solution and the best single partition's solution
(RandGreeDi), both valued by the inner objective on the union. With
``merge_cap``, the merge is a tree whose every ground set has at most
``merge_cap`` rows (multi-round GreeDi, Böther et al., MLSys 2025; see
``_greedi_tree.py``).

What moves where: a partition task receives a configured selector, a source
(a path and shape, or with Ray and an in-memory array the partition's rows,
``X[rows]``, put in the object store) and its sorted row numbers; it reads
its own rows and returns its picks (indices, gains, weights: a few KB). The
driver holds only labels, row numbers, a k-means training sample and the
union's rows. See docs/distributed.md.
"""

from __future__ import annotations

import math
import numbers
import os
import resource
import time
import warnings

import numpy as np

from .._defaults import ALPHA, EXECUTOR, MIN_PER_CLASS, PARTITION
from .._registry import CLASS_BUDGETS, check_name
from .._validation import check_int, check_labels, check_random_state, resolve_n_select
from ..exceptions import ValidationError
from ._base import BaseSelector, Group, GroupResult, Progress, WrapperSelector
from ._greedi_tree import by_gain, check_oversample, leaf_picks, merge_union, plan_tree, run_levels

__all__ = ["GreeDi"]

PARTITIONS = ("random", "kmeans", "contiguous")
#: rows per k-means assignment task
ASSIGN_ROWS = 250_000


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _metric_of(selector) -> str:
    for attr in ("similarity", "metric"):
        v = getattr(selector, attr, None)
        m = getattr(v, "metric", v) if v is not None else None
        if isinstance(m, str) and m in ("cosine", "euclidean", "inner_product"):
            return m
    return "cosine"


# ------------------------------------------------------------------ the tasks (run where the data are)
def _task_rows(task):
    """The task's rows, checked finite (errors name the global row)."""
    data = task["shard"] if task.get("shard") is not None else task["source"].read(task["rows"])
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float32)
    finite = np.isfinite(data)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise ValidationError(f"X must be finite; found {data[i, j]} at row {int(task['rows'][i])}, column {j}")
    return data


def partition_task(task: dict) -> dict:
    """Select within one partition; indices come back as global row numbers."""
    t0 = time.perf_counter()
    rows = np.asarray(task["rows"], np.int64)
    data = _task_rows(task)
    t_read = time.perf_counter() - t0
    rng = check_random_state(task["seed"])
    group = Group(data, None, False, Progress(None, {}))
    prepared = task["selector"]._prepare(group, rng)
    codes, caps = task.get("codes"), task.get("caps")
    if codes is None:
        res = prepared._select_group(group, min(int(task["k"]), group.n), rng)
        idx, gains, weights, objective = res.indices, res.gains, res.weights, res.objective
        picked_codes = None
    else:  # class budgets: each class of this partition on its own cap
        parts, objective = [], 0.0
        for c in np.unique(codes):
            members = np.flatnonzero(codes == c)
            b = min(int(caps[c]), members.size)
            if b == 0:
                continue
            r = prepared._select_group(group.take(members), b, rng)
            objective += r.objective
            parts.append((members[r.indices], r.gains, r.weights, np.full(r.indices.size, c, np.int64)))
        idx, gains, weights, picked_codes = (np.concatenate([p[i] for p in parts]) if parts else
                                             np.zeros(0, np.int64 if i in (0, 3) else np.float64) for i in range(4))
    return {"indices": rows[idx], "gains": np.asarray(gains, np.float64), "weights": np.asarray(weights, np.float64),
            "codes": picked_codes, "objective": float(objective), "n": int(rows.size),
            "seconds": time.perf_counter() - t0, "read_seconds": t_read, "bytes_read": int(data.nbytes),
            "maxrss_mb": _maxrss_mb(), "describe": prepared._describe(),
            "timings": {k: float(v) for k, v in group.timings.items()}}


def assign_task(task: dict) -> np.ndarray:
    """Nearest k-means centroid of each row of ``[start, stop)`` (int32)."""
    data = task["shard"] if task.get("shard") is not None else task["source"].read_range(task["start"], task["stop"])
    return _nearest_centroid(np.ascontiguousarray(data, np.float32), task["centroids"], task["metric"])


def _normalise(X, metric):
    """Rows in the partition's space: unit rows for cosine (zero rows stay zero)."""
    if metric == "cosine":
        from ..similarity import unit_rows

        return np.ascontiguousarray(unit_rows(X)[0], np.float32)
    return np.ascontiguousarray(X, np.float32)


def _kmeans_pp(X, P, rng):
    """k-means++ seeding (Arthur and Vassilvitskii, 2007): each next centre
    drawn with probability proportional to the squared distance to the
    nearest centre so far."""
    centres = np.empty((P, X.shape[1]), np.float32)
    centres[0] = X[rng.integers(X.shape[0])]
    sq = (X * X).sum(axis=1)
    d2 = np.maximum(sq - 2 * X @ centres[0] + centres[0] @ centres[0], 0).astype(np.float64)
    for j in range(1, P):
        total = d2.sum()
        i = int(rng.choice(X.shape[0], p=d2 / total)) if total > 0 else int(rng.integers(X.shape[0]))
        centres[j] = X[i]
        d2 = np.minimum(d2, np.maximum(sq - 2 * X @ centres[j] + centres[j] @ centres[j], 0))
    return centres


def _nearest_centroid(X, centroids, metric):
    """The nearest centroid of each row (the similarity package's k-means
    assignment: for cosine the centroids are unit rows, so the nearest is the
    most similar)."""
    from ..similarity import top_centroids

    return top_centroids(_normalise(X, metric), np.asarray(centroids, np.float32), 1,
                         parallel=False)[1][:, 0].astype(np.int32)


# ------------------------------------------------------------------ the wrapper
#: parameters of the single-machine selectors that GreeDi knows and refuses (in the constructor or fit)
_UNSUPPORTED = {
    "initial_subset": "initial_subset (a warm start) is not supported by GreeDi: the partitions select "
                      "independently and the merge starts empty; select without partitions to grow a "
                      "selection from initial_subset",
    "costs": "costs (a knapsack budget) is not supported by GreeDi: the partitions' budgets would not add up "
             "to one; select without partitions to use costs and budget",
}


class GreeDi(WrapperSelector):
    """Run ``selector`` on ``n_partitions`` parts of the data in parallel and
    merge (GreeDi / RandGreeDi).

    Parameters
    ----------
    selector : the inner selector (any coreset selector on embeddings),
        run on each partition and on the union of the partitions' picks.
    n_partitions : 1 to N. With 1, the result is the inner selector's.
    executor : "local" (tasks one after the other in this process), "ray",
        or an :class:`~coreset.executors.Executor` instance.
    partition : "random" (a seeded balanced random split) or "kmeans" (FAISS
        k-means with ``n_partitions`` centroids trained on a seeded sample of
        ``kmeans_sample`` rows read by the driver; tasks assign their rows), so
        similar points stay together. Empty clusters are dropped. Or
        "contiguous": P ranges of consecutive rows, so each task reads only
        its own slice of the file (random partitions make every task scan
        the whole file); a random partition when the rows are stored in a
        random order (shuffle the file once), the way to run at 10^8+ rows.
    oversample : each partition selects ``ceil(oversample * k)`` (GreeDi's
        alpha; RandGreeDi's guarantee is for 1). With ``merge_cap``, a number
        or one per level (level 0 = the partitions, then the intermediate
        merges; the last repeats), any positive value (below 1: fewer
        candidates per merge, a shallower tree).
    merge_cap : None (one merge of all the partitions' picks, P x
        ``ceil(oversample * k)`` rows) or the most rows any merge may select
        from (>= k): the picks are merged in a tree (multi-round GreeDi,
        Böther et al., MLSys 2025) whose fan-in keeps every merge's ground set
        under the cap, RandGreeDi's best-of rule at every merge; the sizes of
        every level are in ``meta["greedi"]["levels"]``.
    class_budget, alpha, min_per_class : with labels, per-class totals from
        :func:`allocate_budget` on the global class sizes; each partition
        selects up to ``ceil(oversample * b_c)`` of class c, and the merge
        selects exactly ``b_c`` of class c from the union.
    n_select, fraction, random_state : default to the inner selector's.
    ray_address, num_cpus, max_retries : for ``executor="ray"``.
    column : the list column when ``X`` is a parquet path.

    ``fit(X)`` takes an array, a memory-mapped ``.npy``, or a path to a
    ``.npy`` / ``.parquet`` file (the driver then never reads it whole).
    Weights sum to N (with a class budget, to the size of every class with a
    pick): each pick of a partition stands for the points it represents
    there; the union's points are assigned to their most similar final pick
    (exact search), carrying their weights.
    """

    accepts_precomputed = False

    def __init__(self, selector, n_partitions=8, *, executor=EXECUTOR, partition=PARTITION, oversample=1.0,
                 merge_cap=None, class_budget=None, alpha=ALPHA, min_per_class=MIN_PER_CLASS, n_select=None,
                 fraction=None, random_state=None, ray_address=None, num_cpus=None, max_retries=3, kmeans_sample=65536,
                 column=None, **unsupported):
        for key in unsupported:
            if key in _UNSUPPORTED:
                raise ValidationError(_UNSUPPORTED[key])
            raise TypeError(f"GreeDi.__init__() got an unexpected keyword argument {key!r}")
        self.selector = selector
        self.n_partitions = n_partitions
        self.executor = executor
        self.partition = partition
        self.oversample = oversample
        self.merge_cap = merge_cap
        self.class_budget = class_budget
        self.alpha = alpha
        self.min_per_class = min_per_class
        self.n_select = n_select
        self.fraction = fraction
        self.random_state = random_state
        self.ray_address = ray_address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.kmeans_sample = kmeans_sample
        self.column = column

    @property
    def method_name(self):
        return getattr(self.selector, "method_name", type(self.selector).__name__)

    def fit(self, X, y=None, *, callback=None, **fit_params):
        """Select from ``X`` (array, memmap, a ``.npy`` / ``.parquet`` path, a
        folder, glob or URI of such shards, or a row source); ``y``: labels (needed
        with ``class_budget``); ``callback(stage, done, total)``: one call per
        finished partition (stage "partitions") and per k-means assignment
        task (stage "assign")."""
        if not isinstance(self.selector, BaseSelector):
            raise ValidationError(f"selector must be a coreset selector; got {type(self.selector).__name__}")
        for key in _UNSUPPORTED:
            if fit_params.get(key) is not None:
                raise ValidationError(_UNSUPPORTED[key])
        if self.selector._is_precomputed():
            raise ValidationError("GreeDi needs embeddings; the inner selector is set for a precomputed similarity")
        from ._class_balanced import ClassBalanced

        if isinstance(self.selector, ClassBalanced):
            return self._fit_composed(X, y, callback)
        if self.class_budget is not None and not getattr(self, "_composed", False):
            warnings.warn("GreeDi(class_budget=..., alpha=..., min_per_class=...) is deprecated: wrap the selector "
                          "instead, GreeDi(ClassBalanced(selector, policy=...), ...)", DeprecationWarning,
                          stacklevel=2)
        return self._fit_with_inner_size(X, y, {"callback": callback}) or self._fit(X, y, callback)

    def _fit_composed(self, X, y, callback):
        """GreeDi around ``ClassBalanced(selector, policy=...)``: the class
        totals are the wrapper's (its policy, ``alpha``, ``min_per_class``,
        and its size when GreeDi has none), allocated once over all the rows
        and kept through every partition and merge; the partitions run the
        wrapped selector."""
        import copy

        cb = self.selector
        if self.class_budget is not None:
            raise ValidationError(f"the class budget is given twice: by the ClassBalanced selector "
                                  f"(policy={cb.policy!r}) and class_budget={self.class_budget!r}; give it once")
        flat = copy.copy(self)  # the same parameters (GreeDi does not change its selector)
        flat.selector = cb.selector
        flat.class_budget, flat.alpha, flat.min_per_class = cb.policy, cb.alpha, cb.min_per_class
        if flat.n_select is None and flat.fraction is None:
            flat.n_select, flat.fraction = cb.n_select, cb.fraction
        if flat.random_state is None:
            flat.random_state = cb.random_state
        flat._composed = True
        flat.fit(X, y, callback=callback)
        self.__dict__.update({k: v for k, v in flat.__dict__.items() if k.endswith("_") and not k.startswith("_")})
        return self

    # -- the run ------------------------------------------------------------------
    def _fit(self, X, y, callback):
        from .._provenance import build_meta
        from ..executors import as_source, make_executor
        from ..selection import Selection

        t_start = time.perf_counter()
        source = as_source(X, self.column)
        n = source.n
        k = resolve_n_select(n, self.n_select, self.fraction)
        P = check_int(self.n_partitions, "n_partitions", low=1, high=n)
        check_name("partition", self.partition, PARTITIONS)
        cap = None if self.merge_cap is None else check_int(self.merge_cap, "merge_cap", low=k)
        overs = check_oversample(self.oversample, cap, self.class_budget)
        codes = budgets = None
        if y is not None:
            y = check_labels(y, n)
        if self.class_budget is not None:
            check_name("class_budget", self.class_budget, CLASS_BUDGETS)
            if y is None:
                raise ValidationError(f"class_budget={self.class_budget!r} needs labels y; got y=None")
            from ._budget import allocate_budget

            codes = np.unique(y, return_inverse=True)[1]
            budgets = allocate_budget(np.bincount(codes), k, self.class_budget, alpha=self.alpha,
                                      min_per_class=self.min_per_class)
        if self.ray_address is not None and self.executor != "ray":
            raise ValidationError(f"ray_address applies to executor='ray'; got executor={self.executor!r}")
        ray_params = {"address": self.ray_address, "num_cpus": self.num_cpus,
                      "max_retries": None if self.max_retries == 3 else check_int(self.max_retries, "max_retries",
                                                                                   low=0)}
        executor = make_executor(self.executor, **{key: v for key, v in ray_params.items() if v is not None})
        rng = check_random_state(self.random_state)
        metric = _metric_of(self.selector)
        timings = {}
        t = time.perf_counter()
        parts = self._partitions(source, n, P, rng, executor, metric, callback)
        timings["partition"] = time.perf_counter() - t
        seeds = [self.random_state] if len(parts) == 1 else [int(s) for s in rng.integers(0, 2**63 - 1, len(parts))]
        kappa = leaf_picks(k, len(parts), overs, cap is not None)
        caps = None if budgets is None else np.ceil(overs[0] * budgets).astype(np.int64)
        if len(parts) > 1:  # the merge tree, planned before any work (a cap too small is an error now)
            leaf = ([min(kappa, p.size) for p in parts] if codes is None else
                    [int(np.minimum(np.bincount(codes[p], minlength=caps.size), caps).sum()) for p in parts])
            plan = plan_tree(leaf, k, cap, overs, budgets)
            if budgets is None and plan[-1]["ground_bounds"][0] < k:
                raise ValidationError(f"oversample={self.oversample!r} leaves the last merge "
                                      f"{plan[-1]['ground_bounds'][0]} rows for n_select={k}; raise oversample")
        ship = source.in_memory and not getattr(executor, "shares_memory", False)
        tasks = []
        for rows, seed in zip(parts, seeds):
            task = {"selector": self.selector, "rows": rows, "seed": seed, "k": kappa,
                    "codes": None if codes is None else codes[rows], "caps": caps}
            if ship:
                task["shard"] = source.read(rows)
            else:
                task["source"] = source
            tasks.append(task)
        t = time.perf_counter()
        from ..executors._ray_data import ray_data_plane  # shards on Ray: Ray Data reads and shuffles them

        plane = ray_data_plane(source, executor)
        results = (plane or executor).map(partition_task, tasks, stage="partitions", callback=callback)
        timings["partitions"] = time.perf_counter() - t
        t = time.perf_counter()
        if len(parts) == 1:
            r = results[0]
            res = GroupResult(r["indices"], r["gains"], r["weights"], r["objective"])
            if codes is not None:
                res = self._by_gain(res)
            info = {"chosen": "partition 0", "merge_candidates": None, "levels": []}
        elif plane is not None:  # the merges in a Ray task, on the picks' rows from the object store
            from ._greedi_shards import merge_on_picks

            res, info = plane.merge(merge_on_picks, self.selector, results, plan, k, budgets, overs, rng, metric)
        else:
            last, levels = run_levels(self.selector, source, executor, results, plan, k, budgets, overs, rng,
                                      metric, callback)
            t_last = time.perf_counter()
            res, info = merge_union(self.selector, source.read, source.d, source.dtype, last, k, budgets, rng, metric)
            info.pop("codes", None)
            levels.append({"level": len(plan), "n_nodes": 1, "fan_in": len(last), "picks": k,
                           "ground_sizes": [info["union_size"]],
                           "seconds": [round(time.perf_counter() - t_last, 4)]})
            info["levels"] = levels
        timings["merge"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        info.update(
            n_partitions=len(parts), partition=self.partition, merge_cap=cap,
            oversample=overs[0] if isinstance(self.oversample, numbers.Real) else list(overs),
            executor=executor.describe(),
            partition_sizes=[int(p.size) for p in parts],
            partition_seconds=[round(r["seconds"], 4) for r in results],
            partition_read_seconds=[round(r["read_seconds"], 4) for r in results],
            partition_bytes_read=[r["bytes_read"] for r in results],
            worker_maxrss_mb=[round(r["maxrss_mb"], 1) for r in results],
            partition_objectives=[r["objective"] for r in results],
            bytes_shipped=int(sum(t["shard"].nbytes if "shard" in t else 0 for t in tasks)
                              + sum(p.nbytes for p in parts)),
            bytes_returned=int(sum(r["indices"].nbytes + r["gains"].nbytes + r["weights"].nbytes for r in results)),
            driver_maxrss_mb=round(_maxrss_mb(), 1), source=source.describe())
        if plane is not None:
            info["ray_data"] = plane.stats
        self.greedi_ = info
        group = Group(np.empty((n, 0)), y, False, Progress(None, {}))
        self._described = self._describe_with(results)
        # a path is fingerprinted through its source (which knows the parquet column); else X as given
        fp_of = source if isinstance(X, (str, os.PathLike)) else X
        meta = build_meta(self, group, res, random_state=self.random_state, timings=timings, source=fp_of)
        meta["greedi"] = _plain(info)
        if hasattr(source, "shards_meta"):  # a folder / glob / URI of shards: each shard's path, rows, fingerprint
            meta["shards"] = source.shards_meta()
        if codes is not None:
            meta.update(class_budget=self.class_budget, min_per_class=int(self.min_per_class),
                        alpha=float(self.alpha) if self.class_budget == "tempered" else None)
        self.selection_ = Selection(indices=np.asarray(res.indices, np.int64), weights=res.weights, gains=res.gains,
                                    objective=res.objective, labels=None if y is None else y[res.indices], meta=meta)
        self.ranking_, self.weights_, self.gains_ = self.selection_.indices, self.selection_.weights, res.gains
        self.n_features_in_ = source.d
        return self

    def _describe_with(self, results):
        d = dict(results[0]["describe"])
        d["method"] = d.get("method") or self.method_name
        return d

    def _describe(self):
        return dict(self._described)

    def _by_gain(self, res):
        return by_gain(self.selector, res)

    # -- partitioning -------------------------------------------------------------------
    def _partitions(self, source, n, P, rng, executor, metric, callback):
        """Sorted row numbers of each non-empty partition."""
        if P == 1:
            return [np.arange(n, dtype=np.int64)]
        if self.partition == "contiguous":
            return [np.arange(a, b, dtype=np.int64) for a, b in zip(*_bounds(n, P))]
        if self.partition == "random":
            perm = rng.permutation(n)
            return [np.sort(perm[p::P]) for p in range(P)]
        from ..similarity import lloyd

        m = min(n, max(check_int(self.kmeans_sample, "kmeans_sample", low=1), 39 * P))
        sample = np.sort(rng.choice(n, size=m, replace=False))
        Xs = _normalise(source.read(sample).astype(np.float32), metric)
        # the library's k-means (similarity._kmeans), seeded by k-means++ on the sample
        centroids = lloyd(Xs, P, rng, 20, init=_kmeans_pp(Xs, P, rng))
        if metric == "cosine":  # spherical: unit centroids, so the nearest is the most similar
            centroids = _normalise(centroids, metric)
        del Xs
        bounds = np.linspace(0, n, max(1, math.ceil(n / ASSIGN_ROWS)) + 1).astype(np.int64)
        ship = source.in_memory and not getattr(executor, "shares_memory", False)
        tasks = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            task = {"start": int(a), "stop": int(b), "centroids": centroids, "metric": metric}
            if ship:
                task["shard"] = source.read_range(int(a), int(b))
            else:
                task["source"] = source
            tasks.append(task)
        labels = np.concatenate(executor.map(assign_task, tasks, stage="assign", callback=callback))
        order = np.argsort(labels, kind="stable")
        splits = np.split(order, np.cumsum(np.bincount(labels, minlength=P))[:-1])
        return [np.sort(s).astype(np.int64) for s in splits if s.size]


def _plain(v):
    from .._provenance import plain

    return plain(v)


def _bounds(n, P):
    """Starts and stops of P balanced ranges of consecutive rows."""
    edges = np.linspace(0, n, P + 1).astype(np.int64)
    return edges[:-1], edges[1:]
