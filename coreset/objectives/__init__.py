"""Submodular objectives. Each implements the :class:`Objective` protocol."""

from ._base import Objective
from ._facility_location import FacilityLocation
from ._facility_location_torch import TorchFacilityLocation

#: name -> factory(similarity) ; names listed in coreset._registry.OBJECTIVES
OBJECTIVE_FACTORIES = {"facility_location": FacilityLocation}

__all__ = ["Objective", "FacilityLocation", "TorchFacilityLocation", "OBJECTIVE_FACTORIES"]
