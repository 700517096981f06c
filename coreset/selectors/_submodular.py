"""Submodular selection: an objective on a similarity, maximised by an optimizer."""

from __future__ import annotations

import time

import numpy as np

from .._registry import OBJECTIVES, OPTIMIZERS
from ..exceptions import ValidationError
from ._base import BaseSelector, Group, GroupResult, weights_from_assign

__all__ = ["SubmodularSelector"]


def _check_objective_device(objective_device):
    if objective_device is None:
        return None
    from .._device import parse_device, torch_cuda_available
    from ..exceptions import BackendUnavailableError

    if parse_device(objective_device) == "auto":
        raise ValidationError("objective_device must be 'cpu', 'cuda' or 'cuda:N' (or None); got 'auto'")
    if objective_device.startswith("cuda") and not torch_cuda_available():
        raise BackendUnavailableError(f"objective_device={objective_device!r} asks for a GPU but torch sees none")
    return objective_device


class SubmodularSelector(BaseSelector):
    """Maximise a submodular ``objective`` with an ``optimizer`` on a ``similarity``.

    Parameters
    ----------
    n_select, fraction : the size of the selection (exactly one; ``fraction``
        in (0, 1]); with ``initial_subset`` in ``fit``, the final size.
    objective : a registry name (``coreset._registry.OBJECTIVES``) or a
        configured objective, e.g. ``GraphCut(lambda_=0.3)``.
    optimizer : a registry name (``OPTIMIZERS``) or an instance, e.g.
        ``StochasticGreedy(epsilon=0.05)``.
    similarity : "auto" (dense up to 2,000 points per group, else a 32-NN
        graph), "knn", "dense", "precomputed" (X is the similarity), or a
        :class:`~coreset.similarity.Similarity` such as ``KNNGraph(16)``.
    budget : total cost allowed when ``fit`` gets ``costs`` (knapsack).
    objective_device : None (numba kernels on the CPU) or a torch device
        ("cuda", "cuda:N", "cpu"): the objective then lives on that device as
        tensors and the optimizer drives it through the Objective protocol.
    random_state : None, int or numpy Generator.

    ``weights`` of the selection are CRAIG's cluster sizes: how many points have
    each pick as their most similar pick (they sum to N).
    """

    method_name = "submodular"
    merge_by_gain = True

    def __init__(self, n_select=None, *, fraction=None, objective="facility_location", optimizer="lazy_greedy",
                 similarity="auto", budget=None, objective_device=None, random_state=None):
        self.n_select = n_select
        self.fraction = fraction
        self.objective = objective
        self.optimizer = optimizer
        self.similarity = similarity
        self.budget = budget
        self.objective_device = objective_device
        self.random_state = random_state

    def _is_precomputed(self) -> bool:
        from ..similarity import make_similarity

        return make_similarity(self.similarity).precomputed

    def _prepare(self, group: Group, rng):
        from ..similarity import make_similarity

        out = self._copy()
        out._objective = OBJECTIVES.create(self.objective)
        out._optimizer = OPTIMIZERS.create(self.optimizer)
        out._device = _check_objective_device(self.objective_device)
        if group.costs is not None and self.budget is None:
            raise ValidationError("costs= needs a budget= (total cost allowed); got budget=None")
        if group.costs is None and self.budget is not None:
            raise ValidationError(f"budget={self.budget!r} needs costs=; got costs=None")
        seed = int(rng.integers(0, 2**31 - 1))
        out._similarity = make_similarity(self.similarity).resolve(group.data, seed)
        return out

    def _copy(self):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def _describe(self) -> dict:
        obj, opt = self._objective, self._optimizer
        d = {"method": "submodular", "objective_name": getattr(obj, "name", type(obj).__name__),
             "optimizer": getattr(opt, "name", type(opt).__name__), "objective_device": self._device}
        d.update(self._similarity.describe())
        params = {}
        if hasattr(obj, "get_params"):
            params["objective_params"] = obj.get_params()
        params["optimizer_params"] = opt.get_params() if hasattr(opt, "get_params") else {}
        d.update(params)
        d["epsilon"] = getattr(opt, "epsilon", None)
        return d

    def _bind(self, group: Group):
        from ..objectives._base import Data

        sim = self._similarity

        def build():
            t = time.perf_counter()
            S, info = sim.build(group.data, callback=group.progress)
            for key, v in info.items():
                if key == "exact":
                    group.info[key] = bool(v) and group.info.get(key, True)
                else:
                    group.info.setdefault(key, v)
            group.timings["graph"] += time.perf_counter() - t
            return S

        if group.precomputed:
            data = Data(features=None, build_similarity=build)
        else:
            data = Data(features=group.data, build_similarity=build)
        f = self._objective.bind(data)
        return f, data

    def _select_group(self, group: Group, n_select: int, rng) -> GroupResult:
        f, data = self._bind(group)
        if self._device is not None:
            f = f.to_torch(self._device)
        initial = group.initial if group.initial is not None else np.zeros(0, np.int64)
        t = time.perf_counter()
        new, new_gains = self._optimizer.maximize(
            f, n_select - initial.size, rng=rng, initial=initial if initial.size else None,
            costs=group.costs, budget=self.budget, callback=group.progress)
        group.timings["optimize"] += time.perf_counter() - t
        t = time.perf_counter()
        sel = np.concatenate([initial, new]).astype(np.int64)
        gains = np.concatenate([self._optimizer.warm_start_gains_, new_gains])
        weights = self._weights(f, data, group, sel)
        group.timings["weights"] += time.perf_counter() - t
        return GroupResult(sel, gains, weights, float(f.value))

    def _weights(self, f, data, group, sel):
        """CRAIG weights: each point goes to its most similar pick (the earlier
        pick among ties); points no similarity reaches, to their nearest pick
        by an exact search."""
        n = group.n
        if sel.size == 0:
            return np.zeros(0)
        assign = getattr(f, "assign", None)
        if assign is not None:
            assign = assign.cpu().numpy().copy() if hasattr(assign, "cpu") else np.array(assign, copy=True)
        else:
            assign = _assign_by_similarity(data.similarity if (group.precomputed or data.has_similarity())
                                           else None, sel, n)
            if assign is None:  # an objective on features: nearest pick by the metric
                assign = np.full(n, -1, np.int64)
        lost = np.flatnonzero(assign < 0)
        if lost.size:
            assign[lost] = sel[self._similarity.nearest(group.data, lost, sel)]
        return weights_from_assign(assign, sel)


def _assign_by_similarity(S, sel, n):
    """argmax over the picks of S[pick, i] for every point i (-1 where all are 0)."""
    if S is None:
        return None
    import scipy.sparse as sp

    rows = S[sel]
    if sp.issparse(rows):
        rows = sp.csr_matrix(rows)
        best = np.asarray(rows.argmax(axis=0)).ravel()
        top = np.asarray(rows.max(axis=0).todense()).ravel()
    else:
        best = np.argmax(rows, axis=0)
        top = rows[best, np.arange(n)]
    out = sel[best].astype(np.int64)
    out[top <= 0] = -1
    return out
