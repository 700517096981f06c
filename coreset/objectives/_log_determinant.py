"""Log-determinant: f(S) = log det(s_SS + reg * I), on a dense symmetric similarity.

Greedy by the incremental Cholesky of Chen, Zhang & Zhou (2018), "Fast greedy
MAP inference for determinantal point processes". With ``L`` the Cholesky
factor of ``s_SS + reg I``, every element ``j`` keeps ``c_j = L^{-1} s_Sj``
(one coordinate per pick) and ``d2_j = s_jj + reg - ||c_j||^2``, the Schur
complement of ``j``: ``det(s_{S+j} + reg I) = det(s_SS + reg I) * d2_j``, so
the gain of ``j`` is ``log(d2_j)``, read in O(1). Adding the pick ``p``::

    e_i  = (s_pi - <c_p, c_i>) / sqrt(d2_p)     for every i
    c_i  = [c_i, e_i];  d2_i -= e_i^2

is O(N k) at the k-th pick. ``c`` is held as k rows of length N (row t = the
t-th coordinate of every ``c_i``): O(N k) memory, a numba typed list that grows
by one row a pick.

Floating point: ``d2_i`` only ever loses ``e_i^2 >= 0`` and rounding is
monotone, so a stale gain is an exact upper bound of the fresh one, and the
gains are read from the state, which both optimizers evolve by the same
operations: lazy greedy returns exactly what naive greedy returns, on any
symmetric input (PSD or not) for which the picked pivots stay positive.

``d2_j <= 0`` (``s_{S+j} + reg I`` not positive definite: ``j`` is a linear
combination of the picks when ``reg == 0``, or the similarity is not positive
semi-definite) gives a gain of ``-inf``; greedy never picks such an element
while another is left, and adding one raises a ``ValidationError`` (a
``ValueError``): greedy ran out of candidates that keep the matrix positive
definite.
"""

from __future__ import annotations

import copy as _copy
import math
from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import overload
from numba.typed import List

from .._validation import check_float
from ..exceptions import ValidationError
from ._base import KernelObjective, kernel_gain, kernel_update, similarity_arrays
from ._graph_cut import MonotoneFlag, max_asymmetry

__all__ = ["LogDeterminant"]

LogDeterminantState = namedtuple("LogDeterminantState", "S d2 rows picks selected total")

_ROW = types.float64[::1]


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is LogDeterminantState


@overload(kernel_gain, jit_options={"nogil": True})
def _gain(state, j):
    if _is_state(state):
        def impl(state, j):
            if state.selected[j]:
                return 0.0
            d = state.d2[j]
            return math.log(d) if d > 0.0 else -math.inf
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    """One step of the incremental Cholesky (module doc); the gain of j."""
    if _is_state(state):
        def impl(state, j):
            d2 = state.d2
            dj2 = d2[j]
            if not dj2 > 0.0:
                raise ValidationError("log_determinant: the similarity restricted to the selection plus reg * I is "
                                 "not positive definite (Schur complement <= 0); use reg > 0 and a positive "
                                 "semi-definite similarity (e.g. metric='euclidean')")
            S, rows = state.S, state.rows
            n = d2.shape[0]
            e = np.empty(n, np.float64)
            srow = S[j]
            for i in range(n):
                e[i] = np.float64(srow[i])
            for t in range(len(rows)):
                c = rows[t]
                a = c[j]
                if a != 0.0:
                    for i in range(n):
                        e[i] -= a * c[i]
            dj = math.sqrt(dj2)
            for i in range(n):
                v = e[i] / dj
                e[i] = v
                d2[i] -= v * v
            e[j] = dj  # the factor's diagonal (the loop's value lacks reg); picks are never read again
            state.picks[len(rows)] = j
            rows.append(e)
            return math.log(dj2)
        return impl


def _empty_rows():
    return List.empty_list(_ROW)


