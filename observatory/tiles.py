"""Vector tiles in Python, for the store that has no ``ST_AsMVT`` (the embedded GeoPackage), and the
rules both stores follow to aggregate point layers.

Aggregated point tiles (the contract with the map): in a tile of a point layer every feature has an
integer ``count``. A tile whose features would pass the layer's cap (``max_features_per_tile``) or
:data:`BYTE_BUDGET` holds instead one feature per cell of a :func:`grid_side` × :func:`grid_side`
grid over the tile, at the mean position of its records, with their ``count`` and the most common
value of the :func:`summary_property` (ties: the smallest value). Aggregates count the records inside
the tile itself (half-open: west and north edges in, east and south out), not its buffer, so the
counts of all tiles at a zoom add up to the layer's (filtered) records, each counted once. The cells
are those of :mod:`observatory.point_cells`, where dense tiles' counts are kept from the load.

Line and polygon tiles (the indicators' choropleths among them) are never cut short: a tile holds
every feature whose box meets it, or, past the cap (counted per the layer's ``tile_cap_per`` values:
for the indicators, per indicator and period), it is refused with :class:`TileOverCap`, a 400
problem telling which filters or zoom to use. A tile query ending in ``LIMIT`` (tipg's
``max_features_per_tile``) silently keeps the first N features: a map with holes nobody sees.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import pyproj
import shapely

from layers import Layer
from observatory.errors import ObservatoryError
from observatory.store.base import Bbox, FeatureQuery, Record

TMS = morecantile.tms.get("WebMercatorQuad")
EXTENT = 4096
BUFFER = 64
_TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
BYTE_BUDGET = 500_000
"""A point tile whose single features would encode to more bytes than this is aggregated."""
SUMMARY_PROPERTY = "kind"


class TileOverCap(ObservatoryError):
    """A line or polygon tile would hold more features than its layer's cap allows."""

    status = 400  # the request can be served once filtered or zoomed in
    title = "Tile over its feature cap"


def check_cap(layer: Layer, tile: morecantile.Tile, most: int) -> None:
    """Refuse the tile when ``most`` (its features, or those of its largest ``tile_cap_per`` group)
    passes the layer's cap."""
    cap = layer.max_features_per_tile
    if most <= cap:
        return
    per = layer.tile_cap_per
    counted = f"{most} features of one {', '.join(per)}" if per else f"more than {cap} features"
    advice = f"filter by {' and '.join(per)} or zoom in" if per else "zoom in or filter by a property"
    raise TileOverCap(
        f"tile {tile.z}/{tile.y}/{tile.x} of {layer.name!r} would hold {counted}, over its cap of {cap} "
        f"per tile{' and ' + ', '.join(per) if per else ''}: {advice}; no feature is left out silently"
    )


def most_per_group(layer: Layer, records: list[Record]) -> int:
    """The records, or the largest group of them by the layer's ``tile_cap_per`` values."""
    if not layer.tile_cap_per or not records:
        return len(records)
    groups = Counter(
        tuple(record.properties.get(column) for column in layer.tile_cap_per) for record in records
    )
    return max(groups.values())


def query_key(query: FeatureQuery) -> tuple[object, ...]:
    """What of a query a tile depends on (filters and interval), the same whatever the key order."""
    return (tuple(sorted(query.filters.items())), query.interval)


def aggregates(layer: Layer) -> bool:
    """Whether the layer's tiles carry ``count`` and aggregate past the cap (point layers)."""
    return layer.geometry == "Point"


def grid_side(layer: Layer) -> int:
    """Cells per side of the aggregation grid: the largest power of two whose square is at most the
    cap, so the cells of a tile are the tiles of a deeper zoom (64 for a cap of 5,000)."""
    return 1 << (math.isqrt(layer.max_features_per_tile).bit_length() - 1)


def summary_property(layer: Layer) -> str | None:
    """The property aggregates carry (its most common value), when the layer has it and serves it."""
    rule = layer.withheld
    hidden = set() if rule is None else {*rule.columns, *rule.mark}
    if SUMMARY_PROPERTY in layer.properties and SUMMARY_PROPERTY not in hidden:
        return SUMMARY_PROPERTY
    return None


