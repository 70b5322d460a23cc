"""Application wiring: the store on ``app.state``, routers, static files and error mapping."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from observatory import __version__
from observatory.api import features, tiles
from observatory.api.responses import ProblemResponse
from observatory.errors import NotFound, ObservatoryError
from observatory.indicators import REGISTRY
from observatory.map import render_map
from observatory.settings import Settings, get_settings
from observatory.store import Store, open_store

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """The observatory's app; the store is opened at start-up and closed at shutdown."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store or open_store(settings)
        app.state.extents = {}
        try:
            yield
        finally:
            if store is None:
                app.state.store.close()

    app = FastAPI(
        title="Observatorio Metropolitano del AMSS",
        description="OGC API Features and Tiles of the AMSS urban observatory's layers and indicators.",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served below from our own static files, not a CDN
        redoc_url=None,
    )
    # Read endpoints are public and meant for other observatories' browsers and tools.
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=4)  # level 9 costs 10x for 4%
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["GET"], allow_headers=["*"],
        expose_headers=["ETag", "Last-Modified"],
    )  # fmt: skip
    app.include_router(features.router)
    app.include_router(tiles.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_pages(app)
    _add_error_handlers(app)
    return app


def _add_pages(app: FastAPI) -> None:
    @app.get("/", summary="Landing page: the map for browsers, JSON links otherwise", response_model=None)
    def root(request: Request, f: str | None = None) -> Response | dict[str, Any]:
        if f != "json" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/map", status_code=303)
        return features.landing_json(request)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Observatorio AMSS — API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )

    @app.get("/map", response_class=HTMLResponse, summary="Interactive choropleth map")
    def map_page(request: Request, indicator: str | None = None, period: int | None = None) -> HTMLResponse:
        return HTMLResponse(render_map(features.store_of(request), indicator_id=indicator, period=period))

    @app.get("/indicators", summary="Technical sheets of every indicator")
    def indicators() -> dict[str, Any]:
        return {"indicators": [item.sheet() for item in REGISTRY.values()]}

    @app.get("/indicators/{indicator_id}", summary="One indicator's technical sheet")
    def indicator(indicator_id: str) -> dict[str, Any]:
        if indicator_id not in REGISTRY:
            raise NotFound(f"no indicator {indicator_id!r}; see /indicators")
        return REGISTRY[indicator_id].sheet()


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ObservatoryError)
    async def domain_error(request: Request, error: ObservatoryError) -> Response:
        return ProblemResponse(error.status, error.title, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        details = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
            for problem in error.errors()
        )
        return ProblemResponse(400, "Invalid parameter", details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else "request failed"
        return ProblemResponse(error.status_code, detail, f"{request.method} {request.url.path}: {detail}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return ProblemResponse(500, "Internal error", "the server could not answer; the error was logged")
