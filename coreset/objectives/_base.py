"""What every objective is, and how optimizers reach its compiled kernels.

Two levels, one protocol:

* :class:`Objective` (a ``Protocol``): ``n``, ``value``, ``gains(candidates)``,
  ``update(j)``. Optimizers drive *any* object with these four in Python
  (one call per batch of gains). Torch objectives (the GPU path) and mixtures
  with a protocol-only component are plain protocol objects (a mixture of
  kernel objectives is a kernel objective itself: ``_mixture.py``).
* :class:`KernelObjective` (a base class): the objective keeps its whole state
  in one ``state`` named tuple of numpy arrays, and registers two numba
  overloads for its state type::

      @overload(kernel_gain)    # f(S + j) - f(S), float64, must not change state
      @overload(kernel_update)  # add j to S; return the realised gain

  The optimizers' loops are compiled once each (``optimizers/_kernels.py``)
  against these two generic names; numba resolves them to the objective's own
  code by the state's type at compile time, so a loop runs as fast as a loop
  hand-fused for that objective, and it is cached on disk like any numba
  function. Every state has the fields ``selected`` (bool, n) and ``total``
  (float64, 1): ``commit`` maintains them, objectives never touch them.

An objective is *configured* (hyperparameters only, e.g. ``GraphCut(lambda_=0.3)``)
or *bound* to data (``GraphCut(S, lambda_=0.3)``); ``spec.bind(data)`` turns the
first into the second. ``inputs`` says what it is built on: ``"similarity"``
(an N x N similarity, dense or a sparse kNN graph) or ``"features"`` (the
embeddings themselves, non-negative).
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numba import njit

from ..exceptions import ValidationError
from ..similarity._csr import knn_to_csr  # re-exported: objectives build on kNN graphs

__all__ = [
    "Objective",
    "KernelObjective",
    "kernel_gain",
    "kernel_update",
    "commit",
    "gains_many",
    "Data",
    "SimilarityArrays",
    "similarity_arrays",
    "knn_to_csr",
    "csr_positions",
]


@runtime_checkable
class Objective(Protocol):
    """A submodular set function under incremental construction.

    ``n``: ground-set size; ``value``: f(current set); ``gains(candidates)``:
    f(S + j) - f(S) for each j (float64); ``update(j)``: add j to S.
    """

    n: int

    @property
    def value(self) -> float: ...

    def gains(self, candidates: np.ndarray) -> np.ndarray: ...

    def update(self, index: int) -> None: ...


# ---------------------------------------------------------------- numba protocol
def kernel_gain(state, j):  # pragma: no cover - numba overloads replace it
    """Marginal gain of element ``j`` in ``state`` (numba overload per state type)."""
    raise NotImplementedError("kernel_gain is implemented by numba overloads, per objective state type")


def kernel_update(state, j):  # pragma: no cover - numba overloads replace it
    """Add ``j`` to the set held by ``state``; return the realised gain."""
    raise NotImplementedError("kernel_update is implemented by numba overloads, per objective state type")


@njit(cache=True, nogil=True)
def commit(state, j):
    g = kernel_update(state, j)
    state.selected[j] = True
    state.total[0] += g
    return g


@njit(cache=True, nogil=True)
def gains_many(state, cands):
    out = np.empty(cands.shape[0], np.float64)
    for t in range(cands.shape[0]):
        out[t] = kernel_gain(state, cands[t])
    return out


# ---------------------------------------------------------------- inputs
class Data:
    """What a selector hands an objective to bind to: the embeddings and a
    similarity computed on first request (so objectives on features never pay
    for a graph). ``similarity`` is an N x N dense ndarray or CSR matrix,
    row = candidate, entries >= 0."""

    def __init__(self, features=None, similarity=None, build_similarity=None):
        self.features = features
        self._similarity = similarity
        self._build = build_similarity

    @property
    def n(self) -> int:
        if self.features is not None:
            return int(self.features.shape[0])
        return int(self.similarity.shape[0])

    @property
    def similarity(self):
        if self._similarity is None:
            if self._build is None:
                raise ValidationError("this objective needs a similarity, and none can be built from the input")
            self._similarity = self._build()
        return self._similarity

    def has_similarity(self) -> bool:
        return self._similarity is not None


# ---------------------------------------------------------------- similarity input
class SimilarityArrays:
    """A validated similarity in the one layout every similarity kernel reads:
    ``mode == 0`` dense ``S`` (row j = how well candidate j represents each
    point), ``mode == 1`` CSR (``indptr``, ``idx`` int64, ``data``; row j lists
    the points j covers). The unused form holds empty arrays of the same dtype."""

    __slots__ = ("mode", "S", "indptr", "idx", "data", "n", "dtype")

    def __init__(self, mode, S, indptr, idx, data, n):
        self.mode, self.S, self.indptr, self.idx, self.data, self.n = mode, S, indptr, idx, data, n
        self.dtype = S.dtype if mode == 0 else data.dtype

    def csr(self):
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.idx, self.indptr), shape=(self.n, self.n))

    def dense(self) -> np.ndarray:
        return self.S if self.mode == 0 else np.asarray(self.csr().todense())


def _check_values(a, who):
    if a.size and not np.isfinite(a).all():
        raise ValidationError(f"similarity must be finite for {who}; found NaN or inf")
    if a.size and a.min() < 0:
        raise ValidationError(f"similarity must be non-negative for {who}; found minimum {a.min():.6g}")


def similarity_arrays(similarity, who: str = "this objective", *, check: bool = True,
                      allow_sparse: bool = True) -> SimilarityArrays:
    """Validate a square non-negative similarity (dense ndarray, a scipy sparse
    matrix of any index dtype, or :class:`SimilarityArrays` as is)."""
    import scipy.sparse as sp

    if isinstance(similarity, SimilarityArrays):
        return similarity
    if sp.issparse(similarity):
        if not allow_sparse:
            raise ValidationError(f"{who} needs a dense similarity; got a sparse matrix (use a dense similarity)")
        M = sp.csr_matrix(similarity)
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValidationError(f"similarity must be square (N x N); got shape {M.shape}")
        M.sum_duplicates()
        data = np.asarray(M.data)
        if data.dtype not in (np.float32, np.float64):
            data = data.astype(np.float32)
        if check:
            _check_values(data, who)
        n = M.shape[0]
        out = SimilarityArrays(1, np.zeros((0, 0), data.dtype), M.indptr.astype(np.int64),
                               M.indices.astype(np.int64), data, n)
    else:
        S = np.asarray(similarity)
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise ValidationError(f"similarity must be square (N x N); got shape {S.shape}")
        if S.dtype not in (np.float32, np.float64):
            if not np.issubdtype(S.dtype, np.number):
                raise ValidationError(f"similarity must be numeric; got dtype {S.dtype}")
            S = S.astype(np.float32)
        if check:
            _check_values(S, who)
        out = SimilarityArrays(0, np.ascontiguousarray(S), np.zeros(1, np.int64), np.zeros(0, np.int64),
                               np.zeros(0, S.dtype), S.shape[0])
    if out.n == 0:
        raise ValidationError("similarity is empty (0 x 0)")
    return out


@functools.lru_cache(maxsize=None)
def _keyword_only(init) -> tuple[str, ...]:
    """The keyword-only parameter names of ``init`` (cached: objectives are
    configured once per class of a class-budgeted selection)."""
    sig = inspect.signature(init)
    return tuple(p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY)


def csr_positions(torch, indptr, cands, device):
    """(entry positions, candidate slot of each) of the CSR rows ``cands``."""
    starts, ends = indptr[cands], indptr[cands + 1]
    lengths = ends - starts
    slot = torch.repeat_interleave(torch.arange(cands.numel(), device=device), lengths)
    offsets = torch.cumsum(lengths, 0) - lengths
    pos = starts[slot] + torch.arange(slot.numel(), device=device) - offsets[slot]
    return pos, slot


# ---------------------------------------------------------------- base class
class KernelObjective:
    """Base of the objectives with numba kernels (see the module doc).

    Subclasses set ``name``, ``inputs``, ``monotone`` and implement
    ``_bind(data)`` (store arrays, set ``self.n``) and ``_initial_state()``;
    their ``__init__`` takes the data as its first positional argument
    (``None`` for a configured, unbound objective) and hyperparameters as
    keywords, stored under their own names.
    """

    name: ClassVar[str] = ""
    #: "similarity" or "features": what the first argument is
    inputs: ClassVar[str] = "similarity"
    #: f(A) <= f(B) for A subset of B (greedy's 1 - 1/e guarantee needs it)
    monotone: ClassVar[bool] = True
    #: works on a sparse (kNN graph) similarity, not only a dense one
    supports_sparse: ClassVar[bool] = True

    n: int = 0
    state: Any = None

    # -- configuration -------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return list(_keyword_only(cls.__init__))

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._param_names()}

    @property
    def is_bound(self) -> bool:
        return self.state is not None

    def bind(self, data) -> "KernelObjective":
        """A bound copy of this configured objective on ``data`` (a :class:`Data`,
        or directly the similarity / features array)."""
        if isinstance(data, Data):
            data = data.features if self.inputs == "features" else data.similarity
        return type(self)(data, **self.get_params())

    @classmethod
    def from_knn(cls, indices: np.ndarray, similarities: np.ndarray, **params) -> "KernelObjective":
        """Bound on a kNN graph ``(indices, similarities)`` whose row ``i`` lists
        the neighbours of point ``i`` (transposed once so that each candidate's
        row lists the points it covers)."""
        return cls(knn_to_csr(indices, similarities), **params)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        where = f"n={self.n}" if self.is_bound else "unbound"
        return f"{type(self).__name__}({where}{', ' if params else ''}{params})"

    def _require_bound(self):
        if self.state is None:
            raise ValidationError(
                f"{type(self).__name__} is configured but not bound to data; "
                f"pass data as its first argument or call .bind(data)"
            )

    # -- state -----------------------------------------------------------------
    def _initial_state(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the empty set."""
        self.state = self._initial_state()

    def copy(self) -> "KernelObjective":
        """An independent copy (data shared, state copied)."""
        new = copy.copy(self)
        new.state = type(self.state)(*[np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                                       for a in self.state])
        return new

    @property
    def selected(self) -> np.ndarray:
        return self.state.selected

    # -- the Objective protocol ------------------------------------------------
    @property
    def value(self) -> float:
        self._require_bound()
        return float(self.state.total[0])

    def gains(self, candidates) -> np.ndarray:
        self._require_bound()
        cands = np.ascontiguousarray(candidates, dtype=np.int64).ravel()
        if cands.size and (cands.min() < 0 or cands.max() >= self.n):
            raise ValidationError(f"candidates must be in [0, {self.n - 1}]; got {cands.min()}..{cands.max()}")
        return gains_many(self.state, cands)

    def update(self, index: int) -> float:
        self._require_bound()
        j = int(index)
        if not 0 <= j < self.n:
            raise ValidationError(f"index must be in [0, {self.n - 1}]; got {j}")
        if self.state.selected[j]:
            raise ValidationError(f"element {j} is already in the set")
        return float(commit(self.state, j))

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (the current state is not touched)."""
        f = self.copy()
        f.reset()
        for j in dict.fromkeys(int(i) for i in np.asarray(indices, dtype=np.int64).ravel()):
            f.update(j)
        return f.value

    def _gain_work(self) -> int:
        """Entries one gain reads, for objectives whose gain only reads the
        state (so several may run at once on numba's threads); 0 (the default)
        where a gain writes to the state or is not worth threads."""
        return 0

    # -- the torch path --------------------------------------------------------
    def to_torch(self, device: str = "cuda"):
        """The same function as torch tensors on ``device`` (an Objective-protocol
        object). Subclasses without a torch implementation raise."""
        raise ValidationError(f"{type(self).__name__} has no torch implementation")
