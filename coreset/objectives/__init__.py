"""Submodular objectives, one module per function; each owns its numba kernels
(and a torch path where it has one). Names are in ``coreset._registry.OBJECTIVES``."""

from ._base import Data, KernelObjective, Objective, kernel_gain, kernel_update
from ._facility_location import FacilityLocation
from ._facility_location_torch import TorchFacilityLocation

__all__ = ["Objective", "KernelObjective", "Data", "kernel_gain", "kernel_update", "FacilityLocation",
           "TorchFacilityLocation"]
