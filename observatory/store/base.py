"""The one small interface both stores implement, and the value types that cross it."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import geopandas as gpd
import morecantile
import pandas as pd
import shapely

from layers import Layer
from observatory.settings import STORAGE_CRS

Bbox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Column:
    """A catalogue property in a condition (rendered as a quoted identifier)."""

    name: str


@dataclass(frozen=True)
class Value:
    """A value in a condition (rendered as a bound parameter)."""

    value: Any


@dataclass(frozen=True)
class Spatial:
    """``operation(layer geometry, literal)``: a shapely/PostGIS predicate name and WKB in lon/lat."""

    operation: str
    wkb: bytes


@dataclass(frozen=True)
class Condition:
    """A filter (from CQL2) as SQL keywords, columns, values and spatial tests, in order."""

    parts: tuple[str | Column | Value | Spatial, ...]
    columns: frozenset[str]


@dataclass(frozen=True)
class Count:
    """How many features match a query; ``exact`` is False for a planner's estimate."""

    value: int
    exact: bool


@dataclass(frozen=True)
class FeatureQuery:
    """What a caller may ask of a layer: all values already typed and checked against the catalogue."""

    bbox: Bbox | None = None
    limit: int = 10
    offset: int = 0
    filters: dict[str, Any] = field(default_factory=dict)
    """Equality filters on catalogue properties."""
    interval: tuple[date | None, date | None] | None = None
    """Closed interval on the layer's ``datetime`` property; None ends are open."""
    condition: Condition | None = None
    """A CQL2 filter, checked against the catalogue."""
    sortby: tuple[tuple[str, bool], ...] = ()
    """Catalogue properties to order by, each with ``True`` for descending; the id breaks ties."""

    def filtered_columns(self) -> set[str]:
        """Properties the query filters on (a withheld value must not be found through them)."""
        return set(self.filters) | (set(self.condition.columns) if self.condition else set())


@dataclass(frozen=True)
class Record:
    properties: dict[str, Any]
    geometry: shapely.Geometry


@dataclass(frozen=True)
class LoadRun:
    """One execution of a load job, kept for provenance."""

    run_id: str
    layer: str
    source_file: str
    source_sha256: str
    manifest_file: str
    manifest_sha256: str
    rows_read: int
    rows_loaded: int
    rows_repaired: int
    rows_rejected: int
    report_file: str
    """CSV listing every rejected and every repaired row, with its reason."""
    started_at: str
    finished_at: str
    code_version: str
    coverage: str | None = ""
    """What the source declares it reports completely (its manifest's ``[coverage]``, as JSON):
    inside it an absent record is a zero, outside it a missing value. Empty: not declared."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


LOAD_RUN_FIELDS = [f.name for f in dataclasses.fields(LoadRun)]


@dataclass(frozen=True)
class LayerVersion:
    """Changes every time a layer's rows are replaced; HTTP validators (ETag) derive from it, so a
    load or a recomputation invalidates every cached response of that layer."""

    tag: str
    changed_at: datetime


@dataclass(frozen=True)
class AccessEntry:
    """One restricted read, for the audit log: who (subject, role, how identified), what (method,
    path, layer), when (UTC) and the status answered."""

    at: datetime
    subject: str
    role: str
    via: str
    method: str
    path: str
    layer: str | None
    status: int

    def __post_init__(self) -> None:
        if self.at.utcoffset() is None:
            raise ValueError("an access entry's time must be timezone-aware (UTC)")

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "at": self.at.isoformat()}


ACCESS_FIELDS = [f.name for f in dataclasses.fields(AccessEntry)]


class Writer(Protocol):
    """Changes to several layers that become visible together, or not at all (see Store.writing)."""

    def begin(self, layer: Layer) -> None:
        """Start the layer's new content, empty; the old one stays visible until the end."""

    def append(self, layer: Layer, frame: gpd.GeoDataFrame) -> None:
        """Add rows (in the catalogue's columns, storage CRS) to the layer's new content."""

    def finish(self, layer: Layer, run: LoadRun | None) -> None:
        """The layer's new content is complete; record the run and a new layer version."""

    def record(self, run: LoadRun) -> None:
        """Record a run whose output lives outside the tables (a raster file)."""


