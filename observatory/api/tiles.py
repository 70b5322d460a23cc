"""OGC API - Tiles: Mapbox Vector Tiles of every catalogue layer, with TileJSON."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Any

import morecantile
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from layers import Layer
from observatory.api.caching import accepts_gzip, conditional
from observatory.api.features import WORLD_BOUNDS, layer_extent, layer_of, store_of
from observatory.api.lang import Lang, Language, language, localized, pick
from observatory.api.openapi import documented
from observatory.api.params import tile_query
from observatory.api.public_url import current_url, public_base
from observatory.api.schemas import json_schema
from observatory.api.tile_cache import Body, TileCache, encoded
from observatory.errors import NotFound
from observatory.store import FeatureQuery, LayerVersion
from observatory.tiles import TMS, query_key

MVT = "application/vnd.mapbox-vector-tile"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
TMS_CRS = "http://www.opengis.net/def/crs/EPSG/0/3857"
GEOMETRY_DIMENSIONS = {"Point": 0, "MultiLineString": 1, "MultiPolygon": 2}
router = APIRouter()


def tile_key(
    layer: Layer, version: LayerVersion, z: int, x: int, y: int, query: FeatureQuery, gzip_accepted: bool
) -> Hashable:
    """A tile's key in the tile cache: everything its bytes depend on (see tile_cache)."""
    return (layer.name, version.tag, z, x, y, query_key(query), gzip_accepted)


def tile_response(body: Body, headers: dict[str, str] | None = None) -> Response:
    """A tile's response, with ``headers`` (its validators, when known before it is built)."""
    if body.encoding:
        headers = {**(headers or {}), "Content-Encoding": body.encoding}
    return Response(body.content, media_type=MVT, headers=headers)


def _check_tms(tms_id: str) -> None:
    if tms_id != TMS.id:
        raise NotFound(f"no tile matrix set {tms_id!r}; only {TMS.id}")


def _template(request: Request, collection_id: str, *, ogc: bool = False) -> str:
    """The tile URL template: TileJSON's ``{z}/{y}/{x}`` with the request's filters, or OGC API's
    names (``ogc``: a tileset's metadata, whose query keys are not filters)."""
    base = public_base(request)
    query = f"?{request.url.query}" if request.url.query and not ogc else ""
    cell = "{tileMatrix}/{tileRow}/{tileCol}" if ogc else "{z}/{y}/{x}"
    return f"{base}/collections/{collection_id}/tiles/{TMS.id}/{cell}{query}"


MAX_ZOOM = 24
MAX_INDEX = 2**MAX_ZOOM - 1


def _summary(request: Request, layer: Layer, lang: Language) -> dict[str, Any]:
    """A tileset as the tilesets list gives it, with the links GDAL and MapLibre follow (no
    database needed)."""
    base = public_base(request)
    own = f"{base}/collections/{layer.name}/tiles/{TMS.id}"
    return {
        "title": pick(layer.title, layer.title_en, lang),
        "dataType": "vector",
        "crs": TMS_CRS,
        "tileMatrixSetURI": TMS_URI,
        "links": [
            {"rel": "self", "type": "application/json", "href": own},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": "application/json",
             "href": f"{base}/tileMatrixSets/{TMS.id}"},
            {"rel": "item", "type": MVT, "templated": True,
             "href": _template(request, layer.name, ogc=True)},
            {"rel": "describedby", "type": "application/json", "href": f"{own}/tilejson.json"},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/geodata", "type": "application/json",
             "href": f"{base}/collections/{layer.name}"},
        ],
    }  # fmt: skip


def _tileset(request: Request, layer: Layer, lang: Language) -> dict[str, Any]:
    """A tileset's metadata (OGC API - Tiles): the summary, its extent, zoom limits and layer."""
    base = public_base(request)
    west, south, east, north = layer_extent(request, layer) or WORLD_BOUNDS
    left, bottom = TMS.xy(west, south)
    right, top = TMS.xy(east, north)
    summary = _summary(request, layer, lang)
    return {
        **summary,
        # In the tile matrix set's CRS, as GDAL reads it (its MINX..MAXY open options).
        "boundingBox": {"lowerLeft": [left, bottom], "upperRight": [right, top], "crs": TMS_CRS},
        "tileMatrixSetLimits": _limits(layer, (west, south, east, north)),
        "layers": [
            {"id": layer.name, "title": summary["title"], "dataType": "vector",
             "geometryDimension": GEOMETRY_DIMENSIONS[layer.geometry],
             "minTileMatrix": str(layer.min_zoom), "maxTileMatrix": str(layer.max_zoom),
             "propertiesSchema": json_schema(layer, lang, f"{base}/collections/{layer.name}/schema")}
        ],
    }  # fmt: skip


