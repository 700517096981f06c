"""The cheap cell search for label votes (``build_knn(..., effort="fast")``,
``_search.search_cells(..., effort="fast")``), what ``label_consistency`` and
``label_filter="knn"`` use on embeddings above 20,000 rows: its votes against
brute-force kNN votes, its scores against the exact similarity, the default
search untouched by the option, and bad input."""

import numpy as np
import pytest

from coreset.data import make_zipf
from coreset.exceptions import UnknownNameError
from coreset.similarity import EXACT_MAX_N, build_knn

pytest.importorskip("numba")


def _votes(idx, codes):
    """Oracle of ``_label_noise._knn_votes``: (own, best other) label counts over ``idx[:, 1:]``,
    from a rows x classes table of counts."""
    n = codes.size
    counts = (codes[idx[:, 1:]][:, :, None] == np.arange(codes.max() + 1)).sum(axis=1)
    own = counts[np.arange(n), codes].copy()
    counts[np.arange(n), codes] = -1
    return own, counts.max(axis=1).clip(min=0)


def _flags(own, best):
    return (own + 0.5) / (best + 0.5) < 1.0


def _brute(X, k):
    """Brute-force cosine top-k (self first, ties to the lower index)."""
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Z @ Z.T
    np.fill_diagonal(S, np.inf)
    part = np.argpartition(-S, k, axis=1)[:, :k + 1]  # the k best and one more: ties at the k-th kept
    vals = np.take_along_axis(S, part, 1)
    return np.take_along_axis(part, np.lexsort((part, -vals), axis=1), 1)[:, :k], Z


@pytest.fixture(scope="module")
def noisy():
    d = make_zipf(4000, 32, n_classes=20, label_noise=0.1, random_state=0)
    return d.X, np.unique(d.y, return_inverse=True)[1].ravel(), np.asarray(d.flipped, bool)


def test_fast_votes_agree_with_brute_force_votes(noisy):
    X, codes, flipped = noisy
    exact_idx, _ = _brute(X, 11)
    idx, _, info = build_knn(X, 11, exact=False, effort="fast", random_state=0)
    assert info["effort"] == "fast" and info["n_probe"] == 1 and info["n_clusters"] == round(2 * np.sqrt(4000))
    own, best = _votes(idx, codes)
    own_x, best_x = _votes(exact_idx, codes)
    # measured: the suspect flags of all 4,000 rows agree, and the flipped rows are found as by brute
    # force (precision and recall 1); the votes themselves are equal on 78.5% of the rows (a mislabeled
    # neighbour swapped for another: 10% of the rows carry a random label), recall@11 is 0.81
    assert (_flags(own, best) == _flags(own_x, best_x)).mean() >= 0.99
    found = _flags(own, best)
    assert (found & flipped).sum() / found.sum() >= 0.99 and (found & flipped).sum() / flipped.sum() >= 0.99
    assert ((own == own_x) & (best == best_x)).mean() >= 0.7
    assert np.mean(np.abs(own - own_x)) <= 0.4
    recall = np.mean([np.intersect1d(a, b).size for a, b in zip(idx, exact_idx)]) / 11
    assert recall >= 0.7


def test_fast_neighbours_are_scored_exactly_best_first_self_first(noisy):
    X, _, _ = noisy
    idx, sims, _ = build_knn(X, 11, exact=False, effort="fast", random_state=0)
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_array_equal(idx[:, 0], np.arange(X.shape[0]))
    want = np.einsum("id,ikd->ik", Z, Z[idx[:, 1:]])
    np.testing.assert_allclose(sims[:, 1:], np.maximum(want, 0), atol=2e-6)  # the similarity: cosine clipped at 0
    assert (np.diff(sims[:, 1:], axis=1) <= 1e-6).all()
    assert (idx[:, 1:] != np.arange(X.shape[0])[:, None]).all()
    assert all(np.unique(r).size == r.size for r in idx)


