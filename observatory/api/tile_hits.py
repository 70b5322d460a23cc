"""Cached tiles answered first: before FastAPI's middleware and routing, without a thread.

A cache hit needs no database and no thread; through the router it still paid FastAPI's route
matching and parameter solving and a hop to the thread pool, about 0.7 ms, so 50 connections
queued for tens of milliseconds; inside the middleware stack, each layer's wrapping of the
response still cost a third of a hit. ``ObservatoryAPI`` (app.py) hands every request to
``answer`` first, which answers a tile GET whose bytes are in the tile cache under the layer's
current version, with the endpoint's own key, response and validators (tiles.tile_key,
tiles.tile_response, caching.validators). Anything else goes on to the app unchanged: a miss, an
unknown layer, a bad query (its 400 comes from there), a version not in memory (the PostGIS
listener not connected: reading it needs the database, so a thread), and a request with an
``Origin`` (its CORS headers are the CORS middleware's; the endpoint answers it from the cache).
Cached tiles are gzipped once already, so the gzip middleware has nothing to add; the security
headers are in the raw headers built once per tile version. ``ObservatoryAPI`` checks the ``Host``
first (public_url): a tile has no links, but a refused host is refused everywhere.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Protocol

from fastapi import Request, Response
from starlette.datastructures import State
from starlette.types import Scope, Send

from layers import UnknownLayerError, get_layer
from observatory.api.caching import accepts_gzip, current_copy, offered_tags, validators
from observatory.api.params import tile_query
from observatory.api.security_headers import HEADERS
from observatory.api.tile_cache import Body, TileCache
from observatory.api.tiles import tile_key, tile_response
from observatory.errors import ObservatoryError
from observatory.store import LayerVersion
from observatory.tiles import TMS

log = logging.getLogger(__name__)
RawHeaders = list[tuple[bytes, bytes]]
TILE_PATH = re.compile(rf"/collections/([^/]+)/tiles/{TMS.id}/(\d+)/(\d+)/(\d+)")


class VersionMemory(Protocol):
    """A store's layer versions in memory (both stores keep them: LISTEN/NOTIFY, the file's
    identity); ``current()`` is None while they are unknown."""

    def current(self) -> Mapping[str, LayerVersion] | None: ...


async def answer(state: State, scope: Scope, send: Send) -> bool:
    """Whether the request was for a cached tile, now answered."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    match = TILE_PATH.fullmatch(scope["path"])
    if match is None:
        return False
    request = Request(scope)
    if "origin" in request.headers or "authorization" in request.headers:
        return False
    try:
        hit = _hit(state, request, match)
    except Exception:  # the app's own path answers, and reports, whatever went wrong
        log.exception("a cached tile could not be answered first")
        return False
    if hit is None:
        return False
    status, headers, content = hit
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
    return True


def _hit(state: State, request: Request, match: re.Match[str]) -> tuple[int, RawHeaders, bytes] | None:
    """The cached tile's status, raw headers and body (or a 304's), else None for the endpoint."""
    # Not isinstance with a runtime Protocol: that costs 20 µs, a sixth of a hit.
    memory: VersionMemory | None = getattr(getattr(state, "store", None), "versions", None)
    if memory is None:
        return None
    try:
        layer = get_layer(match[1])
        query = tile_query(layer, request.query_params)
    except (UnknownLayerError, ObservatoryError):
        return None
    if not layer.public:  # who may read it is the endpoint's to decide
        return None
    version = (memory.current() or {}).get(layer.name)
    if version is None:
        return None
    z, y, x = int(match[2]), int(match[3]), int(match[4])
    cache: TileCache = state.tile_cache
    body = cache.peek(tile_key(layer, version, z, x, y, query, accepts_gzip(request)))
    if body is None:
        return None
    headers = validators(request, version, links=False)
    current = current_copy(request, version, headers["ETag"]) or "*" in offered_tags(request)
    if current:  # a hit exists: with If-None-Match *, any current copy will do
        return 304, [*Response(status_code=304, headers=headers).raw_headers, *HEADERS], b""
    return 200, list(_raw_headers(tuple(headers.items()), body.encoding, len(body.content))), body.content


@lru_cache(maxsize=4096)
def _raw_headers(
    validated: tuple[tuple[str, str], ...], encoding: str | None, length: int
) -> tuple[tuple[bytes, bytes], ...]:
    """tiles.tile_response's raw headers, built once per tile version and coding (a Response
    object per hit cost a tenth of the hit), with the security headers every response carries
    (this answer skips the middleware that adds them). A tuple: middlewares edit the list they are
    sent."""
    built = tile_response(Body(b"", encoding), dict(validated)).raw_headers
    own = (h for h in built if h[0] != b"content-length")
    return ((b"content-length", str(length).encode()), *own, *HEADERS)
