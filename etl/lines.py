"""Line sources as MultiLineStrings: a street is often a LineString, and a route traced by hand is
often a GeometryCollection of its two directions (the tracing tool stores each as a part)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from etl.report import Report

LINE_TYPES = (shapely.GeometryType.LINESTRING, shapely.GeometryType.MULTILINESTRING)
CONVERTIBLE = (*LINE_TYPES, shapely.GeometryType.GEOMETRYCOLLECTION)


def as_multilines(frame: gpd.GeoDataFrame, report: Report) -> gpd.GeoDataFrame:
    """Rows whose geometry is a LineString, a MultiLineString or a GeometryCollection become one
    MultiLineString of their line parts (points and polygons in a collection are dropped); a
    collection with no line part is rejected. Rows of other types are left for the type check."""
    values = frame.geometry.values
    convertible = np.isin(shapely.get_type_id(values), CONVERTIBLE)
    parts, owner = shapely.get_parts(values[convertible], return_index=True)
    parts, inner = shapely.get_parts(parts, return_index=True)  # a collection may hold MultiLineStrings
    owner = owner[inner]
    is_line = shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING
    rows = np.flatnonzero(convertible)
    with_lines, compact = np.unique(owner[is_line], return_inverse=True)
    lines = shapely.multilinestrings(parts[is_line], indices=compact) if len(with_lines) else []
    lineless = np.ones(len(rows), dtype=bool)
    lineless[with_lines] = False
    report.reject(frame.iloc[rows[lineless]], "a GeometryCollection with no line part")
    geometries = values.copy()
    geometries[rows[with_lines]] = lines
    keep = np.ones(len(frame), dtype=bool)
    keep[rows[lineless]] = False
    converted = frame.set_geometry(gpd.GeoSeries(geometries, index=frame.index, crs=frame.crs))
    return converted[keep]
