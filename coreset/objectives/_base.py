"""The objective protocol optimizers rely on."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Objective"]


@runtime_checkable
class Objective(Protocol):
    """A monotone submodular set function under incremental construction.

    ``n``: ground-set size; ``value``: f(current set); ``gains(candidates)``:
    f(S + j) - f(S) for each j (float64); ``update(j)``: add j to S.
    """

    n: int

    @property
    def value(self) -> float: ...

    def gains(self, candidates: np.ndarray) -> np.ndarray: ...

    def update(self, index: int) -> None: ...
