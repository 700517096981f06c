"""What ``Selection.meta`` must hold, whichever way a selection is made.

docs/index-files.md documents the keys; every selector in the registry, every
optimizer, the class-budget wrapper, GreeDi and the stream must write them with
the same meaning, so a training job can trust any index file the same way."""

import json
import math

import numpy as np
import pytest

import coreset
from coreset._registry import METHODS, OPTIMIZERS
from coreset.data import input_fingerprint, make_zipf
from coreset.selection import Selection

N, K = 240, 24

#: keys every selection records (docs/index-files.md, "meta")
REQUIRED = ("method", "n_samples", "n_select", "library_version", "input_fingerprint", "random_state", "timings")


@pytest.fixture(scope="module")
def data():
    ds = make_zipf(N, 8, n_classes=4, random_state=0)
    return np.ascontiguousarray(ds.X, dtype=np.float32), ds.y


def check_contract(sel, X, *, fingerprint=True, seed=0):
    meta = sel.meta
    missing = [k for k in REQUIRED if k not in meta]
    assert not missing, f"meta lacks {missing}: has {sorted(meta)}"
    assert meta["n_samples"] == len(X)
    assert meta["n_select"] == len(sel.indices)
    assert meta["library_version"] == coreset.__version__
    if fingerprint:
        assert meta["input_fingerprint"] == input_fingerprint(X)
    assert meta["random_state"] == seed
    timings = meta["timings"]
    assert isinstance(timings, dict) and "total" in timings
    assert all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in timings.values()), timings
    assert timings["total"] >= max((v for k, v in timings.items() if k != "total"), default=0.0) - 1e-9
    # the index file carries it whole: JSON, and back equal
    json.dumps(meta, allow_nan=True)
    idx = np.asarray(sel.indices)
    assert idx.ndim == 1 and len(np.unique(idx)) == len(idx) and idx.min() >= 0 and idx.max() < len(X)


def test_the_contract_is_checked():
    """The check fails on a selection that breaks it (so it can fail)."""
    X = np.zeros((4, 2), np.float32)
    bad = Selection(indices=np.array([0, 1]), weights=np.ones(2), gains=np.ones(2), meta={"method": "x"})
    with pytest.raises(AssertionError, match="meta lacks"):
        check_contract(bad, X)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_of_select(data, method):
    X, y = data
    if method in ("feature_based", "mixture"):  # objectives on non-negative features
        X = np.abs(X)
    sel = coreset.select(X, n_select=K, y=y, method=method, random_state=0)
    check_contract(sel, X)
    assert sel.meta["method"] in (method, "submodular")


@pytest.mark.parametrize("optimizer", [o for o in OPTIMIZERS if o != "modular"])
def test_every_optimizer(data, optimizer):
    X, _ = data
    sel = coreset.select(X, n_select=K, optimizer=optimizer, random_state=0)
    check_contract(sel, X)
    assert sel.meta["optimizer"] == optimizer


@pytest.mark.parametrize("budget", ["proportional", "equal", "tempered"])
def test_class_budgets(data, budget):
    X, y = data
    sel = coreset.select(X, n_select=K, y=y, class_budget=budget, random_state=0)
    check_contract(sel, X)
    assert sel.meta["class_budget"] == budget


def test_class_balanced_wrapper(data):
    from coreset.selectors import ClassBalanced, SubmodularSelector

    X, y = data
    sel = ClassBalanced(SubmodularSelector(), policy="equal", n_select=K, random_state=0).fit(X, y).selection_
    check_contract(sel, X)


def test_greedi(data):
    from coreset.selectors import SubmodularSelector
    from coreset.selectors._greedi import GreeDi

    X, _ = data
    sel = GreeDi(SubmodularSelector(), n_partitions=3, executor="local", n_select=K, random_state=0).fit(X).selection_
    check_contract(sel, X)


def test_stream(data, tmp_path):
    X, _ = data
    path = tmp_path / "x.npy"
    np.save(path, X)
    sel = coreset.select_stream(path, K, chunk_size=64, reservoir=100, random_state=0)
    check_contract(sel, X)


def test_cli(data, tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    X, _ = data
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "s.npz"
    r = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", str(K), "--seed", "0", "-o",
                                 str(out), "-q"])
    assert r.exit_code == 0, r.output
    sel = Selection.load(out)
    check_contract(sel, X)
    assert sel.meta["input"] == "x.npy"
