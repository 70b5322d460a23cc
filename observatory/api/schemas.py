"""JSON Schemas of a layer's features from the catalogue's property types: the queryables
(Features Part 3) and the schema (Part 5), so clients such as GDAL and QGIS type their fields
(numbers as Real or Integer, dates as Date) instead of reading every value as text."""

from __future__ import annotations

from typing import Any

from layers import Layer
from observatory.api.lang import Language, pick

PROPERTY_TYPES: dict[str, dict[str, str]] = {
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "string": {"type": "string"},
}
"""Catalogue property type -> JSON Schema type (and format)."""
GEOMETRY_FORMATS = {
    "Point": "geometry-point",
    "MultiPolygon": "geometry-multipolygon",
    "MultiLineString": "geometry-multilinestring",
}
GEOMETRY = "geom"
"""The name filters and schemas give the layer's geometry."""


def json_schema(layer: Layer, lang: Language, schema_id: str) -> dict[str, Any]:
    """The layer's features as a JSON Schema object, with Part 5's roles (id, primary geometry,
    primary instant)."""
    properties: dict[str, Any] = {
        GEOMETRY: {
            "title": pick("Geometría", "Geometry", lang),
            "x-ogc-role": "primary-geometry",
            "format": GEOMETRY_FORMATS[layer.geometry],
        }
    }
    for name, kind in layer.properties.items():
        entry: dict[str, Any] = {"title": name, **PROPERTY_TYPES[kind]}
        if name == layer.id:
            entry["x-ogc-role"] = "id"
        elif name == layer.datetime:
            entry["x-ogc-role"] = "primary-instant"
        properties[name] = entry
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "type": "object",
        "title": pick(layer.title, layer.title_en, lang),
        "properties": properties,
        "additionalProperties": False,
    }


def geojson_feature_schema(layer: Layer, lang: Language, schema_id: str) -> dict[str, Any]:
    """One GeoJSON feature of the layer's items as a JSON Schema (its ``properties`` typed)."""
    fields = {name: dict(PROPERTY_TYPES[kind]) for name, kind in layer.properties.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": schema_id,
        "title": pick(layer.title, layer.title_en, lang),
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": dict(PROPERTY_TYPES[layer.properties[layer.id]]),
            "geometry": {"type": "object", "description": f"GeoJSON {layer.geometry}"},
            "properties": {"type": "object", "properties": fields},
        },
    }
