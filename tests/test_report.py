"""``coreset report`` without a browser: the knee rule against hand-computed
cases and its closed form, per-class coverage against brute force, the PNG
encoder against Pillow's decoder, the page's sampling and contents, and bad
input (one ``Error:`` line, exit 1, nothing written). The page in a real
browser: tests/test_report_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import coreset
from coreset import Selection, ValidationError
from coreset.cli import app
from coreset.exceptions import OutputPathError
from coreset.report import build_report, knee, knee_of_gains
from coreset.report._compute import coverage, represented_rows
from coreset.report._media import png_bytes, to_uint8_image

N, D, C = 1500, 16, 6


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    sizes = np.array([600, 400, 250, 150, 80, 20])
    y = np.repeat(np.arange(C), sizes)
    centers = rng.standard_normal((C, D)) * 3
    X = (centers[y] + rng.standard_normal((N, D))).astype(np.float32)
    perm = rng.permutation(N)
    return X[perm], y[perm]


@pytest.fixture(scope="module")
def sel(data):
    X, y = data
    return coreset.select(X, fraction=0.1, y=y, random_state=0)


# ------------------------------------------------------------------ the knee


def test_knee_hand_computed():
    # F = 10 14 17 19 20; scaled from the first pick: y = 0 .4 .7 .9 1, x = 0 .25 .5 .75 1;
    # y - x = 0 .15 .2 .15 0 -> the third pick
    k = knee_of_gains([10, 4, 3, 2, 1])
    assert k["n_picks"] == 3
    assert k["lift"] == pytest.approx(0.2)
    assert k["objective_share"] == pytest.approx(17 / 20)


@pytest.mark.parametrize("seed", range(6))
def test_knee_is_the_picks_above_the_average_gain(seed):
    """Non-increasing gains: 1 + the picks after the first whose gain exceeds
    their average; and the point farthest from the chord, by brute force."""
    rng = np.random.default_rng(seed)
    g = np.sort(rng.exponential(size=rng.integers(5, 300)) ** 2)[::-1]
    k = knee_of_gains(g)["n_picks"]
    assert k == 1 + int(np.sum(g[1:] > g[1:].mean()))
    F = np.cumsum(g)
    P = np.stack([np.arange(1, g.size + 1), F], axis=1).astype(float)
    a, b = P[0], P[-1]
    Ps = (P - a) / (b - a)  # the unit square; the distance above the chord y = x
    dist = (Ps[:, 1] - Ps[:, 0]) / np.sqrt(2)
    assert k == int(np.argmax(dist)) + 1


@pytest.mark.parametrize("gains, reason", [
    ([1.0, 1.0, 1.0, 1.0], "linearly"),
    ([np.nan] * 5, "no marginal gains"),
    ([3.0, 2.0], "at least 3"),
    ([5.0, 0.0, 0.0], "does not grow"),
])
def test_no_knee(gains, reason):
    k = knee_of_gains(gains)
    assert k["n_picks"] is None and reason in k["reason"]


def test_knee_of_a_selection(sel, data):
    X, _ = data
    k = coreset.knee(sel)
    assert k == sel.knee() == knee(sel, n_samples=N)
    assert 1 <= k["n_picks"] <= len(sel)
    assert k["fraction"] == k["n_picks"] / N
    assert k["n_picks"] == knee_of_gains(sel.gains)["n_picks"]
    with pytest.raises(ValidationError, match="n_samples"):
        knee(sel, n_samples=len(sel) - 1)


def test_select_prints_and_returns_the_knee(tmp_path, data):
    X, y = data
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    args = ["select", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "--fraction", "0.1",
            "--output", str(tmp_path / "s.npz")]
    res = CliRunner().invoke(app, args + ["--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["knee"]
    expect = knee(Selection.load(tmp_path / "s.npz"), n_samples=N)
    assert got["n_picks"] == expect["n_picks"] and got["fraction"] == pytest.approx(expect["fraction"])
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert re.search(rf"knee\s+{expect['n_picks']} picks = [\d.]+% of the rows", res.stdout), res.stdout


# -------------------------------------------------------------- coverage


def _brute(X, y, picks, rows):
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    out = {}
    for c in np.unique(y):
        r = rows[y[rows] == c]
        p = picks[y[picks] == c]
        out[int(c)] = np.nan if p.size == 0 else float(np.mean(np.max(U[r] @ U[p].T, axis=1)))
    return out


def test_coverage_equals_brute_force(data):
    X, y = data
    rng = np.random.default_rng(0)
    picks = np.concatenate([rng.choice(np.flatnonzero(y == c), 5, replace=False) for c in range(C - 1)])  # none of C-1
    cov = coverage(X, y, picks, coverage_rows=10_000)
    expect = _brute(X.astype(np.float64), y, picks, np.arange(N))
    assert not cov.sampled
    assert cov.table[0]["class"] == C - 1 and cov.table[0]["n_picks"] == 0  # no pick: worst of all
    means = [t["mean_similarity"] for t in cov.table[1:]]
    assert means == sorted(means)
    for t in cov.table[1:]:
        assert t["mean_similarity"] == pytest.approx(expect[t["class"]], abs=1e-5)
    # every measured row's nearest pick is a pick of its class, and its similarity is the largest
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    ok = cov.best_pos >= 0
    assert np.all(y[picks[cov.best_pos[ok]]] == y[cov.rows[ok]])
    np.testing.assert_allclose(cov.best_sim[ok], np.einsum("ij,ij->i", U[cov.rows[ok]], U[picks[cov.best_pos[ok]]]),
                               atol=1e-5)


def test_coverage_sampled_is_exact_on_the_rows_it_measures(data):
    X, y = data
    picks = np.arange(0, N, 7)
    cov = coverage(X, y, picks, coverage_rows=100, random_state=1)
    assert cov.sampled
    expect = _brute(X.astype(np.float64), y, picks, cov.rows)
    for t in cov.table:
        assert t["n_measured"] == min(t["n_rows"], 100)
        assert t["mean_similarity"] == pytest.approx(expect[t["class"]], abs=1e-5)


def test_rows_a_pick_stands_for(data):
    X, _ = data
    picks = np.array([0, 1, 2])
    cov = coverage(X, None, picks)
    rows, sims = represented_rows(cov, 1, 1, 1000)
    assert 1 not in rows and np.all(np.diff(sims) <= 0)
    assert set(rows.tolist()) == set(cov.rows[(cov.best_pos == 1) & (cov.rows != 1)].tolist())


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3), (3, 2, 4)])
def test_png_round_trips_through_pillow(shape, tmp_path):
    from PIL import Image

    a = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(png_bytes(a))
    with Image.open(tmp_path / "a.png") as im:
        np.testing.assert_array_equal(np.asarray(im), a)


def test_thumbnail_scaling():
    a = np.arange(16, dtype=np.float64).reshape(4, 4)  # 0..15: stretched to 0..255, then 2x2 blocks averaged
    out = to_uint8_image(a, size=2)
    s = np.rint(a / 15 * 255)
    expect = np.rint(s.reshape(2, 2, 2, 2).mean(axis=(1, 3))).astype(np.uint8)
    np.testing.assert_array_equal(out, expect)
    assert to_uint8_image(np.full((3, 8, 8), 0.5)).shape == (8, 8, 3)  # channels first -> last


# ------------------------------------------------------------------ page


def test_report_page_contents(sel, data, tmp_path):
    X, y = data
    images = np.random.default_rng(0).random((N, 6, 6))
    rep = sel.report(X, y=y, images=images, max_points=500, max_picks=40)
    info = rep.info
    assert info["map_rows"] == 500 and info["map_picks"] == 40 and info["n_picks"] == len(sel) == 150
    html = rep.html
    assert "Showing 500 of 1,500 rows (a seeded uniform sample); 40 of 150 picks (a seeded uniform sample)" in html
    assert html.count("<script") == html.count("</script>")
    assert not re.search(r"<script[^>]*\bsrc=|<link\b|<iframe\b|@import|url\(http", html)  # nothing to fetch
    assert info["knee"] == sel.knee(N)
    assert f"Knee at <b>{info['knee']['n_picks']:,} picks</b>" in html
    assert html.count('<img class="pick"') == sum(min(8, t["n_picks"]) for t in info["coverage"])
    assert [t["class"] for t in info["coverage"]] == [t["class"] for t in
                                                      sorted(info["coverage"], key=lambda t: t["mean_similarity"])]
    # everything stated, the same picks, on a second build: seeded
    assert sel.report(X, y=y, images=images, max_points=500, max_picks=40).html == html
    assert rep._repr_html_().startswith("<iframe srcdoc=")
    out = rep.save(tmp_path / "r.html")
    assert out.read_text(encoding="utf-8") == html


def test_text_report_and_no_labels(data):
    X, _ = data
    sel = coreset.select(X, n_select=20, random_state=0)
    texts = [f"sentence number {i} <b>" for i in range(N)]
    rep = build_report(sel, X, text=texts)
    assert re.search(r"sentence number \d+ &lt;b&gt;", rep.html)  # shown, escaped
    assert not re.search(r"sentence number \d+ <b>", rep.html)
    assert "<b>all rows</b>" in rep.html
    assert rep.info["n_classes"] is None and len(rep.info["coverage"]) == 1
    assert "None recorded" in rep.html  # no duplicates, no suspects


def test_dedup_groups_are_shown(data):
    from coreset.selectors import DedupSelector

    X, y = data
    Xd = np.concatenate([X[:300], X[:300] + 1e-4]).astype(np.float32)
    sel = DedupSelector(0.9999).fit(Xd).selection_
    assert sel.meta["n_groups"] == 300
    rep = build_report(sel, Xd, images=np.zeros((600, 4, 4)))
    assert f"{sel.meta['n_groups']:,} groups of two or more rows" in rep.html
    assert "group of 2" in rep.html
    assert rep.info["knee"]["n_picks"] is None


def test_suspects_are_shown(data):
    X, y = data
    base = coreset.select(X, n_select=30, y=y, random_state=0)
    sus = np.array([3, 5, 8])
    try:
        sel = Selection(base.indices, base.weights, base.gains, labels=base.labels, meta=base.meta, suspects=sus)
    except TypeError:
        pytest.skip("Selection has no suspects field yet")
    rep = build_report(sel, X, y=y)
    assert "3 rows suspected mislabeled" in rep.html and rep.info["map_suspects"] == 3


def test_import_coreset_does_not_load_plotly():
    code = ("import sys, coreset, coreset.report; coreset.knee; "
            "print(any(m in sys.modules for m in ('plotly', 'sklearn', 'torch', 'faiss')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------- bad input, API


def test_bad_input_is_a_clear_error(sel, data, tmp_path):
    X, y = data
    with pytest.raises(ValidationError, match="made from different data"):
        build_report(sel, X + 1)
    with pytest.raises(ValidationError, match=r"addresses row \d+ but X has 100 rows \(valid indices \[0, 99\]\)"):
        build_report(sel, X[:100])
    (tmp_path / "imgs").mkdir()
    for i in range(N - 1):
        np.save(tmp_path / "imgs" / f"{i:05d}.npy", np.zeros((2, 2)))
    with pytest.raises(ValidationError, match=f"one image per row of the embeddings \\({N} rows.*holds {N - 1} image"):
        build_report(sel, X, images=tmp_path / "imgs")
    with pytest.raises(ValidationError, match=f"one sentence per row.*holds 3"):
        build_report(sel, X, text=["a", "b", "c"])
    with pytest.raises(ValidationError, match="max_points must be in"):
        build_report(sel, X, max_points=0)
    bad = X.copy()
    bad[sel.indices[3]] = np.nan
    with pytest.raises(ValidationError, match=f"row {sel.indices[3]} holds NaN"):
        build_report(Selection(sel.indices, sel.weights, sel.gains), bad)  # no fingerprint to stop it first
    rep = build_report(sel, X, max_points=50)
    with pytest.raises(OutputPathError, match="missing"):
        rep.save(tmp_path / "missing" / "r.html")
    assert not (tmp_path / "missing").exists()


# ------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory, data):
    X, y = data
    d = tmp_path_factory.mktemp("report")
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    res = CliRunner().invoke(app, ["select", str(d / "X.npy"), "--labels", str(d / "y.npy"), "--fraction", "0.1",
                                   "--output", str(d / "sel.npz"), "-q"])
    assert res.exit_code == 0, res.output
    np.save(d / "images.npy", np.random.default_rng(0).integers(0, 255, (N, 5, 5), dtype=np.uint8))
    return d


def _one_error(res, *fragments):
    assert res.exit_code == 1, (res.exit_code, res.output)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_cli_report(files):
    d = files
    out = d / "r.html"
    res = CliRunner().invoke(app, ["report", str(d / "sel.npz"), "--embeddings", str(d / "X.npy"), "--labels",
                                   str(d / "y.npy"), "--images", str(d / "images.npy"), "--max-points", "700",
                                   "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["map_rows"] == 700 and s["map_picks"] == 150 and s["n_rows"] == N
    assert s["knee"]["n_picks"] == knee(Selection.load(d / "sel.npz"), n_samples=N)["n_picks"]
    html = out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and s["size_bytes"] == len(html.encode())


@pytest.mark.parametrize("case", ["other data", "short embeddings", "few images", "missing folder", "no input"])
def test_cli_bad_input(files, data, case):
    d = files
    X, _ = data
    out = d / f"bad-{case.replace(' ', '-')}.html"
    args = ["report", str(d / "sel.npz"), "--embeddings", str(d / "X.npy"), "-o", str(out)]
    if case == "other data":
        np.save(d / "X2.npy", X[::-1].copy())
        args[3], frag = str(d / "X2.npy"), "made from different data"
    elif case == "short embeddings":
        np.save(d / "X3.npy", X[:50])
        args[3], frag = str(d / "X3.npy"), "but X has 50 rows"
    elif case == "few images":
        np.save(d / "few.npy", np.zeros((N - 10, 3, 3)))
        args += ["--images", str(d / "few.npy")]
        frag = f"it holds {N - 10} images"
    elif case == "missing folder":
        out = d / "nope" / "r.html"
        args[-1], frag = str(out), "--output"
    else:
        args, frag = ["report", str(d / "sel.npz"), "-o", str(out)], "give --embeddings"
    res = CliRunner().invoke(app, args)
    _one_error(res, frag)
    assert not out.exists() and not out.parent.joinpath(out.name + ".tmp").exists()


@pytest.mark.parametrize("args", [["--dataset", "zipf"], ["--images", "a", "--text", "b"], ["--column", "c"],
                                  ["--projection", "tsne"], ["--max-points", "0"], ["--labels", "y.npy", "--no-emb"]])
def test_cli_usage_errors(files, args):
    d = files
    emb = [] if "--no-emb" in args else ["--embeddings", str(d / "X.npy")]
    args = [a for a in args if a != "--no-emb"]
    res = CliRunner().invoke(app, ["report", str(d / "sel.npz"), *emb, "-o", str(d / "u.html")] + args)
    assert res.exit_code == 2, res.output
    assert not (d / "u.html").exists()


def test_projection_choice(data):
    import importlib.util

    from coreset.exceptions import BackendUnavailableError

    X, _ = data
    sel = coreset.select(X[:300], n_select=10, random_state=0)
    has_umap = importlib.util.find_spec("umap") is not None
    assert build_report(sel, X[:300], projection="auto").info["projection"] == ("umap" if has_umap else "pca")
    if not has_umap:
        with pytest.raises(BackendUnavailableError, match="pip install umap-learn"):
            build_report(sel, X[:300], projection="umap")
    with pytest.raises(ValidationError, match="projection must be one of pca, umap, auto; got 'tsne'"):
        build_report(sel, X[:300], projection="tsne")
