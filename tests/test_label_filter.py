"""The label filter: suspects found, kept out of the picks, still covered."""

import json

import numpy as np
import pytest

from coreset import Selection, select
from coreset.data import make_zipf
from coreset.data._noise import corrupt_training
from coreset.exceptions import UnknownNameError, ValidationError
from coreset.objectives import FacilityLocation
from coreset.optimizers import LazyGreedy, NaiveGreedy, StochasticGreedy
from coreset.selectors import ClassBalanced, SubmodularSelector, allocate_budget
from coreset.selectors._label_noise import find_label_suspects, guard_candidates
from coreset.similarity import dense_similarity


def _noisy(seed, model="symmetric"):
    """1,500 x 16, 6 Zipf classes of 3 overlapping modes, 10% of labels flipped."""
    d = make_zipf(1500, 16, 6, n_modes=3, class_sep=0.5, mode_spread=0.4, random_state=seed)
    return corrupt_training(d.X, d.y, label_noise=0.1, noise_model=model, random_state=seed)


def _precision_recall(suspects, flipped):
    flag = np.zeros(flipped.size, bool)
    flag[suspects] = True
    tp = int((flag & flipped).sum())
    return tp / max(int(flag.sum()), 1), tp / int(flipped.sum())


# Floors: over seeds 0-9 of this generator the probe's precision was >= 0.90 (symmetric) / 0.84
# (confusable) and its recall >= 0.98; the kNN vote's >= 0.93 / 0.91 and >= 0.99. A detector that
# flags at random has precision ~0.10 (the noise rate); one that flags nothing has recall 0.
@pytest.mark.parametrize("model", ["symmetric", "confusable"])
@pytest.mark.parametrize("method", ["probe", "knn"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detector_precision_and_recall_floors(method, model, seed):
    t = _noisy(seed, model)
    found = find_label_suspects(t.X, t.y, method=method)
    p, r = _precision_recall(found.suspects, t.flipped)
    assert p >= 0.8 and r >= 0.95, (p, r)
    assert found.method == method and found.threshold == 1.0
    np.testing.assert_array_equal(found.suspects, np.flatnonzero(found.score < 1.0))


def test_lower_threshold_flags_a_subset():
    t = _noisy(0)
    strict = find_label_suspects(t.X, t.y, threshold=1.0)
    loose = find_label_suspects(t.X, t.y, threshold=0.02)  # out-voted 50 to 1 (cells of ~100 rows)
    assert set(loose.suspects) < set(strict.suspects)
    np.testing.assert_array_equal(loose.score, strict.score)
    np.testing.assert_array_equal(loose.suspects, np.flatnonzero(strict.score < 0.02))


def test_no_suspect_is_picked_and_the_filter_is_what_keeps_them_out():
    t = _noisy(0)
    sel = select(t.X, fraction=0.1, y=t.y, class_budget="equal", random_state=0)
    assert sel.suspects is not None and sel.suspects.size > 100
    assert not np.isin(sel.indices, sel.suspects).any()
    assert sel.meta["label_filter"]["method"] == "probe" and sel.meta["label_filter"]["n_suspects"] == sel.suspects.size
    # without the filter facility location picks mislabeled rows (the property is not vacuous)
    off = select(t.X, fraction=0.1, y=t.y, class_budget="equal", random_state=0, label_filter=None)
    assert off.suspects is None and t.flipped[off.indices].sum() >= 20
    assert t.flipped[sel.indices].sum() <= 2
    # CRAIG weights: every row, suspects included, counts for its most similar pick
    for c in np.unique(t.y):
        assert sel.weights[t.y[sel.indices] == c].sum() == pytest.approx((t.y == c).sum())


def test_random_with_the_filter_draws_from_kept_rows_only():
    t = _noisy(1)
    plain = select(t.X, fraction=0.1, y=t.y, class_budget="equal", method="random", random_state=0)
    kept = select(t.X, fraction=0.1, y=t.y, class_budget="equal", method="random", random_state=0,
                  label_filter="auto")
    assert plain.suspects is None and np.isin(plain.indices, np.flatnonzero(t.flipped)).any()
    assert kept.suspects.size and not np.isin(kept.indices, kept.suspects).any()


def _tiny():
    """Two tight classes in 3-d, and two rows of class 0's cluster labelled 1."""
    rng = np.random.default_rng(3)
    a = np.array([2.0, 0.3, 0.0]) + 0.8 * rng.standard_normal((9, 3))
    b = np.array([0.3, 2.0, 0.0]) + 0.8 * rng.standard_normal((9, 3))
    X = np.vstack([a, b])
    X[2] = a.mean(axis=0)  # a mislabeled row at the centre of class 0: the best pick if it could be picked
    y = np.array([0] * 9 + [1] * 9)
    y[[2, 5]] = 1
    return X, y


def _greedy(S, cands, k, ground):
    """Naive greedy over ``cands`` for facility location on the rows ``ground``."""
    cur = np.zeros(len(ground))
    picks = []
    for _ in range(k):
        gains = [np.maximum(S[j, ground] - cur, 0).sum() if j not in picks else -1 for j in cands]
        j = cands[int(np.argmax(gains))]
        picks.append(j)
        cur = np.maximum(cur, S[j, ground])
    return picks, cur.sum()


def test_suspects_are_covered_never_picked_brute_force():
    X, y = _tiny()
    sel = select(X, n_select=4, y=y, n_neighbors=None, label_filter="knn", optimizer="naive_greedy")
    assert set(sel.suspects.tolist()) == {2, 5}
    S = dense_similarity(X, "cosine")
    cands = [j for j in range(18) if j not in (2, 5)]
    picks, value = _greedy(S, cands, 4, np.arange(18))
    assert sel.indices.tolist() == picks
    assert sel.objective == pytest.approx(value, rel=1e-6)
    assert 2 in _greedy(S, list(range(18)), 4, np.arange(18))[0]  # unfiltered, row 2 would be picked
    # the suspects count in the objective: without them in the ground set the value is smaller
    assert S[np.ix_(picks, [2, 5])].max(axis=0).sum() > 0.5
    assert value - _greedy(S, picks, 4, np.array(cands))[1] == pytest.approx(S[np.ix_(picks, [2, 5])].max(0).sum())


def test_suspects_covered_within_classes_brute_force():
    X, y = _tiny()
    sel = select(X, n_select=4, y=y, class_budget="equal", n_neighbors=None, label_filter="knn",
                 optimizer="naive_greedy")
    S = dense_similarity(X, "cosine")
    total, picks = 0.0, []
    for c in (0, 1):
        rows = np.flatnonzero(y == c)
        cands = [int(j) for j in rows if j not in (2, 5)]
        p, v = _greedy(S, cands, 2, rows)
        total += v
        picks += p
    assert sorted(sel.indices.tolist()) == sorted(picks)
    assert sel.objective == pytest.approx(total, rel=1e-6)
    assert not np.isin(sel.indices, [2, 5]).any()


def test_a_class_of_suspects_keeps_its_least_suspect_rows():
    X, y = _tiny()
    rng = np.random.default_rng(0)
    X = np.vstack([X, np.array([2.0, 0.3, 0.0]) + 0.3 * rng.standard_normal((3, 3))])  # class 2 inside class 0
    y = np.concatenate([y, [2, 2, 2]])
    found = find_label_suspects(X, y, method="knn")
    assert {18, 19, 20} <= set(found.suspects.tolist())
    least = 18 + np.lexsort((np.arange(3), -found.score[18:21]))
    for n_select, budget in ((6, 2), (3, 1)):  # equal budgets: class 2 keeps its share, its least suspect rows
        sel = select(X, n_select=n_select, y=y, class_budget="equal", n_neighbors=None, label_filter="knn")
        assert allocate_budget(np.bincount(y), n_select, "equal")[2] == budget
        assert sorted(sel.indices[y[sel.indices] == 2].tolist()) == sorted(least[:budget].tolist())
        np.testing.assert_array_equal(np.bincount(y[sel.indices], minlength=3),
                                      allocate_budget(np.bincount(y), n_select, "equal"))


def test_guards_hand_computed():
    cand = np.array([True, False, False, True, False])
    score = np.array([9.0, 0.5, 0.7, 9.0, 0.7])
    assert guard_candidates(cand, score, 2).tolist() == cand.tolist()
    assert guard_candidates(cand, score, 3).tolist() == [True, False, True, True, False]  # 0.7: lower index first
    assert guard_candidates(cand, score, 5).all()


def test_switch_off_is_the_selection_without_the_filter():
    t = _noisy(2)
    X, y = t.X, t.y
    off = select(X, n_select=150, y=y, label_filter=None, random_state=0)
    unlabelled = select(X, n_select=150, random_state=0)
    np.testing.assert_array_equal(off.indices, unlabelled.indices)
    np.testing.assert_array_equal(off.weights, unlabelled.weights)
    np.testing.assert_array_equal(off.gains, unlabelled.gains)
    assert off.objective == unlabelled.objective and "label_filter" not in off.meta
    # with class budgets: each class selected on its own, as before the filter existed
    sel = select(X, n_select=150, y=y, class_budget="equal", label_filter=None, random_state=0)
    sizes = np.bincount(y)
    budgets = allocate_budget(sizes, 150, "equal")
    parts = []
    for c, b in enumerate(budgets):
        rows = np.flatnonzero(y == c)
        inner = SubmodularSelector(b, random_state=0, label_filter=None).fit(X[rows])
        parts.append((rows[inner.selection_.indices], inner.selection_.gains))
    idx = np.concatenate([p[0] for p in parts])
    gains = np.concatenate([p[1] for p in parts])
    order = np.argsort(-gains, kind="stable")
    np.testing.assert_array_equal(sel.indices, idx[order])
    np.testing.assert_array_equal(sel.gains, gains[order])


@pytest.mark.parametrize("opt", [NaiveGreedy(), LazyGreedy(), StochasticGreedy(epsilon=0.1)])
def test_optimizers_pick_only_candidates(opt):
    X = np.random.default_rng(0).standard_normal((300, 6))
    S = dense_similarity(X, "cosine")
    cands = np.arange(1, 300, 3)
    f = FacilityLocation(S)
    idx, _ = opt.maximize(f, 40, rng=0, candidates=cands)
    assert idx.size == 40 and np.isin(idx, cands).all()
    if not isinstance(opt, StochasticGreedy):  # lazy == naive under the restriction too
        g = FacilityLocation(S)
        np.testing.assert_array_equal(NaiveGreedy().maximize(g, 40, candidates=cands)[0], idx)
    with pytest.raises(ValidationError, match="n_select"):
        opt.maximize(FacilityLocation(S), 101, rng=0, candidates=cands)
    with pytest.raises(ValidationError, match=r"candidates must be in \[0, 299\]; got 300"):
        opt.maximize(FacilityLocation(S), 4, rng=0, candidates=[1, 300])


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_suspects_round_trip_and_old_files_load(tmp_path, suffix):
    t = _noisy(0)
    sel = select(t.X, fraction=0.05, y=t.y, class_budget="equal", random_state=0)
    path = tmp_path / f"s{suffix}"
    sel.save(path)
    back = Selection.load(path)
    assert back.equals(sel)
    np.testing.assert_array_equal(back.suspects, sel.suspects)
    old = Selection([3, 1], [2.0, 1.0], [0.5, 0.1], meta={"method": "random"})  # no suspects, as files were
    old.save(tmp_path / f"old{suffix}")
    again = Selection.load(tmp_path / f"old{suffix}")
    assert again.suspects is None and again.equals(old)


def test_old_npz_written_without_the_suspects_array_loads(tmp_path):
    path = tmp_path / "old.npz"
    meta = json.dumps({"format_version": 1, "method": "submodular", "n_samples": 10})
    np.savez(path, indices=np.array([4, 2]), weights=np.array([6.0, 4.0]), gains=np.array([1.0, 0.5]),
             objective=np.array(1.5), meta=np.array(meta))
    sel = Selection.load(path)
    assert sel.suspects is None and sel.indices.tolist() == [4, 2]


def test_inspect_shows_the_suspects(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    sel = Selection([0, 5], [3.0, 3.0], [1.0, 0.5], meta={"method": "submodular", "n_samples": 20},
                    suspects=np.arange(7, 19))
    sel.save(tmp_path / "s.npz")
    res = CliRunner().invoke(app, ["inspect", str(tmp_path / "s.npz")])
    assert res.exit_code == 0, res.output
    assert "label suspects" in res.stdout and "12 (not picked): 7, 8, 9" in res.stdout and "..." in res.stdout
    res = CliRunner().invoke(app, ["inspect", "--json", str(tmp_path / "s.npz")])
    d = json.loads(res.stdout)
    assert d["n_suspects"] == 12 and d["suspects_head"] == list(range(7, 17))


def test_select_cli_prints_the_count(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    t = _noisy(0)
    np.save(tmp_path / "X.npy", t.X)
    np.save(tmp_path / "y.npy", t.y)
    args = ["select", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "--fraction", "0.1",
            "--class-budget", "equal", "-o", str(tmp_path / "s.npz"), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["label_suspects"] == Selection.load(tmp_path / "s.npz").suspects.size > 0
    res = CliRunner().invoke(app, args + ["--label-filter", "none"])
    assert json.loads(res.stdout)["label_suspects"] is None
    res = CliRunner().invoke(app, args + ["--label-filter", "knm"])
    assert res.exit_code == 1 and res.stderr.count("Error:") == 1 and "did you mean 'knn'" in res.stderr


def test_bad_input():
    X, y = _tiny()
    with pytest.raises(UnknownNameError, match=r"label_filter='prob' is not known.*did you mean 'probe'"):
        select(X, n_select=4, y=y, label_filter="prob")
    for bad in (0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValidationError, match=rf"label_filter_threshold must be in \(0.0, 1.0\]; got {bad}"):
            select(X, n_select=4, y=y, label_filter_threshold=bad)
    with pytest.raises(ValidationError, match="label_filter_threshold=0.5 applies to a label filter"):
        select(X, n_select=4, y=y, label_filter=None, label_filter_threshold=0.5)
    with pytest.raises(ValidationError, match="label_filter='knn' needs labels y"):
        select(X, n_select=4, label_filter="knn")
    with pytest.raises(ValidationError, match="label_filter applies to the submodular and random"):
        select(X, n_select=4, y=y, method="k_center_greedy", label_filter="knn")
    with pytest.raises(ValidationError, match="needs embeddings"):
        select(dense_similarity(X, "cosine"), n_select=4, y=y, metric="precomputed", label_filter="probe")
    with pytest.raises(UnknownNameError, match="did you mean 'cleanlab'"):
        find_label_suspects(X, y, method="cleanlb")
    # no labels, "auto": nothing to filter, the plain selection
    assert select(X, n_select=4).suspects is None


def test_precomputed_similarity_uses_knn_votes():
    X, y = _tiny()
    sel = select(dense_similarity(X, "cosine"), n_select=4, y=y, metric="precomputed")
    assert sel.meta["label_filter"]["method"] == "knn" and set(sel.suspects.tolist()) == {2, 5}


def test_wrapper_without_candidates_rejects_an_explicit_filter():
    from coreset.selectors import Deduplicated

    X, y = _tiny()
    sel = Deduplicated(SubmodularSelector(4, label_filter="knn"), threshold=0.99)
    with pytest.raises(ValidationError, match="does not apply"):
        sel.fit(X, y)
    auto = ClassBalanced(SubmodularSelector(4), policy="equal").fit(X, y)
    assert auto.selection_.suspects is not None


def test_cleanlab_backend_is_find_label_issues_on_the_probe_probabilities():
    from cleanlab.filter import find_label_issues

    from coreset.selectors._label_noise import label_probabilities

    t = _noisy(0)
    P, classes = label_probabilities(t.X, t.y)
    assert P.shape == (t.y.size, 6) and np.allclose(P.sum(axis=1), 1.0) and classes.tolist() == list(range(6))
    found = find_label_suspects(t.X, t.y, method="cleanlab")
    # n_jobs=1: no forked pool in a threaded test process (it can hang; see _cleanlab_issues)
    np.testing.assert_array_equal(found.suspects, np.flatnonzero(find_label_issues(t.y, P, n_jobs=1)))
    p, r = _precision_recall(found.suspects, t.flipped)
    assert p >= 0.8 and r >= 0.6, (p, r)  # cleanlab trades recall for precision (docs/label-noise.md)


def test_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, coreset; coreset.find_label_suspects; "
            "print(any(m in sys.modules for m in ('torch', 'faiss', 'cleanlab', 'numba')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------- the adaptive rule (label_filter="adaptive")


def _ranks(counts):
    """Rows whose own label the probe ranks 1, 2, ...: ``counts[r - 1]`` rows at rank r."""
    return np.repeat(np.arange(1, len(counts) + 1), counts)


def test_noise_rate_estimate_hand_computed():
    from coreset.selectors._noise_rate import estimate_noise_rate

    tail = np.array([512, 256, 128, 64, 32, 16, 8, 4, 2])  # out-ranked clean rows, halving per rank
    # a geometric tail alone: no flipped label
    assert estimate_noise_rate(_ranks([5000, *tail]), 10) == pytest.approx(0.0, abs=1e-9)
    # the tail plus a floor of 10 rows under each rank 2..10: 90 flipped rows
    r = _ranks([5000, *(tail + 10)])
    assert estimate_noise_rate(r, 10) == pytest.approx(90 / r.size, rel=1e-6)
    # a rank-2 pile smaller than rank 3 bends the fit over ranks 2..10 (floor 0); the fit over 3..10 finds it
    from coreset.selectors._noise_rate import _floor_fit

    bent = np.array([100, *(tail[:-1] * 2 + 10)])  # ranks 2..10: 100, then 1034, 522, ... a tail plus 10
    assert _floor_fit(bent.astype(float)) == 0.0 and _floor_fit(bent[1:].astype(float)) == pytest.approx(10.0)
    r = _ranks([5000, *bent])
    assert estimate_noise_rate(r, 10) == pytest.approx(90 / r.size, rel=1e-6)
    # a floor alone (symmetric noise, a perfect probe): every out-ranked row
    r = _ranks([900, *([10] * 9)])
    assert estimate_noise_rate(r, 10) == pytest.approx(90 / 990, rel=1e-9)
    # nothing out-ranked; two classes (one other rank: every out-ranked row counts)
    assert estimate_noise_rate(_ranks([100]), 10) == 0.0
    assert estimate_noise_rate(_ranks([90, 10]), 2) == pytest.approx(0.1)


def test_cap_keeps_the_worst_ranked_then_lowest_scored():
    from coreset.selectors._noise_rate import cap_suspects, suspect_cap

    flag = np.array([1, 1, 0, 1, 1, 1], bool)
    rank = np.array([2, 5, 9, 2, 5, 3])
    score = np.array([0.1, 0.5, 0.0, 0.05, 0.2, 0.9])
    assert np.flatnonzero(cap_suspects(flag, rank, score, 3)).tolist() == [1, 4, 5]  # ranks 5, 5, 3
    assert np.flatnonzero(cap_suspects(flag, rank, score, 4)).tolist() == [1, 3, 4, 5]  # then score 0.05
    assert cap_suspects(flag, rank, score, 5) is flag and not cap_suspects(flag, rank, score, 0).any()
    assert suspect_cap(0.0, 1000) == 0 and suspect_cap(0.009, 10**6) == 0  # below 1%: no suspect at all
    assert suspect_cap(0.1, 1000) == 360  # 3 (F + 2 sqrt F), F = 100 estimated flips
    assert suspect_cap(0.02, 1600) == 130  # F = 32: 32 - 2 sqrt 32 = 20.7 >= 16 rows; 3 (32 + 11.31) = 129.9
    assert suspect_cap(0.015, 1600) == 0  # F = 24: 24 - 9.8 = 14.2 < 16 rows (1%): no evidence of noise
    assert suspect_cap(0.014, 224) == 0  # 3 rows of 224: none


def _clean_overlapping(seed):
    """1,500 x 16, 6 Zipf classes whose modes overlap (class_sep 0.1): clean labels, yet the probe
    out-votes 37-83 correctly labelled rows (seeds 0-2)."""
    return make_zipf(1500, 16, 6, n_modes=3, class_sep=0.1, mode_spread=0.4, random_state=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_labels_give_next_to_no_suspects(seed):
    d = _clean_overlapping(seed)
    every = find_label_suspects(d.X, d.y, method="probe")  # every out-voted row (the rule before)
    auto = find_label_suspects(d.X, d.y, method="adaptive")
    assert every.suspects.size >= 30
    assert auto.noise_rate < 0.005 and auto.suspects.size == 0, (auto.noise_rate, auto.suspects.size)
    assert set(auto.suspects) <= set(every.suspects)
    np.testing.assert_array_equal(auto.score, every.score)


def test_clean_labels_select_what_the_filter_off_selects():
    d = _clean_overlapping(2)
    sel = select(d.X, fraction=0.1, y=d.y, class_budget="equal", random_state=0, label_filter="adaptive")
    off = select(d.X, fraction=0.1, y=d.y, class_budget="equal", random_state=0, label_filter=None)
    assert sel.suspects.size == 0 and sel.meta["label_filter"]["noise_rate"] == pytest.approx(0.0, abs=1e-3)
    np.testing.assert_array_equal(sel.indices, off.indices)
    np.testing.assert_array_equal(sel.weights, off.weights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_labels_keep_every_out_voted_row(seed):
    """10% symmetric noise on the same overlapping classes: the estimate reads the noise, the cap
    does not bind, and the suspects are the old rule's (recall >= 0.97)."""
    d = _clean_overlapping(seed)
    t = corrupt_training(d.X, d.y, label_noise=0.1, random_state=seed)
    auto = find_label_suspects(t.X, t.y, method="adaptive")
    every = find_label_suspects(t.X, t.y, method="probe")
    assert 0.05 <= auto.noise_rate <= 0.15, auto.noise_rate
    np.testing.assert_array_equal(auto.suspects, every.suspects)
    assert _precision_recall(auto.suspects, t.flipped)[1] >= 0.97


def test_the_default_is_the_probe_and_adaptive_is_a_switch():
    """``auto`` (the default) flags every out-voted row, as ``probe`` does: the
    adaptive cap is opt-in, because it reads noise that flips labels to a
    confusable class as none (docs/label-noise.md, "The adaptive rule")."""
    d = _clean_overlapping(0)
    t = corrupt_training(d.X, d.y, label_noise=0.1, noise_model="confusable", random_state=0)
    default = find_label_suspects(t.X, t.y)
    probe = find_label_suspects(t.X, t.y, method="probe")
    np.testing.assert_array_equal(default.suspects, probe.suspects)
    assert default.noise_rate is None and default.method == "probe"
    assert find_label_suspects(t.X, t.y, method="adaptive").noise_rate is not None


def test_adaptive_needs_embeddings():
    """The adaptive rule runs on the probe: a precomputed similarity is refused, naming it."""
    X, y = np.random.default_rng(0).standard_normal((60, 4)), np.repeat([0, 1, 2], 20)
    S = np.maximum(X @ X.T, 0)
    with pytest.raises(ValidationError, match="label_filter='adaptive' needs embeddings"):
        find_label_suspects(S, y, method="adaptive", metric="precomputed")
