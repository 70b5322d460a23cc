"""Vector tiles in Python, for the store that has no ``ST_AsMVT`` (the embedded GeoPackage)."""

from __future__ import annotations

from collections.abc import Iterable

import mapbox_vector_tile
import morecantile
import numpy as np
import pyproj
import shapely

from layers import Layer
from observatory.store.base import Bbox, Record

TMS = morecantile.tms.get("WebMercatorQuad")
EXTENT = 4096
BUFFER = 64
_TO_MERCATOR = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


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
    features = [
        {"geometry": geometry, "properties": _tile_properties(record.properties)}
        for record, geometry in zip(records, geometries, strict=True)
        if not geometry.is_empty
    ]
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
        if value is not None
    }
