"""Demography and density indicators."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from layers import get_raster_layer
from observatory.indicators.registry import indicator
from observatory.indicators.urban_control import APPROVED, CONSTRUCTION, HOUSING, granted_grid
from observatory.rasters import zonal_areas
from observatory.settings import METRIC_CRS
from zoning.classes import URBANISED_CLASSES

CENSUS_YEAR = 2007
LAND_COVER = "land_cover"
BUILT_UP = 50
"""ESA WorldCover class 50: built-up (buildings, roads, other artificial surfaces)."""


def area_km2(municipalities: gpd.GeoDataFrame) -> pd.Series:
    """Each municipality's official area (km²), the polygon's measured one (UTM 16N) where none is given."""
    return municipalities["official_area_km2"].fillna(municipalities.to_crs(METRIC_CRS).area / 1e6)


@indicator(
    id="population_density",
    census=True,
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
    return pd.DataFrame(
        {
            "municipality_code": municipalities["code"],
            "period": CENSUS_YEAR,
            "value": municipalities["population_2007"].astype(float) / area_km2(municipalities),
        }
    ).dropna(subset=["value"])


@indicator(
    id="population_density_urbanised",
    census=True,
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


@indicator(
    id="built_up_density",
    census=True,
    theme="density",
    sdg_target="11.3.1",
    title_es="Densidad de población en suelo construido",
    title_en="Population density on built-up land",
    formula="población del censo 2007 / área construida del municipio (km², clase 50 de ESA WorldCover "
    "2021, por cobertura exacta de píxeles); periodo: el año de la cobertura",
    unit="hab/km² construido",
    direction="neutral",
    inputs=("municipalities", LAND_COVER),
    references=(
        "DIGESTYC, VI Censo de Población y V de Vivienda 2007",
        "ESA WorldCover 2021 (Zanaga et al., 2022), clase 50 (construido)",
        "UN-Habitat (2018). SDG indicator 11.3.1 metadata (built-up area per capita)",
    ),
)
def built_up_density(*, municipalities: gpd.GeoDataFrame, land_cover: Path) -> pd.DataFrame:
    """Inhabitants per km² of land the satellite sees built up: the density where people live.

    Notes
    -----
    :math:`d_m = P_m / B_m`, with :math:`P_m` the 2007 census population and :math:`B_m` the area
    of class-50 pixels inside the municipality, each pixel counted by the share of it inside
    (``observatory.rasters.zonal_areas``). The inverse of SDG 11.3.1's built-up area per capita. A
    municipality with no built-up pixel has no value, not an infinite one.
    """
    areas = zonal_areas(land_cover, municipalities, id_column="code", where=lambda v: v == BUILT_UP)
    built_km2 = areas["where_area_m2"].to_numpy() / 1e6
    population = municipalities["population_2007"].astype(float).to_numpy()
    return pd.DataFrame(
        {
            "municipality_code": areas["code"],
            "period": get_raster_layer(LAND_COVER).year,
            "value": population / np.where(built_km2 > 0, built_km2, np.nan),
        }
    ).dropna(subset=["value"])


@indicator(
    id="housing_permit_density",
    theme="density",
    title_es="Densidad de permisos de vivienda",
    title_en="Housing permit density",
    formula="permisos de construcción aprobados de uso habitacional resueltos en el año / área oficial "
    "del municipio (km²; si no la hay, la del polígono en EPSG:32616); 0 en un municipio sin permisos "
    "un año en que la oficina aprobó permisos de construcción en otros; sin valor un año en que no "
    "aprobó ninguno",
    unit="permisos/km²",
    direction="neutral",
    inputs=("permits", "municipalities"),
    references=("OPAMSS, registro de trámites de control urbano",),
)
def housing_permit_density(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Approved housing permits per km² and year of resolution: where the city is densifying.

    Notes
    -----
    :math:`h_{m,y} = N_{m,y} / A_m`, with :math:`N_{m,y}` the approved construction permits
    (``permiso_construccion``, ``aprobado``) of use ``habitacional`` resolved in year :math:`y`
    in municipality :math:`m`, and :math:`A_m` its area. ``n`` is :math:`N_{m,y}`.
    """
    housing = permits[
        (permits["kind"] == CONSTRUCTION)
        & (permits["status"] == APPROVED)
        & (permits["use_class"] == HOUSING)
        & permits["resolved"].notna()
    ]
    counts = housing.groupby(["municipality_code", housing["resolved"].dt.year.rename("period")]).size()
    grid = granted_grid(permits, municipalities, CONSTRUCTION)
    counts = counts.reindex(grid, fill_value=0).rename("n").reset_index()
    area = area_km2(municipalities).set_axis(municipalities["code"])
    return counts.assign(
        period=counts["period"].astype(int), value=counts["n"] / counts["municipality_code"].map(area)
    )
