"""HTTP validators: an ETag and Last-Modified per layer version, so loads purge every cache.

Responses carry ``Cache-Control: no-cache``: caches may keep them but must revalidate, and a
revalidation costs one tiny store query and a 304 until a load or a recomputation replaces the
layer, which changes its version and with it every ETag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC
from email.utils import format_datetime

from fastapi import Request, Response

from layers import Layer
from observatory.store import Store


def conditional(request: Request, store: Store, layer: Layer, build: Callable[[], Response]) -> Response:
    """``build()``'s response with validators, or an empty 304 when the client's copy is current."""
    version = store.layer_version(layer)
    if version is None:
        return build()
    resource = f"{version.tag}|{request.url.path}?{request.url.query}"
    etag = '"' + hashlib.sha256(resource.encode()).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(version.changed_at.astimezone(UTC), usegmt=True),
        "Cache-Control": "no-cache",
    }
    offered = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in offered or "*" in offered:
        return Response(status_code=304, headers=headers)
    response = build()
    response.headers.update(headers)
    return response
