"""CCS (coverage over difficulty): the stratified fill, the hard cut, class
budgets, the training-free scores against brute force, bad input, the CLI."""

import itertools
import math

import numpy as np
import pytest

import coreset
from coreset.exceptions import UnknownNameError, ValidationError
from coreset.selectors._budget import allocate_budget
from coreset.selectors._ccs import allocate_strata, auto_beta, ccs_sample, equal_width_strata
from coreset.selectors._ccs_scores import centroid_distance, fl_gain, knn_density, label_consistency


def _data(n=300, d=8, n_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    y[:n_classes] = np.arange(n_classes)
    X = (rng.standard_normal((n, d)) + 2.0 * np.eye(n_classes, d)[y]).astype(np.float32)
    return X, y


# -- the rule, by hand --------------------------------------------------------------
HAND_SCORES = np.array([0.0] + [0.3] * 3 + [0.6] * 6 + [1.0] * 10)  # strata of width 0.25: sizes 1, 3, 6, 10


def test_strata_and_fill_by_hand():
    assert equal_width_strata(HAND_SCORES, 4).tolist() == [0] + [1] * 3 + [2] * 6 + [3] * 10
    # k = 12, smallest first: min(1, 12 // 4) = 1; min(3, 11 // 3) = 3; min(6, 8 // 2) = 4; min(10, 4 // 1) = 4
    assert allocate_strata([1, 3, 6, 10], 12).tolist() == [1, 3, 4, 4]
    # k = 7: min(1, 1) = 1; min(3, 6 // 3) = 2; min(6, 4 // 2) = 2; 2 left for the last
    assert allocate_strata([1, 3, 6, 10], 7).tolist() == [1, 2, 2, 2]
    # empty strata take no share: k = 5 over sizes (0, 4, 0, 4): 2 and 3 (the later, larger-or-equal one gets more)
    assert allocate_strata([0, 4, 0, 4], 5).tolist() == [0, 2, 0, 3]


def test_sample_counts_and_weights_by_hand():
    X = np.random.default_rng(0).standard_normal((20, 3))
    sel = coreset.select(X, n_select=12, method="ccs", scores=HAND_SCORES, beta=0.0, n_strata=4, random_state=3)
    picked = HAND_SCORES[sel.indices]
    assert [int((picked == v).sum()) for v in (0.0, 0.3, 0.6, 1.0)] == [1, 3, 4, 4]
    # a pick stands for its stratum's rows over its picks: 1/1, 3/3, 6/4, 10/4 (they sum to 20: no rescaling)
    want = {0.0: 1.0, 0.3: 1.0, 0.6: 1.5, 1.0: 2.5}
    assert sel.weights.tolist() == [want[v] for v in picked]
    assert sel.gains.tolist() == picked.tolist()  # gains are the picks' scores, easiest stratum first
    assert np.all(np.diff(picked) >= 0)


def test_hard_cut_by_hand():
    s = np.arange(20.0)  # beta 0.25 drops 15..19; the rest (0..14) in 3 strata of 5: 4 each for k = 12
    pos, w, dropped = ccs_sample(s, 12, beta=0.25, n_strata=3, rng=np.random.default_rng(0))
    assert dropped == 5 and s[pos].max() < 15
    assert np.bincount((s[pos] // 5).astype(int), minlength=3).tolist() == [4, 4, 4]
    assert w == pytest.approx(np.full(12, 20 / 12))  # 5/4 each, rescaled to the group's 20 rows
    # the cut never takes rows the budget needs: k = 18 keeps 18, so only 2 go
    pos, _, dropped = ccs_sample(s, 18, beta=0.25, n_strata=3, rng=np.random.default_rng(0))
    assert dropped == 2 and sorted(pos.tolist()) == list(range(18))


def test_constant_scores_are_one_stratum():
    pos, w, _ = ccs_sample(np.ones(10), 4, beta=0.0, n_strata=50, rng=np.random.default_rng(0))
    assert pos.size == 4 and np.unique(pos).size == 4 and w == pytest.approx(np.full(4, 2.5))


# -- the smallest-stratum-first rule against brute force ------------------------------
def _max_min_fair(sizes, k):
    """Brute force: the allocation whose counts, sorted ascending, are lexicographically largest."""
    best = None
    for b in itertools.product(*[range(s + 1) for s in sizes]):
        if sum(b) == k and (best is None or sorted(b) > sorted(best)):
            best = b
    return best


def test_fill_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(300):
        sizes = rng.integers(0, 6, rng.integers(1, 5))
        k = int(rng.integers(0, sizes.sum() + 1))
        got = allocate_strata(sizes, k)
        assert got.sum() == k and (got <= sizes).all() and (got >= 0).all()
        assert sorted(got.tolist()) == sorted(_max_min_fair(sizes.tolist(), k)), (sizes, k, got)
        # strata below their size differ by at most one, the extra going to later strata in (size, index) order
        free = [i for i in np.argsort(sizes, kind="stable") if sizes[i] > 0 and got[i] < sizes[i]]
        assert all(got[a] <= got[b] for a, b in zip(free, free[1:])) and (
            not free or got[free[-1]] - got[free[0]] <= 1)


# -- through select: classes, the cut, reproducibility ---------------------------------
@pytest.mark.parametrize("policy", ["equal", "proportional"])
def test_class_budgets_met_exactly_and_hardest_never_picked(policy):
    X, y = _data()
    s = np.random.default_rng(1).permutation(y.size).astype(float)  # distinct scores
    sel = coreset.select(X, fraction=0.2, y=y, method="ccs", class_budget=policy, scores=s, beta=0.3,
                         n_strata=5, random_state=0)
    sizes = np.bincount(y)
    budgets = allocate_budget(sizes, int(round(0.2 * y.size)), policy)
    assert np.bincount(y[sel.indices], minlength=4).tolist() == budgets.tolist()
    assert np.unique(sel.indices).size == len(sel)
    dropped = 0
    for c in range(4):
        m = np.flatnonzero(y == c)
        n_cut = min(math.floor(0.3 * m.size), m.size - budgets[c])
        hardest = m[np.argsort(-s[m])[:n_cut]]
        assert not np.isin(hardest, sel.indices).any()
        assert sel.weights[y[sel.indices] == c].sum() == pytest.approx(m.size)  # a class's weights: its size
        dropped += n_cut
    assert sel.meta["n_dropped"] == dropped and sel.meta["beta"] == 0.3 and sel.meta["class_budget"] == policy
    assert sel.gains.tolist() == s[sel.indices].tolist()  # per-class groups read the right rows' scores


def test_auto_beta_per_class():
    assert [auto_beta(f) for f in (0.05, 0.1, 0.3, 0.5, 0.9, 1.0)] == pytest.approx([0.4, 0.4, 0.3, 0.2, 0.0, 0.0])
    X, y = _data()
    sel = coreset.select(X, fraction=0.1, y=y, method="ccs", class_budget="equal", beta="auto", random_state=0)
    sizes = np.bincount(y)
    b = allocate_budget(sizes, 30, "equal")
    want = sum(min(math.floor(auto_beta(bc / n) * n + 1e-9), n - bc) for n, bc in zip(sizes, b))
    assert sel.meta["beta"] == "auto" and sel.meta["n_dropped"] == want > 0
    assert sel.meta["score"] == "label_consistency" and sel.meta["method"] == "ccs"


def test_defaults():
    X, y = _data()
    sel = coreset.select(X, fraction=0.1, y=y, method="ccs", class_budget="equal", random_state=0)
    assert (sel.meta["score"], sel.meta["beta"], sel.meta["n_strata"], sel.meta["n_neighbors"]) == (
        "label_consistency", 0.4, 50, 10)
    unlabelled = coreset.select(X, fraction=0.1, method="ccs", random_state=0)
    assert unlabelled.meta["score"] == "knn_density" and unlabelled.meta["n_dropped"] == 120  # 0.4 * 300


def test_seeded_reproducibility():
    X, y = _data()
    a = coreset.select(X, fraction=0.1, y=y, method="ccs", class_budget="equal", random_state=7)
    b = coreset.select(X, fraction=0.1, y=y, method="ccs", class_budget="equal", random_state=7)
    c = coreset.select(X, fraction=0.1, y=y, method="ccs", class_budget="equal", random_state=8)
    assert a.indices.tolist() == b.indices.tolist() and a.weights.tolist() == b.weights.tolist()
    assert a.indices.tolist() != c.indices.tolist()


# -- the scores against brute force ------------------------------------------------------
def _cos_dist(A, B):
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    B = B / np.linalg.norm(B, axis=1, keepdims=True)
    return 1.0 - A @ B.T


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_scores_match_brute_force(metric):
    X, y = _data(n=120, d=5, n_classes=3, seed=2)
    Xd = X.astype(np.float64)
    dist = _cos_dist(Xd, Xd) if metric == "cosine" else np.linalg.norm(Xd[:, None] - Xd[None], axis=2)
    k = 4
    want_density = np.empty(120)
    want_centroid = np.empty(120)
    for c in range(3):
        m = np.flatnonzero(y == c)
        D = dist[np.ix_(m, m)] + np.diag(np.full(m.size, np.inf))
        want_density[m] = np.sort(D, axis=1)[:, :k].mean(axis=1)
        if metric == "cosine":
            Z = Xd[m] / np.linalg.norm(Xd[m], axis=1, keepdims=True)
            want_centroid[m] = _cos_dist(Xd[m], Z.mean(0, keepdims=True))[:, 0]
        else:
            want_centroid[m] = np.linalg.norm(Xd[m] - Xd[m].mean(0), axis=1)
    assert knn_density(X, y, n_neighbors=k, metric=metric) == pytest.approx(want_density, abs=1e-5)
    assert knn_density(X, y, n_neighbors=k, metric=metric, max_dense=0) == pytest.approx(want_density, abs=1e-5)
    assert centroid_distance(X, y, metric=metric) == pytest.approx(want_centroid, abs=1e-6)
    D = dist + np.diag(np.full(120, np.inf))
    nb = np.argsort(D, axis=1)[:, :10]  # the label-noise filter's 10 neighbours
    own = (y[nb] == y[:, None]).sum(axis=1)
    other = np.array([max([int((row == c).sum()) for c in range(3) if c != y[i]]) for i, row in enumerate(y[nb])])
    assert label_consistency(X, y, metric=metric) == pytest.approx(np.log((other + 0.5) / (own + 0.5)))


def test_fl_gain_is_minus_mean_similarity_within_class():
    X, y = _data(n=90, d=5, n_classes=3, seed=4)
    Xd = X.astype(np.float64)
    S = np.maximum(1.0 - _cos_dist(Xd, Xd), 0.0)
    want = np.empty(90)
    for c in range(3):
        m = np.flatnonzero(y == c)
        want[m] = -S[np.ix_(m, m)].sum(axis=1) / m.size
    assert fl_gain(X, y) == pytest.approx(want, abs=1e-5)


def test_label_consistency_flags_flipped_rows():
    X, y = _data(n=400, d=8, n_classes=4, seed=5)
    y_noisy = y.copy()
    flipped = np.arange(10, 50)
    y_noisy[flipped] = (y[flipped] + 1) % 4
    s = label_consistency(X, y_noisy)
    assert s[flipped].mean() > s[np.setdiff1d(np.arange(400), flipped)].mean() + 1.0
    # with the hard cut, CCS on label_consistency keeps out most flipped rows
    sel = coreset.select(X, fraction=0.1, y=y_noisy, method="ccs", class_budget="equal", score="label_consistency",
                         beta=0.2, random_state=0)
    assert np.isin(flipped, sel.indices).sum() <= 1


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize("params, match", [
    (dict(beta=1.0), r"beta must be in \[0.0, 1.0\); got 1.0"),
    (dict(beta=-0.1), r"beta must be in \[0.0, 1.0\); got -0.1"),
    (dict(beta="half"), r"beta must be 'auto' or a number in \[0, 1\); got 'half'"),
    (dict(n_strata=0), r"n_strata must be .*1.*got 0"),
    (dict(score="knn_densty"), r"score='knn_densty' is not known.*did you mean 'knn_density'"),
    (dict(scores=np.zeros(59)), r"scores must have length 60 .*got length 59"),
    (dict(scores=np.r_[np.zeros(59), np.nan]), r"scores must be finite; got 1 non-finite value.*row 59"),
    (dict(scores=np.zeros(60), score="fl_gain"), r"score= .* or scores= .*not both"),
    (dict(n_neighbors=0), r"n_neighbors must be"),
    (dict(n_neighbors=5, score="fl_gain"), r"n_neighbors applies to score='knn_density'.*'fl_gain'"),
    (dict(metric="inner_product"), r"metric='inner_product' is not known"),
])
def test_bad_input(params, match):
    X, y = _data(n=60)
    with pytest.raises(ValidationError, match=match):
        coreset.select(X, n_select=10, y=y, method="ccs", class_budget="equal", **params)


def test_label_consistency_needs_labels_and_unknown_names_suggest():
    X, _ = _data(n=60)
    with pytest.raises(ValidationError, match="needs labels y"):
        coreset.select(X, n_select=10, method="ccs", score="label_consistency")
    with pytest.raises(UnknownNameError, match="did you mean 'fl_gain'"):
        coreset.select(X, n_select=10, method="ccs", score="fl_gian")


# -- the CLI ---------------------------------------------------------------------------------
def test_cli_round_trip(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    X, y = _data()
    np.save(tmp_path / "emb.npy", X)
    np.savetxt(tmp_path / "y.txt", y, fmt="%d")
    out = tmp_path / "out.npz"
    args = ["select", str(tmp_path / "emb.npy"), "--labels", str(tmp_path / "y.txt"), "--method", "ccs",
            "--fraction", "0.1", "--class-budget", "equal", "-o", str(out), "--json"]
    res = CliRunner().invoke(app, args + ["--beta", "0.2", "--n-strata", "10", "--score", "centroid_distance"])
    assert res.exit_code == 0, res.output
    got = coreset.Selection.load(out)
    want = coreset.select(X, fraction=0.1, y=y, method="ccs", class_budget="equal", beta=0.2, n_strata=10,
                          score="centroid_distance", random_state=0)
    assert got.indices.tolist() == want.indices.tolist() and got.weights.tolist() == want.weights.tolist()
    assert (got.meta["beta"], got.meta["n_strata"], got.meta["score"]) == (0.2, 10, "centroid_distance")
    # defaults through the CLI; --beta auto
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (coreset.Selection.load(out).meta["beta"], coreset.Selection.load(out).meta["score"]) == (
        0.4, "label_consistency")
    res = CliRunner().invoke(app, args + ["--beta", "auto"])
    assert res.exit_code == 0 and coreset.Selection.load(out).meta["beta"] == "auto"
    bad = tmp_path / "bad.npz"
    res = CliRunner().invoke(app, args[:-3] + ["-o", str(bad), "--beta", "1.5"])
    assert res.exit_code == 1 and not bad.exists()
    assert [line for line in res.output.splitlines() if line.startswith("Error:")] == [
        "Error: beta must be in [0.0, 1.0); got 1.5"]
    res = CliRunner().invoke(app, args[:-3] + ["-o", str(bad), "--beta", "lots"])
    assert res.exit_code == 2 and not bad.exists()
