"""Access control for the endpoints: the caller (a dependency), role checks and the audit log.

``principal`` reads the ``Authorization`` header once per request; ``require(role)`` is a
dependency that answers 401 (anonymous) or 403 (another role) before the endpoint runs; ``audit``
records a restricted read. ``/access/me`` says who the server takes the caller for, and
``/access/log`` (admin) shows the latest restricted reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observatory.access import Principal, Role, authenticate, authorize, describe
from observatory.api.openapi import documented_access
from observatory.api.state import store_of
from observatory.settings import Settings, get_settings
from observatory.store import AccessEntry

router = APIRouter()


def settings_of(request: Request) -> Settings:
    """The settings the app was created with (``create_app``), else the environment's."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings or get_settings()


def principal(request: Request) -> Principal:
    """The caller, authenticated once per request (kept on ``request.state``). A plain function,
    so FastAPI runs it in a worker thread: fetching the identity provider's keys blocks."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is None:
        found = authenticate(request.headers.get("authorization"), settings_of(request))
        request.state.principal = found
    return found


Caller = Annotated[Principal, Depends(principal)]


async def verified_credentials(request: Request) -> None:
    """Credentials sent to any route are checked there: a revoked key or an expired token gets its
    401, not the public view in silence (an analyst's script would take withheld values for
    missing ones). Without credentials nothing runs; with them, off the event loop (keys may be
    fetched from the identity provider)."""
    if "authorization" in request.headers:
        await asyncio.to_thread(principal, request)


def require(role: Role) -> Callable[[Principal], Principal]:
    """A dependency giving the caller if it holds ``role``: 401 for the anonymous, 403 for an
    identity without it (``Depends(require(Role.ANALYST))``)."""

    def holding(caller: Caller) -> Principal:
        return authorize(caller, role)

    return holding


def audit(request: Request, principal: Principal, layer: str | None, status: int) -> None:
    """Record a read by an identified caller in the store's audit log (anonymous reads are public
    by definition and not logged). A failure to record propagates: no unlogged restricted read."""
    if principal.anonymous:
        return
    store_of(request).record_access(
        AccessEntry(
            at=datetime.now(UTC), subject=principal.subject, role=str(principal.role),
            via=principal.via, method=request.method, path=request.url.path, layer=layer, status=status,
        )
    )  # fmt: skip


@router.get(
    "/access/me",
    summary="Who the server takes the caller for (role public when anonymous) and what it accepts",
    openapi_extra=documented_access(),
)
def me(request: Request, caller: Caller) -> dict[str, Any]:
    return {
        "subject": caller.subject,
        "role": str(caller.role),
        "via": caller.via,
        "access": describe(settings_of(request)),
    }


@router.get(
    "/access/log",
    summary="The latest restricted reads (who, what, when), newest first; admin only",
    openapi_extra=documented_access(store=True),
)
def log(
    request: Request,
    caller: Annotated[Principal, Depends(require(Role.ADMIN))],
    limit: Annotated[int, Query(ge=1, le=10_000, description="entries to return")] = 100,
) -> dict[str, Any]:
    audit(request, caller, None, 200)  # reading the log is a restricted read too
    entries = store_of(request).access_log(limit)
    return {"entries": [entry.as_dict() for entry in entries]}


class PrivateWhenAuthenticated:
    """Marks every answer to a request with credentials ``Cache-Control: private, no-store`` and
    ``Vary: Authorization``: it may hold what the public may not see (exact incidents, withheld
    values), so no shared cache may keep it or hand it to someone else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(name == b"authorization" for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return

        async def private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = "private, no-store"
                headers.add_vary_header("Authorization")
            await send(message)

        await self.app(scope, receive, private)
