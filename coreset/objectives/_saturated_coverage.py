"""Saturated coverage: f(S) = sum_i min(sum_{j in S} s(j, i), cap_i) with
cap_i = alpha * sum_{j in V} s(j, i), on a dense block or a sparse kNN graph
(apricot's SaturatedCoverageSelection: alpha is a fraction of each point's
total similarity, not an absolute level).

The state keeps each point's remaining capacity ``rem[i] = cap_i - covered``;
a gain is ``sum_i min(s(j, i), rem[i])``, a float64 sum in a fixed order of
terms (on a dense row, one compiled ``_dense_gain`` for every caller) that each only
shrink as ``rem`` shrinks, so stale gains are exact upper bounds and lazy
greedy returns exactly what naive greedy returns. A gain only reads the
state, so lazy greedy evaluates dense gains several at a time on numba's
threads (``optimizers/_kernels.py``, ``batch_steps``).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, types
from numba.extending import overload

from .._device import import_torch
from .._validation import check_float
from ._base import (KernelObjective, SimilarityArrays, csr_positions, kernel_gain, kernel_update,
                    similarity_arrays)
from ._graph_cut import dense_checked

__all__ = ["SaturatedCoverage", "TorchSaturatedCoverage"]

SaturatedCoverageState = namedtuple(
    "SaturatedCoverageState", "mode S indptr idx data cap rem selected total")


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is SaturatedCoverageState


@njit(cache=True, nogil=True)
def column_sums(mode, S, indptr, idx, data, n):
    """sum_j s(j, i) for every point i, rows added in order (the same bits for
    a dense S and its CSR form)."""
    out = np.zeros(n, np.float64)
    if mode == 0:
        for j in range(n):
            row = S[j]
            for i in range(n):
                out[i] += np.float64(row[i])
    else:
        for j in range(n):
            for p in range(indptr[j], indptr[j + 1]):
                out[idx[p]] += np.float64(data[p])
    return out


@njit(nogil=True, cache=True, fastmath={"reassoc", "nsz"})
def _dense_gain(row, rem):
    """sum_i min(row[i], rem[i]) in float64, vectorised (fastmath: the compiler
    picks the order of the sum). Compiled once as its own function and called,
    not inlined into the loops, so every loop (one evaluation at a time, or
    several on threads) and the update run the same machine code: the same
    bits. (Four explicit lanes without fastmath were 1.5x slower here.)"""
    g = 0.0
    for i in range(row.shape[0]):
        g += min(np.float64(row[i]), rem[i])
    return g


@overload(kernel_gain, jit_options={"nogil": True})
def _gain(state, j):
    if _is_state(state):
        def impl(state, j):
            rem = state.rem
            if state.mode == 0:
                return _dense_gain(state.S[j], rem)
            g = 0.0
            idx, data = state.idx, state.data
            for p in range(state.indptr[j], state.indptr[j + 1]):
                g += min(np.float64(data[p]), rem[idx[p]])
            return g
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    if _is_state(state):
        def impl(state, j):
            rem = state.rem
            if state.mode == 0:
                row = state.S[j]
                g = _dense_gain(row, rem)
                for i in range(row.shape[0]):
                    rem[i] -= min(np.float64(row[i]), rem[i])
                return g
            g = 0.0
            idx, data = state.idx, state.data
            for p in range(state.indptr[j], state.indptr[j + 1]):
                i = idx[p]
                t = min(np.float64(data[p]), rem[i])
                g += t
                rem[i] -= t
            return g
        return impl


class SaturatedCoverage(KernelObjective):
    """Saturated coverage: every point wants to be covered up to a fraction
    ``alpha`` of its total similarity; coverage beyond that earns nothing.

    Parameters
    ----------
    similarity : ndarray (N, N) or scipy sparse (N, N), optional
        ``similarity[j, i]`` is how much candidate ``j`` covers point ``i``
        (row = candidate), non-negative. ``None`` gives a configured objective.
    alpha : float in (0, inf)
        Saturation level as a fraction of each point's total similarity
        ``sum_j s(j, i)`` (column sum): ``cap_i = alpha * sum_j s(j, i)``.
        Default 0.1 (apricot's default). Small alpha: a point is saturated by
        one or two similar picks; alpha >= 1: never saturated, f is modular
        (``f(S) = sum_{j in S} sum_i s(j, i)``).
    """

    name = "saturated_coverage"
    inputs = "similarity"
    monotone = True
    supports_sparse = True

    def __init__(self, similarity=None, *, alpha: float = 0.1):
        self.alpha = check_float(alpha, "alpha", low=0.0, low_open=True)
        if similarity is None:
            return
        import scipy.sparse as sp

        # dense: validated in the pass that sums its columns (graph cut's; the same bits as column_sums)
        dense = not (sp.issparse(similarity) or isinstance(similarity, SimilarityArrays))
        self._arrays = a = similarity_arrays(similarity, "saturated coverage", check=not dense)
        self.n = a.n
        csum = dense_checked(a.S, "saturated coverage") if dense else column_sums(a.mode, a.S, a.indptr, a.idx,
                                                                                     a.data, a.n)
        self.cap = self.alpha * csum
        self.reset()

    def _initial_state(self):
        a = self._arrays
        return SaturatedCoverageState(a.mode, a.S, a.indptr, a.idx, a.data, self.cap, self.cap.copy(),
                                      np.zeros(a.n, np.bool_), np.zeros(1, np.float64))

    @property
    def mode(self) -> int:
        return self._arrays.mode

    @property
    def remaining(self) -> np.ndarray:
        """Each point's capacity not yet covered (``cap - covered``)."""
        return self.state.rem

    def _gain_work(self) -> int:
        return self.n if self.mode == 0 else 0  # a dense gain reads row j and ``rem``; writes nothing

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (does not touch the current state)."""
        self._require_bound()
        indices = np.unique(np.asarray(indices, dtype=np.int64).ravel())
        if indices.size == 0:
            return 0.0
        a = self._arrays
        if a.mode == 0:
            cov = a.S[indices].sum(0, dtype=np.float64)
        else:
            cov = np.asarray(a.csr()[indices].sum(0), dtype=np.float64).ravel()
        return float(np.minimum(cov, self.cap).sum())

    def to_torch(self, device: str = "cuda"):
        self._require_bound()
        return TorchSaturatedCoverage(self, device)


class TorchSaturatedCoverage:
    """:class:`SaturatedCoverage` with tensors on ``device`` (the Objective
    protocol; gains are one batched op, sums in float64)."""

    def __init__(self, base: SaturatedCoverage, device: str = "cuda"):
        torch = self._torch = import_torch()
        self.n = base.n
        self.device = torch.device(device)
        a = base._arrays
        self.dense = a.mode == 0
        if self.dense:
            self.S = torch.as_tensor(a.S, device=self.device)
        else:
            self.indptr = torch.as_tensor(a.indptr, device=self.device)
            self.idx = torch.as_tensor(a.idx, device=self.device)
            self.data = torch.as_tensor(a.data, device=self.device).double()
        self.cap = torch.as_tensor(base.cap, device=self.device)
        self.rem = self.cap.clone()

    @property
    def value(self) -> float:
        return float((self.cap - self.rem).sum().item())

    def gains(self, candidates) -> np.ndarray:
        torch = self._torch
        cands = torch.as_tensor(np.asarray(candidates, dtype=np.int64), device=self.device)
        with torch.inference_mode():
            if self.dense:
                out = torch.minimum(self.S[cands].double(), self.rem).sum(1)
            else:
                pos, slot = csr_positions(torch, self.indptr, cands, self.device)
                vals = torch.minimum(self.data[pos], self.rem[self.idx[pos]])
                out = torch.zeros(cands.numel(), dtype=torch.float64, device=self.device).index_add_(0, slot, vals)
        return out.cpu().numpy()

    def update(self, index: int) -> None:
        torch = self._torch
        j = int(index)
        with torch.inference_mode():
            if self.dense:
                self.rem -= torch.minimum(self.S[j].double(), self.rem)
            else:
                lo, hi = int(self.indptr[j]), int(self.indptr[j + 1])
                pts = self.idx[lo:hi]
                self.rem[pts] -= torch.minimum(self.data[lo:hi], self.rem[pts])
