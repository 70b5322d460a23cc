"""Reading source files of every format the data come in, as chunks indexed by source row.

Each chunk is a frame of the source's columns as read, indexed by the 1-based row (header
excluded), with a ``geometry`` column when the source has coordinates. Tables are read as text so
that nothing is converted before the manifest says how.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyogrio
import shapely

from etl.derive import Context
from etl.gtfs import read_gtfs
from etl.manifest import Manifest, SourceSpec
from etl.ragged import header_columns, is_rectangular, ragged_chunks
from etl.raster_cells import pixel_cells
from etl.report import Report
from observatory.errors import LoadError

log = logging.getLogger(__name__)
CHUNK_ROWS = 100_000
COORDINATE_NAMES = [
    ("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"), ("longitud", "latitud"), ("x", "y"),
    ("este", "norte"), ("stop_lon", "stop_lat"),
]  # fmt: skip
LONLAT_NAMES = {"lon", "longitude", "lng", "longitud", "stop_lon"}
_MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf]")


def read_chunks(
    manifest: Manifest, report: Report, *, chunk_rows: int = CHUNK_ROWS, context: Context | None = None
) -> Iterator[pd.DataFrame]:
    """The source as chunks; unreadable files and tables whose coordinates cannot be placed are
    LoadErrors naming the file. Rows without usable coordinates are rejected here. A GeoTIFF's
    pixels are read over the municipalities of ``context`` only."""
    source = manifest.source
    kind = manifest.source_format
    if not (source.path.is_file() or (kind == "gtfs" and source.path.is_dir())):
        raise LoadError(f"{source.path}: file not found")
    ragged = pd.Series(dtype=object)
    if kind == "csv":
        chunks = _csv_chunks(source, chunk_rows)
    elif kind == "excel":
        chunks = iter([(_excel(source), ragged)])
    elif kind == "geotiff":
        municipalities = context.layer("municipalities") if context is not None else gpd.GeoDataFrame()
        chunks = ((cells, ragged) for cells in pixel_cells(manifest, municipalities, chunk_rows=chunk_rows))
    elif kind == "gtfs":
        chunks = iter([(read_gtfs(source, report), ragged)])
    else:
        chunks = iter([(_vector(source, kind), ragged)])
    for chunk, reasons in chunks:
        report.reading(chunk)
        if len(reasons):  # rows with too few or too many fields: their values cannot be trusted
            report.reject(chunk.loc[reasons.index], reasons)
            chunk = chunk.drop(index=reasons.index)
        yield chunk if kind not in ("csv", "excel", "gtfs") else _with_coordinates(chunk, source, report)


def _csv_chunks(source: SourceSpec, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
    """Chunks and the reasons of their ragged rows (see etl.ragged): pandas reads a file whose rows
    all match the header, the ``csv`` module any other."""
    encoding = source.encoding or "utf-8-sig"
    delimiter = "\t" if source.path.suffix.lower() == ".tsv" else source.delimiter
    if not is_rectangular(source, encoding=encoding, delimiter=delimiter):
        try:
            yield from ragged_chunks(source, chunk_rows, encoding=encoding, delimiter=delimiter)
        except UnicodeDecodeError:
            raise LoadError(
                f"{source.path}: not valid {encoding} text; set source.encoding (e.g. latin-1 or cp1252)"
            ) from None
        except (csv.Error, LookupError) as error:
            raise LoadError(f"{source.path}: cannot be read as CSV ({_first_line(error)})") from None
        return
    try:
        yield from _arrow_chunks(source, chunk_rows, encoding=encoding, delimiter=delimiter)
    except UnicodeDecodeError:
        raise LoadError(
            f"{source.path}: not valid {encoding} text; set source.encoding (e.g. latin-1 or cp1252)"
        ) from None
    except (pa.ArrowInvalid, csv.Error, LookupError) as error:
        if "UTF8" in str(error):
            raise LoadError(
                f"{source.path}: not valid UTF-8 text; set source.encoding (e.g. latin-1 or cp1252)"
            ) from None
        raise LoadError(f"{source.path}: cannot be read as CSV ({_first_line(error)})") from None


def _arrow_chunks(
    source: SourceSpec, chunk_rows: int, *, encoding: str, delimiter: str
) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
    """A rectangular CSV read by Arrow's streaming reader, every column as text, in chunks of
    ``chunk_rows`` rows (several times faster than pandas' parser, and no copy into Python
    strings)."""
    columns = header_columns(source, encoding=encoding, delimiter=delimiter)
    reader = pa_csv.open_csv(
        source.path,
        read_options=pa_csv.ReadOptions(
            skip_rows=source.header_row, column_names=columns,
            encoding=encoding.replace("utf-8-sig", "utf8"), block_size=16 << 20,
        ),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()), null_values=source.missing_values,
            strings_can_be_null=True, quoted_strings_can_be_null=True,
        ),
    )  # fmt: skip
    none = pd.Series(dtype=object)
    first = 1
    pending: list[pa.RecordBatch] = []
    for batch in itertools.chain(reader, [None]):
        if batch is not None:
            pending.append(batch)
        table = pa.Table.from_batches(pending, schema=reader.schema)
        while table.num_rows >= chunk_rows or (batch is None and table.num_rows):
            chunk = table.slice(0, chunk_rows).to_pandas()
            chunk.index = pd.RangeIndex(first, first + len(chunk))
            first += len(chunk)
            table = table.slice(chunk_rows)
            yield chunk, none
        pending = table.to_batches()


def _excel(source: SourceSpec) -> pd.DataFrame:
    try:
        table = pd.read_excel(
            source.path, sheet_name=source.sheet, header=source.header_row - 1, dtype=str,
            keep_default_na=False, na_values=source.missing_values,
        )  # fmt: skip
    except (ValueError, KeyError, OSError) as error:
        raise LoadError(f"{source.path}: cannot read sheet {source.sheet!r} ({_first_line(error)})") from None
    except Exception as error:  # openpyxl raises its own types for broken workbooks
        raise LoadError(f"{source.path}: not a readable Excel workbook ({_first_line(error)})") from None
    table.columns = [str(column).strip() for column in table.columns]
    table.index = pd.RangeIndex(1, len(table) + 1)
    return table


def _vector(source: SourceSpec, kind: str) -> gpd.GeoDataFrame:
    if kind == "shapefile" and source.path.suffix.lower() == ".shp":
        missing = [s for s in (".shx", ".dbf") if not _sibling(source.path, s).is_file()]
        if missing:
            raise LoadError(f"{source.path}: the {' and '.join(missing)} beside it is missing (a Shapefile "
                            "is at least .shp, .shx and .dbf)")  # fmt: skip
    try:
        if kind == "geoparquet":
            frame = gpd.read_parquet(source.path)
        else:
            with warnings.catch_warnings(record=True) as noted:  # GDAL's notes are not failures
                warnings.simplefilter("always", RuntimeWarning)
                frame = pyogrio.read_dataframe(
                    source.path, layer=_layer(source, kind), encoding=_gdal_encoding(source)
                )
            for note in noted:  # e.g. a 4th coordinate (a measure) dropped: rows are 2-D anyway
                log.warning("%s: %s", source.path, note.message)
            if kind == "shapefile" and source.encoding is None and _utf8_read_as_latin1(frame):
                frame = pyogrio.read_dataframe(source.path, layer=source.layer, encoding="UTF-8")
    except Exception as error:  # pyogrio and pyarrow raise many types for unreadable files
        raise LoadError(f"{source.path}: cannot be read as {kind} ({_first_line(error)})") from None
    if frame.crs is None:
        if source.crs is None:
            raise LoadError(f"{source.path}: the file declares no CRS (no .prj?); set source.crs")
        frame = frame.set_crs(source.crs)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame.rename_geometry("geometry") if frame.geometry.name != "geometry" else frame


def _sibling(path: Path, suffix: str) -> Path:
    """A Shapefile's companion file, in either case (``.DBF`` beside ``.SHP``)."""
    lower, upper = path.with_suffix(suffix), path.with_suffix(suffix.upper())
    return upper if upper.is_file() and not lower.is_file() else lower


