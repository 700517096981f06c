"""Near-duplicate removal: DedupSelector, Deduplicated and ``coreset dedup``.

Planted exact and near duplicates are found (recall) and nothing else is
merged (precision); on small inputs the groups equal a brute-force oracle
(every pair >= threshold, components by union-find); weights sum to N."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import coreset
from coreset import Selection, ValidationError
from coreset.cli import app
from coreset.selectors import (
    ClassBalanced,
    DedupSelector,
    Deduplicated,
    KCenterSelector,
    SubmodularSelector,
)
from coreset.selectors import _dedup_groups
from coreset.selectors._dedup_groups import distinct_rows, find_duplicate_groups

N_BASE, D = 5000, 64


def planted(n_base=N_BASE, d=D, seed=0):
    """Gaussian clusters (nearest-neighbour cosine well below 0.9) plus planted
    groups: exact copies, noisy copies (cosine >= 0.99 to the original), mixed,
    and groups larger than n_neighbors=16. Returns (X, truth): truth[i] is the
    base point row i copies (itself for base points)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((40, d))
    base = centers[rng.integers(0, 40, n_base)] + rng.standard_normal((n_base, d))
    sizes = np.concatenate([rng.integers(1, 5, 300), [40, 30, 25, 20, 18]])  # copies per planted group
    src = rng.choice(n_base, size=sizes.size, replace=False)
    parent = np.repeat(src, sizes)
    copies = base[parent].copy()
    noisy = rng.random(parent.size) < 0.6
    noise = rng.standard_normal((int(noisy.sum()), d))
    noise *= 0.07 * np.linalg.norm(base[parent[noisy]], axis=1, keepdims=True) / np.sqrt(d)
    copies[noisy] += noise
    X = np.concatenate([base, copies]).astype(np.float32)
    truth = np.concatenate([np.arange(n_base), parent])
    perm = rng.permutation(X.shape[0])
    return X[perm], truth[perm]


@pytest.fixture(scope="module")
def data():
    return planted()


def recall_precision(labels, truth):
    """recall: share of planted copies in their original's group; false_merges:
    groups holding points of two different base points."""
    _, t = np.unique(truth, return_inverse=True)
    pairs = np.unique(np.stack([t, labels]), axis=1)
    groups_per_truth = np.bincount(pairs[0])
    truths_per_group = np.bincount(pairs[1])
    n_copies = truth.size - groups_per_truth.size
    recall = 1 - (groups_per_truth - 1).sum() / n_copies
    return recall, int((truths_per_group > 1).sum())


def oracle_groups(X, threshold, metric="cosine", gamma=None):
    """Brute force: every pair with similarity >= threshold, components by union-find."""
    X = X.astype(np.float64)
    if metric == "cosine":
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
        S = U @ U.T
    else:
        d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
        S = np.exp(-gamma * d2)
    parent = list(range(X.shape[0]))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in zip(*np.nonzero(S >= threshold)):
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = [find(i) for i in range(X.shape[0])]
    return as_groups(np.asarray(roots))


def as_groups(labels):
    out = {}
    for i, g in enumerate(labels):
        out.setdefault(int(g), []).append(i)
    return {frozenset(v) for v in out.values()}


# ------------------------------------------------------------ planted data


@pytest.mark.parametrize("exact", [True, False])
def test_planted_duplicates_are_found_and_nothing_else_is_merged(data, exact):
    X, truth = data
    est = DedupSelector(0.95, exact=exact, random_state=0).fit(X)
    recall, false_merges = recall_precision(est.labels_, truth)
    assert recall >= 0.99
    if exact:
        assert recall == 1.0
    assert false_merges == 0  # precision: no two distinct originals share a group
    sel = est.selection_
    assert len(sel) == N_BASE + round((1 - recall) * (truth.size - N_BASE))
    assert sel.weights.sum() == X.shape[0]
    assert np.array_equal(sel.weights, np.bincount(est.labels_))
    assert sel.meta["graph"]["exact"] is exact
    # every kept point stands for its own group
    assert np.array_equal(est.labels_[sel.indices], np.arange(len(sel)))


