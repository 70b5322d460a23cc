"""OGC API - Features: landing page, conformance, collections and items."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from layers import Layer, UnknownLayerError, catalogue, get_layer
from observatory.access import Role, authorize
from observatory.api.access import audit, principal
from observatory.api.caching import conditional
from observatory.api.crs import CRS84, SUPPORTED, parse_crs, reproject
from observatory.api.lang import Lang, Language, language, localized, pick
from observatory.api.openapi import documented
from observatory.api.params import MAX_LIMIT, MAX_OFFSET, feature_query, parse_properties
from observatory.api.periods import resolve_latest
from observatory.api.public_url import current_url, public_url
from observatory.api.responses import GeoJSONResponse, feature, to_csv
from observatory.api.schemas import geojson_feature_schema, json_schema
from observatory.api.state import store_of
from observatory.errors import NotFound, ObservatoryError
from observatory.store import FeatureQuery, LayerVersion, Record, Store
from observatory.store.base import Bbox
from observatory.tiles import TMS

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
]
NUMBER_MATCHED_EXACT_UP_TO = 100_000
"""Matching features counted exactly up to this many; above, PostGIS answers its planner's
estimate (flagged ``numberMatchedEstimated``) and the GeoPackage answers none."""
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SCHEMA_REL = "http://www.opengis.net/def/rel/ogc/1.0/schema"
SCHEMA_JSON = "application/schema+json"
GEOJSON = "application/geo+json"
WORLD_BOUNDS = [-180.0, -85.0511287798, 180.0, 85.0511287798]
"""TileJSON's default bounds, for a layer that has no rows yet."""

router = APIRouter()
log = logging.getLogger(__name__)


def layer_extent(request: Request, layer: Layer) -> list[float] | None:
    """The layer's lon/lat extent from its rows, measured once per layer version (a load changes
    it) and remembered for the collections list, which answers without the database."""
    store = store_of(request)
    tag = _tag(store.layer_version(layer))
    extents: dict[str, tuple[str, list[float] | None]] = request.app.state.extents
    if layer.name not in extents or extents[layer.name][0] != tag:
        extents[layer.name] = (tag, _measured_extent(store, layer))
    return extents[layer.name][1]


def known_extent(request: Request, layer: Layer) -> list[float] | None:
    """The extent last measured for the layer, without asking the database (None if never)."""
    extents: dict[str, tuple[str, list[float] | None]] = request.app.state.extents
    return extents.get(layer.name, ("", None))[1]


def prime_extents(app: Any, store: Store) -> None:
    """Measure every layer's extent at start-up, so the collections list has them at once."""
    for layer in catalogue().values():
        try:
            app.state.extents[layer.name] = (_tag(store.layer_version(layer)), _measured_extent(store, layer))
        except ObservatoryError as error:
            log.warning("extent of %s unknown for now: %s", layer.name, error.message)


def _measured_extent(store: Store, layer: Layer) -> list[float] | None:
    """The extent of the layer's rows (None for an empty layer)."""
    bounds = store.extent(layer)
    return _outward(bounds) if bounds else None


def _tag(version: LayerVersion | None) -> str:
    return version.tag if version else ""


def _outward(bounds: tuple[float, float, float, float]) -> list[float]:
    """Bounds to 6 decimals (10 cm), rounded outward so that they still enclose every feature."""
    west, south, east, north = bounds
    return [math.floor(west * 1e6) / 1e6, math.floor(south * 1e6) / 1e6,
            math.ceil(east * 1e6) / 1e6, math.ceil(north * 1e6) / 1e6]  # fmt: skip


def layer_of(request: Request, collection_id: str) -> Layer:
    """The collection's layer, if the caller may read it: a layer that is not public needs the
    analyst role (401 anonymous, 403 without it), and each such read is audited."""
    try:
        layer = get_layer(collection_id)
    except UnknownLayerError:
        raise NotFound(f"no collection {collection_id!r}; see /collections") from None
    if not layer.public:
        caller = authorize(principal(request), Role.ANALYST)
        audit(request, caller, layer.name, 200)
    return layer


def visible_layers(request: Request) -> list[Layer]:
    """The catalogue's layers the caller may read (the public ones unless it holds a role)."""
    analyst = principal(request).role >= Role.ANALYST
    return [layer for layer in catalogue().values() if layer.public or analyst]


