"""Realistic data as knobs (coreset.data._noise): label noise (symmetric,
confusable) and head-heavy near-duplicates on the training split only, the
records kept for scoring detectors, the validation split carved from the
training rows, and the knobs in `compare` / `coreset compare`."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from coreset.data import DATASETS, Dataset, load_dataset, make_zipf, train_validation_split, validation_indices
from coreset.data._noise import confusion_map, corrupt_training, duplicate_quotas
from coreset.exceptions import UnknownNameError, ValidationError

FAST = ("zipf", "zipf_hard", "digits-lt", "mnist1d_lt")


def _cos(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _check_records(clean, d, label_noise, duplicates):
    """Every invariant of a corrupted dataset against its noise-free twin."""
    n = clean.y.size
    np.testing.assert_array_equal(d.y_clean, clean.y)                   # the true labels are kept
    np.testing.assert_array_equal(d.flipped, d.y != d.y_clean)           # the mask is the label difference
    assert d.flipped.sum() == round(label_noise * n)                     # exact share, never to the same class
    np.testing.assert_array_equal(d.copied, d.copy_source >= 0)
    assert d.copied.sum() == round(duplicates * n)
    np.testing.assert_array_equal(d.X[~d.copied], clean.X[~d.copied])   # originals untouched
    src = d.copy_source[d.copied]
    assert not d.copied[src].any()                                       # a source is an original
    np.testing.assert_array_equal(d.y_clean[d.copied], clean.y[src])     # same class as its source
    assert _cos(d.X[d.copied], clean.X[src]).min() >= 0.99              # near-copies
    assert not (d.X[d.copied] == clean.X[src]).all(axis=1).any()         # ... not exact ones
    np.testing.assert_array_equal(np.bincount(d.y_clean), np.bincount(clean.y))  # class sizes unchanged
    np.testing.assert_array_equal(d.X_test, clean.X_test)                # the test split stays clean
    np.testing.assert_array_equal(d.y_test, clean.y_test)


@pytest.mark.parametrize("name", FAST)
def test_registered_datasets_take_the_knobs(name):
    clean = load_dataset(name, random_state=2)
    d = load_dataset(name, random_state=2, label_noise=0.1, duplicates=0.3)
    _check_records(clean, d, 0.1, 0.3)
    assert d.noise["label_noise"] == 0.1 and d.noise["duplicates"] == 0.3 and d.noise["noise_model"] == "symmetric"
    assert d.params["label_noise"] == 0.1 and d.params["random_state"] == 2
    # head-heavy: the largest class holds a larger share of the copies than of the rows
    big = np.argmax(np.bincount(clean.y))
    assert (d.y_clean[d.copied] == big).mean() > (clean.y == big).mean()
    # seeded: the same call gives the same data, another seed other flips and copies
    e = load_dataset(name, random_state=2, label_noise=0.1, duplicates=0.3)
    for f in ("X", "y", "flipped", "copy_source"):
        np.testing.assert_array_equal(getattr(d, f), getattr(e, f))
    assert d.noise == e.noise


def test_clean_load_is_unchanged_and_records_nothing():
    d = load_dataset("digits-lt")
    assert not d.flipped.any() and not d.copied.any() and (d.copy_source == -1).all()
    np.testing.assert_array_equal(d.y_clean, d.y)
    assert "label_noise" not in d.params                                   # params as before
    bare = Dataset("x", np.zeros((2, 2), np.float32), np.arange(2))       # built by hand: as before
    assert bare.y_clean is None and bare.flipped is None and bare.noise == {}


def test_make_zipf_and_digits_pixels():
    clean = make_zipf(3000, 8, 30, n_test_per_class=5, random_state=4)
    d = make_zipf(3000, 8, 30, n_test_per_class=5, random_state=4, label_noise=0.25, noise_model="confusable",
                  duplicates=0.5)
    _check_records(clean, d, 0.25, 0.5)
    digits = load_dataset("digits-lt", duplicates=0.6)
    assert digits.X.min() >= 0.0 and digits.X.max() <= 1.0                # copies stay pixels


def test_flips_and_copies_draw_from_independent_streams():
    a = load_dataset("digits-lt", label_noise=0.2)
    b = load_dataset("digits-lt", label_noise=0.2, duplicates=0.4)
    np.testing.assert_array_equal(a.flipped, b.flipped)                   # copies keep their class
    np.testing.assert_array_equal(a.y, b.y)
    c = load_dataset("digits-lt", duplicates=0.4)
    np.testing.assert_array_equal(c.copy_source, b.copy_source)
    np.testing.assert_array_equal(c.X, b.X)
    one, two = (corrupt_training(a.X, a.y_clean, label_noise=0.2, duplicates=0.4, random_state=s) for s in (0, 1))
    np.testing.assert_array_equal(one.flipped, b.flipped)               # the dataset's seed is the noise's seed
    assert not np.array_equal(one.flipped, two.flipped) and not np.array_equal(one.copy_source, two.copy_source)


def test_symmetric_flips_are_uniform_over_the_other_classes():
    C, per = 6, 10_000
    y = np.repeat(np.arange(C), per)
    X = np.random.default_rng(0).standard_normal((y.size, 3)).astype(np.float32)
    r = corrupt_training(X, y, label_noise=0.5, random_state=7)
    assert r.flipped.sum() == 30_000 and (r.y[r.flipped] != y[r.flipped]).all()
    table = np.zeros((C, C))
    np.add.at(table, (y[r.flipped], r.y[r.flipped]), 1)
    assert np.diag(table).sum() == 0
    # chi-square of each row over its C - 1 other classes; df = C (C - 2) = 24, mean 24, sd sqrt(48) ~ 7
    rows = table.sum(1, keepdims=True)
    expected = np.where(np.eye(C, dtype=bool), np.nan, rows / (C - 1))
    chi2 = np.nansum((table - expected) ** 2 / expected)
    assert chi2 < 24 + 6 * np.sqrt(48), chi2
    # and the flipped rows are a uniform draw: about half of every class
    assert np.abs(np.bincount(y[r.flipped]) / per - 0.5).max() < 0.03


def test_confusable_flips_go_to_the_nearest_centroid_class():
    # hand-made centroids 0, 1, 10, 10.5 on a line -> nearest: 1, 0, 3, 2
    X = np.array([[0.0], [0.0], [1.0], [1.0], [10.0], [10.0], [10.5], [10.5]], np.float32)
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert confusion_map(X, y).tolist() == [1, 0, 3, 2]
    assert confusion_map(np.array([[0.0], [1.0], [-1.0]]), np.array([0, 1, 2])).tolist() == [1, 0, 0]  # ties: lower
    d = load_dataset("zipf_hard", label_noise=0.1, noise_model="confusable")
    clean = load_dataset("zipf_hard")
    # brute force: nearest centroid of the clean training features
    mu = np.stack([clean.X[clean.y == c].astype(np.float64).mean(0) for c in range(100)])
    dist = ((mu[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    designated = dist.argmin(1)
    assert d.noise["confusion"] == designated.tolist()
    np.testing.assert_array_equal(d.y[d.flipped], designated[d.y_clean[d.flipped]])
    assert d.flipped.sum() == 2000


def test_every_class_keeps_a_true_label():
    y = np.repeat([0, 1, 2], [50, 1, 2])
    X = np.random.default_rng(0).standard_normal((53, 4))
    for seed in range(20):
        r = corrupt_training(X, y, label_noise=0.9, random_state=seed)
        assert r.flipped.sum() == round(0.9 * 53)
        for c in range(3):
            assert ((y == c) & ~r.flipped).any()
    with pytest.raises(ValidationError, match="at most 50 can be flipped"):
        corrupt_training(X, y, label_noise=0.98, random_state=0)


def test_duplicate_quotas_hand_computed():
    # weights 100, 25, 0 -> 4.8, 1.2, 0 -> floors 4, 1 and the last copy to the largest remainder
    assert duplicate_quotas([10, 5, 1], 6).tolist() == [5, 1, 0]
    # class 0 capped at n_c - 1 = 3; its surplus goes to class 1 (cap 1)
    assert duplicate_quotas([4, 2, 1], 4).tolist() == [3, 1, 0]
    with pytest.raises(ValidationError, match="only 1 of the 3"):
        duplicate_quotas([2, 1], 2)


def test_unit_norm_rows_stay_unit_norm():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = rng.integers(0, 4, 400)
    texts = tuple(f"s{i}" for i in range(400))
    r = corrupt_training(X.astype(np.float32), y, duplicates=0.3, random_state=0, texts=texts)
    np.testing.assert_allclose(np.linalg.norm(r.X, axis=1), 1.0, atol=1e-5)
    i = np.flatnonzero(r.copied)
    assert [r.texts[j] for j in i] == [texts[s] for s in r.copy_source[i]]
    assert _cos(r.X[i], X[r.copy_source[i]]).min() >= 0.99


@pytest.mark.slow
def test_text_lt_copies_sentences_verbatim():
    pytest.importorskip("sentence_transformers")
    clean = load_dataset("text_lt")
    d = load_dataset("text_lt", label_noise=0.1, noise_model="confusable", duplicates=0.3)
    _check_records(clean, d, 0.1, 0.3)
    i = np.flatnonzero(d.copied)
    assert [d.texts[j] for j in i] == [clean.texts[s] for s in d.copy_source[i]]
    assert d.noise["confusion"] == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12]   # the designed pairs


@pytest.mark.parametrize("knob", ["label_noise", "duplicates"])
@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, float("nan"), float("inf"), "0.1", True])
def test_bad_shares(knob, bad):
    for call in (lambda: load_dataset("digits-lt", **{knob: bad}), lambda: make_zipf(100, 4, 5, **{knob: bad})):
        with pytest.raises(ValidationError, match=rf"{knob} must be .*\[0, 1\).*got {re.escape(repr(bad))}"):
            call()


def test_bad_noise_model_and_names():
    with pytest.raises(UnknownNameError, match="did you mean 'symmetric'"):
        load_dataset("digits-lt", label_noise=0.1, noise_model="symetric")
    with pytest.raises(UnknownNameError, match="did you mean 'confusable'"):
        make_zipf(100, 4, 5, noise_model="confusible")
    for name in DATASETS:   # refused before anything is loaded or embedded
        with pytest.raises(ValidationError, match="duplicates"):
            load_dataset(name, duplicates=2)


# ------------------------------------------------------------------ validation split
def test_validation_split_is_stratified_seeded_and_from_training_rows():
    y = np.repeat(np.arange(5), [40, 10, 3, 2, 1])
    fit, val = validation_indices(y, 0.2, random_state=3)
    assert np.intersect1d(fit, val).size == 0 and np.union1d(fit, val).tolist() == list(range(56))
    # round(0.2 * n_c) half up, at most n_c - 1: 8, 2, 1 (0.6), 0 (0.4), 0 (one row stays)
    assert np.bincount(y[val], minlength=5).tolist() == [8, 2, 1, 0, 0]
    np.testing.assert_array_equal(val, validation_indices(y, 0.2, random_state=3)[1])
    assert not np.array_equal(val, validation_indices(y, 0.2, random_state=4)[1])
    d = load_dataset("digits-lt", label_noise=0.2, duplicates=0.3)
    v = train_validation_split(d, 0.25, random_state=1)
    fit, val = validation_indices(d.y, 0.25, random_state=1)
    assert v.name == "digits-lt-val" and v.params["validation"]["n_validation"] == val.size
    np.testing.assert_array_equal(v.X, d.X[fit])
    np.testing.assert_array_equal(v.X_test, d.X[val])        # carved from training, never the test split
    np.testing.assert_array_equal(v.y_test, d.y[val])        # with the training split's (noisy) labels
    assert d.flipped[val].any()
    np.testing.assert_array_equal(v.flipped, v.y != v.y_clean)
    src = v.copy_source[v.copy_source >= 0]                  # renumbered into the kept rows
    np.testing.assert_array_equal(v.copy_source >= 0, v.copied & np.isin(d.copy_source[fit], fit))
    assert _cos(v.X[v.copy_source >= 0], v.X[src]).min() >= 0.99
    np.testing.assert_array_equal(train_validation_split(d, 0.25, random_state=1, clean_labels=True).y_test,
                                  d.y_clean[val])
    with pytest.raises(ValidationError, match="share"):
        train_validation_split(d, 1.0)


# ------------------------------------------------------------------ compare
def _strip(rows):
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rows]


def test_compare_applies_the_knobs_to_the_training_split(tmp_path):
    pytest.importorskip("torch")
    from coreset.pipelines import compare

    kw = dict(methods=["full", "random_budget:equal"], fractions=[0.3], seeds=[0], epochs=2, plots=False)
    res = compare("digits-lt", label_noise=0.1, duplicates=0.3, out=tmp_path, **kw)
    assert res.config["label_noise"] == 0.1 and res.config["duplicates"] == 0.3
    assert res.config["noise_model"] == "symmetric"
    for r in res.rows:
        assert (r["label_noise"], r["noise_model"], r["duplicates"]) == (0.1, "symmetric", 0.3)
    with open(tmp_path / "results.csv") as fh:
        assert {(r["label_noise"], r["duplicates"]) for r in csv.DictReader(fh)} == {("0.1", "0.3")}
    assert json.loads((tmp_path / "results.json").read_text())["config"]["label_noise"] == 0.1
    # the same as training on load_dataset(..., knobs): the noise is seeded by the dataset's seed
    noisy = load_dataset("digits-lt", label_noise=0.1, duplicates=0.3)
    same = compare(noisy, **kw)
    assert _strip(same.rows) == _strip(res.rows) and same.config == res.config
    assert res.class_counts == np.bincount(noisy.y_clean).tolist()     # true class sizes
    clean = compare("digits-lt", **kw)
    assert "label_noise" not in clean.config and clean.rows[0]["label_noise"] == 0.0
    assert clean.rows[0]["balanced_accuracy"] != res.rows[0]["balanced_accuracy"]
    # runs with other noise never mix in one folder
    for other in (dict(), dict(label_noise=0.2, duplicates=0.3), dict(label_noise=0.1, duplicates=0.3,
                                                                         noise_model="confusable")):
        with pytest.raises(ValidationError, match="another configuration"):
            compare("digits-lt", out=tmp_path, **other, **kw)
    with pytest.raises(ValidationError, match="already carries"):
        compare(noisy, label_noise=0.1, **kw)
    with pytest.raises(ValidationError, match=r"label_noise must be .*got 1\.0"):
        compare("digits-lt", label_noise=1.0, **kw)


def test_cli_flags(tmp_path):
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from coreset.cli._app import app

    base = ["compare", "--dataset", "digits-lt", "--methods", "random_budget:equal", "--fractions", "0.2",
            "--seeds", "0", "--epochs", "2", "--no-plots"]
    r = CliRunner().invoke(app, base + ["--label-noise", "0.1", "--noise-model", "symmetric", "--duplicates", "0.3",
                                        "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "digits-lt: training split: label noise 0.1 (symmetric), near-duplicates 0.3" in r.stdout
    with open(tmp_path / "a" / "results.csv") as fh:
        row = next(csv.DictReader(fh))
    assert (row["label_noise"], row["noise_model"], row["duplicates"]) == ("0.1", "symmetric", "0.3")

    def error(args):
        r = CliRunner().invoke(app, base + args + ["--out", str(tmp_path / "b")])
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error:"), r.output
        assert not (tmp_path / "b" / "results.json").exists()
        return lines[0]

    assert "label_noise must be in [0, 1)" in error(["--label-noise", "1.5"])
    assert "got 1.5" in error(["--duplicates", "1.5"])
    assert "did you mean 'confusable'" in error(["--label-noise", "0.1", "--noise-model", "confusible"])

