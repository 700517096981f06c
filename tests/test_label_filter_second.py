"""The probe's second opinion (``_label_noise.SECOND_OPINION``, docs/label-noise.md, "A second
opinion for rows with no own-class votes"): a row that no other row of its class joined in its
cell takes the votes of a second cell where they favour it more."""

import numpy as np
import pytest

from coreset.selectors import _label_noise as L
from coreset.selectors._probe_kernel import nearest_prototypes_two
from coreset.selectors._probe_votes import second_opinion


def _at(degrees):
    a = np.radians(np.asarray(degrees, float))
    return np.stack([np.cos(a), np.sin(a)], axis=1)


# Classes of at most 32 rows have one prototype each: the normalised sum of their rows (no k-means).
B = [-9, -7, -5, -3, -1, 1, 3, 5, 7, 9]  # class 0 around 0 degrees: prototype at 0
A = [80, 85, 90, 95, 100]                # class 1 around 90 degrees, and two more rows of class 1:
BOUNDARY = 35                            # a correct row between A and B (nearer B's prototype)
FLIPPED = -60                            # a row of C's cloud labelled 1
C = [-66, -63, -57, -54]                 # class 2 around -60 degrees
X = _at(B + A + [BOUNDARY, FLIPPED] + C)
Y = np.array([0] * len(B) + [1] * len(A) + [1, 1] + [2] * len(C), np.int64)
I_BOUNDARY, I_FLIPPED = len(B) + len(A), len(B) + len(A) + 1


def _oracle_cosines():
    """Each row's cosine to each class's prototype, its own class's taken without it (float64)."""
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    sums = np.stack([Z[Y == c].sum(axis=0) for c in range(3)])
    cos = np.empty((Y.size, 3))
    for i in range(Y.size):
        for c in range(3):
            s = sums[c] - (Z[i] if Y[i] == c else 0.0)
            cos[i, c] = Z[i] @ s / np.linalg.norm(s)
    return cos


def test_the_hand_computed_geometry():
    """By hand: class 1 without the boundary row sums 80..100 and -60: x = 0.5, y = 4.96 - 0.87,
    at 83 degrees, 48 from the row (cos 0.67); B's prototype is 35 from it (cos 0.82): the row
    joins B's cell, its own class second, C's (95 degrees away) last. The flipped row sits on C's
    prototype (cos 1), B's 60 degrees away (cos 0.5), class 1 without it at 81.6 degrees (141.6
    away). Every other row joins its own class's cell."""
    cos = _oracle_cosines()
    order = np.argsort(-cos, axis=1)
    assert order[I_BOUNDARY].tolist() == [0, 1, 2]
    np.testing.assert_allclose(cos[I_BOUNDARY, [0, 1]], [np.cos(np.radians(35)), 0.67], atol=0.01)
    assert order[I_FLIPPED].tolist() == [2, 0, 1]
    np.testing.assert_allclose(cos[I_FLIPPED, [2, 0]], [1.0, 0.5], atol=0.01)
    rest = np.setdiff1d(np.arange(Y.size), [I_BOUNDARY, I_FLIPPED])
    assert (order[rest, 0] == Y[rest]).all()


def test_the_default_has_no_second_opinion():
    assert L.SECOND_OPINION is None
    own, other, _, rank = L._probe(X, Y, 3, np.random.default_rng(0))
    # cells: B's = 10 rows of class 0 and the boundary row; C's = 4 of class 2 and the flipped row
    assert (own[I_BOUNDARY], other[I_BOUNDARY]) == (0.0, 10.0)
    assert (own[I_FLIPPED], other[I_FLIPPED]) == (0.0, 4.0)
    assert (rank[I_BOUNDARY], rank[I_FLIPPED]) == (2, 3)
    suspects = L.find_label_suspects(X, Y, method="probe").suspects
    assert suspects.tolist() == [I_BOUNDARY, I_FLIPPED]  # the correct boundary row is a false suspect