def landing_json(request: Request) -> JSONResponse:
    lang = language(request)
    return localized(
        {
            "title": pick("Observatorio Metropolitano del AMSS", "AMSS Metropolitan Observatory", lang),
            "description": pick(
                "Indicadores urbanos de los 14 municipios del Área Metropolitana de San Salvador",
                "Urban indicators of the 14 municipalities of the San Salvador Metropolitan Area",
                lang,
            ),
            "links": [
                {"rel": "self", "type": "application/json", "href": public_url(request, "/?f=json")},
                {"rel": "alternate", "type": "text/html", "title": pick("Mapa", "Map", lang),
                 "href": public_url(request, "/map")},
                {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
                 "href": public_url(request, "/openapi.json")},
                {"rel": "service-doc", "type": "text/html", "href": public_url(request, "/docs")},
                {"rel": "conformance", "type": "application/json",
                 "href": public_url(request, "/conformance")},
                {"rel": "data", "type": "application/json", "href": public_url(request, "/collections")},
                {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", "type": "application/json",
                 "href": public_url(request, "/tileMatrixSets")},
            ],
        },
        lang,
    )  # fmt: skip


# Endpoints that need no database are ``async``: they run on the event loop, so they keep
# answering even when every worker thread waits on a slow or unreachable database.


@router.get("/conformance", summary="OGC conformance classes")
async def conformance() -> dict[str, list[str]]:
    return {"conformsTo": CONFORMANCE}


def _collection(request: Request, layer: Layer, lang: Language, *, live: bool = True) -> dict[str, Any]:
    """A collection's metadata; ``live=False`` answers without the database (the list)."""
    base = f"/collections/{layer.name}"
    bbox = layer_extent(request, layer) if live else known_extent(request, layer)
    extent = {"spatial": {"bbox": [bbox], "crs": CRS84}} if bbox else {}
    title = pick(layer.title, layer.title_en, lang)
    return {
        "id": layer.name,
        "title": title,
        "description": title,
        "itemType": "feature",
        **({"extent": extent} if extent else {}),
        "crs": list(SUPPORTED),
        "storageCrs": CRS84,
        "links": [
            {"rel": "self", "type": "application/json", "href": public_url(request, base)},
            {"rel": "items", "type": GEOJSON, "href": public_url(request, f"{base}/items")},
            {"rel": "items", "type": "text/csv", "href": public_url(request, f"{base}/items?f=csv")},
            {"rel": QUERYABLES_REL, "type": SCHEMA_JSON, "href": public_url(request, f"{base}/queryables")},
            {"rel": SCHEMA_REL, "type": SCHEMA_JSON, "href": public_url(request, f"{base}/schema")},
            # A GeoJSON feature's schema: GDAL (3.6 matches this spelling) types its fields from it.
            {"rel": "describedBy", "type": SCHEMA_JSON,
             "href": public_url(request, f"{base}/feature-schema")},
            {"rel": "queryables", "type": SCHEMA_JSON, "href": public_url(request, f"{base}/queryables")},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": "application/json",
             "href": public_url(request, f"{base}/tiles")},
        ],
        "properties": layer.properties,
    }  # fmt: skip


@router.get("/collections", summary="The catalogue's layers (those not public only for a caller with a role)")
def collections(request: Request, lang: Lang) -> JSONResponse:
    return localized(
        {
            "collections": [
                _collection(request, layer, lang, live=False) for layer in visible_layers(request)
            ],
            "links": [
                {"rel": "self", "type": "application/json", "href": public_url(request, "/collections")}
            ],
        },
        lang,
    )


@router.get(
    "/collections/{collection_id}", summary="One layer's metadata", openapi_extra=documented(not_found=True)
)
async def collection(request: Request, collection_id: str, lang: Lang) -> JSONResponse:
    return localized(_collection(request, layer_of(request, collection_id), lang), lang)


@router.get(
    "/collections/{collection_id}/queryables",
    summary="The properties a filter may name, with their types (JSON Schema)",
    responses={200: {"content": {SCHEMA_JSON: {}, "application/json": {}}}},
    openapi_extra=documented(not_found=True),
)
async def queryables(request: Request, collection_id: str, lang: Lang) -> JSONResponse:
    layer = layer_of(request, collection_id)
    body = json_schema(layer, lang, f"{public_url(request, f'/collections/{layer.name}')}/queryables")
    # GDAL before 3.8 accepts queryables only as application/json.
    kind = SCHEMA_JSON if SCHEMA_JSON in request.headers.get("accept", "") else "application/json"
    return localized(body, lang, media_type=kind)


