"""Land-use classification of the Esquema Director: classes and the crosswalk from raw plan codes."""

from zoning.classes import CROSSWALK, LAND_USE_CLASSES, LandUseClass, classify

__all__ = ["CROSSWALK", "LAND_USE_CLASSES", "LandUseClass", "classify"]
