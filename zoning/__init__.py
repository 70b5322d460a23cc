"""Land-use classification of the Esquema Director: classes, the crosswalk from raw plan codes, and
which permit uses each class allows."""

from zoning.classes import CROSSWALK, LAND_USE_CLASSES, LandUseClass, classify
from zoning.compatibility import compatibility_table

__all__ = ["CROSSWALK", "LAND_USE_CLASSES", "LandUseClass", "classify", "compatibility_table"]