def test_selection_is_a_normal_selection(data, tmp_path):
    X, truth = data
    y = truth % 7
    sel = DedupSelector(0.95, random_state=0).fit(X, y).selection_
    assert np.all(np.diff(sel.indices) > 0)  # representatives in row order
    assert np.isnan(sel.gains).all() and np.isnan(sel.objective)
    assert np.array_equal(sel.labels, y[sel.indices])
    m = sel.meta
    assert m["method"] == "dedup" and m["threshold"] == 0.95
    assert m["n_removed"] == X.shape[0] - len(sel) and m["n_samples"] == X.shape[0]
    assert m["n_groups"] == 305 and m["largest_group"] == 41
    assert m["n_exact_duplicates"] > 0 and m["n_select"] == len(sel)
    sel.save(tmp_path / "d.npz")
    assert Selection.load(tmp_path / "d.npz").equals(sel)


def test_exact_copies_group_beyond_n_neighbors():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 8)).astype(np.float32)
    X = np.concatenate([X, np.repeat(X[:1], 100, 0), np.repeat(X[5:6], 50, 0)])
    X[-1] = np.where(X[-1] == 0, -0.0, X[-1])  # -0.0 and 0.0 are one value
    for exact in (True, False):
        sel = DedupSelector(0.999, n_neighbors=2, exact=exact).fit(X).selection_
        assert len(sel) == 300
        assert sel.weights[list(sel.indices).index(0)] == 101
        assert sel.weights[list(sel.indices).index(5)] == 51


def test_negative_zero_is_zero():
    X = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 0.0]], np.float32)
    first, inv = distinct_rows(X)
    assert first.tolist() == [0, 2] and inv.tolist() == [0, 0, 1]


def test_hash_collisions_are_split_exactly(monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 4)).astype(np.float32)
    X = np.concatenate([X, X[[3, 3, 7]]])
    expected = distinct_rows(X)
    monkeypatch.setattr(_dedup_groups, "_row_hashes", lambda X: np.zeros(X.shape[0], np.uint64))
    first, inv = distinct_rows(X)  # every row collides
    assert np.array_equal(first, expected[0]) and np.array_equal(inv, expected[1])
    assert first.size == 50 and inv[50] == inv[51] == inv[3] and inv[52] == inv[7]


# ---------------------------------------------------------- oracle (small)


def small_case(seed=3):
    """Tight groups of up to 8 near copies, chains (a~b, b~c, a and c apart)
    and 30 exact copies of one row, in 8-d."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((250, 8))
    rows = [base]
    for i in range(20):  # near copies at cosine ~0.97-0.995
        k = rng.integers(1, 8)
        rows.append(base[i] + rng.standard_normal((k, 8)) * rng.uniform(0.05, 0.2) * np.linalg.norm(base[i]) / 3)
    for i in range(20, 26):  # chains: steps of ~9 degrees, threshold cos 0.97 (~14 degrees)
        a, b = base[i], base[i + 100]
        b = b - (b @ a) / (a @ a) * a
        b *= np.linalg.norm(a) / np.linalg.norm(b)
        angles = np.deg2rad(9.0) * np.arange(1, 4)
        rows.append(np.cos(angles)[:, None] * a + np.sin(angles)[:, None] * b)
    rows.append(np.repeat(base[40:41], 30, 0))
    X = np.concatenate(rows).astype(np.float32)
    return X[rng.permutation(X.shape[0])]


@pytest.mark.parametrize("exact", [True, False])
def test_groups_equal_the_brute_force_oracle_cosine(exact):
    X = small_case()
    est = DedupSelector(0.97, exact=exact, random_state=0).fit(X)
    truth = oracle_groups(X, 0.97)
    assert as_groups(est.labels_) == truth
    assert any(len(g) >= 30 for g in truth) and sum(len(g) > 1 for g in truth) >= 25


def test_groups_equal_the_brute_force_oracle_euclidean():
    X = small_case(4)
    est = DedupSelector(0.99, metric="euclidean").fit(X)
    gamma = est.selection_.meta["gamma"]
    assert gamma > 0
    assert as_groups(est.labels_) == oracle_groups(X, 0.99, "euclidean", gamma)


def test_chains_are_transitive():
    X = np.array([[np.cos(t), np.sin(t)] for t in np.deg2rad([0, 10, 20, 30, 90])], np.float32)
    t = float(np.cos(np.deg2rad(12)))  # neighbours 10 degrees apart pass, 20 degrees do not
    est = DedupSelector(t).fit(X)
    assert est.labels_.tolist() == [0, 0, 0, 0, 1]  # one chain: 0 and 30 degrees end up together
    assert float(X[0] @ X[3]) < t


def test_representative_has_the_highest_mean_similarity_ties_to_lowest_index():
    X = small_case(5)
    est = DedupSelector(0.97).fit(X)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for g, rep in enumerate(est.selection_.indices):
        members = np.flatnonzero(est.labels_ == g)
        mean_sim = (U[members] @ U[members].T).mean(axis=1)
        best = members[np.isclose(mean_sim, mean_sim.max(), rtol=0, atol=1e-6)]
        assert rep in best
        same = members[(X[members] == X[rep]).all(axis=1)]
        assert rep == same.min()  # among identical rows: the lowest index


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_two_point_groups_keep_the_lower_index(metric):
    """Both members of a pair have the same mean similarity (up to rounding): the lower index is kept."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((40, 6))
    X = np.concatenate([X, X[:15] + 1e-3 * rng.standard_normal((15, 6))])
    sel = DedupSelector(0.999, metric=metric).fit(X).selection_
    assert sel.indices.tolist() == list(range(40))
    assert sel.weights.tolist() == [2.0] * 15 + [1.0] * 25


