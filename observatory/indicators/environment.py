"""Environmental quality indicators: green cover from the land-cover raster, by exact cell coverage."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from layers import get_raster_layer
from observatory.indicators.registry import indicator
from observatory.rasters import zonal_areas

LAND_COVER = "land_cover"
GREEN_CLASSES = (10, 20, 30)
"""ESA WorldCover classes counted as green: 10 tree cover, 20 shrubland, 30 grassland (not cropland,
40, nor wetland, 90, nor mangroves, 95)."""
REFERENCES = (
    "ESA WorldCover 2021 (Zanaga et al., 2022), clases 10, 20 y 30",
    "ONU-Hábitat, Índice de Prosperidad de las Ciudades: sostenibilidad ambiental",
    "Cobertura exacta de celdas: exactextract (Baston, isciences)",
)


def green(land_cover: np.ndarray) -> np.ndarray:
    return np.isin(land_cover, GREEN_CLASSES)


def _green_areas(municipalities: gpd.GeoDataFrame, land_cover: Path) -> pd.DataFrame:
    return zonal_areas(land_cover, municipalities, id_column="code", where=green)


@indicator(
    id="green_cover_share",
    sdg_target="11.7",
    theme="environment",
    title_es="Cobertura verde",
    title_en="Green cover share",
    formula="100 × área de árboles, arbustos y pastizal (clases 10, 20, 30) / área del municipio con "
    "clase conocida (píxeles sin dato fuera del denominador)",
    unit="%",
    direction="higher_is_better",
    inputs=("municipalities", LAND_COVER),
    references=REFERENCES,
)
def green_cover_share(*, municipalities: gpd.GeoDataFrame, land_cover: Path) -> pd.DataFrame:
    areas = _green_areas(municipalities, land_cover)
    areas = areas[areas["valid_area_m2"] > 0]
    return pd.DataFrame(
        {
            "municipality_code": areas["code"],
            "period": get_raster_layer(LAND_COVER).year,
            "value": 100 * areas["where_area_m2"] / areas["valid_area_m2"],
        }
    )


@indicator(
    id="green_area_per_inhabitant",
    census=True,
    sdg_target="11.7",
    iso37120="19.1",
    theme="environment",
    title_es="Área verde por habitante",
    title_en="Green area per inhabitant",
    formula="área (m²) de árboles, arbustos y pastizal (clases 10, 20, 30) / población del censo 2007",
    unit="m²/hab",
    direction="higher_is_better",
    inputs=("municipalities", LAND_COVER),
    references=(*REFERENCES, "DIGESTYC, VI Censo de Población y V de Vivienda 2007"),
)
def green_area_per_inhabitant(*, municipalities: gpd.GeoDataFrame, land_cover: Path) -> pd.DataFrame:
    areas = _green_areas(municipalities, land_cover)
    population = municipalities["population_2007"].astype(float).to_numpy()
    return pd.DataFrame(
        {
            "municipality_code": areas["code"],
            "period": get_raster_layer(LAND_COVER).year,
            "value": areas["where_area_m2"] / np.where(population > 0, population, np.nan),
        }
    ).dropna(subset=["value"])
