"""coreset.pipelines.compare and `coreset compare`: real tiny runs on digits-lt
(280 rows, linear probe, a few epochs), hand-checked metrics, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("torch")

from coreset.exceptions import UnknownNameError, ValidationError  # noqa: E402

TIMING = ("selection_seconds", "training_seconds", "total_seconds")


@pytest.fixture(scope="module")
def digits():
    from coreset.data import load_dataset

    return load_dataset("digits-lt")


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


# ------------------------------------------------------------------ metrics
def test_metrics_hand_computed():
    from coreset.pipelines import cell_metrics, class_groups

    counts = [50, 10, 30, 2, 5, 1, 20]     # by size: 0, 2, 6 | 1, 4 | 3, 5
    head, torso, tail = class_groups(counts)
    assert head.tolist() == [0, 2, 6] and torso.tolist() == [1, 4] and tail.tolist() == [3, 5]
    acc = [0.9, 0.6, 0.8, 0.0, 0.5, 0.2, 0.7]
    m = cell_metrics(acc, counts, threshold=0.5)
    assert m["head_accuracy"] == pytest.approx(0.8)
    assert m["torso_accuracy"] == pytest.approx(0.55)
    assert m["tail_accuracy"] == pytest.approx(0.1)
    assert m["worst_class_accuracy"] == 0.0
    assert m["breadth"] == 5                     # 0.5 counts (>=)
    assert m["balanced_accuracy"] == pytest.approx(3.7 / 7)
    assert cell_metrics(acc, counts, threshold=0.75)["breadth"] == 2


def test_metrics_ties_and_absent_classes():
    from coreset.pipelines import cell_metrics, class_groups

    # equal counts: ties go to the lower label; 4 classes -> 2 | 1 | 1
    assert [g.tolist() for g in class_groups([3, 3, 3, 3])] == [[0, 1], [2], [3]]
    m = cell_metrics([1.0, np.nan, 0.0, 0.5], [3, 3, 3, 3], threshold=0.5)
    assert m["head_accuracy"] == 1.0 and m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["worst_class_accuracy"] == 0.0 and m["breadth"] == 2


# ------------------------------------------------------------------ methods
@pytest.mark.parametrize("policy", ["proportional", "equal", "tempered", "sqrt", "drop"])
def test_random_budget_has_the_coresets_class_counts(digits, policy):
    from coreset.pipelines._compare import prepare_data
    from coreset.pipelines._compare_methods import parse_method, run_selection

    _, X, y, _, _, classes = prepare_data(digits)
    C, k = classes.size, 42
    fl = run_selection(parse_method(f"facility_location:{policy}"), X, y, C, k, 0)
    rb = run_selection(parse_method(f"random_budget:{policy}"), X, y, C, k, 0)
    assert fl.indices.size == rb.indices.size == k
    np.testing.assert_array_equal(np.bincount(y[fl.indices], minlength=C), np.bincount(y[rb.indices], minlength=C))
    assert not np.array_equal(np.sort(fl.indices), rb.indices)   # same budget, different rows
    w = run_selection(parse_method(f"facility_location:{policy}+weighted"), X, y, C, k, 0)
    np.testing.assert_array_equal(w.indices, fl.indices)          # weighting changes only the loss
    assert fl.weights is None and w.weights is not None and w.weights.sum() == pytest.approx(y.size)


def test_method_names():
    from coreset.pipelines import COMPARE_METHODS
    from coreset.pipelines._compare_methods import expand_methods

    assert len(COMPARE_METHODS) == len(set(COMPARE_METHODS))
    assert expand_methods("all") == list(COMPARE_METHODS)
    assert expand_methods("random, full,random") == ["random", "full"]
    with pytest.raises(UnknownNameError, match="did you mean 'facility_location:equal'"):
        expand_methods_and_parse("facility_locaton:equal")


def expand_methods_and_parse(name):
    from coreset.pipelines._compare_augment import parse_methods

    return parse_methods([name])


# ------------------------------------------------------------------ runs
METHODS = ["full", "full_balanced", "full_equal_compute", "random_budget:equal", "facility_location:equal",
           "facility_location:equal+weighted"]


@pytest.fixture(scope="module")
def first_run(digits, tmp_path_factory):
    from coreset.pipelines import compare

    out = tmp_path_factory.mktemp("cmp")
    events = []
    res = compare(digits, methods=METHODS, fractions=[0.2], seeds=[0, 1], epochs=4, out=out,
                  callback=lambda s, d, t: events.append((s, d, t)))
    return res, out, events


def test_grid_accounting_and_compute(first_run, digits):
    res, out, events = first_run
    n = digits.y.size
    assert [r["method"] for r in res.rows if r["method"] == "full"] == ["full", "full"]   # once per seed
    assert all(r["fraction"] == 1.0 for r in res.rows if r["method"].startswith("full_b"))
    assert len(res.rows) == 2 * len(METHODS)
    trainings = sum(1 for s, d, t in events if s == "train" and d == 1)
    assert trainings == len(res.rows)
    by = {(r["method"], r["seed"]): r for r in res.rows}
    k = round(0.2 * n)
    for seed in (0, 1):
        assert by[("full", seed)]["sample_gradients"] == 4 * n
        assert by[("facility_location:equal", seed)]["sample_gradients"] == 4 * k
        # equal compute: exactly the coreset's sample-gradients, on all rows
        assert by[("full_equal_compute", seed)]["sample_gradients"] == by[("facility_location:equal", seed)][
            "sample_gradients"]
        assert by[("full_equal_compute", seed)]["n_train_rows"] == n
    for r in res.rows:
        assert 0 <= r["worst_class_accuracy"] <= r["balanced_accuracy"] <= 1
        assert r["total_compute"] == r["sample_gradients"] + r["selection_gradients"] + r["selection_forward"] / 3
    # the files: one CSV row per cell, JSON with per-class accuracies, summary mean/std, three plots
    with open(out / "results.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(res.rows)
    data = json.loads((out / "results.json").read_text())
    assert len(data["rows"][0]["per_class_accuracy"]) == 10
    with open(out / "summary.csv") as fh:
        summ = list(csv.DictReader(fh))
    full = [s for s in summ if s["method"] == "full"][0]
    accs = [r["balanced_accuracy"] for r in res.rows if r["method"] == "full"]
    assert float(full["balanced_accuracy_mean"]) == pytest.approx(np.mean(accs))
    assert float(full["balanced_accuracy_std"]) == pytest.approx(np.std(accs))
    for kind in ("fraction", "compute", "per-class"):
        assert (out / f"compare-digits-lt-{kind}.png").read_bytes()[:4] == b"\x89PNG"


def test_deterministic_and_resumable(first_run, digits, tmp_path):
    from coreset.pipelines import compare

    res, out, _ = first_run
    again = compare(digits, methods=METHODS, fractions=[0.2], seeds=[0, 1], epochs=4, plots=False)
    assert _strip(again.rows) == _strip(res.rows)           # same call, same table
    # rerun into the same folder: nothing is trained; one new method -> only its cells
    events = []
    rerun = compare(digits, methods=METHODS + ["random"], fractions=[0.2], seeds=[0, 1], epochs=4, out=out,
                    plots=False, callback=lambda s, d, t: events.append((s, d, t)))
    assert sum(1 for s, d, t in events if s == "train" and d == 1) == 2
    assert _strip(rerun.rows[:len(METHODS)]) == _strip(res.rows[:len(METHODS)])
    assert sum(1 for s, *_ in events if s == "cells") == len(rerun.rows)
    with pytest.raises(ValidationError, match="another configuration"):
        compare(digits, methods=["random"], fractions=[0.2], seeds=[0], epochs=5, out=out, plots=False)


# ------------------------------------------------------------------ bad input
def test_bad_inputs(digits):
    from coreset.pipelines import compare

    d = (digits.X, digits.y, digits.X_test, digits.y_test)
    with pytest.raises(UnknownNameError, match="did you mean 'digits-lt'"):
        compare("digts-lt")
    with pytest.raises(UnknownNameError, match="did you mean 'stratified_random'"):
        compare(d, methods=["stratifed_random"])
    with pytest.raises(ValidationError, match="different lengths"):
        compare((digits.X, digits.y[:-1], digits.X_test, digits.y_test))
    with pytest.raises(ValidationError, match="different lengths"):
        compare((digits.X, digits.y, digits.X_test, digits.y_test[:-3]))
    y_test = digits.y_test.copy()
    y_test[:2] = 17
    with pytest.raises(ValidationError, match="absent from the training labels: 17"):
        compare((digits.X, digits.y, digits.X_test, y_test))
    for bad in ([0.0, 0.3], [1.5], [-0.1], []):
        with pytest.raises(ValidationError, match="fractions"):
            compare(d, fractions=bad)
    with pytest.raises(UnknownNameError, match="model"):
        compare(d, model="cnn")


# ------------------------------------------------------------------ CLI
def _cli(args):
    from typer.testing import CliRunner

    from coreset.cli._app import app

    return CliRunner().invoke(app, args)


def test_cli_end_to_end(digits, tmp_path):
    for name, arr in (("X", digits.X), ("y", digits.y), ("Xt", digits.X_test), ("yt", digits.y_test)):
        np.save(tmp_path / f"{name}.npy", arr)
    out = tmp_path / "run"
    r = _cli(["compare", "--embeddings", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"),
              "--test-embeddings", str(tmp_path / "Xt.npy"), "--test-labels", str(tmp_path / "yt.npy"),
              "--methods", "full,random_budget:tempered,facility_location:tempered", "--fractions", "0.1,0.3",
              "--seeds", "0", "--epochs", "3", "--model", "mlp", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "facility_location:tempered" in r.stdout
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 + 2 + 2 and {r["dataset"] for r in rows} == {"X"}
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 5
    for kind in ("fraction", "compute", "per-class"):
        assert (out / f"compare-X-{kind}.png").stat().st_size > 1000


def test_cli_errors(digits, tmp_path):
    np.save(tmp_path / "X.npy", digits.X)
    np.save(tmp_path / "y.npy", digits.y[:-5])
    np.save(tmp_path / "Xt.npy", digits.X_test)
    np.save(tmp_path / "yt.npy", digits.y_test + 1)       # label 10 never seen in training
    np.save(tmp_path / "y_ok.npy", digits.y)
    out = str(tmp_path / "o")

    def err(args, code=1):
        r = _cli(["compare", *args])
        assert r.exit_code == code, r.output
        if code == 1:
            lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("Error:"), r.stderr
            return lines[0]
        return r.output

    assert "did you mean 'digits-lt'" in err(["--dataset", "digits_lt", "--out", out])
    assert "did you mean 'random_budget:equal'" in err(["--dataset", "digits-lt", "--methods", "random_budget:eqal",
                                                        "--out", out])
    assert "(0.0, 1.0]" in err(["--dataset", "digits-lt", "--fractions", "0.1,1.2", "--out", out])
    files = ["--embeddings", str(tmp_path / "X.npy"), "--test-embeddings", str(tmp_path / "Xt.npy")]
    assert "different lengths" in err(files + ["--labels", str(tmp_path / "y.npy"), "--test-labels",
                                               str(tmp_path / "yt.npy"), "--out", out])
    assert "absent from the training labels: 10" in err(files + ["--labels", str(tmp_path / "y_ok.npy"),
                                                                 "--test-labels", str(tmp_path / "yt.npy"),
                                                                 "--out", out])
    def usage(args):  # the usage error's text, unwrapped from rich's box
        return " ".join(err(args, code=2).replace("│", " ").split())

    assert "comma-separated numbers such as 0.1,0.3; got 'a,b'" in usage(
        ["--dataset", "digits-lt", "--fractions", "a,b", "--out", out])
    assert "comma-separated integers such as 0,1,2; got '0,x'" in usage(
        ["--dataset", "digits-lt", "--seeds", "0,x", "--out", out])
    err(["--dataset", "digits-lt"], code=2)                                     # no --out
    err(["--dataset", "digits-lt", "--embeddings", str(tmp_path / "X.npy"), "--out", out], code=2)
    err(["--embeddings", str(tmp_path / "X.npy"), "--out", out], code=2)       # a half-given file set


def test_every_method_runs_and_accounts(digits):
    from coreset.pipelines import COMPARE_METHODS, compare
    from coreset.pipelines._compare_methods import SCORE_EPOCHS, SCORE_MODELS

    res = compare(digits, methods="all", fractions=[0.2], seeds=[0], epochs=2, plots=False)
    n, k = digits.y.size, round(0.2 * digits.y.size)
    assert [r["method"] for r in res.rows] == list(COMPARE_METHODS)
    for r in res.rows:
        m = r["method"]
        assert np.isfinite(r["balanced_accuracy"]), m
        fixed = m.startswith(("random", "stratified", "k_center", "el2n", "grand", "forgetting", "uncertainty")) \
            or (":" in m and not m.startswith("rs2:"))
        if m.startswith("rs2:"):     # a fresh class-budgeted subset each epoch: all rows, k per epoch
            assert r["n_train_rows"] == n and r["sample_gradients"] == 2 * k, m
        if fixed:
            assert r["n_train_rows"] == k and r["sample_gradients"] == 2 * k, m
        if m in ("el2n", "grand", "forgetting", "uncertainty"):
            assert r["selection_gradients"] == SCORE_MODELS * SCORE_EPOCHS * n, m
        if m == "adaptive":
            assert r["sample_gradients"] == round(0.2 * 2 * n) and r["selection_forward"] > 0
        if m in ("pruning", "infobatch"):   # 2 epochs: the first and the annealing one use every row
            assert r["sample_gradients"] == 2 * n


def test_callable_model_is_the_named_one(digits):
    import torch.nn as nn

    from coreset.pipelines import compare

    kw = dict(methods=["full", "random_budget:tempered"], fractions=[0.3], seeds=[1], epochs=3, plots=False)
    a = compare(digits, model="mlp", **kw)
    b = compare(digits, model=lambda d, c: nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, c)), **kw)
    assert _strip(a.rows) == _strip(b.rows)
    with pytest.raises(ValidationError, match="torch.nn.Module"):
        compare(digits, model=lambda d, c: "not a model", **kw)
