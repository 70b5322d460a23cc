"""Fixtures: every store-facing test runs on both the GeoPackage and a real PostGIS."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from observatory.api import create_app
from observatory.api.public_url import uvicorn_options
from observatory.indicators import compute_indicators
from observatory.settings import Settings
from observatory.store import Store, open_store
from tests import fixtures

STORES = ["geopackage", "postgis"]


def database_url() -> str:
    url = os.environ.get("OBSERVATORY_TEST_DATABASE_URL")
    if not url:
        pytest.fail("OBSERVATORY_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh")
    return url


@contextmanager
def fresh_settings(kind: str, folder: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store of ``kind`` (PostGIS: a schema of its own, dropped after)."""
    if kind == "geopackage":
        yield Settings(data_dir=folder / "store")
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield Settings(data_dir=folder / "store", database_url=database_url(), db_schema=schema)
    drop_schema(schema)


def drop_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url(), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store of each kind (PostGIS: a schema of its own)."""
    with fresh_settings(request.param, tmp_path) as fresh:
        yield fresh


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    yield opened
    opened.close()


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "sources"
    folder.mkdir()
    return {
        "municipalities": fixtures.write_municipalities(folder),
        "zoning": fixtures.write_zoning(folder),
        "permits": fixtures.write_permits(folder),
    }


@pytest.fixture
def loaded(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    """The tiny AMSS loaded and its indicators computed."""
    for layer, path in sources.items():
        fixtures.load(store, layer, path, settings=settings)
    compute_indicators(store, settings=settings)
    return store


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(
    store: Store | None, settings: Settings, *, wrap: Callable[[ASGIApp], ASGIApp] | None = None
) -> Iterator[str]:
    """A live uvicorn server on 127.0.0.1 over ``store`` (None: the app opens the settings' store
    itself, as in production); yields its base URL. ``wrap`` puts ASGI middleware around the app
    (a request recorder)."""
    port = _free_port()
    app: ASGIApp = create_app(settings, store=store)
    config = uvicorn.Config(
        wrap(app) if wrap else app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **uvicorn_options(settings),
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(loaded: Store, settings: Settings) -> Iterator[str]:
    """The tiny AMSS, loaded and computed, behind a live server."""
    with serving(loaded, settings) as url:
        yield url


@pytest.fixture
def empty_server(store: Store, settings: Settings) -> Iterator[str]:
    """A live server over a store nothing was loaded into yet."""
    with serving(store, settings) as url:
        yield url


@pytest.fixture(scope="session", params=STORES)
def published(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, Settings]]:
    """The tiny AMSS published on both geographies with a withheld value (``fixtures.publish``),
    built once per store kind for the read-only tests of the feed, export, client and notebooks."""
    folder = tmp_path_factory.mktemp(f"published-{request.param}")
    with fresh_settings(request.param, folder) as fresh:
        opened = open_store(fresh)
        fixtures.publish(opened, folder, settings=fresh)
        yield opened, fresh
        opened.close()


@pytest.fixture(scope="session")
def published_server(published: tuple[Store, Settings]) -> Iterator[str]:
    """The published store behind a live server, for the whole session."""
    with serving(*published) as url:
        yield url


class RequestLog:
    """ASGI middleware that records each request's path and query string, to count what a client
    (GDAL, OWSLib) asked the server for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests.append((scope["path"], scope["query_string"].decode("latin-1")))
        await self.app(scope, receive, send)


@contextmanager
def permits_server(kind: str, folder: Path) -> Iterator[tuple[str, RequestLog]]:
    """A live server over a fresh store of ``kind`` holding the fixture municipalities and permits
    (no indicators: quick to load), with a log of the requests it receives. For module-scoped
    fixtures that share one server among a module's tests."""
    with fresh_settings(kind, folder) as settings:
        store = open_store(settings)
        sources = folder / "sources"
        sources.mkdir()
        fixtures.load(store, "municipalities", fixtures.write_municipalities(sources), settings=settings)
        fixtures.load(store, "permits", fixtures.write_permits(sources), settings=settings)
        log: list[RequestLog] = []

        def record(app: ASGIApp) -> ASGIApp:
            log.append(RequestLog(app))
            return log[0]

        try:
            with serving(store, settings, wrap=record) as url:
                yield url, log[0]
        finally:
            store.close()
