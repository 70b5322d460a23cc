"""The OpenAPI document: every status the API really sends, every bound it really checks.

FastAPI's own document declares a 422 that is never sent (validation errors are 400 problem
bodies here) and knows nothing of the catalogue. This module rewrites it:

- each operation lists its real error statuses (400, 404, 503 with ``Retry-After``, 304) with
  the problem+json schema;
- operations under ``/collections/{collection_id}`` are written out once per catalogue layer, as
  pygeoapi does, so each layer's property filters, its ``datetime`` (only where it has one) and
  its id are declared with their types and bounds;
- ``collection_id``, ``tms_id`` and ``indicator_id`` are enumerations;
- OpenAPI links from a list to its items, for stateful clients and testers;
- the document is OpenAPI 3.0.3, as the landing page advertises (GDAL reads 3.0): FastAPI writes
  3.1 schemas, whose nullable ``anyOf`` and numeric exclusive bounds are rewritten in 3.0 terms.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from layers import Layer, catalogue
from observatory.api.crs import SUPPORTED
from observatory.api.params import INT64
from observatory.api.schemas import PROPERTY_TYPES
from observatory.indicators import REGISTRY
from observatory.tiles import TMS

OPENAPI_VERSION = "3.0.3"
PROBLEM = "#/components/schemas/Problem"
NUL_FREE = "^[^\\x00]*$"
"""Text parameters may hold any character but NUL (which no store can compare)."""
_NUMBER = r"-?\d+(\.\d+)?"
BBOX = f"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$"
"""minLon,minLat,maxLon,maxLat; the ranges (±180, ±90) and min ≤ max are checked by the API."""


def documented(*, store: bool = False, conditional: bool = False, not_found: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a route: the statuses it may answer besides 200 and 400."""
    responses: dict[str, Any] = {}
    if conditional:
        responses["304"] = {
            "description": "Not modified: the client's copy (If-None-Match) is current",
            "headers": {"ETag": {"schema": {"type": "string"}}},
        }
    if not_found:
        responses["404"] = _problem("Not found (unknown collection, feature, indicator or tile matrix set)")
    if store:
        responses["503"] = _problem(
            "The database is unreachable or did not answer in time; retry after the given seconds",
            retry_after=True,
        )
    return {"responses": responses}


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}},
    }
    if retry_after:
        body["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
    return body


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` by the rewritten document (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=OPENAPI_VERSION,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = to_openapi_30(rewrite(schema))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def rewrite(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components["Problem"] = {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
        },
    }
    paths: dict[str, Any] = {}
    for path, operations in schema["paths"].items():
        if "{collection_id}" in path:
            for layer in catalogue().values():
                concrete = path.replace("{collection_id}", layer.name)
                paths[concrete] = {
                    method: _for_layer(operation, layer) for method, operation in operations.items()
                }
        else:
            paths[path] = operations
    for operations in paths.values():
        for operation in operations.values():
            _finish(operation)
    _link(paths)
    schema["paths"] = paths
    return schema


def _for_layer(operation: dict[str, Any], layer: Layer) -> dict[str, Any]:
    operation = copy.deepcopy(operation)
    operation["operationId"] = f"{operation['operationId']}_{layer.name}"
    operation["summary"] = f"{operation.get('summary', '')} — {layer.name}"
    operation["tags"] = [layer.name]
    parameters = [p for p in operation.get("parameters", []) if p["name"] != "collection_id"]
    names = {p["name"] for p in parameters}
    filters = "limit" in names or "z" in names or "tilejson" in operation["operationId"]
    if layer.datetime is None:
        parameters = [p for p in parameters if p["name"] != "datetime"]
    elif filters and "datetime" not in names:
        parameters.append(_datetime_parameter())
    for parameter in parameters:
        if parameter["name"] == "bbox":
            parameter["schema"] = {"type": "string", "pattern": BBOX}
        if parameter["name"] == "feature_id":
            parameter["schema"] = _property_schema(layer.properties[layer.id])
            parameter["description"] = f"the feature's {layer.id}"
    if filters:
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": f"only features whose {name} equals this value",
                "schema": _property_schema(kind),
            }
            for name, kind in layer.properties.items()
        ]
        if layer.name == "indicators" and "limit" in names:
            _accept_latest(parameters)
    operation["parameters"] = parameters
    if not layer.public:  # analysts only (api.features.layer_of)
        operation["responses"] = {**operation.get("responses", {}), **_access_responses()}
    return operation


def _access_responses() -> dict[str, Any]:
    """The answers of a route behind a role: 401 without valid credentials, 403 without the role."""
    return {
        "401": _problem("No credentials, or a bearer token or API key that does not verify"),
        "403": _problem("The credentials are valid but lack the role needed"),
    }


def _accept_latest(parameters: list[dict[str, Any]]) -> None:
    """The indicators' items take ``period=latest`` (with one ``indicator_id``) besides a year."""
    for parameter in parameters:
        if parameter["name"] == "period":
            parameter["schema"] = {"anyOf": [parameter["schema"], {"type": "string", "enum": ["latest"]}]}
            parameter["description"] = "a year, or latest (the indicator's latest; needs indicator_id)"


def _datetime_parameter() -> dict[str, Any]:
    return {
        "name": "datetime",
        "in": "query",
        "required": False,
        "description": "RFC 3339 date or interval a/b, ../b, a/..",
        "schema": {"type": "string", "pattern": NUL_FREE},
    }


def _property_schema(kind: str) -> dict[str, Any]:
    """The catalogue type as a parameter: with the bounds and characters the API accepts."""
    schema: dict[str, Any] = dict(PROPERTY_TYPES[kind])
    if kind == "integer":
        schema.update(minimum=INT64[0], maximum=INT64[1])
    elif kind == "string":
        schema["pattern"] = NUL_FREE
    return schema


CRS_PARAMETERS = ("crs", "bbox-crs", "filter-crs")


def to_openapi_30(node: Any) -> Any:
    """A document's schemas in OpenAPI 3.0 terms: ``anyOf [X, null]`` becomes X with
    ``nullable``, numeric ``exclusiveMinimum``/``Maximum`` become a bound with a flag, ``const``
    an enum of one, and schema ``examples`` lists a single ``example``."""
    if isinstance(node, list):
        return [to_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_openapi_30(value) for key, value in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            node[flag], node[bound] = value, True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("examples"), list) and "type" in node:
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    return node


ENUMS = {
    "tms_id": lambda: [TMS.id],
    "indicator_id": lambda: sorted(REGISTRY),
}


def _finish(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    parameters = operation.get("parameters", [])
    for parameter in parameters:
        schema = parameter.get("schema", {})
        if parameter["in"] == "path" and parameter["name"] in ENUMS:
            parameter["schema"] = {"type": "string", "enum": ENUMS[parameter["name"]]()}
        elif parameter["name"] in CRS_PARAMETERS:
            parameter["schema"] = {"type": "string", "enum": list(SUPPORTED)}
        elif schema.get("type") == "string" and "format" not in schema and "enum" not in schema:
            schema.setdefault("pattern", NUL_FREE)
        elif "anyOf" in schema:  # Optional[str]: FastAPI writes anyOf [string, null]
            for option in schema["anyOf"]:
                if option.get("type") == "string":
                    option.setdefault("pattern", NUL_FREE)
    if parameters:
        responses["400"] = _problem("Invalid parameter: the detail names it and the reason")
    ordered = dict(sorted(responses.items()))
    responses.clear()
    responses.update(ordered)


def _link(paths: dict[str, Any]) -> None:
    """OpenAPI links: a page of features leads to each feature, the catalogue to each layer."""
    for layer in catalogue().values():
        items = paths.get(f"/collections/{layer.name}/items", {}).get("get")
        item_path = f"/collections/{layer.name}/items/{{feature_id}}"
        item = paths.get(item_path, {}).get("get")
        if items and item:
            items["responses"]["200"]["links"] = {
                "first_feature": {
                    "operationId": item["operationId"],
                    "parameters": {"feature_id": "$response.body#/features/0/id"},
                }
            }


def documented_access(*, store: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a route behind a role (``api.access.require``): its 401 and 403 too."""
    extra = documented(store=store)
    extra["responses"].update(_access_responses())
    return extra
