"""HEAD and OPTIONS for every GET route, and one clean ``Vary`` header.

FastAPI routes declared with ``GET`` answer ``HEAD`` with a 405. This middleware serves ``HEAD``
as the ``GET`` it mirrors (same status and headers, no body), answers a plain ``OPTIONS`` with the
allowed methods (CORS preflights go on to the CORS middleware), and merges the ``Vary`` values
that the caching code and the gzip middleware each add.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED = ("GET", "HEAD", "OPTIONS")


class MethodsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        headers = Headers(scope=scope)
        preflight = "origin" in headers and "access-control-request-method" in headers
        if method == "OPTIONS" and not preflight and _routed(scope):
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(b"allow", ", ".join(ALLOWED).encode())],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        head = method == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def relay(message: Message) -> None:
            if message["type"] == "http.response.start":
                values = [value.decode() for name, value in message["headers"] if name == b"vary"]
                if len(values) > 1 or (values and "," in values[0]):
                    merged = dict.fromkeys(
                        part.strip() for value in values for part in value.split(",") if part.strip()
                    )
                    response_headers = MutableHeaders(scope=message)
                    del response_headers["vary"]
                    response_headers["Vary"] = ", ".join(merged)
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, relay)


def _routed(scope: Scope) -> bool:
    """Whether some route of the app serves this path (with any method)."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return False
    probe = {**scope, "method": "GET"}
    return any(route.matches(probe)[0] != Match.NONE for route in router.routes)
