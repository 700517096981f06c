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
