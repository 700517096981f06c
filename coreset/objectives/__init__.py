"""Submodular objectives, one module per function; each owns its numba kernels
(and a torch path where it has one). Names are in ``coreset._registry.OBJECTIVES``.

Every registered objective's class (and its ``Torch*`` companion) is reachable
here by name, e.g. ``coreset.objectives.GraphCut``, without an import line per
objective: adding one is its module plus one registry line.
"""

import importlib

from ._base import Data, KernelObjective, Objective, kernel_gain, kernel_update
from ._facility_location import FacilityLocation
from ._facility_location_torch import TorchFacilityLocation

__all__ = ["Objective", "KernelObjective", "Data", "kernel_gain", "kernel_update", "FacilityLocation",
           "TorchFacilityLocation"]


def __getattr__(name):
    from .._registry import OBJECTIVES

    for key in OBJECTIVES.names():
        module = OBJECTIVES.target(key).partition(":")[0]
        for mod in (module, module + "_torch"):
            try:
                m = importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                if exc.name != mod:
                    raise
                continue
            if name in getattr(m, "__all__", ()):
                return getattr(m, name)
    raise AttributeError(f"module 'coreset.objectives' has no attribute {name!r}")


def __dir__():
    from .._registry import OBJECTIVES

    return sorted(set(__all__) | {OBJECTIVES.target(k).partition(":")[2] for k in OBJECTIVES.names()})
