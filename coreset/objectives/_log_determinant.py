"""Log-determinant: f(S) = log det(s_SS + reg * I), on a dense symmetric similarity.

Greedy by the incremental Cholesky of Chen, Zhang & Zhou (2018), "Fast greedy
MAP inference for determinantal point processes". With ``L`` the Cholesky
factor of ``s_SS + reg I``, every element ``j`` has ``c_j = L^{-1} s_Sj``
(one coordinate per pick) and ``d2_j = s_jj + reg - ||c_j||^2``, the Schur
complement of ``j``: ``det(s_{S+j} + reg I) = det(s_SS + reg I) * d2_j``, so
the gain of ``j`` is ``log(d2_j)``. Adding the t-th pick ``p`` gives every
element one more coordinate::

    e_i  = (s_pi - <c_p, c_i>) / sqrt(d2_p)
    c_i  = [c_i, e_i];  d2_i -= e_i^2

Chen et al. apply this to every ``i`` at every pick (O(N k) at the k-th pick,
reading all of ``c``). Here it is applied *lazily*, by blocks of 8 elements:
block ``b`` remembers how many picks its ``c`` and ``d2`` have been brought
through (``done[b]``), and a gain (or an update) of one of its elements first
brings the block up to date, pick by pick in pick order, each ``e_i`` the
same float64 operations in the same order as the eager formula (subtract
``L[t, t'] * c_i[t']`` for ``t' = 0, 1, ...``, skipping ``L[t, t'] == 0``),
so every ``c_i`` and ``d2_i`` is bit for bit what the eager update gives.
Lazy greedy re-evaluates a few dozen candidates a pick: a block catches up
when one of its elements is asked for, often many picks at a time, reading
its own ``c`` (a few kilobytes, contiguous) and the picks' rows of ``L``
instead of the whole ``c`` every pick. The arithmetic runs four missed picks
at a time (eight lanes each, in vector registers: ``_subtract_rows``).

Layout: ``rows[t]`` is row ``t`` of ``L`` (the t-th pick's coordinates and,
last, the diagonal ``sqrt(d2_p)``); ``c`` lives in panels (64 picks, then
doubling), block-major: ``panels[i][b, t - starts[i]]`` holds the 8 lanes of
block ``b`` at pick ``t``; until the block catches up on pick ``t`` that slot
holds ``s_{p_t}`` (copied there at the pick, O(N)). Naive greedy asks for
every element at every pick: blocks one pick behind catch up four at a time
(they share the row of ``L``), as fast as the eager update.

Floating point: ``d2_i`` only ever loses ``e_i^2 >= 0`` and rounding is
monotone, so a stale gain is an exact upper bound of the fresh one, and a gain
is read from a state brought up to date by the same operations whoever asks:
lazy greedy returns exactly what naive greedy returns, on any symmetric input
(PSD or not) for which the picked pivots stay positive.

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
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload
from numba.typed import List

from .._validation import check_float
from ..exceptions import ValidationError
from ._base import KernelObjective, SimilarityArrays, kernel_gain, kernel_update, similarity_arrays
from ._graph_cut import MonotoneFlag, dense_checked, is_symmetric, max_asymmetry

__all__ = ["LogDeterminant"]

LogDeterminantState = namedtuple("LogDeterminantState", "S d2 rows has_zero panels starts done picks selected total")

#: elements per block (the lazy update's unit: one vector of float64 lanes)
BLOCK = 8
#: picks in the first panel of ``c`` (each next panel doubles the capacity)
PANEL = 64
#: at most this many panels (capacity doubles each time: far beyond any N)
MAX_PANELS = 64

_ROW = types.float64[::1]
_PANEL = types.float64[:, :, ::1]


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is LogDeterminantState


def _subtract_rows_intrinsic(skip_zeros):
    """An intrinsic ``f(E, Ls, lstart, Cs, count)``: for r = 0 .. count - 1, in order, and each
    chain j, ``E[j] -= Ls[j][lstart + r] * Cs[j][r]``, where ``Ls`` (rows of L, 1-D) and ``Cs``
    (blocks of c, (rows, BLOCK)) are tuples of C-contiguous float64 arrays, one per chain or
    one shared by all (a tuple of one); ``E`` is (chains, BLOCK). With ``skip_zeros``, a term
    is skipped where ``Ls[j][lstart + r] == 0`` (the eager update's ``if a != 0.0``; without,
    the caller knows there is no zero). Each chain's BLOCK lanes stay in one vector register
    across the loop: numba's own loops keep eight scalar running differences there (the order
    of the subtractions forbids vectorising the loop over r), at a fraction of the speed. The
    same multiplications and subtractions, in the same order, as the scalar code (no fused
    multiply-add)."""

    @intrinsic
    def subtract_rows(typingctx, E, Ls, lstart, Cs, count):
        chains = max(Ls.count, Cs.count)
        sig = types.void(E, Ls, lstart, Cs, count)

        def codegen(context, builder, sig, args):
            e_arg, ls_arg, start, cs_arg, n_rows = args
            f64, i64, i32 = ir.DoubleType(), ir.IntType(64), ir.IntType(32)
            vec = ir.VectorType(f64, BLOCK)
            e_ptr = builder.bitcast(context.make_array(sig.args[0])(context, builder, e_arg).data, vec.as_pointer())
            l_ptrs = [context.make_array(sig.args[1].dtype)(context, builder, builder.extract_value(ls_arg, j)).data
                      for j in range(Ls.count)]
            c_ptrs = [builder.bitcast(context.make_array(sig.args[3].dtype)(
                context, builder, builder.extract_value(cs_arg, j)).data, vec.as_pointer()) for j in range(Cs.count)]
            zeros = ir.Constant(vec, [0.0] * BLOCK)
            splat = ir.Constant(ir.VectorType(i32, BLOCK), [0] * BLOCK)
            undef = ir.Constant(vec, ir.Undefined)
            init = [builder.load(builder.gep(e_ptr, [ir.Constant(i64, j)]), align=8) for j in range(chains)]
            pre = builder.basic_block
            head = builder.append_basic_block("rows.head")
            body = builder.append_basic_block("rows.body")
            done = builder.append_basic_block("rows.done")
            builder.branch(head)
            builder.position_at_end(head)
            r = builder.phi(i64)
            r.add_incoming(ir.Constant(i64, 0), pre)
            accs = []
            for j in range(chains):
                acc = builder.phi(vec)
                acc.add_incoming(init[j], pre)
                accs.append(acc)
            builder.cbranch(builder.icmp_signed("<", r, n_rows), body, done)
            builder.position_at_end(body)
            at = builder.add(start, r)
            rows = [builder.load(builder.gep(c, [r]), align=8) for c in c_ptrs]
            coefs = []
            for lp in l_ptrs:
                a = builder.load(builder.gep(lp, [at]), align=8)
                coefs.append(builder.shuffle_vector(builder.insert_element(undef, a, ir.Constant(i32, 0)), undef,
                                                    splat))
            for j in range(chains):
                av = coefs[j if Ls.count > 1 else 0]
                new = builder.fsub(accs[j], builder.fmul(av, rows[j if Cs.count > 1 else 0]))
                if skip_zeros:  # Python's a != 0.0 (true for NaN), as a lane mask
                    new = builder.select(builder.fcmp_unordered("!=", av, zeros), new, accs[j])
                accs[j].add_incoming(new, body)
            r.add_incoming(builder.add(r, ir.Constant(i64, 1)), body)
            builder.branch(head)
            builder.position_at_end(done)
            for j in range(chains):
                builder.store(accs[j], builder.gep(e_ptr, [ir.Constant(i64, j)]), align=8)
            return context.get_dummy_value()

        return sig, codegen

    return subtract_rows


_subtract_rows = _subtract_rows_intrinsic(False)
_subtract_rows_skipping = _subtract_rows_intrinsic(True)


@njit(nogil=True, cache=True, inline="always")
def _slot(panels, starts, b, t):
    """Block ``b``'s row of ``c`` for pick ``t`` (a view into its panel)."""
    pi = len(panels) - 1
    while starts[pi] > t:
        pi -= 1
    return panels[pi][b, t - starts[pi]]


