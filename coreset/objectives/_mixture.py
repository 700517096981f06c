"""Mixture: f(S) = sum_c w_c * f_c(S), a non-negative combination of objectives.

A non-negative combination of submodular functions is submodular (and
monotone when every component with w_c > 0 is).

Two paths, chosen when the mixture is bound:

* every component with w_c > 0 a bound :class:`KernelObjective` (nested
  mixtures of those included): the mixture is one too (its class becomes
  :class:`KernelMixture`, a subclass). Its ``state`` is a :class:`MixtureState`
  holding the tuple of the components' own states and the weights; its
  ``kernel_gain`` / ``kernel_update`` overloads loop over the child states
  with ``numba.literal_unroll``, numba resolving each child's overload at
  compile time, so the optimizers run their compiled loops on the mixture as
  on any single objective. ``kernel_update`` adds ``j`` to each child as
  ``commit`` does, so every child's ``selected`` / ``total`` stays its own.
  (One component object used twice, directly or inside a nested mixture,
  keeps the Python path, where its second ``update`` refuses the element as
  before instead of adding it twice.)
* otherwise (e.g. a torch or plain protocol component): a plain
  Objective-protocol object; the optimizers drive it through their Python
  path, one call per batch of candidates, and each component computes its
  batch (``gains``).

Gains are ``sum_c w_c * g_c`` summed in component order from 0.0 on both
paths, each ``g_c`` exact and deterministic, and ``w * g`` and ``+`` are
monotone under rounding, so stale gains stay exact upper bounds: lazy greedy
returns what naive greedy returns.
"""

from __future__ import annotations

import copy as _copy
from collections import namedtuple

import numpy as np
from numba import literal_unroll, types
from numba.extending import overload

from ..exceptions import ValidationError
from ._base import KernelObjective, kernel_gain, kernel_update, knn_to_csr
from ._graph_cut import MonotoneFlag

__all__ = ["Mixture", "KernelMixture", "MixtureState", "TorchMixture"]

#: the compiled mixture's state: ``children`` the tuple of the active
#: components' states (w_c > 0, in component order), ``weights`` their weights
#: (float64, same order); ``selected`` / ``total`` the mixture's own
MixtureState = namedtuple("MixtureState", "children weights selected total")


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is MixtureState


@overload(kernel_gain, jit_options={"nogil": True})
def _gain(state, j):
    """sum_c w_c * kernel_gain(child_c, j), in component order from 0.0."""
    if _is_state(state):
        def impl(state, j):
            children = state.children
            w = state.weights
            g = 0.0
            k = 0
            for child in literal_unroll(children):
                g += w[k] * kernel_gain(child, j)
                k += 1
            return g
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    """Add j to every child as ``commit`` does (the child's ``selected`` /
    ``total`` kept; ``commit`` itself is not called from here: a compiled
    ``commit`` reaching itself for another type aborts with an unresolved
    symbol); the weighted sum of the children's realised gains."""
    if _is_state(state):
        def impl(state, j):
            children = state.children
            w = state.weights
            g = 0.0
            k = 0
            for child in literal_unroll(children):
                gc = kernel_update(child, j)  # what ``commit`` does, inlined: it cannot call itself
                child.selected[j] = True
                child.total[0] += gc
                g += w[k] * gc
                k += 1
            return g
        return impl

def _leaf_states(states):
    out = []
    for st in states:
        out.extend(_leaf_states(st.children) if isinstance(st, MixtureState) else [st])
    return out


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
        if type(self) is KernelMixture:  # type(f)(...) / bind on a compiled mixture: start plain, choose again
            self.__class__ = Mixture
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
        self._choose_path()

    def _choose_path(self):
        """Bound with every active component a bound KernelObjective: become a
        :class:`KernelMixture` (the optimizers' compiled loops); otherwise stay
        a plain :class:`Mixture`. Subclasses of Mixture are left alone."""
        if type(self) is not Mixture:
            return
        kernel = self.is_bound and all(isinstance(c, KernelObjective) and c.is_bound for _, c in self._active())
        if kernel:
            leaves = _leaf_states([c.state for _, c in self._active()])
            kernel = len({id(st) for st in leaves}) == len(leaves)  # no state updated twice a step
        if kernel:
            selected = self.__dict__.pop("selected")
            self.__class__ = KernelMixture
            self._sync_state(selected, np.zeros(1, np.float64))

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


class KernelMixture(Mixture, KernelObjective):
    """A bound :class:`Mixture` whose active components are all bound
    :class:`KernelObjective` s: the same function, with a :class:`MixtureState`
    the optimizers' compiled loops run on. Made by ``Mixture(...)`` itself (not
    meant to be built directly); ``selected`` is the state's. The state holds
    the components' states as they were when it was built: reset or copy the
    mixture, not a component on its own (that gives the component a new state
    the mixture does not see)."""

    @property
    def selected(self) -> np.ndarray:
        st = self.__dict__.get("state")
        return None if st is None else st.selected

    @property
    def is_bound(self) -> bool:
        return self.__dict__.get("state") is not None

    def _sync_state(self, selected, total):
        """(Re)build the state from the active components' current states."""
        active = self._active()
        self.state = MixtureState(tuple(c.state for _, c in active),
                                  np.array([w for w, _ in active], np.float64), selected, total)

    # the Objective protocol on the compiled state: KernelObjective's, ahead of Mixture's Python path
    gains = KernelObjective.gains
    update = KernelObjective.update

    def reset(self) -> None:
        """Back to the empty set (every component; the state rebuilt on their new states)."""
        self._require_bound()
        for c in self.components:
            c.reset()
        self._sync_state(np.zeros(self.n, np.bool_), np.zeros(1, np.float64))

    def copy(self) -> "KernelMixture":
        """An independent copy (each component copied, data shared)."""
        new = _copy.copy(self)
        new.components = tuple(c.copy() for c in self.components)
        new._sync_state(self.state.selected.copy(), self.state.total.copy())
        return new


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
