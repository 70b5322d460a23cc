"""Row checks every load runs: geometry type (lines gathered into MultiLineStrings), repair
(reported with the area it changed), the storage CRS, a country-wide sanity box, and duplicate ids
across the whole file."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from etl.lines import as_multilines
from etl.report import Report
from layers import Layer
from observatory.settings import COUNTRY_BOUNDS, METRIC_CRS, STORAGE_CRS


def check_geometries(frame: gpd.GeoDataFrame, layer: Layer, report: Report) -> gpd.GeoDataFrame:
    """Valid 2-D geometries of the layer's type in the storage CRS; the rest rejected or repaired."""
    geometries = frame.geometry.values
    if (shapely.has_z(geometries) | shapely.has_m(geometries)).any():  # KML, GPS: heights, measures
        geometries = shapely.force_2d(geometries)
        frame = frame.set_geometry(gpd.GeoSeries(geometries, index=frame.index, crs=frame.crs))
    missing = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    report.reject(frame[missing], "no geometry")
    frame = frame[~missing]

    polygonal = layer.geometry == "MultiPolygon"
    if layer.geometry == "MultiLineString":
        frame = as_multilines(frame, report)
    expected = ["Polygon", "MultiPolygon"] if polygonal else [layer.geometry]
    # Type ids, not type names: naming a million geometries makes a million Python strings.
    type_ids = shapely.get_type_id(frame.geometry.values)
    wrong = ~np.isin(type_ids, [shapely.GeometryType[name.upper()] for name in expected])
    report.reject(
        frame[wrong], "geometry type " + frame.geometry[wrong].geom_type + f", expected {layer.geometry}"
    )
    frame = frame[~wrong]
    if polygonal:
        frame = _repair_polygons(frame, report)

    projected = frame.to_crs(STORAGE_CRS)
    west, south, east, north = COUNTRY_BOUNDS
    minx, miny, maxx, maxy = shapely.bounds(projected.geometry.values).T
    inside = (minx >= west) & (maxx <= east) & (miny >= south) & (maxy <= north)
    report.reject(projected[~inside], f"outside El Salvador when read as {frame.crs.to_string()}")
    return projected[inside]


def _repair_polygons(frame: gpd.GeoDataFrame, report: Report) -> gpd.GeoDataFrame:
    """Invalid polygons made valid (their polygonal part); the area before and after is reported."""
    values = frame.geometry.values
    invalid = ~shapely.is_valid(values)
    repaired = np.array([_polygonal_part(g) for g in shapely.make_valid(values)], dtype=object)
    unusable = shapely.is_empty(repaired)
    report.reject(frame[unusable], "invalid polygon that cannot be repaired")
    changed = invalid & ~unusable
    if changed.any():
        metric = frame.crs is not None and frame.crs.is_projected
        before = _km2(values[changed], frame.crs, metric)
        after = _km2(repaired[changed], frame.crs, metric)
        reasons = [
            f"invalid polygon made valid ({shapely.is_valid_reason(g)}): area {b:.4f} → {a:.4f} km²"
            for g, b, a in zip(values[changed], before, after, strict=True)
        ]
        report.repair(frame[changed], pd.Series(reasons, index=frame.index[changed]))
    kept = frame[~unusable]
    return kept.set_geometry(gpd.GeoSeries(repaired[~unusable], index=kept.index, crs=frame.crs))


def _km2(geometries: np.ndarray, crs: object, metric: bool) -> np.ndarray:
    """Areas in km² measured in UTM 16N (the source's own units when it is already projected)."""
    series = gpd.GeoSeries(geometries, crs=crs)
    return np.asarray((series if metric else series.to_crs(METRIC_CRS)).area / 1e6)


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygons of a repaired geometry as one MultiPolygon (lines and points dropped)."""
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ("Polygon", "MultiPolygon")]
    polygons = [q for p in parts for q in shapely.get_parts(p)]
    return shapely.MultiPolygon(polygons) if polygons else shapely.MultiPolygon()


class Deduplicator:
    """Keeps the first row of each id across all the chunks of a file; later ones are rejected
    naming the row of the first."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.first_rows: dict[str, int] = {}

    def __call__(self, frame: pd.DataFrame, report: Report) -> pd.DataFrame:
        ids = frame[self.key].astype(str).to_numpy(dtype=object)
        seen = self.first_rows
        repeated = np.fromiter((value in seen for value in ids), dtype=bool, count=len(ids))
        repeated |= pd.Series(ids).duplicated(keep="first").to_numpy()
        seen.update(zip(ids[~repeated], frame.index[~repeated].astype(int), strict=True))
        later = frame[repeated]
        report.reject(
            later, pd.Series([f"duplicate {self.key} {v!r} (first at row {seen[v]})" for v in ids[repeated]],
                             index=later.index),
        )  # fmt: skip
        return frame[~repeated]
