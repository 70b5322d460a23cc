"""Access to services: the share of the population within walking distance, along the streets, of
public space, health facilities and schools (see ``network`` for how distances are measured)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from observatory.indicators.network import population_share_within
from observatory.indicators.registry import indicator
from observatory.settings import METRIC_CRS

PUBLIC_SPACE_WALK_M = 400.0
FACILITY_WALK_M = 1_000.0
GATE_SPACING_M = 25.0
"""A public space is entered anywhere along its edge: a possible gate every this many metres."""

NETWORK_METHOD = (
    "distancia caminando por la red vial: de la celda (su punto interior) a su nodo más cercano, por la "
    "red (no dirigida, senderos incluidos, nodos en los extremos de tramo sobre una rejilla de 1 m), y del "
    "nodo al destino; periodo: el de la capa de población"
)


def public_space_gates(public_spaces: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Points every GATE_SPACING_M metres along each public space's edge (METRIC_CRS): a park is
    reached at its edge, wherever that is nearest, not at its centre."""
    edges = public_spaces.to_crs(METRIC_CRS).boundary.values
    points = shapely.get_coordinates(shapely.segmentize(edges, GATE_SPACING_M))
    return gpd.GeoSeries(shapely.points(points), crs=METRIC_CRS)


@indicator(
    id="public_space_access_400m",
    sdg_target="11.7.1",
    theme="services",
    title_es="Población a 400 m de un espacio público",
    title_en="Population within 400 m of a public space",
    formula="100 × población de las celdas a ≤ 400 m caminando del borde de un espacio público (un acceso "
    f"posible cada {GATE_SPACING_M:.0f} m del borde) / población del municipio; {NETWORK_METHOD}",
    unit="%",
    direction="higher_is_better",
    inputs=("population", "public_spaces", "streets"),
    references=(
        "UN-Habitat (2018). SDG indicator 11.7.1 metadata: 400 m walking distance to open public space",
    ),
)
def public_space_access_400m(
    *, population: gpd.GeoDataFrame, public_spaces: gpd.GeoDataFrame, streets: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Share of the population within 400 m of a public space along the streets (SDG 11.7.1)."""
    gates = public_space_gates(public_spaces)
    return population_share_within(population, gates, streets, distance_m=PUBLIC_SPACE_WALK_M)


def _facility_access(
    population: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, kind: str
) -> pd.DataFrame:
    targets = facilities.loc[facilities["type"] == kind].geometry
    return population_share_within(population, targets, streets, distance_m=FACILITY_WALK_M)


@indicator(
    id="health_access_1km",
    theme="services",
    title_es="Población a 1 km de un establecimiento de salud",
    title_en="Population within 1 km of a health facility",
    formula=f"100 × población de las celdas a ≤ 1 km de un equipamiento de tipo health / población del "
    f"municipio; {NETWORK_METHOD}",
    unit="%",
    direction="higher_is_better",
    inputs=("population", "facilities", "streets"),
    references=("WHO/World Bank (2017). Tracking Universal Health Coverage: physical access to services",),
)
def health_access_1km(
    *, population: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, streets: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Share of the population within 1 km of a health facility along the streets."""
    return _facility_access(population, facilities, streets, "health")


@indicator(
    id="school_access_1km",
    theme="services",
    title_es="Población a 1 km de un centro escolar",
    title_en="Population within 1 km of a school",
    formula=f"100 × población de las celdas a ≤ 1 km de un equipamiento de tipo school / población del "
    f"municipio; {NETWORK_METHOD}",
    unit="%",
    direction="higher_is_better",
    inputs=("population", "facilities", "streets"),
    references=("UN-Habitat (2016). City Prosperity Index: quality of life, education (access to schools)",),
)
def school_access_1km(
    *, population: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, streets: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Share of the population within 1 km of a school along the streets."""
    return _facility_access(population, facilities, streets, "school")
