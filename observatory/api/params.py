"""Request parameters of the feature and tile endpoints, checked against the catalogue."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import shapely
from starlette.datastructures import QueryParams

from layers import Layer
from observatory.api.cql2 import TEXT, both, parse_filter, text_search
from observatory.api.crs import CRS84, bbox_area_in_crs84, bbox_in_crs84, parse_crs
from observatory.errors import InvalidParameter
from observatory.store import FeatureQuery
from observatory.store.base import Bbox, Condition, Spatial

MAX_LIMIT = 10_000
MAX_OFFSET = 2**53 - 1
"""The largest offset accepted: exact in JSON numbers, and far below both stores' 64-bit limits."""
INT64 = (-(2**63), 2**63 - 1)
"""Integer properties are 64-bit in both stores; a larger filter value can match nothing."""
RESERVED = {
    "bbox", "bbox-crs", "limit", "offset", "datetime", "f", "filter", "filter-lang", "filter-crs",
    "sortby", "properties", "crs", "lang", "q",
}  # fmt: skip
"""Query keys of the items endpoint that are not property filters."""
TILE_RESERVED = {"datetime", "lang"}
"""Query keys of the tile endpoints that are not property filters."""


def parse_bbox(text: str | None, crs: str = CRS84) -> Bbox | None:
    """``bbox`` in CRS84 (or in ``bbox-crs``, in its axis order), as a lon/lat box."""
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidParameter(f"bbox {text!r}: four comma-separated numbers expected") from None
    if len(values) != 4:
        raise InvalidParameter(f"bbox {text!r}: four numbers expected (minLon,minLat,maxLon,maxLat)")
    if not all(map(math.isfinite, values)) or values[0] > values[2] or values[1] > values[3]:
        raise InvalidParameter(f"bbox {text!r}: finite numbers, min ≤ max on each axis")
    west, south, east, north = bbox_in_crs84(values, crs)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidParameter(f"bbox {text!r}: must be minLon,minLat,maxLon,maxLat in degrees, min ≤ max")
    return (west, south, east, north)


def parse_sortby(layer: Layer, text: str | None) -> tuple[tuple[str, bool], ...]:
    """``sortby=-floor_area_m2,+kind``: catalogue properties, ``-`` for descending."""
    if not text:
        return ()
    keys = []
    for item in text.split(","):
        name = item.strip()
        descending = name.startswith("-")
        name = name.lstrip("+-").strip()
        if name not in layer.properties:
            known = ", ".join(layer.properties)
            raise InvalidParameter(
                f"sortby: unknown property {name!r} for {layer.name!r}; properties: {known}"
            )
        keys.append((name, descending))
    return tuple(keys)


def parse_properties(layer: Layer, text: str | None) -> list[str] | None:
    """``properties=a,b``: the catalogue properties to return (all when absent)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in layer.properties]
    if unknown:
        known = ", ".join(layer.properties)
        raise InvalidParameter(f"properties: unknown {unknown} for {layer.name!r}; properties: {known}")
    return names


def parse_interval(layer: Layer, text: str | None) -> tuple[date | None, date | None] | None:
    """RFC 3339 instant or interval (``a/b``, ``../b``, ``a/..``) on the layer's date property."""
    if text is None:
        return None
    if layer.datetime is None:
        raise InvalidParameter(f"collection {layer.name!r} has no temporal property for datetime")
    parts = text.split("/")
    if len(parts) > 2:
        raise InvalidParameter(f"datetime {text!r}: an instant or a start/end interval expected")
    ends = [_parse_instant(part, text) for part in parts]
    start, end = (ends[0], ends[0]) if len(ends) == 1 else (ends[0], ends[1])
    if start is not None and end is not None and start > end:
        raise InvalidParameter(f"datetime {text!r}: start is after end")
    return (start, end)


def _parse_instant(part: str, text: str) -> date | None:
    if part in ("", ".."):
        return None
    try:
        return datetime.fromisoformat(part.replace("Z", "+00:00")).date()
    except ValueError:
        raise InvalidParameter(f"datetime {text!r}: {part!r} is not an RFC 3339 date") from None


def parse_filters(layer: Layer, params: QueryParams, *, reserved: set[str] = RESERVED) -> dict[str, Any]:
    """Equality filters from query-string keys that are properties of the layer; others are 400."""
    filters: dict[str, Any] = {}
    for key, text in params.multi_items():
        if key in reserved:
            continue
        if key not in layer.properties:
            known = ", ".join(layer.properties)
            raise InvalidParameter(f"unknown parameter {key!r} for {layer.name!r}; properties: {known}")
        filters[key] = parse_filter_value(layer, key, text)
    return filters


def parse_filter_value(layer: Layer, key: str, text: str) -> Any:
    """One property value from the query string, typed, and within what the stores can compare."""
    kind = layer.properties[key]
    if "\x00" in text:
        raise InvalidParameter(f"{key}={text!r}: a NUL character is not allowed")
    try:
        value = layer.parse_value(key, text)
    except (ValueError, OverflowError):
        raise InvalidParameter(f"{key}={text!r}: not a valid {kind} value") from None
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise InvalidParameter(f"{key}={text!r}: integer out of range (64-bit)")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidParameter(f"{key}={text!r}: not a finite number")
    return value


def feature_query(layer: Layer, params: QueryParams, *, limit: int, offset: int) -> FeatureQuery:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameter(f"limit={limit}: must be between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidParameter(f"offset={offset}: must be between 0 and {MAX_OFFSET}")
    filter_crs = params.get("filter-crs")
    if filter_crs is not None and parse_crs(filter_crs, "filter-crs") != CRS84:
        raise InvalidParameter(f"filter-crs={filter_crs!r}: filters are read in CRS84 only")
    text, words = params.get("filter"), params.get("q")
    condition = None if text is None else parse_filter(layer, text, params.get("filter-lang", TEXT))
    bbox_crs = parse_crs(params.get("bbox-crs"), "bbox-crs")
    bbox = parse_bbox(params.get("bbox"), bbox_crs)
    if bbox is not None:
        # The lon/lat box encloses a projected bbox; the bbox's own area is tested as well.
        area = bbox_area_in_crs84([float(part) for part in params["bbox"].split(",")], bbox_crs)
        if area is not None:
            inside = Condition((Spatial("intersects", shapely.to_wkb(area)),), frozenset())
            condition = both(inside, condition)
    return FeatureQuery(
        bbox=bbox,
        limit=limit,
        offset=offset,
        filters=parse_filters(layer, params),
        interval=parse_interval(layer, params.get("datetime")),
        condition=both(condition, None if words is None else text_search(layer, words)),
        sortby=parse_sortby(layer, params.get("sortby")),
    )


def tile_query(layer: Layer, params: QueryParams) -> FeatureQuery:
    """Property filters and ``datetime`` of a tile request; any other key is a 400."""
    return FeatureQuery(
        filters=parse_filters(layer, params, reserved=TILE_RESERVED),
        interval=parse_interval(layer, params.get("datetime")),
    )