@njit(nogil=True, cache=True)
def _subtract_picks(E, Ls, panels, starts, b, t, skip_zeros):
    """``E[j] -= sum_{t' < t} Ls[j][t'] * c_b[t']`` over the panels of block ``b``, t' ascending."""
    for pi in range(len(panels)):
        lo = starts[pi]
        if lo >= t:
            break
        Cs = (panels[pi][b],)
        if skip_zeros:
            _subtract_rows_skipping(E, Ls, lo, Cs, min(starts[pi + 1], t) - lo)
        else:
            _subtract_rows(E, Ls, lo, Cs, min(starts[pi + 1], t) - lo)


@njit(nogil=True, cache=True)
def _subtract_pick_4blocks(E, L, panels, starts, b, t, skip_zeros):
    """``E[i] -= sum_{t' < t} L[t'] * c_{b+i}[t']`` for the four blocks b .. b + 3 (one pick)."""
    for pi in range(len(panels)):
        lo = starts[pi]
        if lo >= t:
            break
        P = panels[pi]
        Cs = (P[b], P[b + 1], P[b + 2], P[b + 3])
        if skip_zeros:
            _subtract_rows_skipping(E, (L,), lo, Cs, min(starts[pi + 1], t) - lo)
        else:
            _subtract_rows(E, (L,), lo, Cs, min(starts[pi + 1], t) - lo)


