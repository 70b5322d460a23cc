"""The tile cache and the layer versions in memory: no stale tile is ever served after a load.

Both stores, a live server. Tiles are cached by layer version; a load changes the version in the
transaction that swaps the rows in (PostGIS notifies listeners; the GeoPackage file is replaced).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import mapbox_vector_tile
import pytest

from layers import get_layer
from observatory.api.tile_cache import Body, TileCache
from observatory.settings import Settings
from observatory.store import FeatureQuery, Store, open_store
from tests.conftest import STORES, fresh_settings, serving
from tests.fixtures import TMS, permits_at

TILE = TMS.tile(-89.19, 13.69, 14)
PATH = f"/collections/permits/tiles/WebMercatorQuad/{TILE.z}/{TILE.y}/{TILE.x}"
PERMITS = get_layer("permits")
T = TypeVar("T")


def rows(*ids: str) -> list[tuple[str, str, str, float, float]]:
    """Permits spread along the tile's diagonal."""
    step = 1 / (len(ids) + 1)
    return [(permit, "a", "2020-06-01", (i + 1) * step, (i + 1) * step) for i, permit in enumerate(ids)]


def load(store: Store, *ids: str) -> None:
    store.replace_layer(PERMITS, permits_at(TILE, rows(*ids)), run=None)


def ids_in(response: httpx.Response) -> list[str]:
    assert response.status_code == 200
    decoded = mapbox_vector_tile.decode(response.content)
    return sorted(f["properties"]["permit_id"] for f in decoded.get("permits", {"features": []})["features"])


def within(seconds: float, probe: Callable[[], T], done: Callable[[T], bool]) -> T:
    """``probe()`` until ``done`` says so (a notification crosses processes), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


@pytest.fixture(scope="module", params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_settings(request.param, tmp_path_factory.mktemp(request.param)) as chosen:
        yield chosen


@pytest.fixture(scope="module")
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    load(opened, "P1")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def server(store: Store, settings: Settings) -> Iterator[str]:
    with serving(store, settings) as url:
        yield url


def test_a_load_through_the_server_s_store_is_seen_by_the_very_next_request(
    store: Store, server: str
) -> None:
    load(store, "P1", "P2")
    first = httpx.get(server + PATH)
    assert ids_in(first) == ["P1", "P2"] and ids_in(httpx.get(server + PATH)) == ["P1", "P2"]
    load(store, "P3")
    again = httpx.get(server + PATH)
    assert ids_in(again) == ["P3"]
    assert again.headers["etag"] != first.headers["etag"]


def test_cached_tiles_follow_filters_and_coding(store: Store, server: str) -> None:
    load(store, *(f"P{i}" for i in range(1, 41)))
    everything = httpx.get(server + PATH)
    assert len(ids_in(everything)) == 40 and len(everything.content) >= 1024
    assert everything.headers["content-encoding"] == "gzip"  # compressed once, then cached
    plain = httpx.get(server + PATH, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == everything.content
    assert plain.headers["etag"] != everything.headers["etag"]
    assert ids_in(httpx.get(server + PATH, params={"permit_id": "P4"})) == ["P4"]
    assert ids_in(httpx.get(server + PATH, params={"datetime": "2021-01-01/.."})) == []
    assert len(ids_in(httpx.get(server + PATH))) == 40


def test_a_server_with_its_own_store_drops_tiles_another_process_replaced(
    store: Store, settings: Settings
) -> None:
    load(store, "P1")
    with serving(None, settings) as own:
        assert ids_in(httpx.get(own + PATH)) == ["P1"]
        load(store, "P5", "P6")  # another store object: as another process would
        # The GeoPackage's next request sees the replaced file; PostGIS's notice takes milliseconds.
        fresh = within(5, lambda: httpx.get(own + PATH), lambda response: ids_in(response) != ["P1"])
        assert ids_in(fresh) == ["P5", "P6"]


@pytest.mark.parametrize("settings", ["postgis"], indirect=True)  # LISTEN/NOTIFY is PostGIS's
def test_postgis_versions_change_in_memory_on_another_store_s_notice(settings: Settings) -> None:
    watching, writing = open_store(settings), open_store(settings)
    try:
        load(writing, "P6")  # a version to start from, whichever test of the module ran first
        before = watching.layer_version(PERMITS)  # starts the listener
        listening = watching.versions  # type: ignore[attr-defined]
        assert within(5, listening.current, lambda current: current is not None) is not None
        load(writing, "P7")
        after = writing.layer_version(PERMITS)
        assert before is not None and after is not None and after.tag != before.tag

        def remembered() -> Any:
            return listening.current()["permits"].tag  # memory only: no query

        assert within(5, remembered, lambda tag: tag == after.tag) == after.tag
    finally:
        watching.close()
        writing.close()


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = TileCache(max_bytes=10)
    built: list[str] = []

    def body(key: str, size: int) -> Callable[[], Body]:
        def build() -> Body:
            built.append(key)
            return Body(b"x" * size, None)

        return build

    cache.get("a", body("a", 4))
    cache.get("b", body("b", 4))
    cache.get("a", body("a", 4))  # a hit: a is now the most recent
    cache.get("c", body("c", 4))  # 12 bytes > 10: b goes
    assert built == ["a", "b", "c"] and len(cache) == 2 and cache.size == 8
    cache.get("a", body("a", 4))
    cache.get("b", body("b", 4))
    assert built == ["a", "b", "c", "b"]
    cache.get("big", body("big", 11))  # larger than the bound: served, never kept
    assert len(cache) == 2 and cache.size == 8


@pytest.mark.parametrize("settings", ["geopackage"], indirect=True)  # PostGIS keeps no built tiles
def test_the_geopackage_keeps_built_tiles_per_version_on_disk(store: Store, settings: Settings) -> None:
    load(store, "P1", "P2")
    first = store.tile(PERMITS, TILE, FeatureQuery())
    built = settings.geopackage_path.with_suffix(".tiles.sqlite")

    def kept() -> list[tuple[str, str]]:
        """(layer, layer version) of the rows kept; versions are suffixed with the catalogue entry."""
        with contextlib.closing(sqlite3.connect(built)) as db:
            rows = db.execute("SELECT layer, version FROM tiles WHERE z = ?", [TILE.z]).fetchall()
        return [(layer, version.split(":")[0]) for layer, version in rows]

    version = store.layer_version(PERMITS)
    assert version is not None and kept() == [("permits", version.tag)]
    # Another store object (another process) on the same file reads it back, not rebuilt.
    assert open_store(settings).tile(PERMITS, TILE, FeatureQuery()) == first
    load(store, "P3")
    assert "P3" in str(mapbox_vector_tile.decode(store.tile(PERMITS, TILE, FeatureQuery())))
    newer = store.layer_version(PERMITS)
    # The old version's row is gone.
    assert newer is not None and [(layer, tag.split(":")[0]) for layer, tag in kept()] == [
        ("permits", newer.tag)
    ]
