"""Reading source files of any of the formats the data come in, keeping each row's number."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from etl.rejects import ROW, Rejects
from observatory.errors import LoadError

TABLE_SUFFIXES = {".csv", ".txt"}


def read_source(
    path: Path, rejects: Rejects, *, table_crs: str | None = None, x: str = "x", y: str = "y"
) -> gpd.GeoDataFrame:
    """Read a vector file (GeoJSON, GeoPackage, Shapefile, KML…) or a CSV with coordinates.

    Rows without usable coordinates go to ``rejects``; a file that cannot be read at all, or has no
    coordinate reference system, is a :class:`LoadError`.
    """
    if path.suffix.lower() in TABLE_SUFFIXES:
        frame = _read_table(path, rejects, crs=table_crs, x=x, y=y)
    else:
        try:
            frame = pyogrio.read_dataframe(path)
        except Exception as error:  # pyogrio raises several types for unreadable files
            raise LoadError(f"{path}: cannot be read as a vector file ({error})") from None
        frame.insert(0, ROW, np.arange(1, len(frame) + 1))
        rejects.keep_originals(frame)
    if frame.crs is None:
        raise LoadError(f"{path}: no coordinate reference system declared; cannot place the data")
    return frame


def _read_table(path: Path, rejects: Rejects, *, crs: str | None, x: str, y: str) -> gpd.GeoDataFrame:
    if crs is None:
        raise LoadError(f"{path}: a table needs its coordinates' CRS to be given")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise LoadError(f"{path}: cannot be read as CSV ({error})") from None
    for column in (x, y):
        if column not in table.columns:
            raise LoadError(f"{path}: missing coordinate column {column!r}")
    table.insert(0, ROW, np.arange(1, len(table) + 1))
    rejects.keep_originals(table)
    xs = pd.to_numeric(table[x], errors="coerce")
    ys = pd.to_numeric(table[y], errors="coerce")
    usable = xs.notna() & ys.notna() & np.isfinite(xs) & np.isfinite(ys)
    rejects.add(table[~usable], f"no usable coordinates in columns {x!r}/{y!r}")
    table = table[usable]
    return gpd.GeoDataFrame(
        table.drop(columns=[x, y]), geometry=gpd.points_from_xy(xs[usable], ys[usable]), crs=crs
    )
