"""Application wiring: the store on ``app.state``, routers, static files and error mapping."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from layers import get_layer
from observatory import __version__
from observatory.api import access, features, feeds, mapdata, openapi, tiles
from observatory.api.methods import ALLOWED, MethodsMiddleware
from observatory.api.periods import INDICATORS, stored_periods
from observatory.api.public_url import PublicAddress, PublicAddressMiddleware, public_url
from observatory.api.responses import ProblemResponse
from observatory.api.security_headers import SecurityHeadersMiddleware
from observatory.api.tile_cache import TileCache
from observatory.api.tile_hits import answer
from observatory.errors import NotFound, ObservatoryError, StoreUnavailable
from observatory.indicators import REGISTRY
from observatory.indicators.composite import (
    GEOMETRIC_FLOOR,
    OVERALL,
    SPEC,
    jsonable_ranks,
    stored_sensitivity,
)
from observatory.indicators.themes import THEMES
from observatory.map import preferred_lang, render_error
from observatory.settings import Settings, get_settings
from observatory.store import Store, open_store

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger(__name__)


class StoreOpener:
    """Opens the store in a background thread, retrying while the database is unreachable.

    The app serves meanwhile: endpoints that need no database answer, the others get a 503 with
    ``Retry-After`` until the store is open. Errors other than an unreachable database (a bad URL,
    missing privileges) are configuration mistakes and stop the start-up.
    """

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="store-opener", daemon=True)

    def _run(self) -> None:
        delay = 0.25
        while not self.stopping.is_set():
            try:
                store = open_store(self.settings)
            except StoreUnavailable as error:
                log.warning("store unavailable, retrying in %.2g s: %s", delay, error.message)
                self.stopping.wait(delay)
                delay = min(2 * delay, 5.0)
                continue
            except BaseException as error:
                self.error = error
                self.done.set()
                return
            self.app.state.store = store
            log.info("store open (%s)", store.kind)
            features.prime_extents(self.app, store)
            gc.freeze()  # it lives as long as the server: see the lifespan's
            self.done.set()
            return

    async def start(self) -> None:
        """Start, and wait up to ``db_startup_wait`` seconds for the store."""
        self.thread.start()
        await asyncio.to_thread(self.done.wait, self.settings.db_startup_wait)
        if self.error is not None:
            raise self.error
        if not self.done.is_set():
            log.warning("serving without a store for now; still retrying in the background")

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=self.settings.db_connect_timeout + 5)


class ObservatoryAPI(FastAPI):
    """FastAPI, with cached tiles answered before anything else (see tile_hits) and security
    headers on every response, errors included (see security_headers)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        public: PublicAddress = self.state.public
        if scope["type"] != "http" or not public.allows(scope) or not await answer(self.state, scope, send):
            await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        """The stack inside the security headers: outside ServerErrorMiddleware, so a 500 has them."""
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """The observatory's app; the store is opened at start-up (retried while the database is
    unreachable) and closed at shutdown. A store passed in is used as is and left open."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store
        app.state.extents = {}
        opener = None
        if store is None:
            opener = StoreOpener(app, settings)
            await opener.start()
        else:
            await asyncio.to_thread(features.prime_extents, app, store)
        # What start-up built (modules, the catalogue, the store) lives as long as the server: out
        # of the collector's sight, else each full collection walks it all and every request in
        # flight waits (gen-2 pauses of up to 230 ms under 10 concurrent tiles, the p99's tail).
        gc.freeze()
        try:
            yield
        finally:
            if opener is not None:
                opener.stop()
                if app.state.store is not None:
                    app.state.store.close()

    app = ObservatoryAPI(
        title="Observatorio Metropolitano del AMSS",
        description="OGC API Features and Tiles of the AMSS urban observatory's layers and indicators.",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served below from our own static files, not a CDN
        redoc_url=None,
        dependencies=[Depends(access.verified_credentials)],
    )
    # Read endpoints are public and meant for other observatories' browsers and tools.
    app.add_middleware(access.PrivateWhenAuthenticated)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=4)  # level 9 costs 10x for 4%
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=list(ALLOWED), allow_headers=["*"],
        expose_headers=["ETag", "Last-Modified", "Retry-After"],
    )  # fmt: skip
    app.add_middleware(MethodsMiddleware)  # HEAD, OPTIONS, one Vary header
    app.state.public = PublicAddress(settings)
    app.add_middleware(PublicAddressMiddleware, address=app.state.public)  # outermost: Host, Location
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.include_router(mapdata.router)
    app.include_router(feeds.router)
    app.include_router(access.router)
    app.state.settings = settings
    app.state.tile_cache = TileCache(round(settings.tile_cache_mb * 2**20))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_pages(app)
    _add_error_handlers(app)
    openapi.install(app)
    return app


def _add_pages(app: FastAPI) -> None:
    @app.get(
        "/",
        summary="Landing page: the map for browsers, JSON links otherwise",
        response_model=None,
        responses={303: {"description": "browsers (Accept: text/html) are sent to /map"}},
    )
    async def root(
        request: Request,
        f: Annotated[Literal["json", "html"] | None, Query(description="json, or html (the map)")] = None,
    ) -> Response | dict[str, Any]:
        if f == "html" or (f is None and "text/html" in request.headers.get("accept", "")):
            return RedirectResponse(public_url(request, "/map"), status_code=303)
        return features.landing_json(request)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Swagger UI from our own files, started by static/app/docs.js: FastAPI's page has an
        # inline script, which the Content-Security-Policy refuses.
        return HTMLResponse((STATIC_DIR / "app" / "docs.html").read_text(encoding="utf-8"))

    @app.get("/themes", summary="The observatory's themes, in the report's order, with their indicators")
    async def themes() -> dict[str, Any]:
        return {
            "themes": [
                {"id": theme.id, "title": theme.title(),
                 "indicators": [key for key, item in REGISTRY.items() if item.theme == theme.id]}
                for theme in THEMES.values()
            ]
        }  # fmt: skip

    @app.get("/indicators", summary="Technical sheets of every indicator")
    async def indicators(request: Request) -> dict[str, Any]:
        settings = request.app.state.settings
        return {"indicators": [item.sheet(settings) for item in REGISTRY.values()]}

    @app.get(
        "/indicators/{indicator_id}",
        summary="One indicator's technical sheet, with the periods stored and the latest",
        openapi_extra=openapi.documented(store=True, not_found=True),
    )
    def indicator(request: Request, indicator_id: str) -> dict[str, Any]:
        if indicator_id not in REGISTRY:
            raise NotFound(f"no indicator {indicator_id!r}; see /indicators")
        periods = stored_periods(features.store_of(request), indicator_id)
        return {
            **REGISTRY[indicator_id].sheet(request.app.state.settings),
            "periods": periods,
            "latest_period": max(periods, default=None),
        }

    @app.get(
        "/indicators/cpi_overall/sensitivity",
        summary="Ranks on the composite index under its weights, under random (Dirichlet) weightings "
        "and under geometric aggregation",
        openapi_extra=openapi.documented(store=True, not_found=True),
    )
    def sensitivity(
        request: Request,
        geography: Annotated[
            Literal["municipios_2007", "municipios_2024"], Query(description="the geography ranked")
        ] = "municipios_2007",
        period: Annotated[int | None, Query(ge=1, le=9999, description="year; the latest by default")] = None,
        draws: Annotated[int, Query(ge=1, le=10_000, description="weightings drawn")] = 1000,
        seed: Annotated[int, Query(ge=0, le=2**32 - 1, description="the same seed gives the same ranks")] = 0,
    ) -> dict[str, Any]:
        stored = features.store_of(request).read_layer(get_layer(INDICATORS))
        year, table = stored_sensitivity(stored, geography=geography, period=period, draws=draws, seed=seed)
        return {
            "indicator_id": OVERALL, "geography": geography, "period": year, "draws": draws, "seed": seed,
            "weights": {key: d.weight for key, d in SPEC.dimensions.items()},
            "aggregation": {"published": "arithmetic", "compared": "geometric",
                            "geometric_floor": GEOMETRIC_FLOOR},
            "ranks": jsonable_ranks(table),
        }  # fmt: skip


def _problem(
    request: Request, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None
) -> Response:
    """problem+json for API clients; a readable page for browsers navigating to a bad URL."""
    if 400 <= status < 500 and "text/html" in request.headers.get("accept", ""):
        lang = preferred_lang(request.query_params.get("lang"))
        return HTMLResponse(render_error(status, detail, lang=lang), status, headers=headers)
    return ProblemResponse(status, title, detail, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ObservatoryError)
    async def domain_error(request: Request, error: ObservatoryError) -> Response:
        return _problem(request, error.status, error.title, error.message, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        details = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
            for problem in error.errors()
        )
        return _problem(request, 400, "Invalid parameter", details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else "request failed"
        headers = dict(error.headers or {})
        if error.status_code == 405:  # every route answers the same methods
            headers["Allow"] = ", ".join(ALLOWED)
        return _problem(
            request,
            error.status_code,
            detail,
            f"{request.method} {request.url.path}: {detail}",
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return ProblemResponse(500, "Internal error", "the server could not answer; the error was logged")
