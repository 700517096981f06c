"""Named learning-rate schedules in ``train`` and ``compare(lr_schedule=)``:
each is sized by the run's own optimizer steps (a 10% schedule decays over its
own short run). Oracles: the rate after every step against its formula, the
last step ending at 0, and "constant" bit-identical to no scheduler."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coreset.exceptions import UnknownNameError, ValidationError  # noqa: E402
from coreset.pipelines._train import LR_SCHEDULES, resolve_lr_scheduler, train  # noqa: E402


def _data(n=96, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    return torch.utils.data.TensorDataset(X, (X[:, 0] > 0).long())


def _rates(schedule, lr=0.2, epochs=3, batch_size=20, n=96):
    """The rate in force at each step of a real run (read by a hook before the step)."""
    net = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    seen = []
    opt.register_step_pre_hook(lambda o, a, k: seen.append(o.param_groups[0]["lr"]))
    res = train(net, _data(n), epochs=epochs, batch_size=batch_size, optimizer=opt, lr=lr, lr_scheduler=schedule,
                device="cpu")
    return np.array(seen), opt.param_groups[0]["lr"], res


def test_linear_and_cosine_follow_their_formulas_and_end_at_zero():
    steps = 3 * math.ceil(96 / 20)  # 15
    lin, end, res = _rates("linear")
    assert res.steps == steps == lin.size
    assert np.allclose(lin, [0.2 * (1 - t / steps) for t in range(steps)])
    assert end == pytest.approx(0.0, abs=1e-12)
    cos, end, _ = _rates("cosine")
    assert np.allclose(cos, [0.1 * (1 + math.cos(math.pi * t / steps)) for t in range(steps)])
    assert end == pytest.approx(0.0, abs=1e-12)


def test_onecycle_peaks_at_lr_inside_the_run():
    r, end, _ = _rates("onecycle")
    assert 0.9 * 0.2 < r.max() <= 0.2 and 0 < int(r.argmax()) < r.size - 1  # the peak falls between two steps
    assert r[0] < 0.2 / 10 and end < r[0]


def test_constant_is_bit_identical_to_no_scheduler():
    a, b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    train(a, _data(), epochs=2, batch_size=16, lr=0.1, device="cpu")
    train(b, _data(), epochs=2, batch_size=16, lr=0.1, lr_scheduler="constant", device="cpu")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert resolve_lr_scheduler("constant") is None and resolve_lr_scheduler(None) is None


def test_bad_schedule_names_are_refused():
    with pytest.raises(UnknownNameError, match="did you mean 'cosine'"):
        train(torch.nn.Linear(4, 2), _data(), epochs=1, lr_scheduler="cosin", device="cpu")
    with pytest.raises(ValidationError, match="lr_scheduler must be one of"):
        train(torch.nn.Linear(4, 2), _data(), epochs=1, lr_scheduler=3, device="cpu")
    assert set(LR_SCHEDULES) == {"constant", "linear", "cosine", "onecycle"}


def test_equal_compute_knows_its_steps_up_front():
    """full data at a coreset's compute: whole epochs, then a cut-short last one."""
    from coreset.pipelines._compare_methods import EqualCompute

    n, b = 50, 8
    for budget in (7, 50, 51, 123, 150):
        ec = EqualCompute(budget)
        epochs = EqualCompute.n_epochs(budget, n)
        ec.attach(range(n), epochs=epochs)
        walked = 0
        for e in range(epochs):
            ec.on_epoch_start(e)
            walked += math.ceil(ec.epoch_indices().size / b)
        assert ec.total_steps(b) == walked


@pytest.fixture(scope="module")
def digits():
    from coreset.data import load_dataset

    return load_dataset("digits-lt")


def test_compare_schedule_is_recorded_decays_every_method_and_blocks_a_mixed_resume(digits, tmp_path):
    from coreset.pipelines import compare

    methods = ["full_balanced", "full_equal_compute", "rs2:equal", "facility_location:equal"]
    kw = dict(methods=methods, fractions=[0.3], seeds=[0], epochs=3, plots=False)
    lin = compare(digits, lr_schedule="linear", out=tmp_path / "lin", **kw)
    const = compare(digits, **kw)
    assert lin.config["lr_schedule"] == "linear" and "lr_schedule" not in const.config
    by = {r["method"]: r["balanced_accuracy"] for r in lin.rows}
    assert set(by) == set(methods)
    # the schedule reaches every cell: at least one cell trains differently from the constant rate
    assert any(by[r["method"]] != r["balanced_accuracy"] for r in const.rows)
    with pytest.raises(ValidationError, match="lr_schedule"):
        compare(digits, lr_schedule="cosine", out=tmp_path / "lin", **kw)
    with pytest.raises(UnknownNameError, match="did you mean 'linear'"):
        compare(digits, lr_schedule="lineer", **kw)


def test_cli_lr_schedule_typo_is_one_error_line_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["compare", "--dataset", "digits-lt", "--methods", "full", "--seeds", "0",
                                 "--epochs", "1", "--lr-schedule", "cosin", "--out", str(out)])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "did you mean 'cosine'" in lines[0], r.stderr
    assert not out.exists() or not any(out.iterdir())
