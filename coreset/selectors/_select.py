"""``coreset.select``: embeddings (or a precomputed similarity) in, a weighted
:class:`~coreset.selection.Selection` out."""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import numpy as np
import scipy.sparse as sp

from .. import __version__
from .._device import parse_device
from .._registry import BACKENDS, CLASS_BUDGETS, METHODS, METRICS, OBJECTIVES, OPTIMIZERS, check_name
from .._validation import (
    as_embeddings,
    check_int,
    check_labels,
    check_not_all_identical,
    check_random_state,
    resolve_n_select,
)
from ..exceptions import ValidationError
from ..selection import Selection
from ._budget import allocate_budget

__all__ = ["select", "DENSE_AUTO_MAX", "DEFAULT_N_NEIGHBORS"]

log = logging.getLogger(__name__)

#: with ``n_neighbors="auto"``, groups up to this many points use the dense similarity
DENSE_AUTO_MAX = 2_000
#: with ``n_neighbors="auto"``, larger groups use a kNN graph with this many neighbours
DEFAULT_N_NEIGHBORS = 32


def _check_n_neighbors(n_neighbors, n):
    if n_neighbors is None or n_neighbors == "dense":
        return None
    if isinstance(n_neighbors, str):
        if n_neighbors == "auto":
            return "auto"
        raise ValidationError(f"n_neighbors must be 'auto', None (dense) or an integer in [1, {n - 1}]; got {n_neighbors!r}")
    k = check_int(n_neighbors, "n_neighbors", low=1)
    if k >= n:
        raise ValidationError(
            f"n_neighbors must be < the number of samples ({n}); got {k}. "
            "Use n_neighbors=None for the dense similarity"
        )
    return k


class _Progress:
    """Adds per-group offsets so the caller sees one running count per stage."""

    def __init__(self, callback, totals):
        self.callback, self.totals = callback, totals
        self.offset = defaultdict(int)

    def __call__(self, stage, done, total):
        if self.callback:
            self.callback(stage, self.offset[stage] + done, self.totals.get(stage, total))

    def advance(self, stage, amount):
        self.offset[stage] += amount
        if self.callback:
            self.callback(stage, self.offset[stage], self.totals.get(stage, self.offset[stage]))


def _weights_from_assign(assign, sel):
    """Cluster sizes: how many points have each selected point as representative."""
    pos = np.full(assign.shape[0], -1, np.int64)
    pos[sel] = np.arange(sel.size)
    return np.bincount(pos[assign], minlength=sel.size).astype(np.float64)