@pytest.mark.parametrize("variant", ["second", "other_class"])
def test_second_opinion_saves_the_boundary_row_and_keeps_the_flip(monkeypatch, variant):
    """Both variants ask the same cells here. The boundary row asks A's cell (its second-nearest
    prototype, the nearest of a class other than B): 5 rows of class 1, none of another, so its
    votes become (5, 0), score 11: kept. The flipped row asks B's cell (second-nearest; nearest of
    a class other than C): the boundary row (class 1) and 10 of class 0, (1, 10), score 1.5 / 10.5
    = 0.14 (above its first 0.5 / 4.5, so taken, and still a suspect)."""
    own0, other0, _, _ = L._probe(X, Y, 3, np.random.default_rng(0))
    monkeypatch.setattr(L, "SECOND_OPINION", variant)
    own, other, _, _ = L._probe(X, Y, 3, np.random.default_rng(0))
    assert (own[I_BOUNDARY], other[I_BOUNDARY]) == (5.0, 0.0)
    assert (own[I_FLIPPED], other[I_FLIPPED]) == (1.0, 10.0)
    rest = np.setdiff1d(np.arange(Y.size), [I_BOUNDARY, I_FLIPPED])
    np.testing.assert_array_equal(own[rest], own0[rest])  # rows with own-class votes: unchanged
    np.testing.assert_array_equal(other[rest], other0[rest])
    found = L.find_label_suspects(X, Y, method="probe")
    assert found.suspects.tolist() == [I_FLIPPED]
    np.testing.assert_allclose(found.score[[I_BOUNDARY, I_FLIPPED]], [5.5 / 0.5, 1.5 / 10.5])


def test_a_row_with_own_votes_is_not_asked_again(monkeypatch):
    """A second row of class 1 next to the boundary row: each now has one own-class vote in B's
    cell (out-voted 1 to 10), so neither asks again and both stay suspects."""
    monkeypatch.setattr(L, "SECOND_OPINION", "second")
    X2, Y2 = np.vstack([X, _at([34])]), np.r_[Y, 1]
    found = L.find_label_suspects(X2, Y2, method="probe")
    assert {I_BOUNDARY, Y2.size - 1} <= set(found.suspects.tolist())
    np.testing.assert_allclose(found.score[[I_BOUNDARY, Y2.size - 1]], 1.5 / 10.5)


def test_kernel_second_and_other_class_columns_match_brute_force():
    rng = np.random.default_rng(5)
    first = np.array([0, 3, 4, 8], np.int64)  # 4 classes with 3, 1, 4, 2 prototypes
    owner = np.repeat(np.arange(4), [3, 1, 4, 2])
    SR = rng.standard_normal((300, 10)).astype(np.float32)
    SR[:20, 5] = SR[:20, 2]  # ties: the first column wins, as np.argmax
    codes = rng.integers(0, 4, 300).astype(np.int64)
    near, near2, alt, rank = (np.empty(300, np.int64) for _ in range(4))
    per_class = np.empty((300, 4), np.float32)
    gap = np.empty(300, np.float32)
    nearest_prototypes_two(SR, first, codes, near, near2, alt, rank, gap, per_class)
    np.testing.assert_array_equal(gap, SR.max(axis=1) - per_class[np.arange(300), codes])  # numpy's bits
    order = np.argsort(-SR, axis=1, kind="stable")
    np.testing.assert_array_equal(near, order[:, 0])
    np.testing.assert_array_equal(near2, order[:, 1])
    masked = np.where(owner[None, :] == owner[near][:, None], -np.inf, SR)
    np.testing.assert_array_equal(alt, np.argmax(masked, axis=1))


def test_second_opinion_votes_match_brute_force():
    rng = np.random.default_rng(2)
    n, n_classes = 200, 5
    cell = rng.integers(0, 8, n)
    codes = rng.integers(0, n_classes, n).astype(np.int64)
    rows = np.arange(0, n, 3)
    ask = rng.integers(0, 10, rows.size)  # cells 8 and 9: nobody joined them
    own, other = second_opinion(cell, codes, n_classes, rows, ask)
    for k, (i, a) in enumerate(zip(rows, ask)):
        members = codes[cell == a]
        assert own[k] == np.sum(members == codes[i])
        assert other[k] == max([np.sum(members == c) for c in range(n_classes) if c != codes[i]])


@pytest.mark.parametrize("variant", ["second", "other_class"])
def test_a_cell_nobody_joined_is_no_second_opinion(monkeypatch, variant):
    """A row of class 0 at 125 degrees sits among class 1's cell (A's prototype ~42 degrees away,
    cos 0.74): own 0, out-voted 0 to 5. The next prototype (55 degrees away) is that of class 3,
    whose only row (at 180) is taken out of it: nobody joined its cell, which holds no vote for
    or against the row ((0, 0), a ratio of 1). That is no evidence: the row stays a suspect."""
    monkeypatch.setattr(L, "SECOND_OPINION", variant)
    X3, Y3 = np.vstack([X, _at([125, 180])]), np.r_[Y, 0, 3]
    found = L.find_label_suspects(X3, Y3, method="probe")
    assert Y3.size - 2 in found.suspects
    np.testing.assert_allclose(found.score[Y3.size - 2], 0.5 / 5.5)
    assert I_BOUNDARY not in found.suspects  # still saved by A's cell


