"""Every registered objective, optimizer and selector passes the common checks
of ``coreset.testing``; nothing here lists them by hand."""

import pytest

from coreset import testing
from coreset._registry import OBJECTIVES, OPTIMIZERS, SELECTORS


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_objective(name):
    testing.check_objective(name)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer(name):
    testing.check_optimizer(name)


@pytest.mark.parametrize("name", SELECTORS.names())
def test_selector(name):
    testing.check_selector(name)


def test_the_checks_catch_a_broken_objective():
    """A gain kernel that lies must fail check_objective (the checks can fail)."""
    import numpy as np

    from coreset.objectives import FacilityLocation

    class Liar(FacilityLocation):
        name = "liar"

        def gains(self, candidates):
            return super().gains(candidates) * 1.01

    OBJECTIVES.register("liar", f"{__name__}:_Liar")
    globals()["_Liar"] = Liar
    try:
        with pytest.raises(AssertionError, match="gains != evaluate"):
            testing.check_objective("liar")
    finally:
        OBJECTIVES._entries.pop("liar")
    assert np.isfinite(1.0)


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_every_objective_runs_through_select_and_the_cli(name, tmp_path):
    """Registering an objective is enough for select(method=...) and
    `coreset select --objective` to run it."""
    import numpy as np
    from typer.testing import CliRunner

    import coreset
    from coreset.cli import app

    X = (np.abs(testing.make_inputs(n=80)[2]) + 0.01).astype(np.float32)  # >= 0 for feature objectives
    sel = coreset.select(X, n_select=8, method=name, random_state=0)
    assert len(sel) == 8 and np.unique(sel.indices).size == 8
    assert sel.weights.sum() == pytest.approx(80) and sel.meta["objective_name"] == name
    np.save(tmp_path / "x.npy", X)
    res = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", "8", "--objective", name,
                                   "-o", str(tmp_path / "o.npz"), "--json"])
    assert res.exit_code == 0, res.output
    assert coreset.Selection.load(tmp_path / "o.npz").indices.tolist() == sel.indices.tolist()
