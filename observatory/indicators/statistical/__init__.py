"""Indicators computed from tabular statistics (census, household survey, economic census, poverty
map) and from permits: demography, education, labour, productivity, land rent, infrastructure,
quality of life and equity. One module per theme; each registers its indicators on import."""

from observatory.indicators.statistical import (
    demography,
    education,
    equity,
    infrastructure,
    labour,
    land_rent,
    productivity,
    quality_of_life,
)

__all__ = [
    "demography",
    "education",
    "equity",
    "infrastructure",
    "labour",
    "land_rent",
    "productivity",
    "quality_of_life",
]
