"""``compare(select_on="proxy")``: selection on a briefly trained proxy's
features (selection via proxy). Real torch training and real selection.
Oracles: the known flipped rows of a task whose classes the raw inputs hide
(XOR), hand-counted proxy costs, label-only methods bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coreset.exceptions import UnknownNameError, ValidationError  # noqa: E402


def _xor(n=1200, flip=0.1, seed=0):
    """Two classes by the sign of x0 * x1 (their means coincide), under 14
    dims of unit Gaussian noise that swamp the raw distances, so the label
    filter on raw inputs is blind; ``flip`` of the labels flipped."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.uniform(-1, 1, (n, 2)), rng.standard_normal((n, 14))], axis=1).astype(np.float32)
    y_true = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    flipped = rng.random(n) < flip
    y = np.where(flipped, 1 - y_true, y_true)
    return X, y, flipped


def _ctx(X, y, select_on, epochs=20):
    from coreset.pipelines._models import mlp

    return dict(X=X, y=y, n_classes=2, factory=mlp, batch_size=32, optimizer="adam", lr=0.01, proxy_epochs=epochs,
                select_on=select_on, select_params=None,
                train_set=torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)))


def test_proxy_features_keep_flipped_rows_out_where_raw_inputs_cannot():
    from coreset.pipelines._compare_methods import parse_method
    from coreset.pipelines._compare_proxy import _proxy_features, select_rows

    X, y, flipped = _xor()
    spec = parse_method("random_kept:equal")
    share = {}
    for on in ("inputs", "proxy"):
        ctx = _ctx(X, y, on)
        picked = select_rows(spec, 0, ctx, k=240)
        share[on] = flipped[picked.indices].mean()
    # the raw inputs' filter is blind here (about the base rate of 10%); the proxy's features show the flips
    assert share["inputs"] > 0.08
    assert share["proxy"] < 0.5 * share["inputs"]
    F, _ = _proxy_features(ctx, 0)
    assert F.shape == (X.shape[0], 128) and np.allclose(np.linalg.norm(F, axis=1), 1.0, atol=1e-5)


def test_proxy_cost_is_counted_where_the_inputs_are_read_and_label_only_methods_are_unchanged():
    from coreset.pipelines import compare

    X, y, _ = _xor(400)
    Xt, yt, _ = _xor(200, flip=0.0, seed=1)
    data = (X, y, Xt, yt)
    methods = ["random_budget:equal", "facility_location:equal", "random_kept:equal"]
    kw = dict(methods=methods, fractions=[0.2], seeds=[0], epochs=2, model="mlp", plots=False)
    proxy = {r["method"]: r for r in compare(data, select_on="proxy", proxy_epochs=3, **kw).rows}
    plain = {r["method"]: r for r in compare(data, **kw).rows}
    assert proxy["random_budget:equal"]["selection_gradients"] == 0
    assert proxy["random_budget:equal"]["balanced_accuracy"] == plain["random_budget:equal"]["balanced_accuracy"]
    for m in ("facility_location:equal", "random_kept:equal"):
        assert proxy[m]["selection_gradients"] == 3 * 400 and proxy[m]["selection_forward"] == 400
        assert plain[m]["selection_gradients"] == 0
        assert proxy[m]["total_compute"] == pytest.approx(plain[m]["total_compute"] + 3 * 400 + 400 / 3)


def test_bad_settings_are_refused(tmp_path):
    from coreset.pipelines import compare

    X, y, _ = _xor(200)
    data = (X, y, X, y)
    kw = dict(methods=["facility_location:equal"], fractions=[0.2], seeds=[0], epochs=1, plots=False)
    with pytest.raises(ValidationError, match="hidden layer"):
        compare(data, select_on="proxy", **kw)  # model="linear": its last layer's input is the raw row
    with pytest.raises(ValidationError, match="hidden layer"):  # no nn.Linear at all: nothing to read features at
        compare(data, select_on="proxy", model=lambda d, c: torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, d)), torch.nn.Conv1d(1, c, d), torch.nn.Flatten()), **kw)
    with pytest.raises(UnknownNameError, match="did you mean 'proxy'"):
        compare(data, select_on="proxi", model="mlp", **kw)
    with pytest.raises(ValidationError, match="proxy_epochs"):
        compare(data, select_on="proxy", proxy_epochs=0, model="mlp", **kw)
    compare(data, model="mlp", out=tmp_path / "run", **kw)
    with pytest.raises(ValidationError, match="select_on"):  # another configuration's folder
        compare(data, model="mlp", select_on="proxy", out=tmp_path / "run", **kw)


def test_cli_select_on_typo_is_one_error_line(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    r = CliRunner().invoke(app, ["compare", "--dataset", "digits-lt", "--methods", "full", "--seeds", "0",
                                 "--epochs", "1", "--select-on", "proxie", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "did you mean 'proxy'" in lines[0], r.stderr
