"""Submodular selection: an objective on a similarity, maximised by an optimizer."""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from .._defaults import DEVICE, LABEL_FILTER, OBJECTIVE, OPTIMIZER
from .._registry import OBJECTIVES, OPTIMIZERS
from ..exceptions import ValidationError
from ._base import BaseSelector, Group, GroupResult, weights_from_assign

__all__ = ["SubmodularSelector"]

log = logging.getLogger(__name__)


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
    device : "auto" (default), "cpu", "cuda" or "cuda:N": where the kNN graph
        is computed *and* the greedy gains run. On a CUDA device the graph is
        built by torch (or FAISS GPU when faiss-gpu is installed) and the
        objective lives there as tensors (its ``to_torch`` path); on the CPU the
        numba kernels run. "auto" picks the GPU when torch sees one. A
        similarity instance keeps its own device unless this one is explicit.
    objective_device : deprecated (use ``device``): None, or a torch device
        ("cuda", "cuda:N", "cpu") that places only the objective.
    random_state : None, int or numpy Generator.
    label_filter : "auto" (default), "probe", "knn", "cleanlab" or None. When
        ``fit`` gets labels, rows whose label looks wrong (``find_label_suspects``)
        cannot be picked; they stay in the ground set, so the objective still
        counts their coverage and the weights count them. "auto" is the probe
        on embeddings and the kNN vote on a precomputed similarity; None picks
        from every row, as before. See ``docs/label-noise.md``.
    label_filter_threshold : float in (0, 1] or None (the detector's default):
        a row is a suspect when its label is less than this share as likely as
        the most likely other class.

    ``weights`` of the selection are CRAIG's cluster sizes: how many points have
    each pick as their most similar pick (they sum to N; a suspect counts for
    its most similar pick like any row).
    """

    method_name = "submodular"
    merge_by_gain = True
    supports_label_filter = True

    def __init__(self, n_select=None, *, fraction=None, objective=OBJECTIVE, optimizer=OPTIMIZER,
                 similarity="auto", budget=None, device=DEVICE, objective_device=None, random_state=None,
                 label_filter=LABEL_FILTER, label_filter_threshold=None):
        self.n_select = n_select
        self.fraction = fraction
        self.objective = objective
        self.optimizer = optimizer
        self.similarity = similarity
        self.budget = budget
        self.device = device
        self.objective_device = objective_device
        self.random_state = random_state
        self.label_filter = label_filter
        self.label_filter_threshold = label_filter_threshold

    def _is_precomputed(self) -> bool:
        from ..similarity import make_similarity

        return make_similarity(self.similarity).precomputed

    def _prepare(self, group: Group, rng):
        from ..similarity import make_similarity

        out = self._copy()
        out._objective = OBJECTIVES.create(self.objective)
        out._optimizer = OPTIMIZERS.create(self.optimizer)
        if group.costs is not None and self.budget is None:
            raise ValidationError("costs= needs a budget= (total cost allowed); got budget=None")
        if group.costs is None and self.budget is not None:
            raise ValidationError(f"budget={self.budget!r} needs costs=; got costs=None")
        seed = int(rng.integers(0, 2**31 - 1))
        from ..similarity import greedy_device, with_device

        sim = with_device(make_similarity(self.similarity), self.device, from_name=isinstance(self.similarity, str))
        out._similarity = sim.resolve(group.data, seed)
        if self.objective_device is not None:
            warnings.warn("objective_device= is deprecated: device= places the kNN graph and the greedy gains "
                          "together", DeprecationWarning, stacklevel=3)
            out._device = _check_objective_device(self.objective_device)
        else:
            out._device = greedy_device(out._similarity, self.device)
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
            try:
                f = f.to_torch(self._device)
            except ValidationError as exc:
                if self.objective_device is not None:
                    raise
                log.warning("device %r: %s; the greedy gains run on the CPU (numba)", self._device, exc)
                self._device = None
        initial = group.initial if group.initial is not None else np.zeros(0, np.int64)
        restrict = {}
        if group.candidates is not None and not group.candidates.all():  # the label filter's suspects
            from ._label_noise import guard_candidates

            cand, score = group.candidates.copy(), group.suspect_score.copy()
            cand[initial], score[initial] = False, -np.inf  # the warm start is in already
            restrict["candidates"] = np.flatnonzero(guard_candidates(cand, score, n_select - initial.size))
        t = time.perf_counter()
        new, new_gains = self._optimizer.maximize(
            f, n_select - initial.size, rng=rng, initial=initial if initial.size else None,
            costs=group.costs, budget=self.budget, callback=group.progress, **restrict)
        group.timings["optimize"] += time.perf_counter() - t
        t = time.perf_counter()
        sel = np.concatenate([initial, new]).astype(np.int64)
        gains = np.concatenate([self._optimizer.warm_start_gains_, new_gains])
        assign = self._assign(f, data, group, sel)
        weights = weights_from_assign(assign, sel, group.weights)
        group.timings["weights"] += time.perf_counter() - t
        return GroupResult(sel, gains, weights, float(f.value))

    def _dense_groups(self, group: Group, members, budgets):
        """The dense similarity every sub-group is built with, claimed for the
        grouped fast path when it gives ``_select_groups``' result bit for bit
        (facility location, lazy greedy, on the CPU, embeddings without costs,
        warm start or point weights, every sub-group small enough for a dense
        block); else None."""
        from ..objectives._facility_location import FacilityLocation
        from ..optimizers._lazy import LazyGreedy

        if (group.precomputed or group.costs is not None or group.initial is not None or group.weights is not None
                or self._device is not None or type(self._objective) is not FacilityLocation
                or type(self._optimizer) is not LazyGreedy):
            return None
        sizes = [m.size for m, b in zip(members, budgets) if b > 0]
        return self._similarity.claim_dense(max(sizes)) if sizes else None

    def _select_groups(self, group: Group, members, budgets, rng) -> GroupResult:
        """Facility location within many small groups (class budgets): every
        group in one pass (:func:`~coreset.selectors._grouped_fl.facility_location_groups`),
        skipping the per-group set-up of ``_select_group``; the same picks,
        gains, weights and objective (``tests/test_select_groups.py``). Any
        other configuration goes group by group."""
        dense = self._dense_groups(group, members, budgets)
        if dense is None:
            return super()._select_groups(group, members, budgets, rng)
        from ._grouped_fl import facility_location_groups
        from ._label_noise import guard_candidates

        cands = None
        if group.candidates is not None:  # the label filter's suspects: each group's guarded candidates
            cands = []
            for m, b in zip(members, budgets):
                c = group.candidates[m]
                cands.append(None if b == 0 or c.all() else
                             np.flatnonzero(guard_candidates(c.copy(), group.suspect_score[m].copy(), int(b))))

        def advance(n_rows, n_picks):
            group.progress.advance("graph", n_rows)
            group.progress.advance("optimize", n_picks)

        indices, weights, gains, objective = facility_location_groups(
            group.data, members, budgets, metric=dense.metric, gamma=dense.resolved_gamma, candidates=cands,
            timings=group.timings, on_group=advance)
        group.info.setdefault("form", "dense")  # what DenseSimilarity.build reports
        return GroupResult(indices, gains, weights, objective)

    def _assign(self, f, data, group, sel):
        """CRAIG's assignment: each point goes to its most similar pick (the
        earlier pick among ties); points no similarity reaches, to their
        nearest pick by an exact search."""
        n = group.n
        if sel.size == 0:
            return np.zeros(n, np.int64)
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
        return assign

    # -- streaming hook ------------------------------------------------------------
    def partial_fit(self, X, y=None):
        """Feed one chunk of rows (merge and reduce): the chunk is pooled with
        the current selection, and ``n_select`` points are selected from that
        pool; each pick's weight is the total weight of the pool points it
        represents, so weights sum to the rows seen. Indices count rows across
        all chunks in the order given. ``selection_`` holds the running result.

        It equals one ``fit`` on the concatenation when an element's gain
        does not depend on the other rows of the ground set and the optimizer
        ranks by it once (``objective="feature_based"``, ``optimizer="modular"``);
        for facility location and other similarity objectives it is the
        composable-coreset approximation (each chunk is summarised by its
        picks), measured in ``tests/test_partial_fit.py``.
        """
        from .._validation import as_embeddings, check_int, check_labels, check_random_state
        from ..selection import Selection
        from ._base import Group, Progress

        if self.optimizer == "sieve_streaming" or getattr(self.optimizer, "name", None) == "sieve_streaming":
            return self._partial_fit_sieve(X, y)
        if self.n_select is None:
            raise ValidationError("partial_fit needs n_select (the size of the running selection); got None")
        k = check_int(self.n_select, "n_select", low=1)
        if self._is_precomputed():
            raise ValidationError("partial_fit needs embeddings; got similarity='precomputed'")
        Xc = as_embeddings(X)
        st = getattr(self, "_stream", None)
        if st is None:
            if y is not None:
                check_labels(y, Xc.shape[0])
            st = self._stream = {"X": Xc[:0].copy(), "idx": np.zeros(0, np.int64), "w": np.zeros(0),
                                 "y": None if y is None else np.asarray(y)[:0], "seen": 0,
                                 "rng": check_random_state(self.random_state), "d": Xc.shape[1]}
        if Xc.shape[1] != st["d"]:
            raise ValidationError(f"X has {Xc.shape[1]} columns but earlier chunks had {st['d']}")
        if (y is None) != (st["y"] is None):
            raise ValidationError("give labels y with every chunk or with none")
        pool_X = np.concatenate([st["X"], Xc.astype(st["X"].dtype, copy=False)])
        pool_idx = np.concatenate([st["idx"], st["seen"] + np.arange(Xc.shape[0], dtype=np.int64)])
        pool_w = np.concatenate([st["w"], np.ones(Xc.shape[0])])
        pool_y = None if y is None else np.concatenate([st["y"], check_labels(y, Xc.shape[0])])
        group = Group(pool_X, pool_y, False, Progress(None, {}))
        group.weights = pool_w
        prepared = self._prepare(group, st["rng"])
        res = prepared._select_group(group, min(k, pool_X.shape[0]), st["rng"])
        st.update(X=pool_X[res.indices], idx=pool_idx[res.indices], w=res.weights, seen=st["seen"] + Xc.shape[0],
                  y=None if pool_y is None else pool_y[res.indices])
        from .._provenance import build_meta

        group.data = np.empty((st["seen"], 0))  # sizes for the provenance: rows seen so far
        meta = build_meta(prepared, group, res, random_state=self.random_state, timings=dict(group.timings))
        meta["partial_fit_chunks"] = int(getattr(self, "n_chunks_", 0)) + 1
        self.n_chunks_ = meta["partial_fit_chunks"]
        self.selection_ = Selection(st["idx"], st["w"], res.gains, objective=res.objective, labels=st["y"],
                                    meta=meta)
        self.ranking_, self.weights_, self.gains_ = self.selection_.indices, self.selection_.weights, res.gains
        self.n_features_in_ = st["d"]
        return self

    def _partial_fit_sieve(self, X, y):
        """One pass (``optimizer="sieve_streaming"``): the chunk feeds the sieve
        state this estimator keeps (:class:`coreset._stream.PartialSieve`;
        docs/streaming.md)."""
        from .._registry import check_name
        from .._stream import PartialSieve

        if getattr(self, "_sieve", None) is None:
            if self.n_select is None:
                raise ValidationError("partial_fit needs n_select (the size of the selection); got None")
            check_name("objective", self.objective, ("facility_location",))
            self._sieve = PartialSieve(self.n_select, OPTIMIZERS.create(self.optimizer), self.random_state)
        sel = self._sieve.feed(X, y)
        self.selection_ = sel
        self.ranking_, self.weights_, self.gains_ = sel.indices, sel.weights, sel.gains
        self.n_chunks_, self.n_features_in_ = self._sieve.n_chunks, self._sieve.d
        return self


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
