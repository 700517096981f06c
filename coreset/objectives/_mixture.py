"""Mixture: f(S) = sum_c w_c * f_c(S), a non-negative combination of objectives.

A non-negative combination of submodular functions is submodular (and
monotone when every component with w_c > 0 is). The mixture is a plain
Objective-protocol object, not a :class:`KernelObjective`: the optimizers
drive it through their Python path, one call per batch of candidates, and each
component computes its batch in its own compiled kernel (``gains_many``).

Gains are ``sum_c w_c * g_c`` summed in component order, each ``g_c`` exact and
deterministic, and ``w * g`` and ``+`` are monotone under rounding, so stale
gains stay exact upper bounds: lazy greedy returns what naive greedy returns.
"""

from __future__ import annotations

import copy as _copy

import numpy as np

from ..exceptions import ValidationError
from ._base import knn_to_csr
from ._graph_cut import MonotoneFlag

__all__ = ["Mixture", "TorchMixture"]

#: ``Mixture()``: representativeness (facility location on the similarity)
#: plus coverage of the features (feature-based, sqrt), equally weighted
DEFAULT_COMPONENTS = ("facility_location", "feature_based")


def _resolve(component, position):
    from .._registry import OBJECTIVES

    if isinstance(component, str):
        return OBJECTIVES.create(component)
    if isinstance(component, type):
        raise ValidationError(f"components[{position}] is the class {component.__name__}; pass an instance "
                              f"({component.__name__}()) or its registry name")
    if not all(hasattr(type(component), a) or hasattr(component, a) for a in ("gains", "update", "value")):
        raise ValidationError(f"components[{position}] must be an objective (a registry name, or an object with "
                              f"gains/update/value); got {type(component).__name__}")
    return component


def _bound(c) -> bool:
    b = getattr(c, "is_bound", None)
    return bool(b) if b is not None else getattr(c, "n", 0) > 0