@router.get(
    "/collections/{collection_id}/schema",
    summary="The features' properties with their types and roles (JSON Schema, Features Part 5)",
    responses={200: {"content": {SCHEMA_JSON: {}}}},
    openapi_extra=documented(not_found=True),
)
async def schema(request: Request, collection_id: str, lang: Lang) -> JSONResponse:
    layer = layer_of(request, collection_id)
    body = json_schema(layer, lang, f"{public_url(request, f'/collections/{layer.name}')}/schema")
    return localized(body, lang, media_type=SCHEMA_JSON)


@router.get(
    "/collections/{collection_id}/feature-schema",
    summary="JSON Schema of one GeoJSON feature of the items (the collection's describedby)",
    responses={200: {"content": {SCHEMA_JSON: {}}}},
    openapi_extra=documented(not_found=True),
)
async def feature_schema(request: Request, collection_id: str, lang: Lang) -> JSONResponse:
    layer = layer_of(request, collection_id)
    body = geojson_feature_schema(
        layer, lang, public_url(request, f"/collections/{layer.name}/feature-schema")
    )
    return localized(body, lang, media_type=SCHEMA_JSON)


@router.get(
    "/collections/{collection_id}/items",
    response_class=GeoJSONResponse,
    response_model=None,
    summary="Features of a layer (GeoJSON or CSV); other query keys filter on properties by equality",
    responses={200: {"content": {GEOJSON: {}, "text/csv": {}}}},
    openapi_extra=documented(store=True, conditional=True, not_found=True),
)
def items(
    request: Request,
    collection_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="features to skip")] = 0,
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (CRS84, or bbox-crs)")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", description="CRS of bbox (URI)")] = None,
    datetime: Annotated[str | None, Query(description="RFC 3339 date or interval a/b, ../b, a/..")] = None,
    filter: Annotated[str | None, Query(description="CQL2 filter (text, or JSON with filter-lang)")] = None,
    filter_lang: Annotated[
        Literal["cql2-text", "cql2-json", "cql-text"],
        Query(alias="filter-lang", description="language of filter (cql-text: GDAL < 3.8's cql2-text)"),
    ] = "cql2-text",
    filter_crs: Annotated[str | None, Query(alias="filter-crs", description="CRS of filter (CRS84)")] = None,
    sortby: Annotated[str | None, Query(description="properties, each +asc or -desc: -floor_area_m2")] = None,
    properties: Annotated[str | None, Query(description="comma-separated properties to return")] = None,
    q: Annotated[
        str | None, Query(description="words, comma-separated: any found in a text property")
    ] = None,
    crs: Annotated[str | None, Query(description="CRS of the geometries returned (URI)")] = None,
    f: Annotated[Literal["json", "geojson", "csv"] | None, Query(description="geojson or csv")] = None,
) -> Response:
    layer = layer_of(request, collection_id)
    params = resolve_latest(lambda: store_of(request), layer, request.query_params)
    query = feature_query(layer, params, limit=limit, offset=offset)
    selected = parse_properties(layer, properties)
    target = parse_crs(crs)
    store = store_of(request)
    if query.bbox is not None and _encloses(query.bbox, layer_extent(request, layer)):
        query = dataclasses.replace(query, bbox=None)  # it filters nothing: spare the spatial test

    def page() -> Response:
        # One extra row tells whether a next page exists without counting the whole table.
        records = store.select(layer, dataclasses.replace(query, limit=limit + 1))
        features = [_output(layer, record, selected, target) for record in records[:limit]]
        headers = {"Content-Crs": f"<{target}>"}
        if f == "csv":
            text = to_csv(features, selected or list(layer.properties))
            return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
        links = [_page_link(request, "self", offset)]
        if len(records) > limit:
            links.append(_page_link(request, "next", offset + limit))
        if offset > 0:
            links.append(_page_link(request, "prev", max(0, offset - limit)))
        collection_url = public_url(request, f"/collections/{layer.name}")
        links.append({"rel": "collection", "type": "application/json", "href": collection_url})
        body: dict[str, Any] = {"type": "FeatureCollection", "features": features}
        count = store.count(layer, query, exact_up_to=NUMBER_MATCHED_EXACT_UP_TO)
        if count is not None:
            body["numberMatched"] = count.value
            if not count.exact:
                body["numberMatchedEstimated"] = True
        body.update(numberReturned=len(features), links=links)
        return GeoJSONResponse(body, headers=headers)

    return conditional(request, store, layer, page)