class Store(Protocol):
    """Where layers live. The rest of the code does not know which implementation it talks to."""

    kind: str

    def writing(self) -> AbstractContextManager[Writer]:
        """A write session: every layer finished in it is swapped in when the block ends without
        error, in one transaction; on error the store is left exactly as it was."""

    def replace_layer(self, layer: Layer, frame: gpd.GeoDataFrame, *, run: LoadRun | None) -> None:
        """Replace all of a layer's rows, and record the run, in one atomic step."""

    def extent(self, layer: Layer) -> Bbox | None:
        """The lon/lat bounding box of the layer's rows; None when it has none."""

    def read_layer(self, layer: Layer) -> gpd.GeoDataFrame:
        """The whole layer in the catalogue's columns; empty when it was never loaded."""

    def select(self, layer: Layer, query: FeatureQuery) -> list[Record]:
        """One page of features matching the query, in a stable order (the layer's id), as public
        outputs serve them: the values the layer's ``withheld`` rule names are null there."""

    def count(self, layer: Layer, query: FeatureQuery, *, exact_up_to: int) -> Count | None:
        """Features matching the query (paging ignored): exact when there are at most
        ``exact_up_to`` (or counting is cheap), else an estimate, or None when neither is cheap."""

    def tile(self, layer: Layer, tile: morecantile.Tile, query: FeatureQuery) -> bytes:
        """A Mapbox Vector Tile of the layer (WebMercatorQuad), one MVT layer named after it; withheld
        values are left out, as in ``select``."""

    def load_runs(self) -> list[LoadRun]:
        """Every recorded load run, oldest first."""

    def layer_version(self, layer: Layer) -> LayerVersion | None:
        """The layer's current version; None when it was never written."""

    def close(self) -> None: ...

    def record_access(self, entry: AccessEntry) -> None:
        """Append a restricted read to the audit log (kept across loads and restarts)."""

    def access_log(self, limit: int = 1000) -> list[AccessEntry]:
        """The latest ``limit`` entries of the audit log, newest first."""


def conform(layer: Layer, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The frame with exactly the catalogue's columns, in order, typed, in the storage CRS."""
    missing = [column for column in layer.properties if column not in frame.columns]
    if missing:
        raise ValueError(f"layer {layer.name}: frame lacks columns {missing}")
    if frame.crs is None or not frame.crs.equals(STORAGE_CRS):
        raise ValueError(f"layer {layer.name}: frame must be in {STORAGE_CRS}, got {frame.crs}")
    data: dict[str, Any] = {}
    for column, kind in layer.properties.items():
        values = frame[column]
        if kind == "integer":
            data[column] = pd.to_numeric(values).astype("Int64")
        elif kind == "number":
            data[column] = pd.to_numeric(values).astype("float64")
        elif kind == "date":
            data[column] = pd.to_datetime(values).dt.normalize().astype("datetime64[ms]")
        else:
            data[column] = values.astype("string").astype(object).where(values.notna(), None)
    geometries = frame.geometry.values
    if layer.geometry == "MultiPolygon":  # a dissolve or a simple source gives plain polygons
        single = shapely.get_type_id(geometries) == shapely.GeometryType.POLYGON
        if single.any():
            geometries = geometries.copy()
            geometries[single] = [shapely.MultiPolygon([polygon]) for polygon in geometries[single]]
    return gpd.GeoDataFrame(data, geometry=geometries, crs=STORAGE_CRS).rename_geometry("geom")


def replace_layer(store: Store, layer: Layer, frame: gpd.GeoDataFrame, *, run: LoadRun | None) -> None:
    """The one-layer write session both stores use for ``Store.replace_layer``."""
    with store.writing() as writer:
        writer.begin(layer)
        writer.append(layer, frame)
        writer.finish(layer, run)


def with_catalogue_columns(layer: Layer, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A stored frame with every catalogue column, those added to the catalogue since it was
    written coming back empty."""
    for column in layer.properties:
        if column not in frame.columns:
            frame[column] = None
    return frame


def empty_frame(layer: Layer) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {column: pd.Series([], dtype=object) for column in layer.properties},
        geometry=gpd.GeoSeries([], crs=STORAGE_CRS),
        crs=STORAGE_CRS,
    )
    return conform(layer, frame)
