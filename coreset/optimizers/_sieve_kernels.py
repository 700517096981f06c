"""The Sieve-Streaming++ rules, written once, and the compiled loops over them.

**The rules** (Kazemi, Mitrovic, Zadimoghaddam, Lattanzi, Karbasi 2019;
Sieve-Streaming, Badanidiyuru et al. 2014): thresholds ``tau = (1 + eps) ** e``
for every integer ``e`` with ``max(LB, Delta) / (2 k) <= tau <= Delta``
(:func:`window`; ``Delta`` the largest singleton value seen, ``LB`` the best
sieve value). Sieves below the window are dropped (:func:`drop_below`), new
ones start empty when ``Delta`` grows (:func:`open_slot`: exponent ``e`` lives
in slot ``e % T``), an element joins every sieve with room where its gain
reaches the threshold (:func:`admits`, :func:`record`), and the pass finishes
with the best full sieve or the greedy set over the kept candidates, whichever
is worth more (:func:`use_sieve`). These are plain functions over the arrays of
:class:`~coreset.optimizers._sieve_state.SieveSlots`: the in-memory optimizer
(:class:`~coreset.optimizers.SieveStreaming`) calls them from Python, the chunk
kernel below inlines them (numba ``register_jitable``).

**The kernels**: :func:`_sieve_chunk_py` (facility location against a fixed
reservoir, each row given by its top-``m`` reservoir neighbours; a sieve is a
coverage vector over the reservoir plus its members' pool slots) and
:func:`_greedy_sparse_py` (the final greedy over the kept candidates), compiled
on first use and run in calls of about ``CALL_SECONDS`` (``coreset._pace``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["EMPTY", "n_slots", "window", "drop_below", "open_slot", "admits", "record", "use_sieve", "sieve_chunk",
           "greedy_sparse"]

#: an unused sieve slot's exponent
EMPTY = -(2 ** 62)


def n_slots(k: int, epsilon: float) -> int:
    """How many sieves can be alive at once for ``k`` picks."""
    return int(math.floor(math.log(2 * k) / math.log1p(epsilon))) + 3


# ---------------------------------------------------------------- the rules (Python and numba alike)

def window(delta, lb, k, eps):
    """Exponents ``[lo, hi]`` of the live thresholds ``(1 + eps) ** e`` for
    ``max(LB, Delta) / (2 k) <= tau <= Delta`` (``hi < lo``: none)."""
    if delta <= 0:
        return np.int64(1), np.int64(0)
    base = np.log1p(eps)
    lo = np.int64(np.ceil(np.log(max(delta, lb) / (2 * k)) / base - 1e-12))
    hi = np.int64(np.floor(np.log(delta) / base + 1e-12))
    return lo, hi


def drop_below(lo, expo):
    """Sieves whose threshold fell below the window are dropped."""
    for q in range(expo.shape[0]):
        if expo[q] != EMPTY and expo[q] < lo:
            expo[q] = EMPTY


def open_slot(e, expo, size, val):
    """The slot of exponent ``e`` (``e % T``); a sieve not yet alive there
    starts empty. Returns ``(slot, started)``: the caller clears a started
    sieve's coverage."""
    q = e % expo.shape[0]
    if expo[q] != e:
        expo[q] = e
        size[q] = 0
        val[q] = 0.0
        return q, True
    return q, False


def admits(gain, e, eps):
    """An element joins the sieve of exponent ``e`` (which has room) when its
    gain reaches the threshold."""
    return gain >= np.power(1.0 + eps, e) and gain > 0


def record(q, member, value, members, size, val, scal):
    """``member`` joined sieve ``q``, whose value is now ``value`` (LB follows)."""
    members[q, size[q]] = member
    size[q] += 1
    val[q] = value
    if value > scal[1]:
        scal[1] = value


def use_sieve(best_size, k, final_greedy, sieve_value, greedy_value):
    """Finish: the best sieve (full) unless the final greedy over the kept
    candidates is worth more (the sieve on ties; always the sieve without
    ``final_greedy``)."""
    return best_size == k and (not final_greedy or sieve_value >= greedy_value)


def keep_row(t, rows, nbr, sims, pool_row, pool_nbr, pool_sim, pool_n):
    """Chunk row ``t`` (its row number and neighbour list) into the next free
    candidate-pool slot; returns the slot."""
    slot = pool_n[0]
    pool_n[0] += 1
    pool_row[slot] = rows[t]
    for p in range(nbr.shape[1]):
        pool_nbr[slot, p] = nbr[t, p]
        pool_sim[slot, p] = sims[t, p]
    return slot


_RULES = (window, drop_below, open_slot, admits, record, keep_row)


# ---------------------------------------------------------------- compiled kernels

_kernels = {}


def _compiled(name):
    """The numba-compiled loop ``name`` ("sieve" or "greedy"); the rules are
    registered with numba first, so the loop inlines them."""
    fn = _kernels.get(name)
    if fn is None:
        import numba
        from numba.extending import register_jitable

        if not _kernels:
            for rule in _RULES:
                register_jitable(inline="always")(rule)  # inlined in numba's IR: the loop as if written in it
        jit = numba.njit(cache=True, nogil=True)
        fn = _kernels[name] = jit(_sieve_chunk_py if name == "sieve" else _greedy_sparse_py)
    return fn


