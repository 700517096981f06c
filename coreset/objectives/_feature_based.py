"""Feature-based functions: f(S) = sum_u w_u * phi(sum_{j in S} X[j, u]) over
non-negative features X (N x D, dense or CSR) and a concave phi with
phi(0) = 0 (apricot's FeatureBasedSelection, plus optional feature weights).

The state keeps, per feature, the running column sum ``cur[u]`` and
``pcur[u] = phi(cur[u])``; a gain is ``sum_u w_u * (phi(cur[u] + x) - pcur[u])``
over the candidate's non-zero features, a float64 sum in a fixed order, and
the update computes the same terms in the same order, so the realised gain is
bit-for-bit the gain naive and lazy greedy compared. On dense features with
phi = sqrt or x / (1 + x) (correctly rounded, so a vector lane computes what a
scalar does) the gain computes every term in one vectorised pass into the
state's scratch row (0.0 for a zero feature), then adds them in four
interleaved running sums (``_lane_sum``; adding 0.0 to a sum that starts at
0.0 changes nothing); the update returns that same sum, so the realised gain
is still the compared one.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit, types
from numba.extending import overload

from .._device import import_torch
from ..exceptions import ValidationError
from ._base import Data, KernelObjective, csr_positions, kernel_gain, kernel_update

__all__ = ["FeatureBased", "TorchFeatureBased", "CONCAVE_FUNCS"]

#: name -> code used in the kernels; all are concave, increasing, phi(0) = 0
CONCAVE_FUNCS = {"sqrt": 0, "log": 1, "sigmoid": 2}

#: ``wcp`` rows: 0 the weights, 1 ``cur``, 2 ``pcur`` = phi(cur), 3 scratch (one array, so a
#: gain reads two arrays out of the state, X and wcp: each read is an atomic reference count)
FeatureBasedState = namedtuple("FeatureBasedState", "mode kind X indptr idx data wcp selected total")


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is FeatureBasedState


@njit(inline="always", nogil=True)
def _phi(kind, x):
    if kind == 0:
        return math.sqrt(x)
    if kind == 1:
        return math.log1p(x)
    return x / (1.0 + x)


def phi_numpy(name: str, x: np.ndarray) -> np.ndarray:
    """phi applied elementwise in numpy (for ``evaluate``)."""
    x = np.asarray(x, dtype=np.float64)
    if name == "sqrt":
        return np.sqrt(x)
    if name == "log":
        return np.log1p(x)
    return x / (1.0 + x)


@njit(nogil=True, cache=True, inline="always")
def _dense_gain(X, j, kind, wcp):
    """The gain of dense row ``j`` for phi = sqrt (kind 0) or x / (1 + x) (kind 2): correctly
    rounded vector operations, so every term is computed in one vectorised pass into the
    scratch row (a zero feature's term 0.0), then added by :func:`_lane_sum`, branch-free
    (adding 0.0 changes no sum that starts at 0.0: it is never -0.0). The update of a
    dense row with these phi returns this very sum."""
    d = X.shape[1]
    if kind == 0:  # one loop per phi: a branch inside would keep it scalar
        for u in range(d):
            x = np.float64(X[j, u])
            wcp[3, u] = wcp[0, u] * (math.sqrt(wcp[1, u] + x) - wcp[2, u]) if x != 0.0 else 0.0
    else:
        for u in range(d):
            x = np.float64(X[j, u])
            c = wcp[1, u] + x
            wcp[3, u] = wcp[0, u] * (c / (1.0 + c) - wcp[2, u]) if x != 0.0 else 0.0
    return _lane_sum(wcp[3], d)


@njit(nogil=True, cache=True, inline="always")
def _lane_sum(t, d):
    """``t[:d]`` summed in a fixed order that a CPU can overlap: four running
    sums over the lanes ``u % 4`` (the tail of d % 4 terms into lane 0), then
    ``(s0 + s1) + (s2 + s3)``. Gains and updates both sum this way, so the
    realised gain is still the gain compared, bit for bit (a quarter of the
    dependent additions of one running sum)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    u = 0
    while u + 4 <= d:
        s0 += t[u]
        s1 += t[u + 1]
        s2 += t[u + 2]
        s3 += t[u + 3]
        u += 4
    while u < d:
        s0 += t[u]
        u += 1
    return (s0 + s1) + (s2 + s3)


@njit(nogil=True, cache=True)
def _gain_general(mode, kind, X, indptr, idx, data, wcp, j):
    """The gain as a sum over the non-zero features, in order (sparse rows; log1p, whose
    vector form may round differently from the scalar one)."""
    g = 0.0
    if mode == 0:
        for u in range(X.shape[1]):
            x = np.float64(X[j, u])
            if x != 0.0:
                g += wcp[0, u] * (_phi(kind, wcp[1, u] + x) - wcp[2, u])
    else:
        for p in range(indptr[j], indptr[j + 1]):
            u = idx[p]
            x = np.float64(data[p])
            if x != 0.0:
                g += wcp[0, u] * (_phi(kind, wcp[1, u] + x) - wcp[2, u])
    return g


@overload(kernel_gain, jit_options={"nogil": True}, inline="always")
def _gain(state, j):
    """Inlined into the optimizers' loops (a call would pass the whole state)."""
    if _is_state(state):
        def impl(state, j):
            if state.mode == 0 and state.kind != 1:
                return _dense_gain(state.X, j, state.kind, state.wcp)
            return _gain_general(state.mode, state.kind, state.X, state.indptr, state.idx, state.data, state.wcp, j)
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    """Add row j to ``cur`` (and ``pcur``): the same terms, in the same order, as the gain."""
    if _is_state(state):
        def impl(state, j):
            kind, wcp = state.kind, state.wcp
            g = 0.0
            if state.mode == 0 and kind != 1:
                # the gain's own terms and lane sum, then the column sums move
                X = state.X
                g = _dense_gain(X, j, kind, wcp)
                for u in range(X.shape[1]):
                    x = np.float64(X[j, u])
                    if x != 0.0:
                        c = wcp[1, u] + x
                        wcp[1, u] = c
                        wcp[2, u] = _phi(kind, c)
            elif state.mode == 0:
                X = state.X
                for u in range(X.shape[1]):
                    x = np.float64(X[j, u])
                    if x != 0.0:
                        c = wcp[1, u] + x
                        p = _phi(kind, c)
                        g += wcp[0, u] * (p - wcp[2, u])
                        wcp[1, u] = c
                        wcp[2, u] = p
            else:
                idx, data = state.idx, state.data
                for q in range(state.indptr[j], state.indptr[j + 1]):
                    u = idx[q]
                    x = np.float64(data[q])
                    if x != 0.0:
                        c = wcp[1, u] + x
                        p = _phi(kind, c)
                        g += wcp[0, u] * (p - wcp[2, u])
                        wcp[1, u] = c
                        wcp[2, u] = p
            return g
        return impl


def _refuse_negative(a, who, where):
    raise ValidationError(
        f"features must be non-negative for {who}; found minimum {a.min():.6g} "
        f"(at row {where[0]}, column {where[1]}). "
        f"Shift or transform them first (e.g. np.abs(X), X - X.min(0), or a ReLU/softmax output)")


def feature_arrays(X, who="feature-based"):
    """(mode, dense X, indptr, idx, data, N, D) from a non-negative dense array
    or scipy sparse matrix (stored as CSR with int64 indices)."""
    import scipy.sparse as sp

    if sp.issparse(X):
        M = sp.csr_matrix(X)
        if M.ndim != 2 or M.shape[0] == 0 or M.shape[1] == 0:
            raise ValidationError(f"features must be a non-empty 2-D (N x D) matrix; got shape {M.shape}")
        M.sum_duplicates()
        data = np.asarray(M.data)
        if data.dtype not in (np.float32, np.float64):
            if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
                raise ValidationError(f"features must be real numbers; got dtype {data.dtype}")
            data = data.astype(np.float32)
        if data.size and not np.isfinite(data).all():
            raise ValidationError(f"features must be finite for {who}; found NaN or inf")
        if data.size and data.min() < 0:
            p = int(np.argmin(data))
            row = int(np.searchsorted(M.indptr, p, side="right") - 1)
            _refuse_negative(data, who, (row, int(M.indices[p])))
        return (1, np.zeros((0, 0), data.dtype), M.indptr.astype(np.int64), M.indices.astype(np.int64), data,
                M.shape[0], M.shape[1])
    if type(X).__module__.startswith("torch") and hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    A = np.asarray(X)
    if A.ndim != 2 or A.shape[0] == 0 or A.shape[1] == 0:
        raise ValidationError(f"features must be a non-empty 2-D (N x D) array; got shape {A.shape}")
    if A.dtype not in (np.float32, np.float64):
        if A.dtype != np.bool_ and (not np.issubdtype(A.dtype, np.number)
                                    or np.issubdtype(A.dtype, np.complexfloating)):
            raise ValidationError(f"features must be real numbers; got dtype {A.dtype}")
        A = A.astype(np.float32)
    if A.size and not np.isfinite(A).all():
        raise ValidationError(f"features must be finite for {who}; found NaN or inf")
    if A.size and A.min() < 0:
        _refuse_negative(A, who, np.unravel_index(int(np.argmin(A)), A.shape))
    return (0, np.ascontiguousarray(A), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, A.dtype),
            A.shape[0], A.shape[1])


