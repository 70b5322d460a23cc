"""Point layers counted per grid cell once, at load, so that a dense tile is drawn from a few
thousand counts instead of aggregating every point in it on each request (a z11 permits tile of the
million-permit store holds 682,000 of them).

The grid is global: at level ``L`` the Web Mercator square is cut into 2^L × 2^L cells, the tiles
of zoom ``L``; a point's cell is ``floor((x + W) / 2W · 2^L)`` across and ``floor((W - y) / 2W ·
2^L)`` down. A tile of zoom ``z`` is aggregated on the cells of level ``z +`` :func:`grid_levels`,
the :func:`~observatory.tiles.grid_side` × ``grid_side`` cells inside it, so counts taken at load and
counts taken live fall in the same cells and every point in exactly one cell per zoom.

Rows are kept only for the tiles that hold more points than the layer's cap at load (the only ones
that are ever aggregated from them) and at least twice as many points as rows to count them in
(deeper, reading the points costs about what reading their cells would): per cell and value of the
summary property (``kind``) over all years (``year`` null), and, in the tiles where one year alone
passes the cap, per cell, summary value and year of the layer's date. Enough to answer a tile
filtered by kind and by whole years; any other filter aggregates live, and so does a span of years
in a tile without rows by year (a single year of it fits under the cap as single features).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import geopandas as gpd
import morecantile
import numpy as np
import pandas as pd
import shapely
from pandas.api.types import union_categoricals

from layers import Layer
from observatory.store.base import FeatureQuery
from observatory.tiles import grid_side, summary_property

EARTH_RADIUS = 6378137.0
HALF_WORLD = math.pi * EARTH_RADIUS
"""Half the side of the Web Mercator square, in metres (20,037,508.34)."""
FINEST = 30
"""The level points are first placed at (cells of ~4 cm); every coarser cell is a shift of it."""
COLUMNS = ["zoom", "level", "cx", "cy", "year", "summary", "n", "sx", "sy"]
"""The stored table: the zoom of the tile counted, its cell, year (null: all years), summary value,
count and sums of x and y. A tile is read from the rows of its zoom and of the level its grid has
now: a cap changed in the catalogue since the load (another grid) finds none and aggregates live."""


def grid_levels(layer: Layer) -> int:
    """Levels between a tile and its aggregation cells: ``grid_side = 2 ** grid_levels``."""
    return grid_side(layer).bit_length() - 1


def mercator(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spherical Web Mercator (EPSG:3857) by its formulas, as the PostGIS tile query computes it."""
    x = EARTH_RADIUS * np.radians(lon)
    y = EARTH_RADIUS * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))
    return x, y


