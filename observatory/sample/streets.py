"""The street network as an OpenStreetMap extract gives it: segments between intersections, laid as
organic blocks (the edges of a Voronoi partition) over the real AMSS outline, small (~100 m) near
San Salvador's centre and large (300-400 m) on the volcano's slopes and in the rural north, with
arterials (the shortest ways across the city) and one-way streets in the centre."""

from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from pyproj import Transformer

from observatory.indicators.network import StreetNetwork
from observatory.sample.geometry import centre_metric, random_points_in
from observatory.settings import METRIC_CRS, STORAGE_CRS

STREETS_SEED = 61_511
"""Mixed with the sample's seed: the streets' own random stream."""
EXTRACT_YEAR = 2024
SAN_SALVADOR_VOLCANO = (-89.2917, 13.7347)
"""Lon/lat of El Boquerón's crater: blocks grow sparse on its slopes."""
BLOCK_DECAY_M = 3_500.0
VOLCANO_RADIUS_M = 4_000.0
ONEWAY_RADIUS_M = 2_500.0
MIN_SEGMENT_M = 5.0
"""Shorter slivers of the clipping are dropped."""
ARTERIALS = {"primary": 6, "secondary": 14}
"""How many crossings of the city become each class of arterial."""


def streets_frame(
    outline: shapely.Geometry, rng: np.random.Generator, *, segments: int = 11_000
) -> gpd.GeoDataFrame:
    """About ``segments`` street segments (EPSG:4326) with OSM's columns osm_id, highway, name and
    oneway ("yes"/"no"), inside ``outline`` (metric CRS)."""
    lines = _block_edges(outline, rng, segments)
    highway = _classes(lines, rng)
    centre = centre_metric()
    near_centre = shapely.distance(lines, centre) < ONEWAY_RADIUS_M
    oneway = near_centre & np.isin(highway, ["residential", "tertiary"]) & (rng.random(len(lines)) < 0.5)
    names = np.where(
        np.isin(highway, list(ARTERIALS)),
        [f"Boulevard {n}" for n in rng.integers(1, 40, len(lines))],
        [f"Calle {n}" for n in rng.integers(1, 400, len(lines))],
    )
    names = names.astype(object)
    names[np.isin(highway, ["footway", "service"])] = None
    return gpd.GeoDataFrame(
        {
            "osm_id": np.arange(1, len(lines) + 1) * 7 + 100_000_000,
            "highway": highway,
            "name": names,
            "oneway": np.where(oneway, "yes", "no"),
        },
        geometry=lines,
        crs=METRIC_CRS,
    ).to_crs(STORAGE_CRS)


def _block_edges(outline: shapely.Geometry, rng: np.random.Generator, segments: int) -> np.ndarray:
    """The edges of a Voronoi partition of seeds denser toward the centre and thinned on the
    volcano, clipped to the outline: a Voronoi diagram has about three edges per seed."""
    seeds = random_points_in(outline, segments // 3, rng, toward=centre_metric(), decay_m=BLOCK_DECAY_M)
    x, y = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True).transform(*SAN_SALVADOR_VOLCANO)
    on_slopes = np.hypot(seeds[:, 0] - x, seeds[:, 1] - y) < VOLCANO_RADIUS_M
    seeds = seeds[~on_slopes | (rng.random(len(seeds)) < 0.3)]
    edges = shapely.voronoi_polygons(shapely.multipoints(seeds), only_edges=True, extend_to=outline)
    clipped = shapely.intersection(shapely.get_parts(edges), outline)
    parts = shapely.get_parts(clipped)
    lines = shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING
    return parts[lines & (shapely.length(parts) > MIN_SEGMENT_M)]


def largest_component(graph: nx.Graph) -> np.ndarray:
    """The nodes of the graph's largest connected part (the network islands of the clipping left out)."""
    sizes = {min(nodes): len(nodes) for nodes in nx.connected_components(graph)}
    return np.array(sorted(nx.node_connected_component(graph, max(sizes, key=sizes.__getitem__))))


def _classes(lines: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """OSM highway classes: arterials along shortest crossings of the city, a few footways and
    service roads, residential streets elsewhere."""
    graph = StreetNetwork.from_streets(gpd.GeoDataFrame(geometry=lines, crs=METRIC_CRS)).graph
    largest = largest_component(graph)
    highway = rng.choice(["residential", "tertiary", "footway", "service"], size=len(lines),
                         p=[0.78, 0.12, 0.05, 0.05])  # fmt: skip
    for kind, count in reversed(ARTERIALS.items()):  # primaries drawn last, over secondaries
        for _ in range(count):
            a, b = rng.choice(largest, size=2, replace=False)
            path = nx.shortest_path(graph, int(a), int(b), weight="length")
            highway[[graph.edges[u, v]["part"] for u, v in itertools.pairwise(path)]] = kind
    return highway
