"""Services and public space: public-space area and facility counts per inhabitant.

Each value is a sum per municipality over the 2007 census population, so that on the 2024
geography it is computed again from the summed amounts and the summed population, never averaged.
The period is the census year of the denominator: the registers carry no date.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from observatory.indicators.density import CENSUS_YEAR
from observatory.indicators.registry import indicator
from observatory.settings import METRIC_CRS

CENSUS = "DIGESTYC, VI Censo de Población y V de Vivienda 2007 (denominador)"
PER_10K = 10_000


def per_inhabitants(
    amounts: pd.Series, municipalities: gpd.GeoDataFrame, *, per: float = 1.0
) -> pd.DataFrame:
    """``amounts`` (indexed by municipality code) per ``per`` inhabitants of 2007.

    A municipality missing from ``amounts`` has none of the thing and scores 0; one without a
    census population (or with none) has no value.
    """
    population = municipalities.set_index("code")["population_2007"].astype(float)
    amount = amounts.reindex(population.index, fill_value=0.0).astype(float)
    value = amount / population.where(population > 0) * per
    return pd.DataFrame(
        {"municipality_code": population.index, "period": CENSUS_YEAR, "value": value.to_numpy()}
    ).dropna(subset=["value"])


@indicator(
    id="public_space_per_inhabitant",
    census=True,
    sdg_target="11.7.1",
    iso37120="13.2",
    theme="services",
    title_es="Espacio público por habitante",
    title_en="Public space per inhabitant",
    formula="área (m², EPSG:32616) de la unión de los espacios públicos dentro del municipio / población "
    "del censo 2007; un espacio que cruza un límite cuenta su parte en cada municipio, los polígonos "
    "superpuestos se cuentan una sola vez; un municipio sin espacio público vale 0",
    unit="m²/hab",
    direction="higher_is_better",
    inputs=("public_spaces", "municipalities"),
    references=(
        "ONU-Hábitat, Indicador ODS 11.7.1: proporción del área urbana dedicada a espacio público "
        "abierto (metadatos y guía metodológica)",
        "ONU-Hábitat, Índice de Prosperidad Urbana (CPI): dimensión calidad de vida, espacio público",
        CENSUS,
    ),
)
def public_space_per_inhabitant(
    *, public_spaces: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Square metres of public space per inhabitant.

    Notes
    -----
    :math:`e_m = |U \\cap M_m| / P_m`, with :math:`U` the union of all public-space polygons (so an
    overlap, such as a sports field drawn inside its park, counts once), :math:`M_m` the municipality,
    :math:`|\\cdot|` the area in UTM 16N and :math:`P_m` the 2007 census population.
    """
    spaces = shapely.union_all(public_spaces.to_crs(METRIC_CRS).geometry.values)
    metric = municipalities.to_crs(METRIC_CRS)
    inside = shapely.area(shapely.intersection(metric.geometry.values, spaces))
    return per_inhabitants(pd.Series(inside, index=metric["code"].to_numpy()), municipalities)


def facilities_per_10k(
    facilities: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, kind: str
) -> pd.DataFrame:
    """Facilities of type ``kind`` per 10,000 inhabitants, by the municipality each was placed in.

    No facility of that type loaded at all means its register is missing: no values, not zeros.
    """
    placed = facilities.loc[facilities["type"] == kind, "municipality_code"]
    if placed.empty:
        return pd.DataFrame({"municipality_code": [], "period": [], "value": []})
    return per_inhabitants(placed.value_counts(), municipalities, per=PER_10K)


@indicator(
    id="health_facilities_per_10k",
    census=True,
    theme="services",
    title_es="Establecimientos de salud por cada 10.000 habitantes",
    title_en="Health facilities per 10,000 inhabitants",
    formula="número de establecimientos de salud (hospitales, unidades de salud, clínicas) en el "
    "municipio × 10.000 / población del censo 2007; un municipio sin establecimientos vale 0",
    unit="establecimientos por 10.000 hab",
    direction="higher_is_better",
    inputs=("facilities", "municipalities"),
    references=(
        "OMS, Service Availability and Readiness Assessment (SARA), manual de referencia: densidad de "
        "establecimientos de salud por 10.000 habitantes (referencia: 2)",
        "MINSAL, registro de establecimientos de salud",
        CENSUS,
    ),
)
def health_facilities_per_10k(
    *, facilities: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame
) -> pd.DataFrame:
    return facilities_per_10k(facilities, municipalities, "health")


@indicator(
    id="schools_per_10k",
    census=True,
    theme="services",
    title_es="Centros escolares por cada 10.000 habitantes",
    title_en="Schools per 10,000 inhabitants",
    formula="número de centros escolares (públicos y privados) en el municipio × 10.000 / población del "
    "censo 2007; un municipio sin centros escolares vale 0",
    unit="centros escolares por 10.000 hab",
    direction="higher_is_better",
    inputs=("facilities", "municipalities"),
    references=(
        "ODS 4.a: construir y adecuar instalaciones educativas (UNESCO, indicadores de infraestructura)",
        "MINED, registro de centros educativos",
        CENSUS,
    ),
)
def schools_per_10k(*, facilities: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return facilities_per_10k(facilities, municipalities, "school")