def placed(x: np.ndarray, y: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's cell (column, row from the north-west) at ``level``; off-square points clamp."""
    last = 2**level - 1
    column = np.clip(np.floor((x + HALF_WORLD) / (2 * HALF_WORLD) * 2**level), 0, last)
    row = np.clip(np.floor((HALF_WORLD - y) / (2 * HALF_WORLD) * 2**level), 0, last)
    return column.astype(np.int64), row.astype(np.int64)


@dataclass
class CellCounter:
    """Gathers a point layer's rows as a load streams them, then counts them per cell."""

    layer: Layer
    parts: list[pd.DataFrame] = field(default_factory=list)

    def add(self, frame: gpd.GeoDataFrame) -> None:
        """Keep what the counts need of each row (its point, summary value and year)."""
        if frame.empty:
            return
        lon, lat = shapely.get_x(frame.geometry.values), shapely.get_y(frame.geometry.values)
        summary = summary_property(self.layer)
        dates = frame[self.layer.datetime] if self.layer.datetime else None
        self.parts.append(
            pd.DataFrame({
                "lon": lon,
                "lat": lat,
                # codes and the few distinct values, not a string object per row
                "summary": pd.Categorical(frame[summary].astype(object) if summary else [None] * len(frame)),
                "year": None if dates is None else pd.to_datetime(dates).dt.year.astype("Int16").to_numpy(),
            })
        )  # fmt: skip

    def cells(self) -> Iterator[pd.DataFrame]:
        """The rows of the cells table (see the module's rules), a frame per zoom, each sorted by
        cell: written as they come, the counts of a large layer are never all in memory at once."""
        if not self.parts:
            return iter(())
        summaries = union_categoricals([part.pop("summary").array for part in self.parts])
        points = pd.concat(self.parts, ignore_index=True).assign(summary=summaries)
        self.parts = []
        return count_cells(self.layer, points)


def count_cells(layer: Layer, points: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """``points`` (lon, lat, summary, year) counted per cell of the tiles over the layer's cap, a
    frame per zoom."""
    x, y = mercator(points["lon"].to_numpy(float), points["lat"].to_numpy(float))
    column, row = placed(x, y, FINEST)
    summary = pd.Categorical(points["summary"])  # (already one when counted from a load)
    values = np.array([*summary.categories, None], dtype=object)  # code -1 (missing) is the last
    codes = summary.codes
    years = points["year"].astype("Int16").fillna(-1).to_numpy(np.int16)
    extra = grid_levels(layer)
    cap = layer.max_features_per_tile
    kept = np.arange(len(points))
    for zoom in range(layer.min_zoom, min(layer.max_zoom, FINEST - extra) + 1):
        shift = FINEST - zoom
        tile = (column[kept] >> shift) << HALF | (row[kept] >> shift)
        _, index, counts = np.unique(tile, return_inverse=True, return_counts=True)
        dense = counts[index] > cap
        kept, tile = kept[dense], tile[dense]
        if kept.size == 0:
            return
        frame = pd.DataFrame({
            "cell": (column[kept] >> (shift - extra)) << HALF | (row[kept] >> (shift - extra)),
            "code": codes[kept], "year": years[kept], "x": x[kept], "y": y[kept],
        })  # fmt: skip
        all_years = frame.groupby(["cell", "code"], sort=False).agg(**SUMS).reset_index().assign(year=-1)
        # Deeper, where cells hold one or two records each, counting saves little over aggregating
        # the records themselves: stop at the tiles whose cells would not halve the rows read.
        row_tile = _tile_of(all_years["cell"].to_numpy(), extra)
        rows_per_tile = pd.Series(row_tile).value_counts()
        records = pd.Series(tile).value_counts()[rows_per_tile.index]
        worth = rows_per_tile.index[2 * rows_per_tile.to_numpy() <= records.to_numpy()]
        inside = np.isin(tile, worth)
        frame, kept, tile = frame[inside], kept[inside], tile[inside]
        if kept.size == 0:
            return
        counted = pd.concat(
            [all_years[np.isin(row_tile, worth)], _by_year(frame, tile, cap)], ignore_index=True
        )
        cells = counted.pop("cell").to_numpy()
        counted["cx"], counted["cy"] = cells >> HALF, cells & (2**HALF - 1)
        counted["summary"] = values[counted.pop("code").to_numpy()]
        counted["year"] = counted["year"].astype("Int16").where(counted["year"] >= 0)
        counted = counted.assign(zoom=zoom, level=zoom + extra).sort_values(["cx", "cy"], kind="stable")
        yield counted.reset_index(drop=True)[COLUMNS]


HALF = 32
"""Bits of a cell's (or tile's) row in the one integer that names it, its column in the bits above."""
SUMS = {"n": ("x", "size"), "sx": ("x", "sum"), "sy": ("y", "sum")}


def _tile_of(cells: np.ndarray, extra: int) -> np.ndarray:
    """The tile (named as cells are) holding each cell, ``extra`` levels up."""
    return (cells >> HALF >> extra) << HALF | ((cells & (2**HALF - 1)) >> extra)


def _by_year(frame: pd.DataFrame, tile: np.ndarray, cap: int) -> pd.DataFrame:
    """Per cell, summary code and year, in the tiles where one year alone passes the cap: in the
    others a year's records fit in the tile as single features, drawn from the rows."""
    dated = (frame["year"] >= 0).to_numpy()
    per_year = pd.Series(1, index=pd.MultiIndex.from_arrays([tile[dated], frame["year"].to_numpy()[dated]]))
    per_year = per_year.groupby(level=[0, 1], sort=False).size()
    crowded = per_year[per_year > cap].index.get_level_values(0).unique()
    chosen = dated & np.isin(tile, crowded)
    return frame[chosen].groupby(["cell", "code", "year"], sort=False).agg(**SUMS).reset_index()


@dataclass(frozen=True)
class CellFilter:
    """What of a tile query the stored cells can answer: a summary value and a span of years."""

    summary: object | None
    years: tuple[int | None, int | None] | None
    """First and last year (None: open), or None for all records, dated or not."""

    def year_bounds(self) -> list[tuple[str, int]]:
        """The comparisons (``>=`` or ``<=``, year) a row's year must pass: rows of all years have
        no year and are read only without a span; with one, the rows of each year in it."""
        first, last = self.years or (None, None)
        return [(operator, year) for operator, year in ((">=", first), ("<=", last)) if year is not None]


def cell_filter(layer: Layer, query: FeatureQuery) -> CellFilter | None:
    """The query as a filter on cells, or None when it filters on more than they keep (then the
    tile is aggregated live)."""
    summary = summary_property(layer)
    if query.condition is not None or query.bbox is not None or set(query.filters) - {summary}:
        return None
    years = None
    if query.interval is not None:
        start, end = query.interval
        if not (_year_start(start) and _year_end(end)):
            return None
        years = (start.year if start else None, end.year if end else None)
    return CellFilter(query.filters.get(summary) if summary else None, years)


def _year_start(day: date | None) -> bool:
    return day is None or (day.month, day.day) == (1, 1)


def _year_end(day: date | None) -> bool:
    return day is None or (day.month, day.day) == (12, 31)


def cells_table(layer: Layer) -> str:
    """The table of a point layer's cells, replaced with the layer's own."""
    return f"{layer.table}_cells"


def tally(
    layer: Layer, tile: morecantile.Tile, points: np.ndarray, summary: list[object] | None
) -> pd.DataFrame:
    """Lon/lat ``points`` (n × 2) counted per cell of ``tile``'s grid and summary value, as the
    cells table holds them; points outside the tile (its buffer) are left out."""
    extra = grid_levels(layer)
    x, y = mercator(points[:, 0], points[:, 1])
    cx, cy = placed(x, y, tile.z + extra)
    frame = pd.DataFrame({"cx": cx, "cy": cy, "summary": summary, "x": x, "y": y})
    frame = frame[((cx >> extra) == tile.x) & ((cy >> extra) == tile.y)]
    grouped = frame.groupby(["cx", "cy", "summary"], dropna=False, sort=False)
    return grouped.agg(n=("x", "size"), sx=("x", "sum"), sy=("y", "sum")).reset_index()