class FeatureBased(KernelObjective):
    """Feature-based function: each feature is a resource whose total over the
    picks is rewarded with diminishing returns,
    ``f(S) = sum_u w_u * phi(sum_{j in S} X[j, u])``.

    Parameters
    ----------
    features : ndarray (N, D) or scipy sparse (N, D), optional
        Non-negative features (row = element). Dense float32/float64 is kept
        as is; sparse is stored as CSR (only the non-zeros are visited, which
        suits bag-of-words style data). Negative or non-finite entries are
        rejected. ``None`` gives a configured, unbound objective.
    concave_func : {"sqrt", "log", "sigmoid"}
        phi: ``sqrt(x)``, ``log(1 + x)``, or apricot's "sigmoid" ``x / (1 + x)``
        (a saturating rational function, not the logistic). Default "sqrt",
        as in apricot.
    weights : array (D,), optional
        Non-negative weight per feature (default 1 for all).
    """

    name = "feature_based"
    inputs = "features"
    monotone = True
    #: no kNN-graph (sparse similarity) form; sparse *features* (CSR) are accepted
    supports_sparse = False

    def __init__(self, features=None, *, concave_func: str = "sqrt", weights=None):
        if not isinstance(concave_func, str) or concave_func not in CONCAVE_FUNCS:
            raise ValidationError(
                f"concave_func must be one of {sorted(CONCAVE_FUNCS)}; got {concave_func!r}")
        self.concave_func = concave_func
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            if w.ndim != 1 or w.size == 0:
                raise ValidationError(f"weights must be a 1-D array with one weight per feature; got shape {w.shape}")
            if not np.isfinite(w).all() or w.min() < 0:
                raise ValidationError(f"weights must be finite and >= 0; got minimum {np.nanmin(w)!r}")
            weights = w
        self.weights = weights
        if features is None:
            return
        self._arrays = feature_arrays(features)
        self.n, d = self._arrays[5], self._arrays[6]
        if weights is not None and weights.shape[0] != d:
            raise ValidationError(f"weights must have shape ({d},) (one per feature); got {weights.shape}")
        self._w = np.ones(d, np.float64) if weights is None else np.ascontiguousarray(weights)
        self.reset()

    def bind(self, data) -> "FeatureBased":
        if isinstance(data, Data):
            if data.features is None:
                raise ValidationError("feature_based needs the features themselves (non-negative); got only a similarity")
            data = data.features
        return type(self)(data, **self.get_params())

    @classmethod
    def from_knn(cls, indices, similarities, **params):
        raise ValidationError("feature_based is built on features, not on a kNN graph; pass the features")

    @property
    def n_features(self) -> int:
        return self._arrays[6]

    @property
    def mode(self) -> int:
        return self._arrays[0]

    def _initial_state(self):
        mode, X, indptr, idx, data, n, d = self._arrays
        wcp = np.zeros((4, d), np.float64)
        wcp[0] = self._w
        return FeatureBasedState(mode, CONCAVE_FUNCS[self.concave_func], X, indptr, idx, data, wcp,
                                 np.zeros(n, np.bool_), np.zeros(1, np.float64))

    @property
    def cur(self) -> np.ndarray:
        """Per-feature sum over the current set."""
        return self.state.wcp[1]

    def csr(self):
        import scipy.sparse as sp

        mode, X, indptr, idx, data, n, d = self._arrays
        return sp.csr_matrix((data, idx, indptr), shape=(n, d))

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (does not touch the current state)."""
        self._require_bound()
        indices = np.unique(np.asarray(indices, dtype=np.int64).ravel())
        if indices.size == 0:
            return 0.0
        if self.mode == 0:
            tot = self._arrays[1][indices].sum(0, dtype=np.float64)
        else:
            tot = np.asarray(self.csr()[indices].sum(0), dtype=np.float64).ravel()
        return float(np.dot(self._w, phi_numpy(self.concave_func, tot)))

    def to_torch(self, device: str = "cuda"):
        self._require_bound()
        return TorchFeatureBased(self, device)


class TorchFeatureBased:
    """:class:`FeatureBased` with tensors on ``device`` (the Objective protocol;
    gains are one batched op, sums in float64)."""

    def __init__(self, base: FeatureBased, device: str = "cuda"):
        torch = self._torch = import_torch()
        self.n = base.n
        self.concave_func = base.concave_func
        self.device = torch.device(device)
        mode, X, indptr, idx, data, n, d = base._arrays
        self.dense = mode == 0
        if self.dense:
            self.X = torch.as_tensor(X, device=self.device)
        else:
            self.indptr = torch.as_tensor(indptr, device=self.device)
            self.idx = torch.as_tensor(idx, device=self.device)
            self.data = torch.as_tensor(data, device=self.device).double()
        self.w = torch.as_tensor(base._w, device=self.device)
        self.cur = torch.zeros(d, dtype=torch.float64, device=self.device)
        self.pcur = torch.zeros(d, dtype=torch.float64, device=self.device)

    def _phi(self, x):
        if self.concave_func == "sqrt":
            return x.sqrt()
        if self.concave_func == "log":
            return x.log1p()
        return x / (1.0 + x)

    @property
    def value(self) -> float:
        return float((self.w * self.pcur).sum().item())

    def gains(self, candidates) -> np.ndarray:
        torch = self._torch
        cands = torch.as_tensor(np.asarray(candidates, dtype=np.int64), device=self.device)
        with torch.inference_mode():
            if self.dense:
                out = (self.w * (self._phi(self.X[cands].double() + self.cur) - self.pcur)).sum(1)
            else:
                pos, slot = csr_positions(torch, self.indptr, cands, self.device)
                u = self.idx[pos]
                vals = self.w[u] * (self._phi(self.data[pos] + self.cur[u]) - self.pcur[u])
                out = torch.zeros(cands.numel(), dtype=torch.float64, device=self.device).index_add_(0, slot, vals)
        return out.cpu().numpy()

    def update(self, index: int) -> None:
        torch = self._torch
        j = int(index)
        with torch.inference_mode():
            if self.dense:
                self.cur += self.X[j].double()
                self.pcur = self._phi(self.cur)
            else:
                lo, hi = int(self.indptr[j]), int(self.indptr[j + 1])
                u = self.idx[lo:hi]
                self.cur[u] += self.data[lo:hi]
                self.pcur[u] = self._phi(self.cur[u])
