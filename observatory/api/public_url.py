"""The server's public address: every absolute link and redirect is built here, never on a Host
header a client made up.

A response's links are copied by caches, partner tools and browsers; built on the ``Host`` header,
one request with ``Host: evil.example`` makes the server hand out links (and redirects) to another
site, and a shared cache may keep them for everyone (host-header poisoning). So:

- with ``public_url`` set (production, behind a proxy), links and redirects start with it whatever
  the request says, and the answers do not vary with ``Host``;
- unset (a laptop, the demo), they start with the request's own scheme and ``Host``, accepted only
  if it is one of ``allowed_hosts``, the host of ``public_url`` or the address the connection
  arrived at (which the client cannot choose); any other gets a 400 problem. This is Django's
  ``ALLOWED_HOSTS`` rule (Starlette's ``TrustedHostMiddleware`` makes the same test, but answers
  plain text and knows nothing of the connection's own address), checked whatever ``public_url``.

``X-Forwarded-Proto`` changes the scheme only when uvicorn trusts the proxy that sent it
(``forwarded_allow_ips``: ``uvicorn_options``); ``X-Forwarded-Host`` is never read.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import URL, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observatory.api.responses import ProblemResponse
from observatory.settings import Settings

LINKED_VARY = "Accept-Encoding, Host, X-Forwarded-Proto, Origin"
"""Request headers a response with links built on the request depends on (``Origin``: CORS)."""
PLAIN_VARY = "Accept-Encoding, Origin"
"""Request headers a response without links, or with links on ``public_url``, depends on."""


class PublicAddress:
    """Where links point and which ``Host`` headers are answered; kept on ``app.state.public``."""

    def __init__(self, settings: Settings) -> None:
        self.configured = settings.public_url
        names = [name.lower() for name in settings.allowed_hosts]
        if self.configured:
            names.append(urlsplit(self.configured).hostname or "")
        self.any = "*" in names
        self.exact = frozenset(name.strip("[]") for name in names if not name.startswith("*."))
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))

    @property
    def vary(self) -> str:
        """The ``Vary`` of a response with links."""
        return PLAIN_VARY if self.configured else LINKED_VARY

    def base(self, request: Request) -> str:
        """The base every link starts with, without a trailing slash."""
        return self.configured or str(request.base_url).rstrip("/")

    def allows(self, scope: Scope) -> bool:
        """Whether the request's ``Host`` (none: HTTP/1.0) may be answered."""
        host = _host_header(scope)
        if self.any or host is None:
            return True
        name = _hostname(host)
        if name is None:
            return False
        server = scope.get("server")
        return (
            name in self.exact
            or name.endswith(self.suffixes)
            or (server is not None and name == str(server[0]).lower())
        )


def public_base(request: Request) -> str:
    """The base URL of every absolute link in a response to ``request`` (no trailing slash)."""
    address: PublicAddress = request.app.state.public
    return address.base(request)


def public_url(request: Request, path: str) -> str:
    """``path`` (``/collections``) as an absolute public URL."""
    return public_base(request) + path


def current_url(request: Request) -> URL:
    """The URL of this request on the public base (its path and query as received)."""
    own_base = str(request.base_url)
    return URL(public_base(request) + "/" + str(request.url)[len(own_base) :])


def links_vary(request: Request) -> str:
    """The ``Vary`` header of a response whose body holds links."""
    address: PublicAddress = request.app.state.public
    return address.vary


class PublicAddressMiddleware:
    """Refuses ``Host`` headers not allowed (400 problem+json) and puts ``Location`` headers
    (Starlette's trailing-slash 307, relative redirects) on the public base."""

    def __init__(self, app: ASGIApp, address: PublicAddress) -> None:
        self.app, self.address = app, address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.address.allows(scope):
            host = _host_header(scope)
            refusal = ProblemResponse(400, "Invalid host", f"this server does not answer for host {host!r}")
            await refusal(scope, receive, send)
            return
        request = Request(scope)

        async def relay(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                headers = MutableHeaders(scope=message)
                if "location" in headers:
                    headers["location"] = _public_location(headers["location"], request, self.address)
            await send(message)

        await self.app(scope, receive, relay)


def _public_location(location: str, request: Request, address: PublicAddress) -> str:
    """A redirect's target on the public base: an absolute URL on the request's own base, or a
    path (``/map``), is moved onto it; a URL to another site is left alone."""
    own = str(request.base_url).rstrip("/")
    if location.startswith(own + "/") or location == own:
        return address.base(request) + location[len(own) :]
    if location.startswith("/") and not location.startswith("//"):
        return address.base(request) + location
    return location


def _host_header(scope: Scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"host":
            return str(value.decode("latin-1"))
    return None


@lru_cache(maxsize=256)
def _hostname(host: str) -> str | None:
    """The host name of a ``Host`` header (lower case, IPv6 without brackets), None if malformed."""
    try:
        parts = urlsplit("//" + host)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return None
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return parts.hostname


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: forwarded headers honoured only from the configured proxies
    (uvicorn's own default trusts 127.0.0.1, so any local process could set the scheme)."""
    trusted = settings.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}