def _gdal_encoding(source: SourceSpec) -> str | None:
    """The encoding under a name GDAL knows (Python's ``latin-1`` is GDAL's ``ISO-8859-1``)."""
    if source.encoding is None:
        return None
    try:
        name = codecs.lookup(source.encoding).name
    except LookupError:
        raise LoadError(f"{source.path}: unknown encoding {source.encoding!r}") from None
    return re.sub(r"^iso8859-(\d+)$", r"ISO-8859-\1", name).upper()


def _layer(source: SourceSpec, kind: str) -> str | None:
    """The layer to read: the one named, or the only one; a choice among several is the user's."""
    if source.layer is not None or kind in ("geojson", "shapefile", "flatgeobuf", "topojson"):
        return source.layer
    names = [str(name) for name in pyogrio.list_layers(source.path)[:, 0]]
    if len(names) > 1:
        raise LoadError(f"{source.path}: the file has layers {', '.join(names)}; name one in source.layer")
    return None


def _utf8_read_as_latin1(frame: pd.DataFrame) -> bool:
    """A Shapefile without .cpg whose text is UTF-8 comes out as ``CuscatlÃ¡n``: detect it."""
    text = [c for c in frame.columns if c != "geometry" and pd.api.types.is_string_dtype(frame[c])]
    return any(frame[c].astype(str).str.contains(_MOJIBAKE).any() for c in text)


def _with_coordinates(table: pd.DataFrame, source: SourceSpec, report: Report) -> pd.DataFrame:
    """A table with its coordinate columns turned into points; a table without any stays a table."""
    pair = _coordinate_columns(table, source)
    if pair is None:
        return table
    x, y = pair
    crs = source.crs or ("EPSG:4326" if x.lower() in LONLAT_NAMES else None)
    if crs is None:
        raise LoadError(f"{source.path}: set source.crs, the CRS of the coordinates in {x!r}/{y!r}")
    xs, ys = _coordinate(table[x]), _coordinate(table[y])
    usable = np.isfinite(xs) & np.isfinite(ys)
    report.reject(table[~usable], f"no usable coordinates in columns {x!r}/{y!r}")
    kept = table[usable]
    points = shapely.points(xs[usable], ys[usable])
    return gpd.GeoDataFrame(kept, geometry=gpd.GeoSeries(points, index=kept.index, crs=crs), crs=crs)


def _coordinate(text: pd.Series) -> np.ndarray:
    """Numbers of a coordinate column (decimal comma accepted); NaN where there is none."""
    numbers = pd.to_numeric(text.str.strip().str.replace(",", ".", regex=False), errors="coerce")
    return numbers.to_numpy(dtype=float, na_value=np.nan)


def _coordinate_columns(table: pd.DataFrame, source: SourceSpec) -> tuple[str, str] | None:
    lowered = {str(column).lower(): str(column) for column in table.columns}
    if source.x or source.y:
        missing = [c for c in (source.x, source.y) if c is None or c.lower() not in lowered]
        if missing:
            raise LoadError(
                f"{source.path}: coordinate column(s) {', '.join(map(repr, missing))} not found; "
                f"the file has: {', '.join(map(str, table.columns))}"
            )
        return lowered[str(source.x).lower()], lowered[str(source.y).lower()]
    for x, y in COORDINATE_NAMES:
        if x in lowered and y in lowered:
            return lowered[x], lowered[y]
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
