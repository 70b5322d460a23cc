"""Indicators per municipality and period, one module per theme, all in one registry."""

from observatory.indicators import (
    accessibility,
    density,
    environment,
    land_use,
    mobility,
    risk,
    services,
    statistical,
    urban_control,
    violence,
)

# isort: split
# Last: the composite's spec names the indicators registered above.
from observatory.indicators import composite
from observatory.indicators.compute import compute_indicators
from observatory.indicators.registry import REGISTRY, Indicator

__all__ = [
    "REGISTRY",
    "Indicator",
    "accessibility",
    "composite",
    "compute_indicators",
    "density",
    "environment",
    "land_use",
    "mobility",
    "risk",
    "services",
    "statistical",
    "urban_control",
    "violence",
]
