"""Frames written as files GDAL, QGIS, pandas, DuckDB and spreadsheets read: CSV, XLSX, GeoJSON,
GeoPackage, FlatGeobuf and GeoParquet, typed from the layer catalogue.

Used by the download endpoints and the static export. A frame is written with pyogrio (GDAL) or
pyarrow straight to a file, never turned into one JSON document in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from layers import Layer
from observatory.disclosure import public_frame
from observatory.spreadsheet import neutralise_frame
from observatory.store import Store


@dataclass(frozen=True)
class FileFormat:
    suffix: str
    media_type: str
    driver: str | None
    """GDAL driver; None for GeoParquet, which pyarrow writes."""
    options: dict[str, str] = field(default_factory=dict)
    """GDAL layer creation options."""
    dates_as_text: bool = False
    """Dates as ISO text (``2017-01-02``), which GDAL's CSV and GeoJSON readers type as Date."""
    spreadsheet: bool = False
    """Opened in Excel or LibreOffice: text cells that would run as formulas are neutralised, and
    the geometry is a WKT column (GDAL's XLSX driver has none; its CSV driver makes the WKT)."""


FORMATS = {
    "csv": FileFormat(
        ".csv", "text/csv", "CSV", {"GEOMETRY": "AS_WKT"}, dates_as_text=True, spreadsheet=True
    ),
    "xlsx": FileFormat(
        ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XLSX",
        dates_as_text=True, spreadsheet=True,
    ),
    "geojson": FileFormat(
        ".geojson", "application/geo+json", "GeoJSON", {"RFC7946": "YES"}, dates_as_text=True
    ),
    "gpkg": FileFormat(".gpkg", "application/geopackage+sqlite3", "GPKG"),
    "fgb": FileFormat(".fgb", "application/flatgeobuf", "FlatGeobuf"),
    "parquet": FileFormat(".parquet", "application/vnd.apache.parquet", None),
}  # fmt: skip
"""Download formats by their ``f=`` name."""


def public_layer(store: Store, layer: Layer) -> gpd.GeoDataFrame:
    """The layer's rows as public outputs serve them: the values its ``withheld`` rule names are null."""
    return public_frame(layer, store.read_layer(layer))


def write_frame(frame: gpd.GeoDataFrame, path: Path, file_format: FileFormat, *, name: str) -> None:
    """Write ``frame`` as one layer ``name``. Dates: DateTime fields in GeoPackage and FlatGeobuf,
    date32 in GeoParquet, ISO text (which GDAL reads back as Date) in CSV and GeoJSON."""
    dates = frame.columns[frame.dtypes.map(pd.api.types.is_datetime64_any_dtype)]
    if file_format.driver is None:
        days = frame.assign(**{column: _days(frame[column]) for column in dates})
        days.to_parquet(path, index=False, compression="zstd", write_covering_bbox=True)
        return
    if file_format.dates_as_text:
        frame = frame.assign(**{column: _days(frame[column]).map(_iso) for column in dates})
    if file_format.spreadsheet:
        frame = neutralise_frame(frame)
    if file_format.driver == "XLSX":
        frame = pd.DataFrame(frame.drop(columns=frame.geometry.name)).assign(geometry=frame.geometry.to_wkt())
    pyogrio.write_dataframe(
        frame, path, layer=name, driver=file_format.driver, layer_options=file_format.options or None
    )


def _days(values: pd.Series) -> pd.Series:
    """Timestamps at midnight as ``datetime.date`` objects (None where missing)."""
    days = values.dt.date.astype(object)
    return days.where(values.notna(), None)


def _iso(day: object) -> str | None:
    return None if day is None else str(day)
