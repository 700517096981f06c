"""The probe's votes freed of the class prior (``_label_noise.PRIOR_TEMPER``,
opt-in; docs/label-noise.md, "Votes without the class prior"): another class's
votes in a cell count ``v_c (m / n_c) ** t``, ``m`` the other rows of the row's
own class, ``n_c`` the other class's rows; ``PRIOR_SCALE_UP=False`` caps that
factor at 1."""

import numpy as np
import pytest

from coreset.selectors import _label_noise as L


def _directions(degrees):
    r = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.c_[np.cos(r), np.sin(r)]


def _head_and_tail():
    """Class 0 (64 rows): two tight clusters at 0 and 90 degrees, one prototype
    each (64 / ROWS_PER_PROTOTYPE = 2). Class 1 (4 rows): at 1, 2, 3 and 40
    degrees, one prototype. Each of rows 64-66 (1-3 degrees) is nearer class 0's
    0-degree prototype than its own class's prototype without it (the mean of
    the other three, >= 14 degrees away), so the 0-degree cell holds 32 rows of
    class 0 and 3 of class 1; row 67 (40 degrees) is nearer its own prototype
    without it (2 degrees) and sits alone in that cell."""
    X = np.r_[_directions(np.linspace(-0.5, 0.5, 32)), _directions(90 + np.linspace(-0.5, 0.5, 32)),
              _directions([1.0, 2.0, 3.0, 40.0])]
    y = np.r_[np.zeros(64, np.int64), np.ones(4, np.int64)]
    return X, y


def test_default_counts_rows_and_the_head_class_outvotes_the_tail_rows():
    X, y = _head_and_tail()
    assert L.PRIOR_TEMPER == 0.0  # the default rule is unchanged: votes count rows
    found = L.find_label_suspects(X, y, random_state=0)
    # rows 64-66: 2 other rows of their class in the cell, 32 of class 0: (2 + .5) / (32 + .5)
    np.testing.assert_allclose(found.score[64:67], 2.5 / 32.5)
    np.testing.assert_allclose(found.score[:32], 31.5 / 3.5)  # class 0 rows of that cell: 31 own, 3 of class 1
    assert found.score[67] == 1.0  # alone in its cell: no vote either way
    np.testing.assert_array_equal(found.suspects, [64, 65, 66])


@pytest.mark.parametrize("scale_up", [True, False])
def test_prior_free_votes_keep_the_tail_rows(monkeypatch, scale_up):
    X, y = _head_and_tail()
    monkeypatch.setattr(L, "PRIOR_TEMPER", 1.0)
    monkeypatch.setattr(L, "PRIOR_SCALE_UP", scale_up)
    found = L.find_label_suspects(X, y, random_state=0)
    # class 0's 32 votes rescaled to class 1's other rows: 32 * 3 / 64 = 1.5; (2 + .5) / (1.5 + .5)
    np.testing.assert_allclose(found.score[64:67], 1.25)
    assert not np.isin([64, 65, 66], found.suspects).any()
    if scale_up:
        # the other side of P(cell | class): class 1's 3 votes scaled up to class 0's 63 other rows
        # (3 * 63 / 4 = 47.25) out-vote the head rows of the shared cell (31 own votes)
        np.testing.assert_allclose(found.score[:32], 31.5 / 47.75)
        np.testing.assert_array_equal(found.suspects, np.arange(32))
    else:  # capped: a smaller class's votes are not scaled up
        np.testing.assert_allclose(found.score[:32], 31.5 / 3.5)
        assert found.suspects.size == 0


def test_tempered_votes_hand_computed(monkeypatch):
    X, y = _head_and_tail()
    monkeypatch.setattr(L, "PRIOR_TEMPER", 0.5)
    found = L.find_label_suspects(X, y, random_state=0)
    np.testing.assert_allclose(found.score[64:67], 2.5 / (32 * (3 / 64) ** 0.5 + 0.5))
    np.testing.assert_allclose(found.score[:32], 31.5 / (3 * (63 / 4) ** 0.5 + 0.5))
    np.testing.assert_array_equal(found.suspects, [64, 65, 66])  # 0.34: still out-voted


def _brute_votes(cell, codes, n_classes, t, scale_up):
    size = np.bincount(codes, minlength=n_classes).astype(np.float64)
    own = np.empty(codes.size)
    other = np.empty(codes.size)
    for i in range(codes.size):
        same = cell == cell[i]
        own[i] = np.sum(same & (codes == codes[i])) - 1  # leave-one-out: the row never votes
        m = max(size[codes[i]] - 1, 1.0)
        best = 0.0
        for c in range(n_classes):
            v = np.sum(same & (codes == c))
            if c != codes[i] and v:
                f = (m / size[c]) ** t
                best = max(best, v * (f if scale_up else min(f, 1.0)))
        other[i] = best
    return own, other


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("scale_up", [True, False])
def test_cell_votes_match_brute_force(monkeypatch, t, scale_up):
    monkeypatch.setattr(L, "PRIOR_SCALE_UP", scale_up)
    rng = np.random.default_rng(int(10 * t) + scale_up)
    n, n_classes = 240, 6
    codes = np.where(rng.random(n) < 0.5, 0, rng.integers(0, n_classes, n))  # one head class
    codes[:n_classes] = np.arange(n_classes)
    codes[n_classes] = n_classes  # a class of one row
    cell = rng.integers(0, 9, n)
    own, other = L._cell_votes(cell, codes, n_classes + 1, t)
    own_b, other_b = _brute_votes(cell, codes, n_classes + 1, t, scale_up)
    np.testing.assert_array_equal(own, own_b)
    np.testing.assert_allclose(other, other_b, rtol=1e-12)
    if t:  # the rescaling changes the votes here (a test of it, not of counting)
        raw = _brute_votes(cell, codes, n_classes + 1, 0.0, True)[1]
        assert not np.allclose(other, raw)
