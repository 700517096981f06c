"""The label filter's probe, per row after its one product (:mod:`._label_noise`):
the nearest prototype, each class's nearest prototype's cosine, and the rank
of the row's own class, in one pass over the row's cosines (numba; numpy's
argmax, per-class max and comparison took three passes, 3-4 times the product
itself at 100,000 x 128 with 400 prototypes)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["nearest_prototypes", "nearest_prototypes_two"]


@njit(inline="always")
def _row_pass(SR, i, first, per_class):  # pragma: no cover - compiled
    """Row ``i``'s one pass over its values: ``per_class[i, c]`` class ``c``'s
    largest value; returns the largest value overall, its column (the first
    among equal ones, as ``np.argmax``) and that column's class."""
    n_protos = SR.shape[1]
    n_classes = first.shape[0]
    best = -np.inf
    arg = 0
    bcls = 0
    for c in range(n_classes):
        end = first[c + 1] if c + 1 < n_classes else n_protos
        m = -np.inf
        for j in range(first[c], end):
            v = SR[i, j]
            if v > m:
                m = v
            if v > best:
                best = v
                arg = j
                bcls = c
        per_class[i, c] = m
    return best, arg, bcls


@njit(inline="always")
def _rank(per_class, i, own):  # pragma: no cover - compiled
    """One plus the number of classes whose largest value of row ``i`` is above ``own``."""
    r = 1
    for c in range(per_class.shape[1]):
        if per_class[i, c] > own:
            r += 1
    return r


@njit(nogil=True, cache=True)
def nearest_prototypes(SR, first, codes, near, rank, per_class):  # pragma: no cover - compiled
    """For each row ``i`` of ``SR`` (rows x prototypes, class ``c``'s prototypes
    the columns ``first[c]`` up to ``first[c + 1]``, the last class's up to the
    end): ``near[i]`` the column of the largest value (the first among equal
    ones, as ``np.argmax``), ``per_class[i, c]`` class ``c``'s largest value,
    and ``rank[i]`` one plus the number of classes whose largest value is above
    that of class ``codes[i]``."""
    for i in range(SR.shape[0]):
        _, arg, _ = _row_pass(SR, i, first, per_class)
        near[i] = arg
        rank[i] = _rank(per_class, i, per_class[i, codes[i]])


@njit(nogil=True, cache=True)
def nearest_prototypes_two(SR, first, codes, near, near2, alt, rank, gap, per_class):  # pragma: no cover - compiled
    """:func:`nearest_prototypes` (the same pass: the same ``near``, ``rank``
    and ``per_class``) and what a second opinion needs
    (``_probe_votes.second_opinion``): ``near2[i]`` the column of the second
    largest value overall, ``alt[i]`` the column of the largest value among
    the classes other than ``near[i]``'s (the first column among equal values,
    as a stable sort; -1 where there is none), and ``gap[i]`` the largest
    value minus the own class's (float32, as numpy subtracts them). The rest
    reads the per-class values (C) and the two classes' columns (a few) once
    per row."""
    n_protos = SR.shape[1]
    n_classes = first.shape[0]
    for i in range(SR.shape[0]):
        best, arg, bcls = _row_pass(SR, i, first, per_class)
        own = per_class[i, codes[i]]
        rank[i] = _rank(per_class, i, own)
        gap[i] = np.float32(best) - own
        c2 = -np.inf  # the runner-up class: the best of the others (the first among equal ones)
        c2cls = -1
        for c in range(n_classes):
            if c != bcls and per_class[i, c] > c2:
                c2 = per_class[i, c]
                c2cls = c
        wcol = -1
        if c2cls >= 0:  # its first column holding its largest value
            end = first[c2cls + 1] if c2cls + 1 < n_classes else n_protos
            for j in range(first[c2cls], end):
                if SR[i, j] == c2:
                    wcol = j
                    break
        alt[i] = wcol
        w = c2  # the second largest: the runner-up class's, or another column of the best class
        end = first[bcls + 1] if bcls + 1 < n_classes else n_protos
        for j in range(first[bcls], end):
            if j != arg and (SR[i, j] > w or (SR[i, j] == w and (wcol < 0 or j < wcol))):
                w = SR[i, j]
                wcol = j
        near[i] = arg
        near2[i] = wcol


@njit(nogil=True, cache=True)
def capped_other_votes(starts, labels, counts, m_own, size, temper, out):  # pragma: no cover - compiled
    """For each (cell, label) pair ``i`` (pairs grouped by cell: cell ``k``'s
    are ``starts[k]`` up to ``starts[k + 1]``): the largest over the cell's
    other labels ``j`` of ``counts[j] * min(1, (m_own[i] / size[labels[j]]) ** temper)``
    (a bigger class's votes scaled down to the own class's size, a smaller
    class's kept), written to ``out[i]`` (0 when the cell holds no other label)."""
    for k in range(starts.shape[0] - 1):
        for i in range(starts[k], starts[k + 1]):
            best = 0.0
            for j in range(starts[k], starts[k + 1]):
                if j != i:
                    f = (m_own[i] / size[labels[j]]) ** temper
                    v = counts[j] * (f if f < 1.0 else 1.0)
                    if v > best:
                        best = v
            out[i] = best
