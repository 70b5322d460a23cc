"""Response bodies: GeoJSON features from store records (or CSV rows), and problem details."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date
from typing import Any

import shapely
from starlette.responses import JSONResponse

from layers import Layer
from observatory.spreadsheet import neutralise
from observatory.store import Record


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value


def feature(layer: Layer, record: Record) -> dict[str, Any]:
    """A GeoJSON Feature (RFC 7946: lon/lat) whose id is the layer's stable id property."""
    properties = {key: _json_value(value) for key, value in record.properties.items()}
    return {
        "type": "Feature",
        "id": properties[layer.id],
        "geometry": json.loads(shapely.to_geojson(record.geometry)),
        "properties": properties,
    }


def to_csv(features: list[dict[str, Any]], columns: list[str]) -> str:
    """GeoJSON features as CSV: one column per property, then the geometry as WKT."""
    sink = io.StringIO()
    writer = csv.writer(sink, lineterminator="\n")
    writer.writerow([*columns, "geometry"])
    for item in features:
        geometry = shapely.geometry.shape(item["geometry"]).wkt if item["geometry"] else ""
        writer.writerow([*(_csv_cell(item["properties"].get(name)) for name in columns), geometry])
    return sink.getvalue()


def _csv_cell(value: Any) -> Any:
    return "" if value is None else neutralise(value)


class GeoJSONResponse(JSONResponse):
    media_type = "application/geo+json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class ProblemResponse(JSONResponse):
    """RFC 9457 problem details; only the user message, never internals."""

    media_type = "application/problem+json"

    def __init__(
        self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        super().__init__(body, status, headers=headers)
