"""Mobility indicators: the street network and public transport, per municipality."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from observatory.indicators.network import population_share_within, street_network
from observatory.indicators.registry import indicator
from observatory.settings import METRIC_CRS

STOP_WALK_M = 500.0
"""SDG 11.2.1: convenient access is a stop within 500 m walking (low-capacity systems)."""


def length_by_municipality(lines: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """The metres of each line inside each municipality (rows: line index, code, length_m).

    A stretch along a shared border counts once, for the lowest code (as a point on a border is
    placed): each municipality takes its part of the line minus what lower codes already took.
    """
    metric = lines.to_crs(METRIC_CRS)
    tree = metric.sindex
    taken = shapely.Polygon()
    pieces = []
    for code, outline in municipalities.to_crs(METRIC_CRS).set_index("code").geometry.sort_index().items():
        rows = tree.query(outline, predicate="intersects")
        inside = shapely.difference(shapely.intersection(metric.geometry.values[rows], outline), taken)
        lengths = shapely.length(inside)
        pieces.append(pd.DataFrame({"line": metric.index[rows], "code": code, "length_m": lengths}))
        taken = shapely.union(taken, outline)
    return pd.concat(pieces, ignore_index=True)


def measured_km2(municipalities: gpd.GeoDataFrame) -> pd.Series:
    """Each municipality's polygon area in km² (UTM 16N), by code."""
    return municipalities.set_index("code").to_crs(METRIC_CRS).area / 1e6


