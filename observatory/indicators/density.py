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
    formula="población del censo 2007 / área del municipio (km², EPSG:32616)",
    unit="hab/km²",
    direction="neutral",
    inputs=("municipalities",),
    references=("DIGESTYC, VI Censo de Población y V de Vivienda 2007",),
)
def population_density(*, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Inhabitants per km², the area measured in UTM 16N rather than taken from the attributes.

    Notes
    -----
    :math:`d_m = P_m / A_m`, with :math:`P_m` the 2007 census population and :math:`A_m` the
    municipality's area in km².
    """
    area_km2 = municipalities.to_crs(METRIC_CRS).area / 1e6
    return pd.DataFrame(
        {
            "municipality_code": municipalities["code"],
            "period": CENSUS_YEAR,
            "value": municipalities["population_2007"].astype(float) / area_km2,
        }
    ).dropna(subset=["value"])
