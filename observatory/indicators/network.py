"""The walking network: a graph of the streets, and which people live within a distance of
something along it.

Nodes are the segment ends, snapped to a SNAP_M grid so that segments meeting at an intersection
share a node (OSM-derived networks are split at intersections; two streets crossing without a shared
end do not meet: a bridge). Each segment (each part of a street's MultiLineString) is an edge
weighted by its length in UTM 16N; walking ignores ``oneway`` and footways count like any street.

Reach is one multi-source search from all targets at once (Dijkstra with a cutoff, scipy's csgraph),
never a distance per origin and target. Origins and targets join the network at their nearest node
(a k-d tree); the straight distance to it is added to the distance along the network.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_array, csr_array
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from observatory.indicators.people import population_points
from observatory.settings import METRIC_CRS

SNAP_M = 1.0
"""Segment ends closer than this (one grid cell of this size) are one node."""


@dataclass(frozen=True)
class StreetNetwork:
    graph: nx.Graph
    """Nodes numbered 0..n-1; edges with their ``length`` in metres (the shortest of parallel ones)
    and ``part``, the position of their line among the streets' parts in order."""
    xy: np.ndarray
    """Node coordinates in METRIC_CRS, row i for node i."""
    adjacency: csr_array
    tree: cKDTree

    @classmethod
    def from_streets(cls, streets: gpd.GeoDataFrame) -> StreetNetwork:
        parts = shapely.get_parts(streets.to_crs(METRIC_CRS).geometry.values)
        parts = parts[shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING]
        ends = np.concatenate([shapely.get_coordinates(shapely.get_point(parts, i)) for i in (0, -1)])
        keys, node = np.unique(np.round(ends / SNAP_M), axis=0, return_inverse=True)
        node = node.reshape(-1)
        start, end = node[: len(parts)], node[len(parts) :]
        xy = keys * SNAP_M
        lengths = shapely.length(parts)
        graph = nx.Graph()
        graph.add_nodes_from(range(len(keys)))
        by_length = np.argsort(-lengths)  # added longest first: the shortest of parallel edges stays
        graph.add_edges_from(
            (int(start[i]), int(end[i]), {"length": float(lengths[i]), "part": int(i)})
            for i in by_length
            if start[i] != end[i]
        )
        adjacency = nx.to_scipy_sparse_array(graph, nodelist=range(len(keys)), weight="length", format="csr")
        return cls(graph, xy, adjacency, cKDTree(xy))

    def degrees(self) -> np.ndarray:
        """Streets meeting at each node, over the whole network."""
        return np.array([degree for _, degree in sorted(self.graph.degree())], dtype=int)

    def snap(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's nearest node and its straight distance to it (metres)."""
        distance, node = self.tree.query(points)
        return node, distance

    def distances_from(self, targets: np.ndarray, *, cutoff_m: float) -> np.ndarray:
        """Distance (metres) from every node to the nearest target point, snapping included; inf
        beyond ``cutoff_m``. One search from a virtual source joined to each target's node by its
        snapping distance."""
        n = len(self.xy)
        if len(targets) == 0:
            return np.full(n, np.inf)
        node, offset = self.snap(targets)
        source = n  # the virtual node, one past the last
        nearest = pd.Series(offset).groupby(node).min()  # of several targets on a node, the nearest
        edges = self.adjacency.tocoo()
        # built from its entries, not by adding matrices: a sum would drop a target's zero link
        graph = coo_array(
            (
                np.concatenate([edges.data, nearest.to_numpy()]),
                (np.concatenate([edges.row, np.full(len(nearest), source)]),
                 np.concatenate([edges.col, nearest.index.to_numpy()])),
            ),
            shape=(n + 1, n + 1),
        ).tocsr()  # fmt: skip
        return dijkstra(graph, directed=True, indices=source, limit=cutoff_m)[:n]

    def within(self, origins: np.ndarray, targets: np.ndarray, *, distance_m: float) -> np.ndarray:
        """For each origin point, whether a target is at most ``distance_m`` away along the network
        (both snapping distances included)."""
        reach = self.distances_from(targets, cutoff_m=distance_m)
        node, offset = self.snap(origins)
        return reach[node] + offset <= distance_m


_cached: tuple[weakref.ref[gpd.GeoDataFrame], StreetNetwork] | None = None


def street_network(streets: gpd.GeoDataFrame) -> StreetNetwork:
    """The network of this streets frame, built once: a compute run passes the same frame to every
    indicator on both geographies."""
    global _cached
    if _cached is not None and _cached[0]() is streets:
        return _cached[1]
    network = StreetNetwork.from_streets(streets)
    _cached = (weakref.ref(streets), network)
    return network


def population_share_within(
    population: gpd.GeoDataFrame, targets: gpd.GeoSeries, streets: gpd.GeoDataFrame, *, distance_m: float
) -> pd.DataFrame:
    """Per municipality and period: % of the population whose cell is within ``distance_m`` along
    the streets of a target point (0 where there is no target; no row without population).

    Notes
    -----
    :math:`S_m = 100 \\sum_{c \\in m,\\, d_c \\le D} P_c / \\sum_{c \\in m} P_c`, with :math:`d_c`
    the snapping distance of cell c's point + the network distance to the nearest target node +
    that target's snapping distance (UN-Habitat, SDG 11.2.1 method, on the street network).
    """
    origins = population_points(population).dropna(subset=["population", "municipality_code"])
    network = street_network(streets)
    target_xy = shapely.get_coordinates(targets.to_crs(METRIC_CRS).values)
    covered = network.within(shapely.get_coordinates(origins.geometry.values), target_xy,
                             distance_m=distance_m)  # fmt: skip
    totals = (
        origins.assign(reached=origins["population"].where(covered, 0.0))
        .groupby(["municipality_code", "period"], as_index=False)[["reached", "population"]]
        .sum()
    )
    totals = totals[totals["population"] > 0]
    return pd.DataFrame(
        {
            "municipality_code": totals["municipality_code"],
            "period": totals["period"].astype(int),
            "value": 100 * totals["reached"] / totals["population"],
        }
    )
