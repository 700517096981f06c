"""The label filter's probe, its votes (:mod:`._label_noise`): once every row
has joined the cell of its nearest prototype, the labels of the other rows of
that cell vote (:func:`cell_votes`), and a row that no other row of its class
joined can ask a second cell (:func:`second_opinion`)."""

from __future__ import annotations

import numpy as np

__all__ = ["cell_votes", "second_opinion", "SECOND_OPINIONS"]

#: where a row with no own-class votes in its cell asks again (``_label_noise.SECOND_OPINION``):
#: "second" the cell of its second-nearest prototype, "other_class" the cell of the nearest
#: prototype of a class other than its nearest prototype's
SECOND_OPINIONS = ("second", "other_class")


def _tables(ucell, ulab, weight, n_cells):
    """Per cell (from the sorted (cell, label) pairs and their weights): the
    most voted label, its weight, and the runner-up label's weight (ties: the
    lower label first; -1 / 0 / 0 for a cell nobody joined)."""
    order = np.lexsort((ulab, -weight, ucell))  # per cell, the most voted label first (ties: the lower label)
    head = np.ones(order.size, bool)
    head[1:] = ucell[order][1:] != ucell[order][:-1]
    top_lab = np.full(n_cells, -1, np.int64)
    top_w = np.zeros(n_cells, np.float64)
    second = np.zeros(n_cells, np.float64)
    first_idx = np.flatnonzero(head)
    top_lab[ucell[order][first_idx]] = ulab[order][first_idx]
    top_w[ucell[order][first_idx]] = weight[order][first_idx]
    nxt = first_idx + 1
    has2 = nxt < order.size
    has2[has2] &= ~head[nxt[has2]]
    second[ucell[order][first_idx[has2]]] = weight[order][nxt[has2]]
    return top_lab, top_w, second


def cell_votes(cell, codes, n_classes, prior=0.0, scale_up=True):
    """For each row: how many other rows of its cell carry its label, and how
    many carry the most voted other label (sparse counts: O(N log N)).

    ``prior`` = t in [0, 1]: another label's votes count ``v_c (m / n_c) ** t``,
    ``n_c`` its class's rows and ``m`` the other rows of the row's own class
    (at least 1): the other class's votes rescaled to the own class's size. At
    t = 0 votes count rows (the vote is P(label | cell), which carries the
    class prior); at t = 1 they compare P(cell | class), so a big class cannot
    out-vote a small one by its size alone. The most voted other label is the
    one with the largest rescaled votes. ``scale_up=False`` caps the rescale
    factor at 1 (a bigger class scaled down, a smaller one not scaled up)."""
    keys = cell * n_classes + codes
    uniq, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    own = cnt[inv].astype(np.float64) - 1.0
    ucell, ulab = uniq // n_classes, uniq % n_classes
    if prior and not scale_up:  # the rescale factor capped at 1: per (cell, label) pair
        from ._probe_kernel import capped_other_votes

        size = np.bincount(codes, minlength=n_classes).astype(np.float64)
        starts = np.flatnonzero(np.r_[True, ucell[1:] != ucell[:-1], True]).astype(np.int64)
        pair_other = np.empty(uniq.size, np.float64)
        capped_other_votes(starts, ulab.astype(np.int64), cnt.astype(np.float64),
                           np.maximum(size[ulab] - 1.0, 1.0), size, float(prior), pair_other)
        return own, pair_other[inv]
    if prior:
        size = np.bincount(codes, minlength=n_classes).astype(np.float64)
        weight = cnt / size[ulab] ** prior  # v_c / n_c ** t
    else:
        weight = cnt.astype(np.float64)
    top_lab, top_w, second = _tables(ucell, ulab, weight, int(cell.max()) + 1)
    other = np.where(top_lab[cell] == codes, second[cell], top_w[cell])
    if prior:
        other = other * np.maximum(size[codes] - 1.0, 1.0) ** prior  # in rows of the own class
    return own, other


def second_opinion(cell, codes, n_classes, rows, ask):
    """The votes of a second cell for the rows ``rows``: of the rows that
    joined cell ``ask[k]`` (cells as assigned by ``cell``), how many carry
    ``codes[rows[k]]``, and how many the most voted other label (votes count
    rows). The asking row is not among them (it joined another cell), so the
    vote stays out of sample. Returns (own, other), float64, one per row of
    ``rows``; a cell nobody joined gives (0, 0)."""
    rows = np.asarray(rows, np.int64)
    if rows.size == 0:
        return np.zeros(0), np.zeros(0)
    ask = np.asarray(ask, np.int64)
    keys = cell * n_classes + codes
    uniq, cnt = np.unique(keys, return_counts=True)
    ucell, ulab = uniq // n_classes, uniq % n_classes
    n_cells = max(int(cell.max()), int(ask.max())) + 1
    top_lab, top_w, second = _tables(ucell, ulab, cnt.astype(np.float64), n_cells)
    lab = codes[rows]
    q = ask * n_classes + lab
    pos = np.minimum(np.searchsorted(uniq, q), uniq.size - 1)
    own = np.where(uniq[pos] == q, cnt[pos], 0).astype(np.float64)
    other = np.where(top_lab[ask] == lab, second[ask], top_w[ask])
    return own, other
