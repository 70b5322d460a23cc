"""OGC API - Features: landing page, conformance, collections and items."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from layers import Layer, UnknownLayerError, catalogue, get_layer
from observatory.api.caching import conditional
from observatory.api.openapi import documented
from observatory.api.params import MAX_LIMIT, MAX_OFFSET, feature_query
from observatory.api.periods import resolve_latest
from observatory.api.responses import GeoJSONResponse, feature
from observatory.errors import NotFound, ObservatoryError, StoreUnavailable
from observatory.store import FeatureQuery, LayerVersion, Store
from observatory.tiles import TMS

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
]
WORLD_BOUNDS = [-180.0, -85.0511287798, 180.0, 85.0511287798]
"""TileJSON's default bounds, for a layer that has no rows yet."""

router = APIRouter()
log = logging.getLogger(__name__)


def store_of(request: Request) -> Store:
    """The app's store; 503 while it could not be opened yet (the server keeps retrying)."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise StoreUnavailable("the database is not reachable yet; retry later")
    return store


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


def layer_of(collection_id: str) -> Layer:
    try:
        return get_layer(collection_id)
    except UnknownLayerError:
        raise NotFound(f"no collection {collection_id!r}; see /collections") from None


def _url(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path


def landing_json(request: Request) -> dict[str, Any]:
    return {
        "title": "Observatorio Metropolitano del AMSS",
        "description": "Indicadores urbanos de los 14 municipios del Área Metropolitana de San Salvador",
        "links": [
            {"rel": "self", "type": "application/json", "href": _url(request, "/?f=json")},
            {"rel": "alternate", "type": "text/html", "title": "Mapa", "href": _url(request, "/map")},
            {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "href": _url(request, "/openapi.json")},
            {"rel": "service-doc", "type": "text/html", "href": _url(request, "/docs")},
            {"rel": "conformance", "type": "application/json", "href": _url(request, "/conformance")},
            {"rel": "data", "type": "application/json", "href": _url(request, "/collections")},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", "type": "application/json",
             "href": _url(request, "/tileMatrixSets")},
        ],
    }  # fmt: skip


# Endpoints that need no database are ``async``: they run on the event loop, so they keep
# answering even when every worker thread waits on a slow or unreachable database.


@router.get("/conformance", summary="OGC conformance classes")
async def conformance() -> dict[str, list[str]]:
    return {"conformsTo": CONFORMANCE}


def _collection(request: Request, layer: Layer, *, live: bool = True) -> dict[str, Any]:
    """A collection's metadata; ``live=False`` answers without the database (the list)."""
    base = f"/collections/{layer.name}"
    bbox = layer_extent(request, layer) if live else known_extent(request, layer)
    extent = (
        {"spatial": {"bbox": [bbox], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}} if bbox else {}
    )
    return {
        "id": layer.name,
        "title": layer.title,
        "description": layer.title_en,
        "itemType": "feature",
        **({"extent": extent} if extent else {}),
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "links": [
            {"rel": "self", "type": "application/json", "href": _url(request, base)},
            {"rel": "items", "type": "application/geo+json", "href": _url(request, f"{base}/items")},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/vector-tiles", "type": "application/json",
             "href": _url(request, f"{base}/tiles")},
        ],
        "properties": layer.properties,
    }  # fmt: skip


@router.get("/collections", summary="The catalogue's layers")
async def collections(request: Request) -> dict[str, Any]:
    return {
        "collections": [_collection(request, layer, live=False) for layer in catalogue().values()],
        "links": [{"rel": "self", "type": "application/json", "href": _url(request, "/collections")}],
    }


@router.get(
    "/collections/{collection_id}", summary="One layer's metadata", openapi_extra=documented(not_found=True)
)
async def collection(request: Request, collection_id: str) -> dict[str, Any]:
    return _collection(request, layer_of(collection_id))


@router.get(
    "/collections/{collection_id}/items",
    response_class=GeoJSONResponse,
    response_model=None,
    summary="Features of a layer (GeoJSON); other query keys filter on properties by equality",
    openapi_extra=documented(store=True, conditional=True, not_found=True),
)
def items(
    request: Request,
    collection_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="features to skip")] = 0,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (CRS84)")] = None,
    datetime: Annotated[str | None, Query(description="RFC 3339 date or interval a/b, ../b, a/..")] = None,
) -> Response:
    layer = layer_of(collection_id)
    params = resolve_latest(lambda: store_of(request), layer, request.query_params)
    query = feature_query(layer, params, limit=limit, offset=offset)
    store = store_of(request)

    def page() -> GeoJSONResponse:
        # One extra row tells whether a next page exists without counting the whole table.
        records = store.select(layer, dataclasses.replace(query, limit=limit + 1))
        links = [_page_link(request, "self", offset)]
        if len(records) > limit:
            links.append(_page_link(request, "next", offset + limit))
        if offset > 0:
            links.append(_page_link(request, "prev", max(0, offset - limit)))
        collection_url = _url(request, f"/collections/{layer.name}")
        links.append({"rel": "collection", "type": "application/json", "href": collection_url})
        features = [feature(layer, record) for record in records[:limit]]
        return GeoJSONResponse(
            {
                "type": "FeatureCollection",
                "features": features,
                "numberReturned": len(features),
                "links": links,
            }
        )

    return conditional(request, store, layer, page)


def _page_link(request: Request, rel: str, offset: int) -> dict[str, str]:
    href = request.url.include_query_params(offset=offset)
    return {"rel": rel, "type": "application/geo+json", "href": str(href)}


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    response_class=GeoJSONResponse,
    summary="One feature by its stable id",
    openapi_extra=documented(store=True, conditional=True, not_found=True),
)
def item(request: Request, collection_id: str, feature_id: str) -> Response:
    layer = layer_of(collection_id)
    try:
        if "\x00" in feature_id:  # no store can hold or compare it: no such feature
            raise ValueError(feature_id)
        value = layer.parse_value(layer.id, feature_id)
    except (ValueError, OverflowError):
        raise NotFound(f"no feature {feature_id!r} in {collection_id!r}") from None
    store = store_of(request)

    def one() -> GeoJSONResponse:
        records = store.select(layer, FeatureQuery(filters={layer.id: value}, limit=1))
        if not records:
            raise NotFound(f"no feature {feature_id!r} in {collection_id!r}")
        body = feature(layer, records[0])
        base = f"/collections/{layer.name}"
        body["links"] = [
            {
                "rel": "self",
                "type": "application/geo+json",
                "href": _url(request, f"{base}/items/{feature_id}"),
            },
            {"rel": "collection", "type": "application/json", "href": _url(request, base)},
        ]
        return GeoJSONResponse(body)

    return conditional(request, store, layer, one)


@router.get("/tileMatrixSets", summary="Tiling schemes")
async def tile_matrix_sets(request: Request) -> dict[str, Any]:
    return {
        "tileMatrixSets": [
            {"id": TMS.id, "title": "Google Maps Compatible for the World",
             "links": [{"rel": "self", "href": _url(request, f"/tileMatrixSets/{TMS.id}")}]}
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
    definition: dict[str, Any] = TMS.model_dump(exclude_none=True, mode="json")
    return definition
