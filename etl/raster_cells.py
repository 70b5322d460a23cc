"""A GeoTIFF read as polygons: each pixel of a count raster (people per pixel, as WorldPop
publishes them) becomes a cell, the pixel's footprint, so that a polygon layer such as
``population`` can be fed from a grid as well as from census segments.

Only the window over the AMSS is read (``etl.rasters.read_amss_window``). Missing pixels (nodata,
NaN) and pixels equal to 0 (nobody lives there: water, empty land) are not features; any other
value, negative ones included, goes on to the layer's checks, which reject what they must. The
cells come as the source's columns ``cell`` (``r{row}c{col}`` in the source's grid, so the same
pixel keeps its id from one load to the next), ``row``, ``col`` and ``value``, which a manifest
maps onto the layer's properties like any other source's columns.
"""

from __future__ import annotations

from collections.abc import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from etl.manifest import Manifest
from etl.rasters import read_amss_window

CELL, ROW, COL, VALUE = "cell", "row", "col", "value"


def pixel_cells(
    manifest: Manifest, municipalities: gpd.GeoDataFrame, *, chunk_rows: int
) -> Iterator[gpd.GeoDataFrame]:
    """The window's non-empty pixels as footprint polygons in the raster's CRS, ``chunk_rows`` at a
    time, indexed 1, 2, … in row-major order (the rows a load report names)."""
    window = read_amss_window(manifest, municipalities)
    rows, cols = np.nonzero(~window.missing & (window.values != 0))
    grid = window.transform
    crs = window.crs.to_wkt()
    for start in range(0, len(rows), chunk_rows):
        row, col = rows[start : start + chunk_rows], cols[start : start + chunk_rows]
        left, top = grid.c + col * grid.a, grid.f + row * grid.e
        source_row, source_col = row + window.row_off, col + window.col_off
        yield gpd.GeoDataFrame(
            {
                CELL: [f"r{r}c{c}" for r, c in zip(source_row, source_col, strict=True)],
                ROW: source_row,
                COL: source_col,
                VALUE: window.values[row, col].astype("float64"),
            },
            geometry=shapely.box(left, top + grid.e, left + grid.a, top),
            crs=crs,
            index=pd.RangeIndex(start + 1, start + 1 + len(row)),
        )
