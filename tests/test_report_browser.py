"""``coreset report`` pages in a real browser: Debian's headless chromium
(installed by .ci/run where it can be; these tests skip, saying why, where it
is missing) opens the page from a file:// URL. Asserted: every plotly figure
renders; the map holds the rows sampled and every pick (plotly's own
``gd._fullData``); every thumbnail decodes; the page made no request but the
file itself and logged no console error. A screenshot goes to tmp_path."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
from typer.testing import CliRunner

import coreset
from coreset import Selection
from coreset.cli import app

from _browser import browser_unavailable, open_page

_WHY = browser_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_WHY is not None, reason=f"no browser: {_WHY}")]


def _clean(run):
    assert run.requests == [run.url], run.requests  # the file itself, nothing from the network
    assert not run.errors, run.errors
    assert [m for m in run.console if m[0] == "error"] == [], run.console
    assert run.traces["__imgs"][0] == run.traces["__imgs"][1]  # every <img> decoded


def test_report_renders_offline_with_every_pick(tmp_path):
    rng = np.random.default_rng(5)
    n, d, c = 3000, 16, 8
    y = rng.integers(0, c, n) ** 2 % c  # uneven classes
    X = (rng.standard_normal((c, d))[y] * 3 + rng.standard_normal((n, d))).astype(np.float32)
    sel = coreset.select(X, fraction=0.1, y=y, random_state=0)
    images = rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8)
    path = sel.report(X, y=y, images=images, max_points=1000).save(tmp_path / "report.html")
    shot = tmp_path / "report.png"
    run = open_page(path, screenshot=shot)
    _clean(run)
    rows, picks = run.traces["coreset-map"][:2]
    assert rows["type"] == picks["type"] == "scattergl" and run.traces["__gl"] >= 1  # drawn with WebGL
    assert rows["n"] == 1000 and len(set(rows["customdata"])) == 1000 and max(rows["customdata"]) < n
    assert picks["n"] == len(sel) == 300
    assert sorted(int(v) for v in picks["customdata"]) == sorted(sel.indices.tolist())
    assert run.traces["__imgs"][0] > 0
    assert {"coreset-classes", "coreset-gains"} <= set(run.traces)
    assert run.traces["__info"]["knee"] == sel.knee()["n_picks"]
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_renders_inline_as_jupyter_shows_it(tmp_path):
    """``Report._repr_html_`` (an iframe holding the page) renders the same figures."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 8)).astype(np.float32)
    sel = coreset.select(X, n_select=40, random_state=0)
    rep = sel.report(X)
    page = tmp_path / "notebook.html"
    page.write_text(f"<!DOCTYPE html><html><body><p>a notebook cell</p>{rep._repr_html_()}</body></html>",
                    encoding="utf-8")
    run = open_page(page, in_iframe=True)
    _clean(run)
    rows, picks = run.traces["coreset-map"][:2]
    assert rows["n"] == 400 and picks["n"] == 40


def test_readme_command_then_report_renders(tmp_path, monkeypatch):
    """README command 1 (its `coreset select ...` job), then `coreset report` on its output."""
    from test_docs import readme_commands

    monkeypatch.chdir(tmp_path)
    job = shlex.split(readme_commands()[0].split("&&")[-1])
    assert job[:2] == ["coreset", "select"] and "subset.npz" in job
    res = CliRunner().invoke(app, job[1:] + ["-q"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["report", "subset.npz", "--dataset", "zipf", "-o", "report.html"])
    assert res.exit_code == 0, res.output
    run = open_page(tmp_path / "report.html", screenshot=tmp_path / "report.png")
    _clean(run)
    rows, picks = run.traces["coreset-map"][:2]
    sel = Selection.load("subset.npz")
    assert rows["n"] == 10_000 and picks["n"] == len(sel) == 1000


def test_the_harness_sees_requests_and_console_errors(tmp_path):
    """The checks above can fail: a page that fetches from the network and
    logs an error is caught (the request is refused, never sent)."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><div class='js-plotly-plot'></div>"
                    "<img src='https://example.invalid/x.png'><script>console.error('boom');"
                    "const d = document.querySelector('.js-plotly-plot'); d._fullLayout = {}; d._fullData = [];"
                    "d.innerHTML = \"<svg class='main-svg'></svg>\";</script>"
                    "<script type='application/json' id='coreset-report-info'>{}</script></body></html>")
    run = open_page(page)
    assert "https://example.invalid/x.png" in run.requests and run.requests[0] == run.url
    assert ("error", "boom") in run.console
    with pytest.raises(AssertionError):
        _clean(run)