def lonlat_bounds(tile: morecantile.Tile, *, buffer: int = BUFFER) -> Bbox:
    """The tile's bounds in lon/lat, grown by ``buffer`` tile pixels so clipped edges do not show."""
    left, bottom, right, top = _buffered_xy_bounds(tile, buffer)
    # The buffer of a tile on the matrix's edge reaches past ±180°, where the inverse projection
    # wraps to the other side (west > east, an empty box): clamp to the world instead.
    limit = TMS.xy_bbox
    left, right = max(left, limit.left), min(right, limit.right)
    bottom, top = max(bottom, limit.bottom), min(top, limit.top)
    west, south = _TO_MERCATOR.transform(left, bottom, direction="INVERSE")
    east, north = _TO_MERCATOR.transform(right, top, direction="INVERSE")
    return (west, south, east, north)


def _buffered_xy_bounds(tile: morecantile.Tile, buffer: int) -> Bbox:
    bounds = TMS.xy_bounds(tile)
    pad = (bounds.right - bounds.left) * buffer / EXTENT
    return (bounds.left - pad, bounds.bottom - pad, bounds.right + pad, bounds.top + pad)


def encode_tile(layer: Layer, records: Iterable[Record], tile: morecantile.Tile) -> bytes:
    """Encode records (lon/lat geometries) as one MVT layer named after the catalogue layer.

    Geometries go to tile coordinates (0..4096, y up) in one vectorised transform, then are clipped
    to the tile plus its buffer and simplified to a quarter pixel, as ``ST_AsMVTGeom`` does.
    """
    records = list(records)
    if not records:
        return b""
    bounds = TMS.xy_bounds(tile)
    scale_x = EXTENT / (bounds.right - bounds.left)
    scale_y = EXTENT / (bounds.top - bounds.bottom)

    def to_tile(lonlat: np.ndarray) -> np.ndarray:
        x, y = _TO_MERCATOR.transform(lonlat[:, 0], lonlat[:, 1])
        return np.column_stack(((x - bounds.left) * scale_x, (y - bounds.bottom) * scale_y))

    geometries = shapely.transform(np.array([record.geometry for record in records]), to_tile)
    clip_box = shapely.box(-BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    geometries = shapely.simplify(shapely.intersection(geometries, clip_box), 0.25)
    single = {"count": 1} if aggregates(layer) else {}
    features = [
        {"geometry": geometry, "properties": {**_tile_properties(record.properties), **single}}
        for record, geometry in zip(records, geometries, strict=True)
        if not geometry.is_empty
    ]
    return _encode(layer, features)


def encode_cells(layer: Layer, tile: morecantile.Tile, cells: pd.DataFrame) -> bytes:
    """Encode the tile's grid of aggregates from its tallies (see :mod:`observatory.point_cells`):
    rows of ``cx``, ``cy``, ``summary``, ``n`` and the sums ``sx``, ``sy`` of Web Mercator x and y,
    several rows per cell when its records differ in summary value (or year)."""
    if cells.empty:
        return b""
    tallies = cells.groupby(["cx", "cy", "summary"], dropna=False, sort=False)["n"].sum().reset_index()
    totals = cells.groupby(["cx", "cy"], sort=False)[["n", "sx", "sy"]].sum()
    bounds = TMS.xy_bounds(tile)
    scale = EXTENT / (bounds.right - bounds.left)
    totals["column"] = (totals["sx"] / totals["n"] - bounds.left) * scale
    totals["row"] = (totals["sy"] / totals["n"] - bounds.bottom) * scale  # the encoder's y is up
    name = summary_property(layer)
    if name is not None:
        tallies = tallies.dropna(subset=["summary"])
        tallies = tallies.sort_values(["cx", "cy", "n", "summary"], ascending=[True, True, False, True])
        totals["summary"] = tallies.drop_duplicates(["cx", "cy"]).set_index(["cx", "cy"])["summary"]
    features = [
        {
            "geometry": shapely.Point(cell["column"], cell["row"]),
            "properties": _tile_properties(
                {"count": int(cell["n"]), **({name: cell["summary"]} if name is not None else {})}
            ),
        }
        for cell in totals.to_dict("records")
    ]
    return _encode(layer, features)


def _encode(layer: Layer, features: list[dict[str, object]]) -> bytes:
    if not features:
        return b""
    return bytes(
        mapbox_vector_tile.encode(
            [{"name": layer.name, "features": features}], default_options={"extents": EXTENT}
        )
    )


def _tile_properties(properties: dict[str, object]) -> dict[str, object]:
    return {
        key: value if isinstance(value, int | float | str | bool) else str(value)
        for key, value in properties.items()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    }
