"""Security headers on every response: pages, API, static files, errors and cached tiles.

The policy allows what the pages load from this server and nothing inline, so an injected
``<script>`` or ``style``/``on*`` attribute does not run, and no other site may frame the pages
(clickjacking). The map needs ``blob:`` workers (MapLibre starts its workers from a blob) and
``data:``/``blob:`` images (sprites, Chart.js exports); the API docs page loads Swagger UI and its
start-up script (``static/app/docs.js``) from here, so one policy serves every response. On JSON and
tiles the policy does nothing in a browser but costs nothing either, and a uniform rule is one
that cannot be forgotten on a new route.

The middleware wraps the whole app (``ObservatoryAPI.build_middleware_stack``), outside
Starlette's ``ServerErrorMiddleware``, so a 500 carries the headers too; cached tiles answered
before the app (tile_hits) add ``HEADERS`` to the raw headers they build once per tile version.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "child-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Content-Security-Policy, without ``'unsafe-inline'`` or ``'unsafe-eval'``."""

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)
"""Raw (ASGI) headers added to every response. ``X-Frame-Options`` for browsers that predate
``frame-ancestors``; the referrer policy sends other sites the origin only, never a map's query."""

_NAMES = frozenset(name for name, _ in HEADERS)


class SecurityHeadersMiddleware:
    """Adds ``HEADERS`` to every HTTP response (replacing any the app set under those names)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def relay(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [item for item in message.get("headers", []) if item[0].lower() not in _NAMES]
                message = {**message, "headers": [*kept, *HEADERS]}
            await send(message)

        await self.app(scope, receive, relay)