@njit(nogil=True, cache=True, inline="always")
def _finish(d2, panels, starts, picks, e, b, t, dj):
    """Pick ``t``'s coordinate of block ``b``, ``c[t] = e / dj``, and ``d2 -= c[t]^2``."""
    lo = b * BLOCK
    m = min(BLOCK, d2.shape[0] - lo)
    c = _slot(panels, starts, b, t)
    for q in range(BLOCK):
        c[q] = e[q] / dj
    for q in range(m):
        v = c[q]
        d2[lo + q] -= v * v
    q = picks[t] - lo
    if 0 <= q < m:
        c[q] = dj  # as the eager update leaves it: the factor's diagonal at the pick itself


@njit(nogil=True, cache=True)
def _catch_up(d2, rows, has_zero, panels, starts, done, picks, b):
    """Bring block ``b`` (elements ``b * BLOCK`` ...) through every pick so far: for each
    pick ``t`` it missed, in order, ``e = s_{p_t} - sum_{t'} L[t, t'] c[t']`` (``t'`` ascending,
    zeros of ``L`` skipped), ``c[t] = e / L[t, t]``, ``d2 -= c[t]^2``: per element, the eager
    update's operations in its order. Missed picks go four at a time through the part they
    share (``t'`` before the first of the four), then one by one. A block one pick behind,
    in an aligned group of four all one pick behind (naive greedy: every block, every pick),
    catches up with the other three, the four sharing the row of L. Lanes past the end of
    the ground set stay 0."""
    k = len(rows)
    t = done[b]
    if t == k:
        return
    E = np.empty((4, BLOCK), np.float64)
    b4 = b - b % 4
    if (t == k - 1 and b4 + 4 <= done.shape[0] and done[b4] == t and done[b4 + 1] == t and done[b4 + 2] == t
            and done[b4 + 3] == t):
        for i in range(4):  # s_{p_t}, left in c's slot at the pick (see the update)
            s = _slot(panels, starts, b4 + i, t)
            for q in range(BLOCK):
                E[i, q] = s[q]
        L = rows[t]
        _subtract_pick_4blocks(E, L, panels, starts, b4, t, has_zero[t])
        for i in range(4):
            _finish(d2, panels, starts, picks, E[i], b4 + i, t, L[t])
            done[b4 + i] = k
        return
    while t < k:
        g = min(4, k - t)
        for j in range(g):
            s = _slot(panels, starts, b, t + j)
            for q in range(BLOCK):
                E[j, q] = s[q]
        skip = has_zero[t]
        for j in range(1, g):
            skip |= has_zero[t + j]
        if g == 4:
            _subtract_picks(E, (rows[t], rows[t + 1], rows[t + 2], rows[t + 3]), panels, starts, b, t, skip)
        elif g == 3:
            _subtract_picks(E, (rows[t], rows[t + 1], rows[t + 2]), panels, starts, b, t, skip)
        elif g == 2:
            _subtract_picks(E, (rows[t], rows[t + 1]), panels, starts, b, t, skip)
        else:
            _subtract_picks(E, (rows[t],), panels, starts, b, t, skip)
        for j in range(g):
            tj = t + j
            L = rows[tj]
            e = E[j]
            for i in range(j):  # the picks of this group before tj, in order
                a = L[t + i]
                if a != 0.0:
                    c = _slot(panels, starts, b, t + i)
                    for q in range(BLOCK):
                        e[q] -= a * c[q]
            _finish(d2, panels, starts, picks, e, b, tj, L[tj])
        t += g
    done[b] = k


