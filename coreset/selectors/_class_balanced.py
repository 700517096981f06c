"""``ClassBalanced``: a selector run within each class on its class budget."""

from __future__ import annotations

import numpy as np
from .._defaults import ALPHA, MIN_PER_CLASS
from .._registry import CLASS_BUDGETS, check_name
from ..exceptions import ValidationError
from ._base import BaseSelector, WrapperSelector
from ._budget import allocate_budget

__all__ = ["ClassBalanced"]


class ClassBalanced(WrapperSelector):
    """Wrap ``selector`` so it selects within each class (a partition-matroid
    constraint), each class getting its budget from ``policy``
    (:func:`allocate_budget`: proportional, equal, tempered with ``alpha``,
    and a ``min_per_class`` floor). Picks are merged by gain, descending
    (stable: class order, then step) when the inner selector has gains.

    ``n_select`` / ``fraction`` / ``random_state`` default to the inner
    selector's when not given here.

    With the inner selector's label filter (``label_filter``, on by default
    for the submodular selector), the suspects of the whole input are found
    once, before the split, and kept out of each class's candidates (the
    sub-groups carry them). The class budgets are those without the filter
    (the same per-class counts); a class with fewer candidates than its
    budget takes back its least suspect rows until it has as many (the inner
    selector's guard), so no class is ever emptied or shrunk by the filter
    (when a detector flags most of a class, it is the detector that cannot
    separate that class; see ``docs/label-noise.md``).
    """

    needs_labels = True

    def __init__(self, selector, *, policy="proportional", alpha=ALPHA, min_per_class=MIN_PER_CLASS, n_select=None,
                 fraction=None, random_state=None):
        self.selector = selector
        self.policy = policy
        self.alpha = alpha
        self.min_per_class = min_per_class
        self.n_select = n_select
        self.fraction = fraction
        self.random_state = random_state

    @property
    def method_name(self):
        return getattr(self.selector, "method_name", type(self.selector).__name__)

    def _display_name(self):
        return f"class_budget={self.policy!r}"

    def _is_precomputed(self):
        return self.selector._is_precomputed()

    @property
    def supports_label_filter(self):
        return getattr(self.selector, "supports_label_filter", False)

    @property
    def accepts_precomputed(self):
        return self.selector.accepts_precomputed

    def fit(self, X, y=None, **fit_params):
        if not isinstance(self.selector, BaseSelector):
            raise ValidationError(f"selector must be a coreset selector; got {type(self.selector).__name__}")
        check_name("class_budget", self.policy, CLASS_BUDGETS)
        if fit_params.get("costs") is not None:
            raise ValidationError("costs= works without a class budget; got class_budget="
                                  f"{self.policy!r}")
        if fit_params.get("initial_subset") is not None:
            raise ValidationError("initial_subset= works without a class budget; got class_budget="
                                  f"{self.policy!r}")
        return self._fit_with_inner_size(X, y, fit_params) or super().fit(X, y, **fit_params)

    def _prepare(self, group, rng):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._inner = self.selector._prepare(group, rng)
        return new

    def _describe(self):
        d = self._inner._describe()
        d.update(class_budget=self.policy, min_per_class=int(self.min_per_class),
                 alpha=float(self.alpha) if self.policy == "tempered" else None)
        return d

    def _select_group(self, group, n_select, rng):
        classes, inverse = np.unique(group.y, return_inverse=True)
        members = np.argsort(inverse, kind="stable")
        sizes = np.bincount(inverse)
        splits = np.split(members, np.cumsum(sizes)[:-1])
        errors = None
        if self.policy == "error":  # DRoP: each class's held-out error on a preliminary probe
            from ..probes._scoring import class_errors

            if group.precomputed:
                raise ValidationError("class_budget='error' trains a probe on the embeddings; got a precomputed "
                                      "similarity (metric='precomputed')")
            errors = class_errors(group.data, group.y, random_state=int(rng.integers(0, 2**31 - 1)))[1]
            group.info["class_errors"] = errors.tolist()
        budgets = allocate_budget(sizes, n_select, self.policy, alpha=self.alpha, min_per_class=self.min_per_class,
                                  class_errors=errors)
        return self._inner._select_groups(group, splits, budgets, rng)
