"""HTTP validators: an ETag and Last-Modified per layer version, so loads purge every cache.

Responses carry ``Cache-Control: no-cache``: caches may keep them but must revalidate, and a
revalidation costs one tiny store query and a 304 until a load or a recomputation replaces the
layer, which changes its version and with it every ETag.

A strong ETag names one representation, so it covers everything the bytes depend on: the layer
version, the path and query, the content coding the client accepts (gzip or not), and, for bodies
with links, the base URL they are built from (``public_url``, or else ``Host`` and, behind a
trusted proxy, ``X-Forwarded-Proto``: see public_url). ``Vary`` names the same request headers for
shared caches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache

from fastapi import Request, Response

from layers import Layer
from observatory.api.public_url import PLAIN_VARY, links_vary, public_base
from observatory.store import LayerVersion, Store


def accepts_gzip(request: Request) -> bool:
    """The test the gzip middleware makes, so the ETag follows the coding actually sent."""
    return "gzip" in request.headers.get("accept-encoding", "")


def validators(request: Request, version: LayerVersion, *, links: bool) -> dict[str, str]:
    """The ETag, Last-Modified, Cache-Control and Vary headers of a response for ``request``."""
    base = public_base(request) if links else None
    vary = links_vary(request) if links else PLAIN_VARY  # PLAIN_VARY also for a tile answered first
    scope = request.scope  # the URL's parts without building a URL (a third of a cached hit)
    path, query = scope.get("root_path", "") + scope["path"], scope["query_string"].decode("latin-1")
    return dict(_validators(version, path, query, accepts_gzip(request), base, vary))


@lru_cache(maxsize=4096)
def _validators(
    version: LayerVersion, path: str, query: str, gzip: bool, base: str | None, vary: str
) -> tuple[tuple[str, str], ...]:
    """Computed once per layer version and request, not on every hit of a cached tile."""
    parts = [version.tag, path, query, "gzip" if gzip else "identity"]
    if base is not None:
        parts.append(base)
    etag = '"' + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32] + '"'
    return (
        ("ETag", etag),
        ("Last-Modified", format_datetime(version.changed_at.astimezone(UTC), usegmt=True)),
        ("Cache-Control", "no-cache"),
        ("Vary", vary),
    )


def offered_tags(request: Request) -> set[str]:
    """The entity tags of ``If-None-Match`` (weak ones compared as strong, ``*`` kept)."""
    return {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}


def current_copy(request: Request, version: LayerVersion, etag: str) -> bool:
    """Whether the client's copy is current (RFC 9110, 13.2.2): its ``If-None-Match`` names the
    ETag (or ``*``: checked by the caller once the resource exists), or, without one, its
    ``If-Modified-Since`` is not before the layer's last change (to the second, as Last-Modified
    says it). A date that does not parse, or is not in GMT, is ignored."""
    if "if-none-match" in request.headers:
        return etag in offered_tags(request)
    text = request.headers.get("if-modified-since")
    if not text:
        return False
    try:
        since = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        return False
    return version.changed_at.astimezone(UTC).replace(microsecond=0) <= since


def conditional(
    request: Request,
    store: Store,
    layer: Layer,
    build: Callable[[], Response],
    *,
    links: bool = True,
) -> Response:
    """``build()``'s response with validators, or an empty 304 when the client's copy is current.

    ``links``: whether the body holds absolute links (built from the request's base URL).
    ``build`` may raise (e.g. NotFound): ``If-None-Match: *`` is a 304 only for a resource that
    exists, so it is built first.
    """
    version = store.layer_version(layer)
    if version is None:
        return build()
    headers = validators(request, version, links=links)
    offered = offered_tags(request)
    if current_copy(request, version, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    response = build()
    if "*" in offered:  # the resource exists (build() did not raise): any current copy will do
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response
