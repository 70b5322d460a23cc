"""Row checks shared by every load job: typed values, geometry repair, extent and duplicates.

Each check returns the rows that pass and sends the others to the rejects report with a reason.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from etl.rejects import ROW, Rejects
from layers import Layer
from observatory.errors import LoadError
from observatory.settings import STORAGE_CRS

AMSS_EXTENT = (-89.55, 13.45, -88.85, 14.05)
"""Generous lon/lat box around the metropolitan area; features outside it are misplaced."""


def map_columns(
    frame: gpd.GeoDataFrame,
    columns: dict[str, tuple[str, ...]],
    *,
    optional: tuple[str, ...] = (),
    source: Path,
) -> gpd.GeoDataFrame:
    """Rename source columns to catalogue columns (case-insensitively).

    A missing source column fails the whole file, unless its catalogue column is ``optional``.
    """
    renamed = {}
    lowered = {str(c).lower(): c for c in frame.columns}
    for target, aliases in columns.items():
        found = next((lowered[a.lower()] for a in (target, *aliases) if a.lower() in lowered), None)
        if found is None:
            if target in optional:
                continue
            raise LoadError(f"{source}: missing column {aliases[0]!r} (for {target})")
        renamed[found] = target
    return frame[[ROW, *renamed, frame.geometry.name]].rename(columns=renamed)


def parse_values(
    frame: gpd.GeoDataFrame, layer: Layer, rejects: Rejects, *, required: tuple[str, ...]
) -> gpd.GeoDataFrame:
    """Convert each mapped column to its catalogue type; reject rows with unparseable values.

    A row is rejected for its first problem, in column order; blank text counts as missing.
    """
    frame = frame.copy()
    reasons = pd.Series(None, index=frame.index, dtype=object)
    for column in frame.columns.intersection(list(layer.properties)):
        text = frame[column].astype("string").str.strip()
        present = text.notna() & (text != "")
        kind = layer.properties[column]
        if kind in ("integer", "number"):
            parsed = pd.to_numeric(text.where(present), errors="coerce")
            problem = "is not a number"
        elif kind == "date":
            parsed = pd.to_datetime(text.where(present), errors="coerce", format="ISO8601")
            problem = "is not a date (YYYY-MM-DD)"
        else:
            parsed = text.where(present).astype(object).where(present, None)
            problem = ""
        bad = present & parsed.isna() if problem else pd.Series(False, index=frame.index)
        unexplained = reasons.isna()
        if column in required:
            reasons[unexplained & ~present] = f"missing value for {column}"
        wrong = unexplained & bad
        reasons[wrong] = column + " " + text[wrong].map(repr) + f" {problem}"
        frame[column] = parsed
    failed = reasons.notna()
    rejects.add(frame[failed], reasons[failed])
    return frame[~failed]


def check_geometries(
    frame: gpd.GeoDataFrame, layer: Layer, rejects: Rejects, *, source: Path
) -> gpd.GeoDataFrame:
    """Repair invalid geometries, reproject to the storage CRS and drop misplaced features."""
    geometries = frame.geometry.values
    missing = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    rejects.add(frame[missing], "no geometry")
    frame = frame[~missing]

    polygonal = layer.geometry == "MultiPolygon"
    expected = {"Polygon", "MultiPolygon"} if polygonal else {"Point"}
    types = frame.geometry.geom_type
    wrong = ~types.isin(list(expected))
    rejects.add(frame[wrong], "geometry type " + types[wrong] + f", expected {layer.geometry}")
    frame = frame[~wrong]

    if polygonal:
        repaired = shapely.make_valid(frame.geometry.values)
        repaired = np.array([_polygonal_part(g) for g in repaired], dtype=object)
        unusable = shapely.is_empty(repaired)
        rejects.add(frame[unusable], "invalid polygon that cannot be repaired")
        frame = frame[~unusable].set_geometry(list(repaired[~unusable]), crs=frame.crs)

    projected = frame.to_crs(STORAGE_CRS)
    west, south, east, north = AMSS_EXTENT
    bounds = projected.geometry.bounds
    inside = (bounds.minx >= west) & (bounds.maxx <= east) & (bounds.miny >= south) & (bounds.maxy <= north)
    if len(projected) and not inside.any():
        raise LoadError(
            f"{source}: no feature falls within the AMSS when read as {frame.crs.to_string()}; "
            "is the declared coordinate reference system right?"
        )
    rejects.add(projected[~inside], "outside the AMSS extent")
    return projected[inside]


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygons of a repaired geometry as one MultiPolygon (lines and points dropped)."""
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ("Polygon", "MultiPolygon")]
    polygons = [q for p in parts for q in shapely.get_parts(p)]
    return shapely.MultiPolygon(polygons) if polygons else shapely.MultiPolygon()


def drop_duplicates(frame: gpd.GeoDataFrame, key: str, rejects: Rejects) -> gpd.GeoDataFrame:
    """Keep the first row of each id; the later ones are rejected naming where the first was."""
    duplicated = frame.duplicated(key, keep="first")
    first_row = frame.drop_duplicates(key).set_index(key)[ROW]
    later = frame[duplicated]
    rejects.add(
        later,
        later[key].map(lambda value: f"duplicate {key} {value!r} (first at row {first_row[value]})"),
    )
    return frame[~duplicated]
