"""Infrastructure: dwellings connected to piped water and to the sewer, from the censuses."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.indicators.statistical.demography import CENSUSES
from observatory.indicators.statistical.tables import ratio


@indicator(
    id="piped_water_coverage",
    theme="infrastructure",
    title_es="Viviendas con agua por cañería",
    title_en="Dwellings with piped water",
    formula="100 × viviendas ocupadas con agua por cañería (dentro o fuera de la vivienda, en la "
    "propiedad) / viviendas ocupadas",
    unit="% de viviendas",
    direction="higher_is_better",
    inputs=("statistics",),
    references=(*CENSUSES, "WHO/UNICEF JMP: SDG 6.1.1, piped water on premises"),
    sdg_target="6.1.1",
)
def piped_water_coverage(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "viviendas_agua_caneria", "viviendas")


@indicator(
    id="sewer_coverage",
    theme="infrastructure",
    title_es="Viviendas conectadas al alcantarillado",
    title_en="Dwellings connected to the sewer",
    formula="100 × viviendas ocupadas con servicio sanitario conectado a alcantarillado / viviendas ocupadas",
    unit="% de viviendas",
    direction="higher_is_better",
    inputs=("statistics",),
    references=(*CENSUSES, "WHO/UNICEF JMP: SDG 6.2.1, sewer connection"),
    sdg_target="6.2.1",
)
def sewer_coverage(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "viviendas_alcantarillado", "viviendas")