def test_partitioned_search_matches_exact_with_more_cells():
    X, truth = planted(3000, 32, seed=9)
    exact = DedupSelector(0.95, exact=True).fit(X)
    approx = DedupSelector(0.95, exact=False, n_probe=3, random_state=1).fit(X)
    assert np.array_equal(exact.labels_, approx.labels_)


def test_torch_products_match_numpy():
    pytest.importorskip("torch")
    from coreset.selectors._dedup_search import PairSpace, exact_pairs

    X = small_case(6)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for metric, V, gamma in (("cosine", U, None), ("euclidean", X, 0.05)):
        a = exact_pairs(PairSpace(V, metric, 0.97, 16, gamma=gamma))
        b = exact_pairs(PairSpace(V, metric, 0.97, 16, gamma=gamma, torch_device="cpu"))
        key_a, key_b = set(zip(a[0].tolist(), a[1].tolist())), set(zip(b[0].tolist(), b[1].tolist()))
        assert key_a == key_b and len(key_a) > 0


def test_same_seed_same_result(data):
    X, _ = data
    a = DedupSelector(0.95, exact=False, random_state=7).fit(X).selection_
    b = DedupSelector(0.95, exact=False, random_state=7).fit(X).selection_
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.weights, b.weights)


def test_all_identical_rows_are_one_group():
    X = np.ones((20, 3), np.float32)
    sel = DedupSelector().fit(X).selection_
    assert sel.indices.tolist() == [0] and sel.weights.tolist() == [20.0]


