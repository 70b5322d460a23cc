"""GTFS feeds (a .zip or a folder of .txt tables): the stops, or the routes traced from their shapes.

A manifest picks the table with ``source.layer``: ``stops`` gives stops.txt as read (its
stop_lon/stop_lat become points like any table's coordinates); ``routes`` gives routes.txt with the
agency's name and one MultiLineString per route, made of the shapes its trips run on (each shape's
points in shape_pt_sequence order). Rows that cannot be used are rejected naming their table.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from etl.manifest import SourceSpec
from etl.report import Report
from observatory.errors import LoadError
from observatory.settings import STORAGE_CRS

TABLES = ("stops", "routes")
BOARDING = ("", "0")
"""location_type of a stop where passengers board (stations, entrances and nodes are not stops)."""


def read_gtfs(source: SourceSpec, report: Report) -> pd.DataFrame:
    """The table ``source.layer`` names, indexed by its 1-based row in its .txt file."""
    if source.layer not in TABLES:
        raise LoadError(f"{source.path}: a GTFS source needs source.layer = one of {', '.join(TABLES)}")
    feed = _Feed(source.path)
    return _stops(feed, report) if source.layer == "stops" else _routes(feed, report)


class _Feed:
    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            self.names = {p.name for p in path.iterdir()}
        else:
            try:
                with zipfile.ZipFile(path) as archive:
                    self.names = set(archive.namelist())
            except zipfile.BadZipFile:
                raise LoadError(f"{path}: not a GTFS feed (neither a folder nor a .zip)") from None

    def table(self, name: str, columns: tuple[str, ...], *, optional: bool = False) -> pd.DataFrame:
        """One .txt table as text, indexed by row; its required ``columns`` must be there."""
        if name not in self.names:
            if optional:
                return pd.DataFrame(columns=list(columns), dtype=object)
            raise LoadError(f"{self.path}: the GTFS feed has no {name}")
        if self.path.is_dir():
            raw = (self.path / name).read_bytes()
        else:
            with zipfile.ZipFile(self.path) as archive:
                raw = archive.read(name)
        try:
            frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise LoadError(f"{self.path}: {name} cannot be read as CSV ({error})") from None
        frame.columns = [str(column).strip() for column in frame.columns]
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise LoadError(f"{self.path}: {name} lacks column(s) {', '.join(missing)}")
        frame.index = pd.RangeIndex(1, len(frame) + 1)
        return frame


def _stops(feed: _Feed, report: Report) -> pd.DataFrame:
    stops = feed.table("stops.txt", ("stop_id", "stop_lat", "stop_lon"))
    if "location_type" not in stops.columns:
        return stops
    boarding = stops["location_type"].str.strip().isin(BOARDING)
    report.reading(stops)
    report.reject(
        stops[~boarding],
        "stops.txt: location_type " + stops.loc[~boarding, "location_type"] + " is not a boarding stop",
    )
    return stops[boarding]


def _routes(feed: _Feed, report: Report) -> gpd.GeoDataFrame:
    routes = feed.table("routes.txt", ("route_id", "route_type"))
    lines = _shape_lines(feed.table("shapes.txt", ("shape_id", "shape_pt_lat", "shape_pt_lon",
                                                    "shape_pt_sequence")), report)  # fmt: skip
    trips = feed.table("trips.txt", ("route_id", "trip_id", "shape_id"))
    report.reading(trips)
    has_shape = trips["shape_id"] != ""
    unknown = has_shape & ~trips["shape_id"].isin(lines.index)
    report.reject(trips[unknown], "trips.txt: shape_id " + trips.loc[unknown, "shape_id"].map(repr) +
                  " is not a usable shape of shapes.txt")  # fmt: skip
    used = trips[has_shape & ~unknown].drop_duplicates(["route_id", "shape_id"])
    traced = used.groupby("route_id")["shape_id"].agg(
        lambda ids: shapely.multilinestrings(lines.loc[ids.to_numpy()].values)
    )

    agencies = feed.table("agency.txt", ("agency_name",), optional=True)
    if "agency_id" in agencies.columns and "agency_id" in routes.columns:
        routes["agency_name"] = routes["agency_id"].map(agencies.set_index("agency_id")["agency_name"])
    elif len(agencies) == 1:  # a feed of one agency may leave agency_id out
        routes["agency_name"] = agencies["agency_name"].iloc[0]
    report.reading(routes)
    untraced = ~routes["route_id"].isin(traced.index)
    report.reject(routes[untraced], "routes.txt: no trip of the route has a shape in shapes.txt")
    routes = routes[~untraced]
    geometry = gpd.GeoSeries(routes["route_id"].map(traced).values, index=routes.index, crs=STORAGE_CRS)
    return gpd.GeoDataFrame(routes, geometry=geometry, crs=STORAGE_CRS)


def _shape_lines(shapes: pd.DataFrame, report: Report) -> pd.Series:
    """shape_id -> its LineString (GTFS coordinates are WGS 84); unusable points are rejected."""
    report.reading(shapes)
    numbers = shapes[["shape_pt_lon", "shape_pt_lat", "shape_pt_sequence"]].apply(
        pd.to_numeric, errors="coerce"
    )
    usable = np.isfinite(numbers.to_numpy(dtype=float)).all(axis=1)
    report.reject(shapes[~usable], "shapes.txt: no usable shape_pt_lat/shape_pt_lon/shape_pt_sequence")
    points = numbers[usable].assign(shape_id=shapes.loc[usable, "shape_id"])
    counts = points.groupby("shape_id")["shape_pt_sequence"].transform("size")
    short = counts < 2
    report.reject(shapes.loc[points.index[short]], "shapes.txt: a shape needs at least two usable points")
    points = points[~short].sort_values(["shape_id", "shape_pt_sequence"])
    ids, owner = np.unique(points["shape_id"].to_numpy(dtype=str), return_inverse=True)
    coordinates = points[["shape_pt_lon", "shape_pt_lat"]].to_numpy()
    return pd.Series(shapely.linestrings(coordinates, indices=owner), index=ids)
