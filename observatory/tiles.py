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
    west, south = _TO_MERCATOR.transform(left, bottom, direction="INVERSE")
    east, north = _TO_MERCATOR.transform(right, top, direction="INVERSE")
    return (west, max(south, -85.0511287798), east, min(north, 85.0511287798))


def _buffered_xy_bounds(tile: morecantile.Tile, buffer: int) -> Bbox:
    bounds = TMS.xy_bounds(tile)
    pad = (bounds.right - bounds.left) * buffer / EXTENT
    return (bounds.left - pad, bounds.bottom - pad, bounds.right + pad, bounds.top + pad)


def encode_tile(layer: Layer, records: Iterable[Record], tile: morecantile.Tile) -> bytes:
    """Encode records (lon/lat geometries) as one MVT layer named after the catalogue layer.

    Geometries are projected to Web Mercator, clipped to the buffered tile and simplified to a
    quarter of a tile pixel, the same treatment ``ST_AsMVTGeom`` gives them in PostGIS.
    """
    records = list(records)
    if not records:
        return b""
    bounds = TMS.xy_bounds(tile)
    clip_box = shapely.box(*_buffered_xy_bounds(tile, BUFFER))
    tolerance = (bounds.right - bounds.left) / EXTENT / 4
    geometries = shapely.transform(
        np.array([record.geometry for record in records]),
        lambda xy: np.column_stack(_TO_MERCATOR.transform(xy[:, 0], xy[:, 1])),
    )
    geometries = shapely.simplify(shapely.intersection(geometries, clip_box), tolerance)
    features = [
        {"geometry": geometry, "properties": _tile_properties(record.properties)}
        for record, geometry in zip(records, geometries, strict=True)
        if not geometry.is_empty
    ]
    if not features:
        return b""
    return bytes(
        mapbox_vector_tile.encode(
            [{"name": layer.name, "features": features}],
            default_options={
                "quantize_bounds": (bounds.left, bounds.bottom, bounds.right, bounds.top),
                "extents": EXTENT,
            },
        )
    )


def _tile_properties(properties: dict[str, object]) -> dict[str, object]:
    return {
        key: value if isinstance(value, int | float | str | bool) else str(value)
        for key, value in properties.items()
        if value is not None
    }
