"""``coreset.select``: the function form over the selectors."""

from __future__ import annotations

import functools

from .._defaults import LABEL_FILTER, METHOD, METRIC, OBJECTIVE, OPTIMIZER
from .._registry import CLASS_BUDGETS, METHODS, OBJECTIVES, OPTIMIZERS, SELECTORS, check_name
from .._validation import check_int
from ..exceptions import UnknownNameError, ValidationError

__all__ = ["select", "make_selector"]

def _keywords(cls, drop=()) -> tuple:
    import inspect

    return tuple(k for k in inspect.signature(cls.__init__).parameters if k != "self" and k not in drop)


@functools.cache
def _routing() -> dict:
    """What ``select``'s keyword arguments configure, read from the parts' own
    signatures (no name list to keep in step with them): ``similarity`` (a
    KNNGraph's knobs), ``budget`` (ClassBalanced's own), ``filter`` and
    ``submodular`` (SubmodularSelector's label filter and the rest of its own)."""
    from ..similarity import KNNGraph
    from ._class_balanced import ClassBalanced
    from ._submodular import SubmodularSelector

    common = ("n_select", "fraction", "random_state")
    own = _keywords(SubmodularSelector, drop=common + ("similarity", "device"))
    return dict(similarity=_keywords(KNNGraph),
                budget=_keywords(ClassBalanced, drop=common + ("selector", "policy")),
                filter=tuple(k for k in own if k.startswith("label_filter")),
                submodular=tuple(k for k in own if not k.startswith("label_filter")))


def _similarity_from(params: dict, n_hint=None):
    """A Similarity from the flat knobs (``metric``, ``n_neighbors``, ...)."""
    from ..similarity import AutoSimilarity, DenseSimilarity, KNNGraph, Precomputed

    metric = params.pop("metric", METRIC)
    nn = params.pop("n_neighbors", "auto")
    knobs = {k: params.pop(k) for k in _routing()["similarity"] if k in params}
    if metric == "precomputed":
        if knobs:
            raise ValidationError(f"{', '.join(sorted(knobs))} do not apply to metric='precomputed'")
        return Precomputed(None if nn in (None, "auto", "dense") else _n_neighbors(nn, n_hint))
    if nn is None or nn == "dense":
        return DenseSimilarity(metric, gamma=knobs.get("gamma"), device=knobs.get("device", "cpu"))
    if nn == "auto":
        return AutoSimilarity(metric, **knobs)
    return KNNGraph(_n_neighbors(nn, n_hint), metric, **knobs)


def _n_neighbors(nn, n):
    if isinstance(nn, str):
        raise ValidationError(f"n_neighbors must be 'auto', None (dense) or an integer in [1, N-1]; got {nn!r}")
    k = check_int(nn, "n_neighbors", low=1)
    if n is not None and k >= n:
        raise ValidationError(
            f"n_neighbors must be < the number of samples ({n}); got {k}. Use n_neighbors=None for the dense similarity")
    return k