# The gate (``_label_noise.SECOND_OPINION_GAP``): only a row whose nearest prototype's cosine tops its
# own class's best by at most the gap asks again. A second geometry, where the ungated second opinion
# saves a flipped row: class 2 around 150 degrees, its central row labelled 1.
C2 = [144, 147, 153, 156]                 # class 2 around 150 degrees: prototype at 150
BOUNDARY2, DEEP_FLIP = 48, 150            # a correct row of class 1 between B and A; a row of C2 labelled 1
X_GATE = _at(B + A + [BOUNDARY2, DEEP_FLIP] + C2)
Y_GATE = np.array([0] * len(B) + [1] * len(A) + [1, 1] + [2] * len(C2), np.int64)


def test_the_hand_computed_gaps():
    """By hand: class 1 without the boundary row sums 80..100 and 150: x = 0.17 + 0.09 - 0.09 - 0.17
    - 0.87 = -0.87, y = 4.96 + 0.5 = 5.46, at 99.0 degrees, 51 from the row (cos 0.629); B's prototype
    48 away (cos 0.669): gap 0.040. Class 1 without the flipped row sums 80..100 and 48: at 83.3
    degrees, 66.7 from the row (cos 0.396); C2's prototype is the row's own place (cos 1): gap 0.604."""
    Z = X_GATE
    sums = np.stack([Z[Y_GATE == c].sum(axis=0) for c in range(3)])
    i_b, i_f = len(B) + len(A), len(B) + len(A) + 1
    cos = np.array([[Z[i] @ (s := sums[c] - (Z[i] if Y_GATE[i] == c else 0.0)) / np.linalg.norm(s)
                     for c in range(3)] for i in (i_b, i_f)])
    np.testing.assert_allclose(cos[0, :2], [np.cos(np.radians(48)), np.cos(np.radians(51.0))], atol=2e-3)
    np.testing.assert_allclose(cos[1, [2, 1]], [1.0, np.cos(np.radians(66.7))], atol=2e-3)
    np.testing.assert_allclose(cos.max(axis=1) - cos[:, 1], [0.040, 0.604], atol=2e-3)


@pytest.mark.parametrize("gap, suspects", [(None, []), (0.1, [1]), (0.039, [0, 1]), (0.041, [1]), (0.0, [0, 1])])
def test_the_gate_keeps_a_deep_flip_flagged_and_saves_a_boundary_row(monkeypatch, gap, suspects):
    """Both rows have no own-class vote in their cell: the boundary row is out-voted 0 to 10 in B's,
    the flipped row 0 to 4 in C2's (the probe flags both). Both rows' second-nearest prototype is
    class 1's, whose cell holds its 5 rows around 90 degrees: (5, 0), score 11. Without a gate the
    flipped row is saved too; with a gate of 0.1 only the boundary row (gap 0.040) asks, the flipped
    row (gap 0.604, deep in C2) keeps (0, 4), score 0.11. A gate just below 0.040 saves nobody."""
    i_b, i_f = len(B) + len(A), len(B) + len(A) + 1
    assert L.find_label_suspects(X_GATE, Y_GATE, method="probe").suspects.tolist() == [i_b, i_f]
    monkeypatch.setattr(L, "SECOND_OPINION", "second")
    monkeypatch.setattr(L, "SECOND_OPINION_GAP", gap)
    found = L.find_label_suspects(X_GATE, Y_GATE, method="probe")
    assert found.suspects.tolist() == [(i_b, i_f)[k] for k in suspects]
    score = {i_b: 5.5 / 0.5 if 0 not in suspects else 0.5 / 10.5, i_f: 5.5 / 0.5 if 1 not in suspects else 0.5 / 4.5}
    np.testing.assert_allclose(found.score[[i_b, i_f]], [score[i_b], score[i_f]])


def test_the_gate_without_a_second_opinion_changes_nothing(monkeypatch):
    assert L.SECOND_OPINION_GAP is None  # the default: no gate
    before = L.find_label_suspects(X_GATE, Y_GATE, method="probe")
    monkeypatch.setattr(L, "SECOND_OPINION_GAP", 0.1)
    after = L.find_label_suspects(X_GATE, Y_GATE, method="probe")
    np.testing.assert_array_equal(after.score, before.score)