@indicator(
    id="street_density",
    theme="mobility",
    title_es="Densidad vial",
    title_en="Street density",
    formula="km de calle (todas las clases de vía, senderos peatonales incluidos) dentro del municipio / "
    "área del polígono del municipio (km²), ambos medidos en EPSG:32616; un tramo sobre un límite "
    "compartido cuenta una vez",
    unit="km/km²",
    direction="higher_is_better",
    inputs=("streets", "municipalities"),
    references=(
        "UN-Habitat (2013). Streets as public spaces and drivers of urban prosperity",
        "Boeing, G. (2017). OSMnx. Computers, Environment and Urban Systems 65",
    ),
)
def street_density(*, streets: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Kilometres of street per km² of each municipality, for the extract's year.

    Notes
    -----
    :math:`\\rho_m = L_m / A_m`: :math:`L_m` the length of the streets clipped to the polygon,
    :math:`A_m` the polygon's own measured area, not the official one, so that numerator and
    denominator cover the same ground (the open polygons are simplified: Cuscatancingo's covers
    1.94 km² of its official 6.39).
    """
    km = length_by_municipality(streets, municipalities).groupby("code")["length_m"].sum() / 1e3
    area = measured_km2(municipalities)
    return pd.DataFrame(
        {
            "municipality_code": area.index,
            "period": int(streets["period"].max()),
            "value": km.reindex(area.index, fill_value=0.0).to_numpy() / area.to_numpy(),
        }
    )


@indicator(
    id="intersection_density",
    theme="mobility",
    title_es="Densidad de intersecciones",
    title_en="Intersection density",
    formula="nodos de la red vial donde se unen 3 o más tramos (grado contado en toda la red; extremos de "
    "tramo a menos de 1 m, en una rejilla de 1 m, son un mismo nodo), situados en el municipio / área "
    "del polígono del municipio (km², EPSG:32616)",
    unit="intersecciones/km²",
    direction="higher_is_better",
    inputs=("streets", "municipalities"),
    references=(
        "Ewing, R. & Cervero, R. (2010). Travel and the built environment. JAPA 76(3)",
        "Boeing, G. (2017). OSMnx. Computers, Environment and Urban Systems 65",
    ),
)
def intersection_density(*, streets: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Intersections (degree ≥ 3) per km² of each municipality.

    Notes
    -----
    A node's degree is counted on the whole network, so a crossing on a municipal border is an
    intersection of the municipality it lies in (the lowest code when exactly on the border), its
    streets wherever they go. Dead ends (1) and bends (2) are not intersections.
    """
    network = street_network(streets)
    crossings = network.xy[network.degrees() >= 3]
    points = gpd.GeoDataFrame(geometry=shapely.points(crossings), crs=METRIC_CRS)
    outlines = municipalities[["code", "geom"]].to_crs(METRIC_CRS).sort_values("code")
    placed = gpd.sjoin(points, outlines, predicate="intersects")
    counts = placed[~placed.index.duplicated(keep="first")].groupby("code").size()
    area = measured_km2(municipalities)
    return pd.DataFrame(
        {
            "municipality_code": area.index,
            "period": int(streets["period"].max()),
            "value": counts.reindex(area.index, fill_value=0).to_numpy() / area.to_numpy(),
        }
    )


@indicator(
    id="transit_stop_access_500m",
    sdg_target="11.2.1",
    theme="mobility",
    title_es="Población a 500 m de una parada de transporte público",
    title_en="Population within 500 m of a public transport stop",
    formula="100 × población de las celdas a ≤ 500 m de una parada, caminando por la red vial (distancia "
    "de la celda a su nodo más cercano + red + de la parada a su nodo) / población del municipio; "
    "periodo: el de la capa de población",
    unit="%",
    direction="higher_is_better",
    inputs=("population", "transit_stops", "streets"),
    references=(
        "UN-Habitat (2018). SDG indicator 11.2.1 metadata: proportion of population that has "
        "convenient access to public transport (500 m walking to a low-capacity stop)",
    ),
)
def transit_stop_access_500m(
    *, population: gpd.GeoDataFrame, transit_stops: gpd.GeoDataFrame, streets: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Share of the population within 500 m of a stop along the streets (SDG 11.2.1)."""
    return population_share_within(population, transit_stops.geometry, streets, distance_m=STOP_WALK_M)


SAME_STREET_M = 15.0
"""Two lines of one route closer than this are the same street (its two directions digitised on
opposite lanes, or twice by hand): wider than a carriageway's lanes apart (the sample's hand-traced
returns run 8 m beside the outward line, 10–13 m from it at corners), narrower than a block, so
directions on parallel streets (one-way pairs a block apart, 60 m and more here) both count."""


def route_lines(
    transit_routes: gpd.GeoDataFrame, *, same_street_m: float = SAME_STREET_M
) -> gpd.GeoDataFrame:
    """Each route's streets, once (METRIC_CRS, one row per ``route_id``): the union of all its lines
    (directions, shapes, rows), where a line within ``same_street_m`` of one already taken is the
    same street.

    Notes
    -----
    Per route, longest first, each line (a direction, a shape) adds only its part farther than
    ``same_street_m`` from the lines before it (a GTFS return shape, the outward one reversed, adds
    nothing); the union of what they add is the route, a stretch it runs twice counted once:

    :math:`L_r = |\\bigcup_i (p_i \\setminus B(p_1 \\cup \\dots \\cup p_{i-1}, t))|`, the lines
    :math:`p_i` by decreasing length, :math:`B(\\cdot, t)` the buffer of ``same_street_m``.
    Where a route's directions part onto different streets each street counts, less up to ``t``
    metres where they part and meet again (the return's first and last metres beside the outward
    line's ends).
    """
    metric = transit_routes.to_crs(METRIC_CRS)
    ids = metric["route_id"].to_numpy() if "route_id" in metric.columns else metric.index.to_numpy()
    groups = metric.geometry.groupby(ids, sort=True)
    return gpd.GeoDataFrame(
        {"route_id": list(groups.groups)},
        geometry=[_streets_once(lines.to_numpy(), same_street_m) for _, lines in groups],
        crs=METRIC_CRS,
    )


def _streets_once(geometries: np.ndarray, same_street_m: float) -> shapely.Geometry:
    lines = shapely.get_parts(shapely.get_parts(geometries))  # collections, then multi-lines
    lines = lines[shapely.get_type_id(lines) == shapely.GeometryType.LINESTRING]
    kept: list[shapely.Geometry] = []
    taken = shapely.Polygon()
    for piece in sorted(lines, key=lambda line: -line.length):
        kept.append(shapely.difference(piece, taken))
        taken = shapely.union(taken, shapely.buffer(piece, same_street_m))
    return shapely.line_merge(shapely.union_all(kept))


@indicator(
    id="transit_route_length_per_10k",
    sdg_target="11.2.1",
    iso37120="18.2",
    theme="mobility",
    title_es="Longitud de rutas de transporte público por 10.000 habitantes",
    title_en="Public transport route length per 10,000 inhabitants",
    formula="10.000 × Σ km de cada ruta dentro del municipio / población del municipio (capa de población, "
    "su periodo); la longitud de una ruta es la de la unión de sus trazados: sus dos sentidos por la "
    f"misma calle cuentan una vez (líneas a menos de {SAME_STREET_M:.0f} m son la misma calle, medido en "
    "EPSG:32616; los trazados de la ruta se toman del más largo al más corto y cada uno suma solo lo "
    "que queda a más de esa distancia de los anteriores), por calles distintas cuentan ambas; dos "
    "rutas por la misma calle cuentan dos veces",
    unit="km/10.000 hab",
    direction="higher_is_better",
    inputs=("transit_routes", "population", "municipalities"),
    references=(
        "UN-Habitat (2016). City Prosperity Index: infrastructure dimension, urban mobility",
        "ISO 37120:2018, 18.2: kilometres of public transport system per 100,000 population",
    ),
)
def transit_route_length_per_10k(
    *, transit_routes: gpd.GeoDataFrame, population: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Route kilometres per 10,000 inhabitants: the service offered, so each route counts the streets
    it runs on (both directions along one street once, see :func:`route_lines`), and routes sharing
    a street each count."""
    routes = route_lines(transit_routes)
    km = length_by_municipality(routes, municipalities).groupby("code")["length_m"].sum() / 1e3
    people = population.groupby(["municipality_code", "period"], as_index=False)["population"].sum()
    people = people[people["population"] > 0]
    route_km = people["municipality_code"].map(km).fillna(0.0).to_numpy()
    return pd.DataFrame(
        {
            "municipality_code": people["municipality_code"],
            "period": people["period"].astype(int),
            "value": 1e4 * route_km / people["population"].to_numpy(),
        }
    )