class Mixture:
    """Weighted sum of objectives, ``f(S) = sum_c w_c * f_c(S)``.

    Parameters
    ----------
    data : :class:`Data`, ndarray or scipy sparse, optional
        Binds every component (each to what it needs: a :class:`Data` gives the
        features to feature objectives and the similarity to similarity ones;
        a bare array goes to every component as is, as in apricot's
        MixtureSelection). ``None``: the mixture is bound if every component
        is, configured (unbound) otherwise.
    components : sequence of str or objectives, default ("facility_location", "feature_based")
        Registry names (default hyperparameters) or instances, configured or
        bound (then all bound, to the same N). Mixtures nest.
    weights : sequence of float >= 0, default equal weights 1 / m
        One per component, finite, not all 0. Not normalised: components on
        different scales (facility location grows like N, feature-based like
        the number of features) weigh accordingly.
    """

    name = "mixture"
    #: class: the default mixture's needs; instance: "similarity", "features" or "both"
    inputs = "both"
    #: class: the default mixture; instance: every component with w > 0 monotone
    monotone = MonotoneFlag(True)
    supports_sparse = False

    def __init__(self, data=None, *, components=None, weights=None):
        comps = DEFAULT_COMPONENTS if components is None else components
        if isinstance(comps, (str, bytes)) or not hasattr(comps, "__len__") or len(comps) == 0:
            raise ValidationError(f"components must be a non-empty list of objective names or instances; got {comps!r}")
        comps = [_resolve(c, i) for i, c in enumerate(comps)]
        m = len(comps)
        if weights is None:
            w = np.full(m, 1.0 / m)
        else:
            try:
                w = np.asarray(weights, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValidationError(f"weights must be numbers, one per component; got {weights!r}") from None
            if w.shape != (m,):
                raise ValidationError(f"weights must have one entry per component ({m}); got shape {w.shape}")
            if not np.isfinite(w).all() or (w < 0).any():
                raise ValidationError(f"weights must be finite and >= 0; got {w.tolist()}")
            if not (w > 0).any():
                raise ValidationError("weights must not all be 0")
        self.weights = tuple(float(x) for x in w)
        if data is not None:
            comps = [c.bind(data) for c in comps]
        self.components = tuple(comps)
        kinds = {getattr(c, "inputs", "similarity") for c in comps}
        self.inputs = kinds.pop() if len(kinds) == 1 else "both"
        self.supports_sparse = all(getattr(c, "supports_sparse", False) and getattr(c, "inputs", "") == "similarity"
                                   for c in comps)
        bound = [_bound(c) for c in comps]
        self.n = 0
        self.selected = None
        if any(bound):
            if not all(bound):
                raise ValidationError("components must be all bound or all configured; got a mix (pass data to "
                                      "Mixture(data, ...) or bind them alike)")
            sizes = {int(c.n) for c in comps}
            if len(sizes) != 1:
                raise ValidationError(f"components are bound to different ground sets: sizes {sorted(sizes)}")
            self.n = sizes.pop()
            self.selected = np.zeros(self.n, bool)
            for c in comps:  # a component that already holds picks: the mixture holds them too
                sel = getattr(c, "selected", None)
                if sel is not None and np.any(sel):
                    raise ValidationError("components must start from the empty set; reset() them first")

    # -- configuration -----------------------------------------------------------
    def get_params(self) -> dict:
        return {"components": list(self.components), "weights": list(self.weights)}

    @property
    def is_bound(self) -> bool:
        return self.selected is not None

    def bind(self, data) -> "Mixture":
        """A bound copy on ``data`` (a :class:`Data` or an array given to every component)."""
        return type(self)(data, **self.get_params())

    @classmethod
    def from_knn(cls, indices, similarities, **params) -> "Mixture":
        """Bound on a kNN graph; every component must be a similarity objective
        that supports sparse input."""
        cfg = cls(**params)
        if not cfg.supports_sparse:
            raise ValidationError("this mixture cannot run on a kNN graph: a component needs features or a dense "
                                  "similarity")
        return cls(knn_to_csr(indices, similarities), **params)

    def is_monotone(self) -> bool:
        return all(bool(getattr(c, "monotone", False)) for c, w in zip(self.components, self.weights) if w > 0)

    def _active(self):
        return [(w, c) for w, c in zip(self.weights, self.components) if w > 0]

    def _require_bound(self):
        if self.selected is None:
            raise ValidationError("Mixture is configured but not bound to data; pass data as its first argument "
                                  "or call .bind(data)")

    def __repr__(self) -> str:
        where = f"n={self.n}" if self.is_bound else "unbound"
        return f"Mixture({where}, components={list(self.components)!r}, weights={list(self.weights)!r})"

    # -- the Objective protocol ----------------------------------------------------
    @property
    def value(self) -> float:
        self._require_bound()
        v = 0.0
        for w, c in self._active():
            v += w * float(c.value)
        return v

    def gains(self, candidates) -> np.ndarray:
        self._require_bound()
        cands = np.ascontiguousarray(candidates, dtype=np.int64).ravel()
        if cands.size and (cands.min() < 0 or cands.max() >= self.n):
            raise ValidationError(f"candidates must be in [0, {self.n - 1}]; got {cands.min()}..{cands.max()}")
        out = np.zeros(cands.size, np.float64)
        for w, c in self._active():
            out += w * np.asarray(c.gains(cands), dtype=np.float64)
        return out

    def update(self, index: int) -> float:
        """Add ``index`` to every component; the realised (weighted) gain."""
        self._require_bound()
        j = int(index)
        if not 0 <= j < self.n:
            raise ValidationError(f"index must be in [0, {self.n - 1}]; got {j}")
        if self.selected[j]:
            raise ValidationError(f"element {j} is already in the set")
        g = float(self.gains(np.array([j]))[0])
        for _, c in self._active():
            c.update(j)
        self.selected[j] = True
        return g

    def evaluate(self, indices) -> float:
        """f(indices) from scratch: sum_c w_c * f_c.evaluate(indices)."""
        self._require_bound()
        v = 0.0
        for w, c in self._active():
            v += w * float(c.evaluate(indices))
        return v

    def reset(self) -> None:
        """Back to the empty set (every component)."""
        self._require_bound()
        for c in self.components:
            c.reset()
        self.selected[:] = False

    def copy(self) -> "Mixture":
        """An independent copy (each component copied, data shared)."""
        new = _copy.copy(self)
        if self.is_bound:
            new.components = tuple(c.copy() for c in self.components)
            new.selected = self.selected.copy()
        return new

    def to_torch(self, device: str = "cuda") -> "TorchMixture":
        """The mixture of the components' torch paths (every component with
        w > 0 needs one)."""
        self._require_bound()
        if self.selected.any():
            raise ValidationError("to_torch needs the empty set; reset() first")
        parts = []
        for w, c in self._active():
            try:
                parts.append((w, c.to_torch(device)))
            except (ValidationError, AttributeError) as exc:
                raise ValidationError(
                    f"mixture has no torch path: component {type(c).__name__} has none ({exc})") from None
        return TorchMixture(parts, self.n)


class TorchMixture:
    """:class:`Mixture` over torch components (the Objective protocol); gains
    summed in component order, as the numba-backed mixture does."""

    def __init__(self, parts, n):
        self.parts = list(parts)
        self.n = int(n)
        self.selected = np.zeros(self.n, bool)

    @property
    def value(self) -> float:
        v = 0.0
        for w, c in self.parts:
            v += w * float(c.value)
        return v

    def gains(self, candidates) -> np.ndarray:
        cands = np.ascontiguousarray(candidates, dtype=np.int64).ravel()
        out = np.zeros(cands.size, np.float64)
        for w, c in self.parts:
            out += w * np.asarray(c.gains(cands), dtype=np.float64)
        return out

    def update(self, index: int) -> float:
        j = int(index)
        g = float(self.gains(np.array([j]))[0])
        for _, c in self.parts:
            c.update(j)
        self.selected[j] = True
        return g
