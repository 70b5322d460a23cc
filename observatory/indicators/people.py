"""People in space: the population layer's cells as points, for indicators that measure who is near
what (distances along the network, buffers) and need each cell's people at one place."""

from __future__ import annotations

import geopandas as gpd
import shapely

from observatory.settings import METRIC_CRS


def population_points(population: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One point per population cell, at its representative point, in UTM 16N.

    Returns
    -------
    GeoDataFrame
        ``cell_id``, ``population`` (float), ``period``, ``municipality_code`` and a point geometry in
        ``METRIC_CRS``, in the cells' order and index.

    Notes
    -----
    The point is :func:`shapely.point_on_surface` of the cell measured in UTM 16N: the centre of
    a grid cell, and a point inside any census segment, even a crescent-shaped one whose centroid
    lies outside it, so a cell's people are never placed outside the cell.
    """
    metric = population.to_crs(METRIC_CRS)
    return gpd.GeoDataFrame(
        {
            "cell_id": metric["cell_id"],
            "population": metric["population"].astype(float),
            "period": metric["period"],
            "municipality_code": metric["municipality_code"],
        },
        geometry=shapely.point_on_surface(metric.geometry.values),
        crs=METRIC_CRS,
        index=metric.index,
    )
