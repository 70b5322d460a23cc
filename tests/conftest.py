"""Fixtures: every store-facing test runs on both the GeoPackage and a real PostGIS."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from observatory.api import create_app
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


@pytest.fixture(params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store of each kind (PostGIS: a schema of its own)."""
    with fresh_settings(request.param, tmp_path) as chosen:
        yield chosen


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
def serving(store: Store | None, settings: Settings) -> Iterator[str]:
    """A live uvicorn server on 127.0.0.1 over ``store`` (None: the app opens the settings' store
    itself, as in production); yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, store=store), host="127.0.0.1", port=port, log_level="warning"
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


@contextmanager
def fresh_settings(kind: str, folder: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store of ``kind`` (see ``settings``), for module-scoped fixtures
    that share one store between tests."""
    if kind == "geopackage":
        yield Settings(data_dir=folder / "store")
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield Settings(data_dir=folder / "store", database_url=database_url(), db_schema=schema)
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url(), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