def _encloses(bbox: Bbox, extent: list[float] | None) -> bool:
    """Whether ``bbox`` contains the layer's whole extent (so it filters nothing out)."""
    if extent is None:
        return False
    west, south, east, north = extent
    return bbox[0] <= west and bbox[1] <= south and bbox[2] >= east and bbox[3] >= north


def _output(layer: Layer, record: Record, selected: list[str] | None, crs: str) -> dict[str, Any]:
    """A record as a GeoJSON feature, with the selected properties, in the CRS asked for."""
    if crs != CRS84:
        record = Record(record.properties, reproject(record.geometry, crs))
    body = feature(layer, record)
    if selected is not None:
        body["properties"] = {name: body["properties"][name] for name in selected}
    return body


def _page_link(request: Request, rel: str, offset: int) -> dict[str, str]:
    href = current_url(request).include_query_params(offset=offset)
    kind = "text/csv" if request.query_params.get("f") == "csv" else GEOJSON
    return {"rel": rel, "type": kind, "href": str(href)}


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=GeoJSONResponse,
    summary="One feature by its stable id",
    openapi_extra=documented(store=True, conditional=True, not_found=True),
)
def item(
    request: Request,
    collection_id: str,
    feature_id: str,
    crs: Annotated[str | None, Query(description="CRS of the geometry returned (URI)")] = None,
) -> Response:
    layer = layer_of(request, collection_id)
    try:
        if "\x00" in feature_id:  # no store can hold or compare it: no such feature
            raise ValueError(feature_id)
        value = layer.parse_value(layer.id, feature_id)
    except (ValueError, OverflowError):
        raise NotFound(f"no feature {feature_id!r} in {collection_id!r}") from None
    target = parse_crs(crs)
    store = store_of(request)

    def one() -> GeoJSONResponse:
        records = store.select(layer, FeatureQuery(filters={layer.id: value}, limit=1))
        if not records:
            raise NotFound(f"no feature {feature_id!r} in {collection_id!r}")
        body = _output(layer, records[0], None, target)
        base = f"/collections/{layer.name}"
        body["links"] = [
            {"rel": "self", "type": GEOJSON, "href": public_url(request, f"{base}/items/{feature_id}")},
            {"rel": "collection", "type": "application/json", "href": public_url(request, base)},
        ]
        return GeoJSONResponse(body, headers={"Content-Crs": f"<{target}>"})

    return conditional(request, store, layer, one)


@router.get("/tileMatrixSets", summary="Tiling schemes")
async def tile_matrix_sets(request: Request) -> dict[str, Any]:
    return {
        "tileMatrixSets": [
            {"id": TMS.id, "title": "Google Maps Compatible for the World",
             "links": [{"rel": "self", "href": public_url(request, f"/tileMatrixSets/{TMS.id}")}]}
        ]
    }  # fmt: skip


@router.get(
    "/tileMatrixSets/{tms_id}",
    summary="One tiling scheme's definition",
    openapi_extra=documented(not_found=True),
)
async def tile_matrix_set(tms_id: str) -> dict[str, Any]:
    if tms_id != TMS.id:
        raise NotFound(f"no tile matrix set {tms_id!r}; only {TMS.id}")
    return tile_matrix_set_definition()


def tile_matrix_set_definition() -> dict[str, Any]:
    """WebMercatorQuad in OGC TMS 2.0 (morecantile), with TMS 1.0's names beside (``identifier``,
    ``supportedCRS``, ``topLeftCorner``, corners of ``boundingBox``): GDAL before 3.7 reads only those.
    """
    definition: dict[str, Any] = TMS.model_dump(exclude_none=True, mode="json")
    west, south, east, north = TMS.xy_bbox
    definition.update(
        identifier=definition["id"],
        supportedCRS=definition["crs"],
        boundingBox={"crs": definition["crs"], "lowerLeft": [west, south], "upperRight": [east, north],
                     "lowerCorner": [west, south], "upperCorner": [east, north]},
    )  # fmt: skip
    for matrix in definition["tileMatrices"]:
        matrix.update(identifier=matrix["id"], topLeftCorner=matrix["pointOfOrigin"])
    return definition