class _Engine:
    """One call's resolved settings; ``run_group`` selects within one group."""

    def __init__(self, *, metric, n_neighbors, backend, device, batch_size, optimizer, epsilon,
                 gamma, seed, progress, exact=None, n_probe=8, n_clusters=None, objective_device=None):
        self.metric, self.n_neighbors = metric, n_neighbors
        self.backend_name, self.device, self.batch_size = backend, device, batch_size
        self.optimizer, self.gamma, self.seed, self.progress = optimizer, gamma, seed, progress
        self.epsilon = epsilon
        self.exact, self.n_probe, self.n_clusters = exact, n_probe, n_clusters
        self.objective_device = objective_device
        self._backend = None
        self.graph_info = {}
        self.timings = defaultdict(float)

    @property
    def backend(self):
        if self._backend is None:
            from ..similarity import make_backend

            self._backend = make_backend(self.backend_name, self.device, self.batch_size)
        return self._backend

    def uses_dense(self, n):
        return self.n_neighbors is None or (self.n_neighbors == "auto" and n <= DENSE_AUTO_MAX)

    def make_optimizer(self):
        from ..optimizers import OPTIMIZER_FACTORIES

        cls = OPTIMIZER_FACTORIES[self.optimizer]
        return cls(epsilon=self.epsilon) if self.optimizer == "stochastic_greedy" else cls()

    def objective_for(self, data, n):
        from ..objectives import FacilityLocation
        from ..similarity import build_knn, dense_similarity

        t = time.perf_counter()
        if self.metric == "precomputed" and isinstance(self.n_neighbors, int):
            # sparsify: keep, for each point i, the k candidates j with the largest S[j, i]
            idx, sims, _ = build_knn(data.T, min(self.n_neighbors, n), metric="precomputed",
                                     batch_size=self.batch_size, validate=False)
            obj = FacilityLocation.from_knn(idx, sims)
            self.graph_info.setdefault("form", "precomputed-knn")
            self.graph_info.setdefault("k", int(self.n_neighbors))
        elif self.metric == "precomputed":
            obj = FacilityLocation(data, check=False)  # validated by as_similarity
            self.graph_info.setdefault("form", "precomputed-sparse" if sp.issparse(data) else "precomputed-dense")
        elif self.uses_dense(n):
            if self.device.startswith("cuda") and "form" not in self.graph_info:
                log.warning("device=%r: the dense similarity and greedy run on the CPU (numpy/numba); "
                            "only kNN graphs use the GPU", self.device)
            obj = FacilityLocation(dense_similarity(data, self.metric, gamma=self.gamma, validate=False), check=False)
            self.graph_info.setdefault("form", "dense")
        else:
            k = DEFAULT_N_NEIGHBORS if self.n_neighbors == "auto" else self.n_neighbors
            idx, sims, info = build_knn(data, min(k, n), metric=self.metric, backend=self.backend,
                                        batch_size=self.batch_size, gamma=self.gamma, exact=self.exact,
                                        n_probe=self.n_probe, n_clusters=self.n_clusters,
                                        random_state=self.seed,
                                        callback=self.progress, validate=False)
            obj = FacilityLocation.from_knn(idx, sims)
            self.graph_info.setdefault("form", "knn")
            self.graph_info.setdefault("k", int(k))
            self.graph_info["exact"] = bool(info["exact"]) and self.graph_info.get("exact", True)
            for key in ("n_probe", "n_clusters"):  # partitioned search only
                if key in info:
                    self.graph_info[key] = info[key]
        self.timings["graph"] += time.perf_counter() - t
        return obj

    def run_group(self, data, n, b, rng, costs=None, budget=None):
        """Facility location on one group: (local indices, gains, weights, value)."""
        obj = self.objective_for(data, n)
        if self.objective_device is not None:  # the torch path (GPU): gains as batched tensor ops
            from ..objectives import TorchFacilityLocation

            obj = TorchFacilityLocation(obj, self.objective_device)
        t = time.perf_counter()
        sel, gains = self.make_optimizer().select(obj, b, rng=rng, costs=costs, budget=budget,
                                                  callback=self.progress)
        self.timings["optimize"] += time.perf_counter() - t
        t = time.perf_counter()
        assign = obj.assign.cpu().numpy().copy() if self.objective_device is not None else obj.assign.copy()
        lost = np.flatnonzero(assign < 0)
        if lost.size and sel.size:
            if self.metric == "precomputed":
                assign[lost] = sel[0]  # no similarity to any pick: the first (largest-gain) pick
            else:
                from ..similarity import nearest_among

                be = None if self.uses_dense(n) else self.backend  # dense: plain numpy
                assign[lost] = sel[nearest_among(data, lost, sel, metric=self.metric, backend=be)]
        weights = _weights_from_assign(assign, sel)
        self.timings["weights"] += time.perf_counter() - t
        return sel, gains, weights, obj.value


