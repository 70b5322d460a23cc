"""Demography and density indicators."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.settings import METRIC_CRS
from zoning.classes import URBANISED_CLASSES

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


@indicator(
    id="population_density_urbanised",
    sdg_target="11.3.1",
    theme="density",
    title_es="Densidad de población por hectárea urbanizada",
    title_en="Population density per urbanised hectare",
    formula="población del censo 2007 / área urbanizada del municipio (ha); área urbanizada = unión de "
    "las zonas del Esquema Director de clase habitacional, comercio y servicios, industria, "
    "equipamientos o uso mixto (no espacio público, protección ni agrícola) intersecada con el "
    "municipio, medida en EPSG:32616",
    unit="hab/ha",
    direction="neutral",
    inputs=("zoning", "municipalities"),
    references=(
        "DIGESTYC, VI Censo de Población y V de Vivienda 2007",
        "OPAMSS, Esquema Director del AMSS (usos del suelo)",
        "UN-Habitat (2018). SDG indicator 11.3.1 metadata: ratio of land consumption rate to "
        "population growth rate (built-up area per capita)",
    ),
)
def population_density_urbanised(
    *, zoning: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Inhabitants per hectare of built-up land, as the zoning plan draws it.

    Notes
    -----
    :math:`d_m = P_m / U_m`, with :math:`P_m` the 2007 census population and :math:`U_m` the area
    in ha of the union of the zones in ``zoning.classes.URBANISED_CLASSES`` clipped to the
    municipality (a zone across a boundary counts its part in each; overlapping zones count
    once). A municipality without urbanised land has no value, not an infinite one.
    """
    urbanised = zoning.loc[zoning["land_use_class"].isin(URBANISED_CLASSES), ["geom"]].to_crs(METRIC_CRS)
    pieces = gpd.overlay(
        urbanised,
        municipalities[["code", "geom"]].to_crs(METRIC_CRS),
        how="intersection",
        keep_geom_type=True,
    )
    area_ha = pieces.dissolve(by="code").area / 1e4
    population = municipalities.set_index("code")["population_2007"].astype(float)
    value = (population.reindex(area_ha.index) / area_ha).dropna()
    return pd.DataFrame(
        {"municipality_code": value.index.to_numpy(), "period": CENSUS_YEAR, "value": value.to_numpy()}
    )