def test_progress_reaches_n(data):
    X, _ = data
    seen = []
    DedupSelector(0.95).fit(X, callback=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen[-1] == ("graph", X.shape[0], X.shape[0])


# ----------------------------------------------------------- composition


def test_deduplicated_submodular_never_picks_two_copies(data):
    X, truth = data
    est = Deduplicated(SubmodularSelector(n_select=500, random_state=0), 0.95).fit(X)
    sel = est.selection_
    assert len(sel) == 500
    assert np.unique(truth[sel.indices]).size == 500  # never two copies of one vector
    assert sel.weights.sum() == X.shape[0]
    reps = DedupSelector(0.95).fit(X)
    assert np.isin(sel.indices, reps.selection_.indices).all()
    sizes = reps.selection_.weights[np.searchsorted(reps.selection_.indices, sel.indices)]
    assert np.all(sel.weights >= sizes)  # a pick stands at least for its own group
    assert sel.meta["method"] == "submodular" and sel.meta["dedup_threshold"] == 0.95
    assert sel.meta["dedup_n_removed"] == reps.selection_.meta["n_removed"]


def test_deduplicated_with_other_selectors_and_class_budgets(data):
    X, truth = data
    y = truth % 5
    kc = Deduplicated(KCenterSelector(fraction=0.05, random_state=0)).fit(X).selection_
    assert len(kc) == round(0.05 * X.shape[0]) and np.unique(truth[kc.indices]).size == len(kc)
    assert kc.weights.sum() == X.shape[0]
    cb = Deduplicated(ClassBalanced(SubmodularSelector(random_state=0)), n_select=300).fit(X, y).selection_
    assert np.unique(truth[cb.indices]).size == 300 and cb.weights.sum() == X.shape[0]


def test_deduplicated_refuses_more_points_than_groups(data):
    X, _ = data
    with pytest.raises(ValidationError, match=r"n_select=5500 but only 5000 of 5[0-9]+ points remain"):
        Deduplicated(SubmodularSelector(n_select=5500)).fit(X)


def test_select_function_and_class_budget_wrapper():
    X = small_case()
    sel = coreset.select(X, method="dedup", threshold=0.97)
    assert sel.meta["method"] == "dedup" and sel.weights.sum() == X.shape[0]
    with pytest.raises(ValidationError, match="Deduplicated"):
        ClassBalanced(DedupSelector(), n_select=10).fit(X, np.arange(X.shape[0]) % 2)


def test_a_size_means_dedup_then_facility_location(data):
    """n_select / fraction (e.g. coreset.select(X, k, method="dedup")) reduce the
    representatives further, as Deduplicated(SubmodularSelector(k)) does."""
    X, truth = data
    sel = coreset.select(X, 300, method="dedup", threshold=0.95, random_state=0)
    ref = Deduplicated(SubmodularSelector(n_select=300, random_state=0), 0.95, random_state=0).fit(X).selection_
    assert np.array_equal(sel.indices, ref.indices) and np.array_equal(sel.weights, ref.weights)
    assert np.unique(truth[sel.indices]).size == 300 and sel.weights.sum() == X.shape[0]
    assert sel.meta["method"] == "dedup" and sel.meta["objective_name"] == "facility_location"
    assert sel.meta["dedup_n_removed"] == X.shape[0] - N_BASE
    frac = DedupSelector(0.95, fraction=0.02, random_state=0).fit(X).selection_
    assert len(frac) == round(0.02 * X.shape[0])
    with pytest.raises(ValidationError, match="costs= applies to method='dedup' only with n_select"):
        DedupSelector().fit(X, costs=np.ones(X.shape[0]))


# ------------------------------------------------------------ validation


@pytest.mark.parametrize("value, shown", [
    (0, "got 0.0"), (-0.5, "got -0.5"), (1.5, "got 1.5"), (float("nan"), "got nan"), (float("inf"), "got inf"),
    ("0.9", "got '0.9'"), (True, "got True"), (None, "got None"),
])
def test_bad_threshold_is_named_with_its_value(value, shown):
    X = small_case()
    with pytest.raises(ValidationError, match="threshold must be") as exc:
        DedupSelector(value).fit(X)
    assert shown in str(exc.value) and "(0, 1]" in str(exc.value)
    with pytest.raises(ValidationError, match="threshold must be"):
        find_duplicate_groups(X, value)


@pytest.mark.parametrize("params, fragment", [
    ({"metric": "inner_product"}, "metric must be one of cosine, euclidean"),
    ({"n_neighbors": 0}, "n_neighbors must be in [1, inf]; got 0"),
    ({"n_probe": 0}, "n_probe must be in [1, inf]; got 0"),
    ({"exact": "yes"}, "exact must be None"),
    ({"device": "gpu"}, "device must be"),
])
def test_bad_parameters_are_named(params, fragment):
    with pytest.raises(ValidationError) as exc:
        DedupSelector(**params).fit(small_case())
    assert fragment in str(exc.value)


def test_zero_row_under_cosine_is_named():
    X = small_case()
    X[17] = 0
    with pytest.raises(ValidationError, match="row 17"):
        DedupSelector().fit(X)


# ------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture()
def files(tmp_path):
    X, truth = planted(1500, 16, seed=11)
    np.save(tmp_path / "emb.npy", X)
    np.savetxt(tmp_path / "labels.txt", truth % 3, fmt="%d")
    return X, truth, tmp_path


def test_cli_end_to_end(runner, files):
    X, truth, tmp = files
    res = runner.invoke(app, ["dedup", str(tmp / "emb.npy"), "--threshold", "0.95", "--labels", str(tmp / "labels.txt"),
                              "-o", str(tmp / "kept.npz")])
    assert res.exit_code == 0, res.output
    for word in ("kept", "removed", "groups", "seconds", "1500 of"):
        assert word in res.stdout
    sel = Selection.load(tmp / "kept.npz")
    ref = DedupSelector(0.95, random_state=0).fit(X).selection_
    assert np.array_equal(sel.indices, ref.indices) and np.array_equal(sel.weights, ref.weights)
    assert sel.weights.sum() == X.shape[0] and np.array_equal(sel.labels, (truth % 3)[sel.indices])
    assert sel.meta["input"] == "emb.npy" and sel.meta["input_fingerprint"].startswith("sha256:")


def test_cli_json_and_txt_output(runner, files):
    X, _, tmp = files
    res = runner.invoke(app, ["dedup", str(tmp / "emb.npy"), "-t", "0.95", "-o", str(tmp / "kept.txt"), "--json",
                              "--metric", "cosine", "--n-neighbors", "8", "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["n_samples"] == X.shape[0] and s["kept"] + s["removed"] == X.shape[0]
    assert s["groups"] > 0 and s["n_neighbors"] == 8 and s["seconds"] > 0
    assert np.loadtxt(tmp / "kept.txt", dtype=np.int64).size == s["kept"]


@pytest.mark.parametrize("args, fragments", [
    (["--threshold", "1.5"], ["threshold", "1.5"]),
    (["--threshold", "0"], ["threshold", "got 0.0"]),
    (["--metric", "inner_product"], ["metric", "inner_product"]),
    (["--device", "gpu0"], ["device", "gpu0"]),
])
def test_cli_bad_values_give_one_error_line(runner, files, args, fragments):
    _, _, tmp = files
    res = runner.invoke(app, ["dedup", str(tmp / "emb.npy"), "-o", str(tmp / "kept.npz"), *args])
    assert res.exit_code == 1, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and res.stdout == ""
    for f in fragments:
        assert f in lines[0]
    assert not (tmp / "kept.npz").exists()


def test_cli_bad_input_file(runner, tmp_path):
    res = runner.invoke(app, ["dedup", str(tmp_path / "nope.npy"), "-o", str(tmp_path / "o.npz")])
    assert res.exit_code == 1 and res.stderr.startswith("Error: ") and "nope.npy" in res.stderr
    Xn = np.ones((10, 3), np.float32)
    Xn[4, 1] = np.nan
    np.save(tmp_path / "nan.npy", Xn)
    res = runner.invoke(app, ["dedup", str(tmp_path / "nan.npy"), "-o", str(tmp_path / "o.npz")])
    assert res.exit_code == 1 and "finite" in res.stderr and "row 4" in res.stderr
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("args", [
    ["--threshold", "abc"],
    ["-o", "OUT.h5"],
    ["-o", "IN"],
    ["--no-such-option"],
    ["--n-neighbors", "2.5"],
])
def test_cli_usage_errors_exit_2(runner, files, args):
    _, _, tmp = files
    inp = str(tmp / "emb.npy")
    before = (tmp / "emb.npy").read_bytes()
    args = [inp if a == "IN" else str(tmp / "o.h5") if a == "OUT.h5" else a for a in args]
    cmd = ["dedup", inp, *args] if "-o" in args else ["dedup", inp, "-o", str(tmp / "o.npz"), *args]
    res = runner.invoke(app, cmd)
    assert res.exit_code == 2, res.output
    assert res.stdout == "" and not (tmp / "o.npz").exists()
    assert (tmp / "emb.npy").read_bytes() == before


def test_cli_reference_documents_dedup():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "### `coreset dedup`" in text and "`--threshold`" in text