@njit(nogil=True, cache=True)
def catch_up_all(state):
    """Every block up to date (``d2`` then holds every element's Schur complement)."""
    for b in range(state.done.shape[0]):
        _catch_up(state.d2, state.rows, state.has_zero, state.panels, state.starts, state.done, state.picks, b)


@overload(kernel_gain, jit_options={"nogil": True})
def _gain(state, j):
    """log(d2_j) with j's block brought up to date first (a memo: the value is the
    eager update's, bit for bit)."""
    if _is_state(state):
        def impl(state, j):
            if state.selected[j]:
                return 0.0
            _catch_up(state.d2, state.rows, state.has_zero, state.panels, state.starts, state.done, state.picks,
                      j // BLOCK)
            d = state.d2[j]
            return math.log(d) if d > 0.0 else -math.inf
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    """Append j's row to L (j's block brought up to date first); the gain of j. The other
    elements catch up on this pick when their gain is next asked for."""
    if _is_state(state):
        def impl(state, j):
            rows, panels, d2 = state.rows, state.panels, state.d2
            b = j // BLOCK
            _catch_up(d2, rows, state.has_zero, panels, state.starts, state.done, state.picks, b)
            dj2 = d2[j]
            if not dj2 > 0.0:
                raise ValidationError("log_determinant: the similarity restricted to the selection plus reg * I is "
                                 "not positive definite (Schur complement <= 0); use reg > 0 and a positive "
                                 "semi-definite similarity (e.g. metric='euclidean')")
            k = len(rows)
            L = np.empty(k + 1, np.float64)
            q = j - b * BLOCK
            zero = False
            starts = state.starts
            for pi in range(len(panels)):
                C = panels[pi][b]
                for t in range(starts[pi], min(starts[pi + 1], k)):
                    L[t] = C[t - starts[pi], q]
                    zero |= L[t] == 0.0
            L[k] = math.sqrt(dj2)
            state.has_zero[k] = zero
            npan = len(panels)
            if k == starts[npan]:  # full: a new panel, as large as the capacity so far (64 at least)
                size = max(PANEL, k)
                panels.append(np.empty((state.done.shape[0], size, BLOCK), np.float64))
                starts[npan + 1] = k + size
                npan += 1
            # every block's slot for this pick holds s_j (as float64) until the block catches up
            slots = panels[npan - 1][:, k - starts[npan - 1]]
            srow = state.S[j]
            n = d2.shape[0]
            for i in range(n):
                slots[i // BLOCK, i % BLOCK] = np.float64(srow[i])
            for i in range(n, slots.shape[0] * BLOCK):  # lanes past the end: 0
                slots[i // BLOCK, i % BLOCK] = 0.0
            state.picks[k] = j
            rows.append(L)
            return math.log(dj2)
        return impl


def _empty_rows():
    return List.empty_list(_ROW)


def _empty_panels():
    return List.empty_list(_PANEL)


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
        import scipy.sparse as sp

        dense = not (sp.issparse(similarity) or isinstance(similarity, SimilarityArrays))
        # dense: validated below, in one streaming pass
        a = self._arrays = similarity_arrays(similarity, "log determinant", allow_sparse=False, check=not dense)
        if dense:
            dense_checked(a.S, "log determinant")
        if not is_symmetric(a.S):  # within 1e-6 of the largest entry is accepted
            scale = float(np.abs(a.S).max()) if a.S.size else 0.0
            asym = max_asymmetry(a.S)
            if asym > 1e-6 * max(scale, 1e-30):
                raise ValidationError(f"log determinant needs a symmetric similarity; got max |S - S.T| = "
                                      f"{asym:.3g} (largest entry {scale:.3g}); symmetrise it, e.g. (S + S.T) / 2")
        self.n = a.n
        self._d2 = np.asarray(a.S.diagonal(), dtype=np.float64) + self.reg
        self.reset()

    def _initial_state(self):
        n = self.n
        return LogDeterminantState(self._arrays.S, self._d2.copy(), _empty_rows(), np.zeros(n, np.bool_),
                                   _empty_panels(), np.zeros(MAX_PANELS + 1, np.int64),
                                   np.zeros(-(-n // BLOCK), np.int64), np.full(n, -1, np.int64),
                                   np.zeros(n, np.bool_), np.zeros(1, np.float64))

    def copy(self) -> "LogDeterminant":
        """An independent copy (the similarity shared, the factor copied)."""
        new = _copy.copy(self)
        st = self.state
        if st is not None:
            rows, panels = _empty_rows(), _empty_panels()
            for r in st.rows:
                rows.append(r.copy())
            for p in st.panels:
                panels.append(p.copy())
            new.state = LogDeterminantState(st.S, st.d2.copy(), rows, st.has_zero.copy(), panels, st.starts.copy(),
                                            st.done.copy(), st.picks.copy(), st.selected.copy(), st.total.copy())
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
        catch_up_all(self.state)
        return self.state.d2

    @property
    def order(self) -> np.ndarray:
        """The picks in the order they were added."""
        self._require_bound()
        return self.state.picks[:len(self.state.rows)].copy()

    def cholesky(self) -> np.ndarray:
        """The k x k lower Cholesky factor ``L`` of ``s_SS + reg I`` (S in the
        order of :attr:`order`): row t is the t-th pick's ``c`` and, on the
        diagonal, ``sqrt(d2)`` at its pick."""
        self._require_bound()
        k = len(self.state.rows)
        L = np.zeros((k, k))
        for t, r in enumerate(self.state.rows):
            L[t, :t + 1] = r
        return L

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (the current state is not touched): the
        incremental factorisation in the given order, so it agrees with the
        gains to the last bits; ``-inf`` if not positive definite."""
        self._require_bound()
        f = self.copy()
        f.reset()
        for j in dict.fromkeys(int(i) for i in np.asarray(indices, dtype=np.int64).ravel()):
            if f.gains(np.array([j], np.int64))[0] == -math.inf:  # d2_j <= 0
                return -math.inf
            f.update(j)
        return f.value

    def to_torch(self, device: str = "cuda"):
        from ._log_determinant_torch import TorchLogDeterminant

        self._require_bound()
        return TorchLogDeterminant(self, device)