class LogDeterminant(KernelObjective):
    """Log-determinant of the picks' similarity block plus ``reg`` on the
    diagonal: a diversity objective (the MAP objective of a determinantal
    point process with kernel ``s + reg I``).

    Parameters
    ----------
    similarity : ndarray (N, N), optional
        Dense, symmetric (to 1e-6 relative), non-negative and, for the function
        to be submodular, positive semi-definite: e.g.
        ``dense_similarity(X, "euclidean")`` (a Gaussian kernel), or cosine on
        non-negative features (where the clipping at 0 changes nothing).
        Cosine on signed features is PSD before the clip at 0 and in general
        not after it. ``None`` gives a configured, unbound objective.
    reg : float >= 0, default 1.0
        Added to the diagonal (submodlib's ``lambdaVal``, same meaning). With
        a PSD similarity every gain is ``>= log(reg)``: ``reg >= 1`` makes f
        monotone (and >= 0), ``reg < 1`` lets gains go negative, ``reg == 0``
        is the plain log det (``-inf`` once the picks are linearly dependent).
    """

    name = "log_determinant"
    inputs = "similarity"
    supports_sparse = False
    #: on the class: the default configuration (reg=1, a PSD similarity);
    #: on an instance: :meth:`is_monotone`
    monotone = MonotoneFlag(True)

    def __init__(self, similarity=None, *, reg: float = 1.0):
        self.reg = check_float(reg, "reg", low=0.0)
        self._lam_min = None
        if similarity is None:
            return
        a = self._arrays = similarity_arrays(similarity, "log determinant", allow_sparse=False)
        scale = float(np.abs(a.S).max()) if a.S.size else 0.0
        asym = max_asymmetry(a.S)
        if asym > 1e-6 * max(scale, 1e-30):
            raise ValidationError(f"log determinant needs a symmetric similarity; got max |S - S.T| = {asym:.3g} "
                                  f"(largest entry {scale:.3g}); symmetrise it, e.g. (S + S.T) / 2")
        self.n = a.n
        self._d2 = np.asarray(a.S.diagonal(), dtype=np.float64) + self.reg
        self.reset()

    def _initial_state(self):
        n = self.n
        return LogDeterminantState(self._arrays.S, self._d2.copy(), _empty_rows(), np.full(n, -1, np.int64),
                                   np.zeros(n, np.bool_), np.zeros(1, np.float64))

    def copy(self) -> "LogDeterminant":
        """An independent copy (the similarity shared, the factor copied)."""
        new = _copy.copy(self)
        st = self.state
        if st is not None:
            rows = _empty_rows()
            for r in st.rows:
                rows.append(r.copy())
            new.state = LogDeterminantState(st.S, st.d2.copy(), rows, st.picks.copy(), st.selected.copy(),
                                            st.total.copy())
        return new

    def is_monotone(self) -> bool:
        """Whether f(A) <= f(B) for every A subset of B: every Schur complement
        ``d2 >= 1``. Unbound, or bound with N > 2000: ``reg >= 1`` (assumes a
        PSD similarity, the documented input). Bound with N <= 2000: checked,
        ``lambda_min(s) >= 1 - reg`` (a sufficient condition, with 1e-6
        relative rounding allowance)."""
        if not self.is_bound or self.n > 2000:
            return self.reg >= 1.0
        if self._lam_min is None:
            S = np.asarray(self._arrays.S, dtype=np.float64)
            self._lam_min = float(np.linalg.eigvalsh(S)[0])
            self._scale = float(np.abs(S).max())
        return self._lam_min >= 1.0 - self.reg - 1e-6 * max(1.0, self._scale)

    @property
    def schur(self) -> np.ndarray:
        """``d2``: the Schur complement of every element given the picks
        (meaningless for the picks themselves)."""
        self._require_bound()
        return self.state.d2

    @property
    def order(self) -> np.ndarray:
        """The picks in the order they were added."""
        self._require_bound()
        return self.state.picks[:len(self.state.rows)].copy()

    def cholesky(self) -> np.ndarray:
        """The k x k lower Cholesky factor ``L`` of ``s_SS + reg I`` (S in the
        order of :attr:`order`): ``L[t:, t]`` is row t of ``c`` at the picks."""
        order = self.order
        k = order.size
        L = np.zeros((k, k))
        for t, r in enumerate(self.state.rows):
            L[t:, t] = r[order[t:]]
        return L

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (the current state is not touched): the
        incremental factorisation in the given order, so it agrees with the
        gains to the last bits; ``-inf`` if not positive definite."""
        self._require_bound()
        f = self.copy()
        f.reset()
        for j in dict.fromkeys(int(i) for i in np.asarray(indices, dtype=np.int64).ravel()):
            if f.state.d2[j] <= 0.0:
                return -math.inf
            f.update(j)
        return f.value

    def to_torch(self, device: str = "cuda"):
        from ._log_determinant_torch import TorchLogDeterminant

        self._require_bound()
        return TorchLogDeterminant(self, device)