def test_default_search_is_untouched_by_the_option():
    """``effort`` left out, or "full", is the search a selection's graph uses: the same graph,
    bit for bit, as ``search_cells``' call without the option; "fast" is another search."""
    from coreset.similarity._search import search_cells

    X = make_zipf(6000, 24, n_classes=30, random_state=1).X
    idx, sims, info = build_knn(X, 16, exact=False, random_state=3)
    idx_full, sims_full, _ = build_knn(X, 16, exact=False, random_state=3, effort="full")
    np.testing.assert_array_equal(idx, idx_full)
    np.testing.assert_array_equal(sims, sims_full)
    assert "effort" not in info and info["n_clusters"] == round(np.sqrt(6000)) and info["n_probe"] == 2
    s_def, i_def = search_cells(X, "cosine", 16, info["n_clusters"], 2, 3)
    s_full, i_full = search_cells(X, "cosine", 16, info["n_clusters"], 2, 3, effort="full")
    np.testing.assert_array_equal(i_def, i_full)
    np.testing.assert_array_equal(s_def, s_full)
    np.testing.assert_array_equal(idx[:, 1:], i_def[:, 1:])  # every row is its own best match here
    i_fast = search_cells(X, "cosine", 16, info["n_clusters"], 2, 3, effort="fast")[1]
    assert not np.array_equal(i_fast, i_def)


def test_knn_detector_on_embeddings_uses_the_fast_search_above_the_exact_limit():
    from coreset.selectors import _label_noise
    from coreset.selectors._label_noise import find_label_suspects

    d = make_zipf(EXACT_MAX_N + 4000, 16, n_classes=20, label_noise=0.1, random_state=2)
    codes = np.unique(d.y, return_inverse=True)[1].ravel()
    flipped = np.asarray(d.flipped, bool)
    found = find_label_suspects(d.X, d.y, method="knn", random_state=0)
    # measured: every flipped row and no other (as brute force's votes find on these separated classes)
    np.testing.assert_array_equal(found.suspects, np.flatnonzero(flipped))
    assert _label_noise.KNN_EFFORT == "fast"
    fast_idx = build_knn(d.X, 11, effort="fast", random_state=int(
        np.random.default_rng(0).integers(0, 2**31 - 1)))[0]  # the seed find_label_suspects derives
    own, best = _votes(fast_idx, codes)
    np.testing.assert_array_equal(found.score, (own + 0.5) / (best + 0.5))


def test_precomputed_votes_stay_exact():
    from coreset.selectors._label_noise import find_label_suspects

    d = make_zipf(600, 8, n_classes=6, label_noise=0.1, random_state=4)
    codes = np.unique(d.y, return_inverse=True)[1].ravel()
    exact_idx, Z = _brute(d.X, 11)
    S = np.maximum(Z @ Z.T, 0.0)
    found = find_label_suspects(S, d.y, method="knn", metric="precomputed")
    Sx = Z @ Z.T
    np.fill_diagonal(Sx, np.inf)
    own, best = _votes(exact_idx, codes)
    ties = np.sort(Sx, axis=1)[:, ::-1]
    clear = ties[:, 10] > ties[:, 11] + 1e-6  # rows whose 10th and 11th neighbours are not tied
    np.testing.assert_array_equal(found.score[clear], ((own + 0.5) / (best + 0.5))[clear])


@pytest.mark.parametrize("bad", ["fastest", "Fast", None, 1, ""])
def test_bad_effort(bad):
    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    with pytest.raises(UnknownNameError) as e:
        build_knn(X, 5, effort=bad)
    msg = str(e.value)
    assert "effort=" in msg and "fast, full" in msg and repr(bad) in msg
    if bad in ("fastest", "Fast"):
        assert "did you mean 'fast'" in msg


def test_bad_effort_of_the_cell_search_itself():
    from coreset.similarity._search import search_cells

    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    with pytest.raises(UnknownNameError, match="effort='quick' is not known; choose one of fast, full"):
        search_cells(X, "cosine", 5, 4, 1, 0, effort="quick")
