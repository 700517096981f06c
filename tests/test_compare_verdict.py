"""compare's verdict (coreset.pipelines._compare_verdict): the winner per compute
level, its spread, and the methods within noise of it, on hand-made summaries
with hand-computed answers; and the CLI's table of it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from coreset.exceptions import ValidationError


def _s(method, fraction, mean, std, n_seeds=3, dataset="d"):
    return dict(dataset=dataset, method=method, fraction=fraction, n_seeds=n_seeds,
                balanced_accuracy_mean=mean, balanced_accuracy_std=std,
                worst_class_accuracy_mean=None if mean is None else 1 - mean, worst_class_accuracy_std=0.0)


def test_winner_spread_and_ties_within_noise_hand_computed():
    from coreset.pipelines._compare_verdict import winners

    summary = [
        _s("random", 0.1, 0.70, 0.05),
        _s("facility_location:equal", 0.1, 0.80, 0.01),
        _s("random_budget:equal", 0.1, 0.78, 0.03),    # 0.02 <= max(0.01, 0.03): within noise
        _s("rs2:equal", 0.1, 0.785, 0.01),             # 0.015 > max(0.01, 0.01): not within noise
        _s("k_center_greedy", 0.1, 0.75, 0.05),        # 0.05 <= 0.05: within (the rule is <=)
        _s("random", 0.3, 0.85, 0.0),
        _s("random_budget:equal", 0.3, 0.85, 0.0),     # exact tie: the first listed wins, the other is within
        _s("facility_location:equal", 0.3, 0.849, 0.0),  # one seed's worth of spread: 0.001 > 0: not within
        _s("full", 1.0, 0.90, 0.02),
        _s("full_balanced", 1.0, 0.93, 0.005),
        _s("full+aug", 1.0, 0.95, 0.01),
        _s("full+aug:random", 0.1, 0.94, 0.02),        # full data + augmented copies: the level of full data
        _s("broken", 0.1, None, None),                 # no mean: left out
    ]
    w = winners(summary)
    assert [(v.dataset, v.fraction) for v in w] == [("d", 0.1), ("d", 0.3), ("d", 1.0)]
    a, b, c = w
    assert (a.method, a.mean, a.std, a.n_seeds) == ("facility_location:equal", 0.80, 0.01, 3)
    assert [m for m, _, _ in a.within_noise] == ["random_budget:equal", "k_center_greedy"]
    assert a.within_noise[0] == ("random_budget:equal", 0.78, 0.03)
    assert (b.method, [m for m, _, _ in b.within_noise]) == ("random", ["random_budget:equal"])
    assert c.method == "full+aug" and [m for m, _, _ in c.within_noise] == ["full+aug:random@0.1"]
    assert c.as_dict()["within_noise"] == [dict(method="full+aug:random@0.1", mean=0.94, std=0.02)]


def test_winners_per_dataset_and_metric_and_from_a_result():
    from coreset.pipelines._compare import CompareResult
    from coreset.pipelines._compare_verdict import winners

    summary = [_s("random", 0.1, 0.6, 0.1, dataset="x"), _s("full", 1.0, 0.9, 0.0, dataset="x"),
               _s("random", 0.1, 0.5, 0.0, dataset="y"), _s("random_budget:equal", 0.1, 0.7, 0.0, dataset="y")]
    w = winners(summary)
    assert [(v.dataset, v.fraction, v.method) for v in w] == [("x", 0.1, "random"), ("x", 1.0, "full"),
                                                              ("y", 0.1, "random_budget:equal")]
    worst = winners(summary, metric="worst_class_accuracy")   # 1 - mean: the order flips
    assert worst[2].method == "random" and worst[2].metric == "worst_class_accuracy"
    res = CompareResult(rows=[], summary=summary, class_counts=[], config={})
    assert res.winners() == w
    with pytest.raises(ValidationError, match=r"summary\[0\] must be a summary entry"):
        winners([dict(method="random")])
    assert winners([_s("random", 0.1, float("nan"), np.nan)]) == []


@pytest.mark.slow
def test_cli_prints_the_winners(tmp_path):
    torch = pytest.importorskip("torch")
    from typer.testing import CliRunner

    from coreset.cli._app import app

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [30, 12, 6])
    yt = np.repeat([0, 1, 2], 8)
    for name, arr in (("X", rng.normal(size=(48, 3)) + y[:, None]), ("y", y),
                      ("Xt", rng.normal(size=(24, 3)) + yt[:, None]), ("yt", yt)):
        np.save(tmp_path / f"{name}.npy", arr)
    old = torch.get_num_threads()
    try:
        r = CliRunner().invoke(app, ["compare", "--embeddings", str(tmp_path / "X.npy"), "--labels",
                                     str(tmp_path / "y.npy"), "--test-embeddings", str(tmp_path / "Xt.npy"),
                                     "--test-labels", str(tmp_path / "yt.npy"), "--methods", "full,random",
                                     "--fractions", "0.5", "--seeds", "0,1", "--epochs", "1", "--no-plots",
                                     "--out", str(tmp_path / "run")])
    finally:
        torch.set_num_threads(old)
    assert r.exit_code == 0, r.output
    from coreset.pipelines._compare import summarize
    from coreset.pipelines._compare_verdict import winners

    rows = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    out = r.stdout.split("What to use", 1)[1]
    for v in winners(summarize(rows)):   # one line per level: its fraction, winner and mean ± std
        line = next(ln for ln in out.splitlines() if ln.startswith(f"{v.fraction:g} "))
        assert v.method in line and f"{v.mean:.3f} ± {v.std:.3f}" in line