def make_selector(method=METHOD, *, n_select=None, fraction=None, class_budget=None, random_state=None,
                  n_samples=None, **params):
    """The selector ``select`` runs: ``method`` (a selector or objective name),
    its parameters routed to the part they configure, wrapped in
    :class:`ClassBalanced` when ``class_budget`` is given."""
    from ._class_balanced import ClassBalanced
    from ._submodular import SubmodularSelector

    check_name("method", method, METHODS)
    if class_budget is not None:
        check_name("class_budget", class_budget, CLASS_BUDGETS)
    budget_params = {k: params.pop(k) for k in _routing()["budget"] if k in params}
    if budget_params and class_budget is None:
        raise ValidationError(f"{', '.join(f'{k}={v!r}' for k, v in budget_params.items())} "
                              "applies to class budgets; give class_budget= too")
    if method in OBJECTIVES or method == "submodular":
        objective = params.pop("objective", OBJECTIVE if method == "submodular" else method)
        if method != "submodular" and objective != method:
            raise ValidationError(f"method={method!r} is an objective; objective={objective!r} contradicts it")
        check_name("objective", objective, OBJECTIVES) if isinstance(objective, str) else None
        optimizer = params.pop("optimizer", OPTIMIZER)
        opt_params = {k: params.pop(k) for k in ("epsilon", "sample_fraction") if k in params}
        if isinstance(optimizer, str):
            check_name("optimizer", optimizer, OPTIMIZERS)
            cls_params = OPTIMIZERS.get(optimizer)().get_params()
            if "sample_fraction" in opt_params:
                opt_params["fraction"] = opt_params.pop("sample_fraction")
            optimizer = OPTIMIZERS.create(optimizer, **{k: v for k, v in opt_params.items() if k in cls_params})
        obj_params = params.pop("objective_params", None) or {}
        if isinstance(objective, str) and obj_params:
            objective = OBJECTIVES.create(objective, **obj_params)
        similarity = params.pop("similarity", None)
        if similarity is None:
            similarity = _similarity_from(params, n_samples)
        else:
            knobs = [k for k in _routing()["similarity"] if k in params]  # KNNGraph's: metric, n_neighbors, ...
            if knobs:
                raise ValidationError(
                    f"{', '.join(f'{k}={params[k]!r}' for k in knobs)} configures the similarity, "
                    f"and similarity={similarity!r} is given too: pass a configured one "
                    "(e.g. similarity=KNNGraph(n_neighbors=16, metric='euclidean')) or drop similarity=")
        sel = SubmodularSelector(objective=objective, optimizer=optimizer, similarity=similarity,
                                 budget=params.pop("budget", None), objective_device=params.pop("objective_device", None),
                                 random_state=random_state, label_filter=params.pop("label_filter", LABEL_FILTER),
                                 label_filter_threshold=params.pop("label_filter_threshold", None))
    else:
        cls = SELECTORS.get(method)
        if method == "k_center_greedy":
            params.setdefault("metric", "cosine")
        own = {k: params.pop(k) for k in list(params) if k in cls().get_params()}
        stray = {k: params.pop(k) for k in _routing()["filter"] if k in params}
        if stray.get("label_filter") not in (None, "auto") or stray.get("label_filter_threshold") is not None:
            raise ValidationError(f"label_filter applies to the submodular and random selectors; got "
                                  f"method={method!r} with {', '.join(f'{k}={v!r}' for k, v in stray.items())}")
        for k in _routing()["similarity"]:
            if k != "metric":
                params.pop(k, None)  # similarity knobs mean nothing to these baselines
        if method != "k_center_greedy":
            params.pop("metric", None)
        sel = cls(random_state=random_state, **own)
    if params:
        name = next(iter(params))
        r = _routing()
        known = r["similarity"] + r["budget"] + r["submodular"] + r["filter"] + (
            "epsilon", "sample_fraction", "similarity")
        raise UnknownNameError("parameter", name, known)
    if class_budget is not None:
        sel = ClassBalanced(sel, policy=class_budget, random_state=random_state, **budget_params)
    sel.set_params(n_select=n_select, fraction=fraction)
    return sel


def select(X, n_select=None, *, fraction=None, y=None, method=METHOD, class_budget=None, costs=None,
           initial_subset=None, random_state=None, callback=None, **params):
    """Select a small weighted subset of ``X``.

    Parameters
    ----------
    X : array (N, d), numpy or torch; or (N, N) similarity with ``metric="precomputed"``
        (dense ndarray or scipy sparse, row = candidate).
    n_select, fraction : exactly one: the final size (warm-start points included),
        or its share of N in (0, 1].
    y : labels (N,), optional; recorded on the selection, and with ``class_budget``
        the selection is made per class.
    method : "submodular" (facility location unless ``objective=``), any objective
        name (``"graph_cut"``, ...), or a baseline: "random", "stratified_random",
        "k_center_greedy". Same return type.
    class_budget : None, "proportional", "equal" or "tempered" (``alpha``,
        ``min_per_class`` in ``params``). Needs ``y``.
    costs : one positive cost per point, with ``budget=`` in params (knapsack).
    initial_subset : indices to start from (warm start): kept first, gains counted from there.
    label_filter (in params) : with labels, rows whose label looks wrong cannot
        be picked (they are still covered and weighed): "auto" (the default for
        submodular methods: a cross-fitted prototype probe on embeddings, kNN
        votes on a precomputed similarity), "probe", "knn", "cleanlab", or None
        (off; the default for "random" / "stratified_random", where it draws
        from the kept rows only). ``label_filter_threshold`` in (0, 1]. The
        suspects are on the result (``Selection.suspects``); docs/label-noise.md.
    random_state : None, int or numpy Generator.
    callback : ``callback(stage, done, total)`` for progress ("graph", "optimize").
    **params : passed to the part they configure: ``objective``, ``optimizer``,
        ``objective_params``, ``epsilon`` / ``sample_fraction`` (optimizer),
        ``similarity`` (an instance) or its knobs ``metric``, ``n_neighbors``
        ("auto", None for dense, or an int), ``backend``, ``device``, ``exact``,
        ``n_probe``, ``n_clusters``, ``batch_size``, ``gamma``; ``budget``,
        ``objective_device``; ``alpha``, ``min_per_class`` (class budgets).

    Returns
    -------
    Selection
        indices in selection order (with class budgets: by gain, descending),
        weights (cluster sizes, summing to N), gains, objective value, labels, meta.
    """
    import numpy as np

    n_hint = int(np.shape(X)[0]) if hasattr(X, "shape") and len(getattr(X, "shape", ())) >= 1 else None
    sel = make_selector(method, n_select=n_select, fraction=fraction, class_budget=class_budget,
                        random_state=random_state, n_samples=n_hint, **params)
    fit_params = {}
    if costs is not None:
        fit_params["costs"] = costs
    if initial_subset is not None:
        fit_params["initial_subset"] = initial_subset
    sel.fit(X, y, callback=callback, **fit_params)
    return sel.selection_