def select(
    X,
    *,
    n_select: int | None = None,
    fraction: float | None = None,
    y=None,
    method: str = "submodular",
    objective: str = "facility_location",
    optimizer: str = "lazy_greedy",
    metric: str = "cosine",
    n_neighbors="auto",
    backend: str = "auto",
    device: str = "auto",
    class_budget: str | None = None,
    min_per_class: int = 0,
    alpha: float = 0.5,
    epsilon: float = 0.01,
    costs=None,
    budget: float | None = None,
    gamma: float | None = None,
    random_state=None,
    batch_size: int | None = None,
    exact: bool | None = None,
    n_probe: int = 8,
    n_clusters: int | None = None,
    objective_device: str | None = None,
    callback=None,
) -> Selection:
    """Select a small weighted subset of ``X`` that maximises facility location.

    Parameters
    ----------
    X : array (N, d), numpy or torch; or (N, N) similarity when ``metric="precomputed"``
        (dense ndarray or scipy sparse, row = candidate).
    n_select, fraction : exactly one; ``fraction`` in (0, 1].
    y : labels (N,), optional. Recorded on the selection; with ``class_budget``
        the selection is made per class.
    method : "submodular" (default) or a baseline: "random", "stratified_random",
        "k_center_greedy". Same return type.
    objective, optimizer : registry names (``coreset._registry``).
    metric : "cosine" (clipped at 0), "euclidean" (RBF kernel, median heuristic
        unless ``gamma``), "inner_product" (clipped at 0) or "precomputed".
    n_neighbors : "auto" (dense similarity for groups of at most 2,000 points,
        else a 32-NN graph), None (dense, you ask for N x N memory) or an int in
        [1, N-1] (kNN graph; clipped to each class's size with class budgets).
        With ``metric="precomputed"`` the matrix is used as given unless an int
        asks to keep only each point's top-k candidates.
    backend, device : kNN search backend ("auto", "faiss", "torch") and device
        ("auto", "cpu", "cuda", "cuda:N"), resolved once.
    class_budget : None, "proportional", "equal" or "tempered" (share ∝ n_c ** alpha);
        ``min_per_class`` is a floor on top. Needs ``y``.
    epsilon : stochastic greedy's accuracy parameter.
    costs, budget : knapsack variant (naive/lazy greedy, no class budget).
    random_state : None, int or numpy Generator.
    exact, n_probe, n_clusters : kNN graph search: ``exact=None`` is exact up
        to 20,000 points per group and k-means-partitioned above into
        ``n_clusters`` cells (default sqrt(N), at most the group size), each
        searched against its ``n_probe`` nearest cells; True / False force one
        or the other.
    objective_device : None (numba kernels on the CPU, the default) or a torch
        device ("cuda", "cuda:N", "cpu"): facility location then lives on that
        device as tensors (:class:`~coreset.objectives.TorchFacilityLocation`)
        and the optimizer drives it through the Objective protocol.
    callback : ``callback(stage, done, total)`` for progress ("graph", "optimize", "weights").

    Returns
    -------
    Selection
        indices in selection order (with class budgets: by gain, descending),
        weights = facility-location cluster sizes summing to N (to each class
        size with class budgets), gains, objective value, labels, meta.
    """
    t_start = time.perf_counter()
    check_name("method", method, METHODS)
    check_name("objective", objective, OBJECTIVES)
    check_name("optimizer", optimizer, OPTIMIZERS)
    check_name("metric", metric, METRICS)
    check_name("backend", backend, BACKENDS)
    parse_device(device)
    if batch_size is not None:
        check_int(batch_size, "batch_size", low=1)
    if exact not in (None, True, False):
        raise ValidationError(f"exact must be None (automatic), True or False; got {exact!r}")
    n_probe = check_int(n_probe, "n_probe", low=1)
    if n_clusters is not None:
        n_clusters = check_int(n_clusters, "n_clusters", low=1)
    if objective_device is not None:
        if parse_device(objective_device) == "auto":
            raise ValidationError("objective_device must be 'cpu', 'cuda' or 'cuda:N' (or None); got 'auto'")
        if objective_device.startswith("cuda"):
            from .._device import torch_cuda_available
            from ..exceptions import BackendUnavailableError

            if not torch_cuda_available():
                raise BackendUnavailableError(f"objective_device={objective_device!r} asks for a GPU but torch sees none")
    if class_budget is not None:
        check_name("class_budget", class_budget, CLASS_BUDGETS)
    rng = check_random_state(random_state)
    if metric == "precomputed":
        if method == "k_center_greedy":
            raise ValidationError("method='k_center_greedy' needs embeddings; got metric='precomputed'")
        from ..similarity import as_similarity

        data = as_similarity(X)
    else:
        data = as_embeddings(X)
        check_not_all_identical(data)
    n = data.shape[0]
    k = resolve_n_select(n, n_select, fraction)
    if y is not None:
        y = check_labels(y, n)
    nn = _check_n_neighbors(n_neighbors, n)
    if class_budget is not None and y is None:
        raise ValidationError(f"class_budget={class_budget!r} needs labels y; got y=None")
    if method == "stratified_random" and y is None:
        raise ValidationError("method='stratified_random' needs labels y; got y=None")
    if costs is not None and (class_budget is not None or method != "submodular"):
        raise ValidationError("costs= works with method='submodular' and no class_budget")
    if metric == "euclidean" and gamma is None:
        from ..similarity import euclidean_gamma

        gamma = euclidean_gamma(data)
    seed = int(rng.integers(0, 2**31 - 1))
    t_validate = time.perf_counter() - t_start

    # groups: the whole set, or one per class
    policy = class_budget or ("proportional" if method == "stratified_random" else None)
    if policy is not None:
        classes, inverse = np.unique(y, return_inverse=True)
        members = np.argsort(inverse, kind="stable")
        sizes = np.bincount(inverse)
        splits = np.split(members, np.cumsum(sizes)[:-1])
        budgets = allocate_budget(sizes, k, policy, alpha=alpha, min_per_class=min_per_class)
        groups = [(m, int(b)) for m, b in zip(splits, budgets) if b > 0]
    else:
        groups = [(None, k)]

    progress = _Progress(callback, {"optimize": k, "graph": sum(n if m is None else m.size for m, _ in groups)})
    engine = _Engine(metric=metric, n_neighbors=nn, backend=backend, device=device, batch_size=batch_size,
                     optimizer=optimizer, epsilon=epsilon, gamma=gamma, seed=seed, progress=progress,
                     exact=exact, n_probe=n_probe, n_clusters=n_clusters,
                     objective_device=objective_device)
    if device.startswith("cuda") and metric != "precomputed":
        # an explicit GPU request is honoured or refused, never silently dropped
        engine.backend  # noqa: B018 (builds the backend now: it raises when no GPU is there)
    parts = []
    total_value = 0.0
    for m, b in groups:
        size = n if m is None else m.size
        if m is None:
            sub = data
        elif metric == "precomputed":
            sub = data[m][:, m] if sp.issparse(data) else data[np.ix_(m, m)]
        else:
            sub = data[m]
        if method == "submodular":
            sel, gains, weights, value = engine.run_group(sub, size, b, rng, costs, budget)
            total_value += value
        else:
            from ._baselines import run_baseline

            t = time.perf_counter()
            sel, gains, weights = run_baseline(method, sub, b, rng, metric=metric)
            engine.timings["optimize"] += time.perf_counter() - t
            progress("optimize", sel.size, k)
        parts.append((sel if m is None else m[sel], gains, weights))
        progress.advance("graph", size)
        progress.advance("optimize", sel.size)

    indices = np.concatenate([p[0] for p in parts])
    gains = np.concatenate([p[1] for p in parts])
    weights = np.concatenate([p[2] for p in parts])
    if len(parts) > 1:  # merge groups by gain, descending (stable: class order, then step)
        order = np.argsort(-np.nan_to_num(gains, nan=0.0), kind="stable") if method == "submodular" else np.arange(indices.size)
        indices, gains, weights = indices[order], gains[order], weights[order]
    timings = {"validate": t_validate, **engine.timings}
    timings["total"] = time.perf_counter() - t_start
    be = engine._backend
    meta = {
        "method": method,
        "objective_name": objective if method == "submodular" else None,
        "optimizer": optimizer if method == "submodular" else None,
        "metric": metric,
        "n_neighbors": "dense" if nn is None else nn,
        "graph": engine.graph_info,
        "backend": be.name if be is not None else "numpy",
        "device": be.device if be is not None else "cpu",
        "random_state": random_state if isinstance(random_state, (int, np.integer)) else None,
        "epsilon": epsilon if optimizer == "stochastic_greedy" else None,
        "gamma": gamma,
        "n_samples": int(n),
        "n_select": int(indices.size),
        "class_budget": class_budget,
        "min_per_class": int(min_per_class) if class_budget else None,
        "alpha": float(alpha) if class_budget == "tempered" else None,
        "n_classes": int(np.unique(y).size) if y is not None else None,
        "objective_device": objective_device,
        "library_version": __version__,
        "timings": timings,
    }
    meta = {key: (int(v) if isinstance(v, np.integer) else v) for key, v in meta.items()}
    return Selection(
        indices=indices,
        weights=weights,
        gains=gains,
        objective=total_value if method == "submodular" else float("nan"),
        labels=None if y is None else y[indices],
        meta=meta,
    )