def sieve_chunk(nbr, sims, rows, start, state, slot_of):
    """Run the sieve over the rows ``start..`` of one chunk (see
    :func:`_sieve_chunk_py`) on ``state`` (a
    :class:`~coreset.optimizers._sieve_state.SieveState`), in compiled calls of
    about ``CALL_SECONDS`` each (``coreset._pace``: Ctrl-C raises between
    them; the same result). ``slot_of[t]`` gets chunk row t's pool slot (or
    -1). Returns the first row not processed: the chunk's length, or earlier
    when the pool is full."""
    from .._pace import Pacer

    fn = _compiled("sieve")
    s, p = state.slots, state.pool
    c = nbr.shape[0]
    pacer = Pacer(first=64)
    t = start
    while t < c:
        stop = min(c, t + pacer.next())
        t = fn(nbr, sims, rows, t, stop, s.k, s.epsilon, s.scal, state.cur, s.size, s.members, s.val, s.expo,
               p.row, p.nbr, p.sim, p.count, slot_of)
        if t < stop:
            break  # the pool is full
    return t


def greedy_sparse(nbr, sims, cands, k, r, out, out_gain):
    """Naive greedy over pool slots ``cands`` (see :func:`_greedy_sparse_py`),
    in compiled calls of about ``CALL_SECONDS`` each (``coreset._pace``).
    Returns the number of picks written to ``out`` / ``out_gain``."""
    from .._pace import Pacer

    fn = _compiled("greedy")
    cur = np.zeros(r, np.float64)
    used = np.zeros(cands.shape[0], np.bool_)
    pacer = Pacer()
    n_out, done = 0, False
    while not done:
        n_out, done = fn(nbr, sims, cands, k, cur, used, n_out, pacer.next(), out, out_gain)
    return n_out


def _sieve_chunk_py(nbr, sims, rows, start, stop, k, eps, scal, cur, size, members, val, expo,
                    pool_row, pool_nbr, pool_sim, pool_n, pool_slot_of_row):
    """Feed rows ``start..stop`` of a chunk to the sieves.

    ``nbr``/``sims`` (c x m): each row's reservoir neighbours and similarities;
    ``rows`` its global row numbers. Sieve state (:class:`SieveSlots`):
    ``scal = [Delta, LB]``, ``size``, ``members`` (T x k pool slots), ``val``,
    ``expo``; ``cur`` (T x r float32) each sieve's coverage of the reservoir.
    Pool (:class:`CandidatePool`): rows some sieve accepted (or among the first
    ``k``), with their neighbour lists; ``pool_n[0]`` used.
    ``pool_slot_of_row[t]`` gets the pool slot of chunk row t (or -1). Returns
    the first row not processed: ``stop``, or earlier when the pool is full.
    """
    r = cur.shape[1]
    m = nbr.shape[1]
    cap = pool_row.shape[0]
    for t in range(start, stop):
        if pool_n[0] >= cap:
            return t
        single = 0.0
        for p in range(m):
            s = sims[t, p]
            if s > 0:
                single += s
        if single > scal[0]:
            scal[0] = single
        delta = scal[0]
        slot_here = -1
        if rows[t] < k:  # the first k rows are kept as fallback candidates
            slot_here = keep_row(t, rows, nbr, sims, pool_row, pool_nbr, pool_sim, pool_n)
        if delta > 0:
            lo, hi = window(delta, scal[1], k, eps)
            drop_below(lo, expo)
            for e in range(lo, hi + 1):  # start the missing ones
                q, started = open_slot(e, expo, size, val)
                if started:
                    for i in range(r):
                        cur[q, i] = 0.0
            for e in range(lo, hi + 1):
                q = e % expo.shape[0]
                if size[q] >= k:
                    continue
                gain = 0.0
                for p in range(m):
                    d = sims[t, p] - cur[q, nbr[t, p]]
                    if d > 0:
                        gain += d
                if admits(gain, e, eps):
                    if slot_here < 0:
                        slot_here = keep_row(t, rows, nbr, sims, pool_row, pool_nbr, pool_sim, pool_n)
                    for p in range(m):
                        i = nbr[t, p]
                        if sims[t, p] > cur[q, i]:
                            cur[q, i] = sims[t, p]
                    record(q, slot_here, val[q] + gain, members, size, val, scal)
        pool_slot_of_row[t] = slot_here
    return stop


def _greedy_sparse_py(nbr, sims, cands, k, cur, used, n_out, max_steps, out, out_gain):
    """Up to ``max_steps`` picks of naive greedy over pool slots ``cands``
    (ordered: ties to the earlier), facility location on their neighbour lists
    over the reservoir rows' coverage ``cur``; ``used`` marks the slots picked,
    ``n_out`` the picks written so far. Returns ``(n_out, finished)``."""
    m = nbr.shape[1]
    for step in range(max_steps):
        if n_out >= k:
            break
        best = -1.0
        bt = -1
        for t in range(cands.shape[0]):
            if used[t]:
                continue
            j = cands[t]
            g = 0.0
            for p in range(m):
                d = sims[j, p] - cur[nbr[j, p]]
                if d > 0:
                    g += d
            if g > best:
                best = g
                bt = t
        if bt < 0:
            return n_out, True
        used[bt] = True
        j = cands[bt]
        for p in range(m):
            i = nbr[j, p]
            if sims[j, p] > cur[i]:
                cur[i] = sims[j, p]
        out[n_out] = j
        out_gain[n_out] = best
        n_out += 1
    return n_out, n_out >= k