def _limits(layer: Layer, bounds: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    """The tiles that cover the layer's extent at each zoom level it is drawn at."""
    west, south, east, north = bounds
    limits = []
    for zoom in range(layer.min_zoom, layer.max_zoom + 1):
        first, last = TMS.tile(west, north, zoom), TMS.tile(east, south, zoom)
        limits.append(
            {"tileMatrix": str(zoom), "minTileRow": first.y, "maxTileRow": last.y,
             "minTileCol": first.x, "maxTileCol": last.x}
        )  # fmt: skip
    return limits


@router.get(
    "/collections/{collection_id}/tiles",
    summary="Tilesets of a layer",
    openapi_extra=documented(not_found=True),
)
async def tilesets(request: Request, collection_id: str, lang: Lang) -> JSONResponse:
    summary = _summary(request, layer_of(request, collection_id), lang)
    links = [
        {
            "rel": "self",
            "type": "application/json",
            "href": str(current_url(request).remove_query_params("f")),
        }
    ]
    return localized({"tilesets": [summary], "links": links}, lang)


@router.get(
    "/collections/{collection_id}/tiles/{tms_id}",
    summary="A tileset's metadata: its tile matrix set, zoom levels, layers and tile template",
    openapi_extra=documented(not_found=True),
)
def tileset(request: Request, collection_id: str, tms_id: str, lang: Lang) -> JSONResponse:
    layer = layer_of(request, collection_id)
    _check_tms(tms_id)
    return localized(_tileset(request, layer, lang), lang)


@router.get(
    "/collections/{collection_id}/tiles/{tms_id}/tilejson.json",
    summary="TileJSON 3.0.0; query keys (property filters, datetime) go into the tile template",
    openapi_extra=documented(not_found=True),
)
async def tilejson(request: Request, collection_id: str, tms_id: str) -> dict[str, Any]:
    layer = layer_of(request, collection_id)
    _check_tms(tms_id)
    tile_query(layer, request.query_params)
    return {
        "tilejson": "3.0.0",
        "name": layer.name,
        "description": pick(layer.title, layer.title_en, language(request)),
        "scheme": "xyz",
        "tiles": [_template(request, collection_id)],
        "minzoom": layer.min_zoom,
        "maxzoom": layer.max_zoom,
        "bounds": layer_extent(request, layer) or WORLD_BOUNDS,
        "vector_layers": [
            {"id": layer.name, "fields": {k: v for k, v in layer.properties.items()},
             "minzoom": layer.min_zoom, "maxzoom": layer.max_zoom}
        ],
    }  # fmt: skip


@router.get(
    "/collections/{collection_id}/tiles/{tms_id}/{z}/{y}/{x}",
    summary="One vector tile (OGC order: tileMatrix/tileRow/tileCol); query keys filter properties",
    response_class=Response,
    responses={200: {"content": {MVT: {"schema": {"type": "string", "format": "binary"}}}}},
    openapi_extra=documented(store=True, conditional=True, not_found=True),
)
def tile(
    request: Request,
    collection_id: str,
    tms_id: str,
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM, description="tile matrix (zoom)")],
    y: Annotated[int, Path(ge=0, le=MAX_INDEX, description="tile row, below 2^z")],
    x: Annotated[int, Path(ge=0, le=MAX_INDEX, description="tile column, below 2^z")],
) -> Response:
    layer = layer_of(request, collection_id)
    _check_tms(tms_id)
    if not (x < 2**z and y < 2**z):  # OGC API Tiles: a tile outside the matrix limits is a 404
        raise NotFound(f"tile {z}/{y}/{x} is outside the {TMS.id} matrix: row and column below 2^{z}")
    query = tile_query(layer, request.query_params)
    store = store_of(request)
    gzip_accepted = accepts_gzip(request)

    def build() -> Body:
        content = b""
        if layer.min_zoom <= z <= layer.max_zoom:
            content = store.tile(layer, morecantile.Tile(x=x, y=y, z=z), query)
        return encoded(content, gzip_accepted=gzip_accepted)

    def encode() -> Response:
        version = store.layer_version(layer)
        if version is None:  # never written: nothing to key a cached copy on
            return tile_response(build())
        cache: TileCache = request.app.state.tile_cache
        return tile_response(cache.get(tile_key(layer, version, z, x, y, query, gzip_accepted), build))

    return conditional(request, store, layer, encode, links=False)
