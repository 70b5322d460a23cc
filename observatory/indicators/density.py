"""Demography and density indicators."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.settings import METRIC_CRS

CENSUS_YEAR = 2007


@indicator(
    id="population_density",
    theme="density",
    title_es="Densidad de población",
    title_en="Population density",
    formula="población del censo 2007 / área oficial del municipio (km²; si la fuente no la da, "
    "el área del polígono medida en EPSG:32616)",
    unit="hab/km²",
    direction="neutral",
    inputs=("municipalities",),
    references=(
        "DIGESTYC, VI Censo de Población y V de Vivienda 2007",
        "Áreas oficiales: cartografía nacional (los polígonos de geoBoundaries suman un 8 % menos)",
    ),
)
def population_density(*, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Inhabitants per km² of the official area, the measured one where no source gives it.

    Notes
    -----
    :math:`d_m = P_m / A_m`, with :math:`P_m` the 2007 census population and :math:`A_m` the
    municipality's official area in km². Open boundary polygons are simplified (the 14
    geoBoundaries polygons cover 559.9 km² against 611.4 official; Cuscatancingo 1.94 against
    6.39), so their measured area (UTM 16N) is only the fallback.
    """
    area_km2 = municipalities["official_area_km2"].fillna(municipalities.to_crs(METRIC_CRS).area / 1e6)
    return pd.DataFrame(
        {
            "municipality_code": municipalities["code"],
            "period": CENSUS_YEAR,
            "value": municipalities["population_2007"].astype(float) / area_km2,
        }
    ).dropna(subset=["value"])
