"""Cached tiles answered first (api/tile_hits.py): the same bytes and headers as the
endpoint's, the same conditional answers, and no worker thread or database needed.

A live server on each store; the first request for a tile is built by the endpoint, the next
ones are hits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from observatory.settings import Settings
from observatory.store import Store, open_store
from tests.conftest import STORES, database_url, fresh_settings, serving
from tests.test_tile_cache import PATH, PERMITS, ids_in, load

VARYING = {"date", "server"}
"""Headers that differ between any two responses."""


@pytest.fixture(scope="module", params=STORES)
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with fresh_settings(request.param, tmp_path_factory.mktemp(request.param)) as chosen:
        yield chosen


@pytest.fixture(scope="module")
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings)
    load(opened, *(f"P{i}" for i in range(1, 41)))  # 40 permits: a tile over 1 KB, gzipped
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def server(store: Store, settings: Settings) -> Iterator[str]:
    with serving(store, settings) as url:
        yield url


def stable(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name not in VARYING}


@pytest.mark.parametrize("coding", ["gzip", "identity"])
def test_a_hit_answers_the_bytes_and_headers_the_endpoint_built(server: str, coding: str) -> None:
    query = {"datetime": "2020-01-01/2020-12-31", "lang": "en"}
    built = httpx.get(server + PATH, params=query, headers={"Accept-Encoding": coding})
    hit = httpx.get(server + PATH, params=query, headers={"Accept-Encoding": coding})
    assert len(ids_in(built)) == 40 and hit.status_code == 200
    assert hit.content == built.content and stable(hit) == stable(built)
    assert hit.headers["vary"] == "Accept-Encoding, Origin" and hit.headers["cache-control"] == "no-cache"
    assert hit.headers.get("content-encoding") == ("gzip" if coding == "gzip" else None)
    origin = httpx.get(
        server + PATH, params=query, headers={"Accept-Encoding": coding, "Origin": "https://a.org"}
    )
    assert origin.headers["access-control-allow-origin"] == "*"  # with an Origin: through the CORS middleware
    head = httpx.head(server + PATH, params=query, headers={"Accept-Encoding": coding})
    assert head.status_code == 200 and head.content == b"" and stable(head) == stable(built)


def test_a_hit_answers_if_none_match_as_the_endpoint_does(server: str) -> None:
    first = httpx.get(server + PATH)
    etag = first.headers["etag"]
    for offered in [etag, f"W/{etag}", f'"other", {etag}', "*"]:
        again = httpx.get(server + PATH, headers={"If-None-Match": offered})
        assert again.status_code == 304 and again.content == b"", offered
        assert (
            again.headers["etag"] == etag and again.headers["last-modified"] == first.headers["last-modified"]
        )
    stale = httpx.get(server + PATH, headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.content == first.content
    # Another representation (plain, not gzipped) does not match the gzipped one's tag.
    plain = httpx.get(server + PATH, headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.headers["etag"] != etag


def test_requests_a_hit_cannot_answer_reach_the_endpoint(server: str) -> None:
    assert httpx.get(server + PATH).status_code == 200  # cached
    assert (
        httpx.get(server + PATH, params={"colour": "red"}).status_code == 400
    )  # bad key: the endpoint's 400
    assert httpx.get(server + PATH.replace("permits", "nowhere")).status_code == 404
    assert httpx.get(server + "/collections/permits/tiles/WebMercatorQuad/1/2/0").status_code == 404


@pytest.fixture
def postgis(tmp_path: Path) -> Iterator[tuple[Store, Settings, str]]:
    with fresh_settings("postgis", tmp_path) as chosen:
        opened = open_store(chosen)
        load(opened, "P1", "P2")
        try:
            with serving(opened, chosen) as url:
                yield opened, chosen, url
        finally:
            opened.close()


def waiting_on_lock(schema: str) -> int:
    with psycopg.connect(database_url(), autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND position(%s in query) > 0",
            [schema],
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_hit_answers_while_every_worker_thread_waits_on_the_database(
    postgis: tuple[Store, Settings, str],
) -> None:
    _, settings, server = postgis
    cached = httpx.get(server + PATH)
    assert ids_in(cached) == ["P1", "P2"]
    with psycopg.connect(database_url()) as locker:
        table = sql.Identifier(settings.db_schema, PERMITS.table)
        locker.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        with ThreadPoolExecutor(60) as pool:
            # 60 tiles not cached (each filter its own key): the pool's connections wait on the
            # lock and the other worker threads on a connection.
            misses = [
                pool.submit(httpx.get, server + PATH, params={"permit_id": f"X{i}"}, timeout=30)
                for i in range(60)
            ]
            deadline = time.monotonic() + 10
            while waiting_on_lock(settings.db_schema) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert waiting_on_lock(settings.db_schema) >= 5
            with pytest.raises(httpx.ReadTimeout):  # the control: a miss cannot be answered now
                httpx.get(server + PATH, params={"permit_id": "P1"}, timeout=1)
            hit = httpx.get(server + PATH, timeout=2)
            assert hit.status_code == 200 and hit.content == cached.content
            assert waiting_on_lock(settings.db_schema) >= 5  # still locked when the hit came back
            locker.rollback()
            statuses = {future.result().status_code for future in misses}
    assert statuses <= {200, 503}  # built once the lock went, or no free connection in time
