"""OGC API - Tiles: Mapbox Vector Tiles of every catalogue layer, with TileJSON."""

from __future__ import annotations

from typing import Annotated, Any

import morecantile
from fastapi import APIRouter, Path, Request, Response

from observatory.api.caching import accepts_gzip, conditional
from observatory.api.features import WORLD_BOUNDS, layer_extent, layer_of, store_of
from observatory.api.openapi import documented
from observatory.api.params import tile_query
from observatory.api.tile_cache import Body, TileCache, encoded
from observatory.errors import NotFound
from observatory.tiles import TMS, query_key

MVT = "application/vnd.mapbox-vector-tile"
router = APIRouter()


def _check_tms(tms_id: str) -> None:
    if tms_id != TMS.id:
        raise NotFound(f"no tile matrix set {tms_id!r}; only {TMS.id}")


def _template(request: Request, collection_id: str) -> str:
    base = str(request.base_url).rstrip("/")
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{base}/collections/{collection_id}/tiles/{TMS.id}/{{z}}/{{y}}/{{x}}{query}"


MAX_ZOOM = 24
MAX_INDEX = 2**MAX_ZOOM - 1


@router.get(
    "/collections/{collection_id}/tiles",
    summary="Tilesets of a layer",
    openapi_extra=documented(not_found=True),
)
async def tilesets(request: Request, collection_id: str) -> dict[str, Any]:
    layer_of(collection_id)
    base = str(request.base_url).rstrip("/")
    return {
        "tilesets": [
            {
                "title": collection_id,
                "dataType": "vector",
                "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
                "links": [
                    {"rel": "self", "href": f"{base}/collections/{collection_id}/tiles/{TMS.id}"},
                    {"rel": "item", "type": MVT, "templated": True,
                     "href": _template(request, collection_id)},
                    {"rel": "describedby", "type": "application/json",
                     "href": f"{base}/collections/{collection_id}/tiles/{TMS.id}/tilejson.json"},
                ],
            }
        ]
    }  # fmt: skip


@router.get(
    "/collections/{collection_id}/tiles/{tms_id}/tilejson.json",
    summary="TileJSON 3.0.0; query keys (property filters, datetime) go into the tile template",
    openapi_extra=documented(not_found=True),
)
async def tilejson(request: Request, collection_id: str, tms_id: str) -> dict[str, Any]:
    layer = layer_of(collection_id)
    _check_tms(tms_id)
    tile_query(layer, request.query_params)
    return {
        "tilejson": "3.0.0",
        "name": layer.name,
        "description": layer.title,
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
    layer = layer_of(collection_id)
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
            body = build()
        else:
            cache: TileCache = request.app.state.tile_cache
            body = cache.get((layer.name, version.tag, z, x, y, query_key(query), gzip_accepted), build)
        headers = {"Content-Encoding": body.encoding} if body.encoding else None
        return Response(body.content, media_type=MVT, headers=headers)

    return conditional(request, store, layer, encode, links=False)
