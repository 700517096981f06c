"""Similarity as one configured object: how a selector turns X into the N x N
similarity its objective reads (row = candidate, entries >= 0).

* :class:`KNNGraph` (sparse, FAISS / torch search; the default above 2,000 points)
* :class:`DenseSimilarity` (every pair; small groups)
* :class:`AutoSimilarity` (dense up to ``max_dense`` points, else a kNN graph)
* :class:`Precomputed` (X *is* the similarity; optionally keep each point's top k)

``resolve(X, random_state)`` fixes what depends on the whole input once (the
euclidean kernel width, the search backend) before any per-class split;
``build(X, callback)`` returns ``(matrix, info)``; ``nearest(X, queries,
targets)`` assigns points no edge reaches to their most similar target.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import scipy.sparse as sp

from .._defaults import BACKEND, METRIC
from .._registry import BACKENDS, METRICS, check_name
from .._validation import check_int
from ..exceptions import ValidationError
from ._blas import small_product_guard

__all__ = ["Similarity", "KNNGraph", "DenseSimilarity", "AutoSimilarity", "Precomputed", "make_similarity",
           "with_device", "greedy_device", "DENSE_AUTO_MAX", "DEFAULT_N_NEIGHBORS"]

log = logging.getLogger(__name__)

#: ``AutoSimilarity``: groups up to this many points use the dense similarity
DENSE_AUTO_MAX = 2_000
#: ``AutoSimilarity``: larger groups use a kNN graph with this many neighbours
DEFAULT_N_NEIGHBORS = 32
_EMBEDDING_METRICS = tuple(m for m in METRICS if m != "precomputed")


class Similarity:
    """Base class; subclasses store their parameters under their own names."""

    precomputed = False  #: X is the similarity itself

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _check(self):
        """Validate the parameters (called by ``resolve``)."""

    def resolve(self, X, random_state: int = 0) -> "Similarity":
        """A copy with everything that depends on the whole input fixed."""
        out = copy.copy(self)
        out._check()
        out._seed = int(random_state)
        return out

    def describe(self) -> dict:
        """Provenance entries for ``Selection.meta``."""
        return {}

    @property
    def compute_device(self) -> str:
        """Where this similarity is computed ("cpu", "cuda", "cuda:N"), known
        after ``resolve``; the selector runs the greedy gains on the same device."""
        return "cpu"

    def build(self, X, callback=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def claim_dense(self, max_rows: int):
        """The :class:`DenseSimilarity` that groups of at most ``max_rows``
        rows are built with, claimed by a caller that builds their dense
        blocks itself (the submodular selector's grouped pass): None when such
        groups are not dense."""
        return None

    def nearest(self, X, queries, targets):
        from ._knn import nearest_among

        return nearest_among(X, queries, targets, metric=self.metric, backend=None)


def _check_metric(metric):
    return check_name("metric", metric, _EMBEDDING_METRICS)


def _resolve_gamma(self, X):
    if self.metric != "euclidean":
        return None
    if self.gamma is not None:
        from .._validation import check_gamma

        return check_gamma(self.gamma)
    from ._metrics import euclidean_gamma

    return euclidean_gamma(X)


class DenseSimilarity(Similarity):
    """Every pair (N x N memory): cosine / inner_product clipped at 0, euclidean
    as the RBF kernel (see ``docs/engine.md``)."""

    def __init__(self, metric: str = METRIC, gamma: float | None = None, device: str = "cpu"):
        self.metric = metric
        self.gamma = gamma
        self.device = device

    def _check(self):
        from .._device import parse_device, torch_cuda_available
        from ..exceptions import BackendUnavailableError

        _check_metric(self.metric)
        if parse_device(self.device).startswith("cuda"):
            # an explicit GPU request is honoured or refused, never silently dropped
            if not torch_cuda_available():
                raise BackendUnavailableError(f"device={self.device!r} asks for a GPU but torch sees none")
            log.warning("device=%r: the dense similarity is computed on the CPU (numpy); the greedy gains "
                        "run on the GPU", self.device)

    def resolve(self, X, random_state=0):
        out = super().resolve(X, random_state)
        out._gamma = _resolve_gamma(out, X)
        return out

    @property
    def resolved_gamma(self):
        """The euclidean kernel's width after ``resolve`` (None for the other metrics)."""
        return getattr(self, "_gamma", self.gamma)

    def claim_dense(self, max_rows: int):
        return self

    def describe(self):
        return {"metric": self.metric, "n_neighbors": "dense", "gamma": self.resolved_gamma,
                "backend": "numpy", "device": "cpu"}

    @property
    def compute_device(self) -> str:
        # the matrix is numpy; the greedy follows an explicit GPU request (it was checked in _check)
        from .._device import resolve_device

        return resolve_device(self.device)

    def build(self, X, callback=None):
        from ._dense import _dense_similarity

        n, d = X.shape[0], (X.shape[1] if X.ndim > 1 else 1)
        with small_product_guard(n * n * d):
            S = _dense_similarity(X, self.metric, gamma=self.resolved_gamma)
        return S, {"form": "dense"}


class KNNGraph(Similarity):
    """A k-nearest-neighbour graph (FAISS or torch search, GPU when asked).

    ``exact=None`` is an exact search up to 20,000 points and a
    k-means-partitioned one above (``n_clusters`` cells, default sqrt(N),
    each scored against its ``n_probe`` nearest cells, None: automatic; see
    :func:`~coreset.similarity.knn_graph`). ``n_neighbors`` is clipped to the
    size of each group it is built on.
    """

    def __init__(self, n_neighbors: int = DEFAULT_N_NEIGHBORS, metric: str = METRIC, backend: str = BACKEND,
                 device: str = "auto", exact: bool | None = None, n_probe: int | None = None, n_clusters: int | None = None,
                 batch_size: int | None = None, gamma: float | None = None, precision: str = "fp32"):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.backend = backend
        self.device = device
        self.exact = exact
        self.n_probe = n_probe
        self.n_clusters = n_clusters
        self.batch_size = batch_size
        self.gamma = gamma
        self.precision = precision

    def _check(self):
        from .._device import check_precision, parse_device

        check_precision(self.precision)

        _check_metric(self.metric)
        check_int(self.n_neighbors, "n_neighbors", low=1)
        check_name("backend", self.backend, BACKENDS)
        parse_device(self.device)
        if self.exact not in (None, True, False):
            raise ValidationError(f"exact must be None (automatic), True or False; got {self.exact!r}")
        if self.n_probe is not None:
            check_int(self.n_probe, "n_probe", low=1)
        if self.n_clusters is not None:
            check_int(self.n_clusters, "n_clusters", low=1)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", low=1)

    def resolve(self, X, random_state=0):
        from ._backends import make_backend

        out = super().resolve(X, random_state)
        out._gamma = _resolve_gamma(out, X)
        # built now: an explicit GPU request is honoured or refused, never dropped
        out._backend = make_backend(out.backend, out.device, out.batch_size, out.precision)
        out._info = {}
        return out

    def describe(self):
        be = getattr(self, "_backend", None)
        d = {"metric": self.metric, "n_neighbors": int(self.n_neighbors), "gamma": getattr(self, "_gamma", None),
             "backend": be.name if be else self.backend, "device": be.device if be else self.device}
        if self.precision != "fp32":
            d["precision"] = self.precision
        return d

    @property
    def compute_device(self) -> str:
        be = getattr(self, "_backend", None)
        return be.device if be is not None else "cpu"

    def build(self, X, callback=None):
        from ._csr import knn_to_csr
        from ._knn import _build_knn

        n = X.shape[0]
        k = min(int(self.n_neighbors), n)
        idx, sims, info = _build_knn(X, k, metric=self.metric, backend=self._backend, batch_size=self.batch_size,
                                    gamma=self._gamma, exact=self.exact, n_probe=self.n_probe,
                                    n_clusters=self.n_clusters, random_state=self._seed, callback=callback,
                                    exact_tiles=self.backend == "auto" and self.precision == "fp32")
        graph = {"form": "knn", "k": int(self.n_neighbors), "exact": bool(info["exact"])}
        for key in ("search", "n_probe", "n_clusters"):
            if key in info:
                graph[key] = info[key]
        return knn_to_csr(idx, sims), graph

    def nearest(self, X, queries, targets):
        from ._knn import nearest_among

        return nearest_among(X, queries, targets, metric=self.metric, backend=self._backend)


class AutoSimilarity(Similarity):
    """Dense for groups of at most ``max_dense`` points, else a kNN graph with
    ``n_neighbors``; the other parameters go to :class:`KNNGraph`."""

    def __init__(self, metric: str = METRIC, max_dense: int = DENSE_AUTO_MAX, **knn_params):
        self.metric = metric
        self.max_dense = max_dense
        self.knn_params = knn_params

    def resolve(self, X, random_state=0):
        out = super().resolve(X, random_state)
        check_int(self.max_dense, "max_dense", low=0)
        out._knn = KNNGraph(metric=self.metric, **self.knn_params).resolve(X, random_state)
        out._dense = DenseSimilarity(self.metric, gamma=self.knn_params.get("gamma"))
        out._dense._check()
        out._dense._gamma = out._knn._gamma
        out._used = None
        return out

    def _pick(self, n):
        return self._dense if n <= self.max_dense else self._knn

    def _record(self, kind):
        """What ``describe`` reports: "dense", "knn", or "mixed" once both were built."""
        self._used = kind if self._used in (None, kind) else "mixed"

    def claim_dense(self, max_rows: int):
        if max_rows > self.max_dense:
            return None
        self._record("dense")
        return self._dense

    @property
    def compute_device(self) -> str:
        return self._knn.compute_device if hasattr(self, "_knn") else "cpu"

    def describe(self):
        d = self._knn.describe()
        if self._used is not None:
            d.update(n_neighbors="auto")
        if self._used == "dense":
            d.update(backend="numpy", device="cpu")
        return d

    def build(self, X, callback=None):
        part = self._pick(X.shape[0])
        if part is self._dense and str(self._knn.device).startswith("cuda") and self._used is None:
            log.warning("device=%r: the dense similarity is computed on the CPU (numpy); the greedy gains "
                        "run on the GPU", self._knn.device)
        self._record("dense" if part is self._dense else "knn")
        return part.build(X, callback)

    def nearest(self, X, queries, targets):
        return self._pick(X.shape[0]).nearest(X, queries, targets) if X.shape[0] > self.max_dense else \
            super().nearest(X, queries, targets)


class Precomputed(Similarity):
    """X is the (N x N) similarity, dense or scipy sparse, row = candidate; used
    as given, or with ``n_neighbors`` only each point's top-k candidates kept."""

    precomputed = True
    metric = "precomputed"

    def __init__(self, n_neighbors: int | None = None):
        self.n_neighbors = n_neighbors

    def _check(self):
        if self.n_neighbors is not None:
            check_int(self.n_neighbors, "n_neighbors", low=1)

    def describe(self):
        return {"metric": "precomputed", "n_neighbors": "dense" if self.n_neighbors is None else int(self.n_neighbors),
                "gamma": None, "backend": "numpy", "device": "cpu"}

    def build(self, S, callback=None):
        if self.n_neighbors is None:
            return S, {"form": "precomputed-sparse" if sp.issparse(S) else "precomputed-dense"}
        from ._csr import knn_to_csr
        from ._knn import _build_knn

        # keep, for each point i, the k candidates j with the largest S[j, i]
        idx, sims, _ = _build_knn(S.T, min(int(self.n_neighbors), S.shape[0]), metric="precomputed")
        return knn_to_csr(idx, sims), {"form": "precomputed-knn", "k": int(self.n_neighbors)}

    def nearest(self, S, queries, targets):
        return np.zeros(len(queries), np.int64)  # no similarity to any pick: the first (largest-gain) pick


def make_similarity(spec="auto", **params) -> Similarity:
    """A :class:`Similarity` from a name ("auto", "knn", "dense", "precomputed")
    and its parameters, or an instance as is."""
    if isinstance(spec, Similarity):
        if params:
            raise ValidationError(f"similarity is an instance; parameters {sorted(params)} cannot apply to it")
        return spec
    kinds = {"auto": AutoSimilarity, "knn": KNNGraph, "dense": DenseSimilarity, "precomputed": Precomputed}
    if isinstance(spec, str) and spec in kinds:
        return kinds[spec](**params)
    if isinstance(spec, np.ndarray) or sp.issparse(spec):
        raise ValidationError("similarity= takes a name or a Similarity; to pass a matrix, "
                              "fit on it with similarity='precomputed'")
    raise ValidationError(f"similarity must be one of {', '.join(kinds)} or a Similarity instance; got {spec!r}")


def _device_of(sim) -> str | None:
    if isinstance(sim, AutoSimilarity):
        return sim.knn_params.get("device", "auto")
    return getattr(sim, "device", None)


def with_device(sim: Similarity, device: str, *, from_name: bool = False) -> Similarity:
    """``sim`` computed on ``device`` (the selector's one ``device=`` knob).

    ``device="auto"`` leaves ``sim`` as it is. A similarity made from a name
    (``from_name``) or whose own device is "auto" takes ``device``; an
    instance configured for another device is a contradiction
    (:class:`ValidationError`). ``Precomputed`` has no device of its own (the
    knob then places the greedy only)."""
    from .._device import parse_device

    device = parse_device(device)
    own = _device_of(sim)
    if device == "auto" or own is None or own == device:
        return sim
    if not from_name and own != "auto":
        raise ValidationError(f"device={device!r} contradicts the similarity's device={own!r}; "
                              "set one of them (or leave the selector's device='auto')")
    out = copy.copy(sim)
    if isinstance(out, AutoSimilarity):
        out.knn_params = {**out.knn_params, "device": device}
    else:
        out.device = device
    return out


def greedy_device(sim: Similarity, device: str = "auto") -> str | None:
    """Where the greedy gains run for a resolved ``sim``: the CUDA device its
    kNN graph is computed on (torch objective), else ``None`` (numba on the
    CPU). For a precomputed similarity, ``device`` decides ("auto": a GPU when
    torch sees one)."""
    from .._device import resolve_device

    d = resolve_device(device) if sim.precomputed else sim.compute_device
    return d if d.startswith("cuda") else None
