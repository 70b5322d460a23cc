"""What an attacker probes: hostile values, tiles on the world's edge, validators, methods."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import mapbox_vector_tile
import morecantile
import pytest
import shapely

from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.conftest import serving
from tests.fixtures import MUNICIPALITIES, UTM, X0, Y0

TMS = morecantile.tms.get("WebMercatorQuad")
PERMITS = "/collections/permits"
INDICATORS = "/collections/indicators"


def get(url: str, params: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    return httpx.get(url, params=params, headers=headers, timeout=30)


def assert_problem(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"], body
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("path", "params", "status", "fragments"),
    [
        (PERMITS + "/items", {"status": "\x00"}, 400, ["status=", "NUL"]),
        (PERMITS + "/items", {"status": "ok\x00"}, 400, ["status=", "NUL"]),
        (INDICATORS + "/items", {"period": "99999999999999999999"}, 400, ["period=", "out of range"]),
        (INDICATORS + "/items", {"period": "-9223372036854775809"}, 400, ["period=", "out of range"]),
        (INDICATORS + "/items", {"value": "1e400"}, 400, ["value=", "not a finite number"]),
        (INDICATORS + "/items", {"value": "nan"}, 400, ["value=", "not a finite number"]),
        (PERMITS + "/items", {"offset": "9223372036854775808"}, 400, ["offset", "less than"]),
        (PERMITS + "/items", {"offset": "-1"}, 400, ["offset", "greater than"]),
        (PERMITS + "/items", {"limit": "10001"}, 400, ["limit", "less than"]),
        (PERMITS + "/items", {"bbox": "nan,nan,nan,nan"}, 400, ["bbox"]),
        (PERMITS + "/items", {"bbox": "-1e400,0,1,1"}, 400, ["bbox"]),
        (PERMITS + "/items", {"datetime": "2017-01-01\x00"}, 400, ["datetime"]),
        (PERMITS + "/items", {"submitted": "2017-02-30"}, 400, ["submitted=", "not a valid date"]),
        (PERMITS + "/items/%00", None, 404, ["no feature"]),
        (PERMITS + "/items/P1%00", None, 404, ["no feature"]),
        ("/collections/%00/items", None, 404, ["no collection"]),
        (PERMITS + "/tiles/WebMercatorQuad/12/0/0", {"limit": "5"}, 400, ["unknown parameter 'limit'"]),
        (PERMITS + "/tiles/WebMercatorQuad/12/0/0", {"datetime": "soon"}, 400, ["datetime"]),
        ("/collections/municipalities/tiles/WebMercatorQuad/1/0/0", {"datetime": "2017"}, 400, ["temporal"]),
        (PERMITS + "/tiles/WebMercatorQuad/99999999999999999999/0/0", None, 400, ["z"]),
        (PERMITS + "/tiles/WebMercatorQuad/tilejson.json", {"colour": "red"}, 400, ["colour"]),
        ("/map", {"period": "99999999999999999999"}, 400, ["period"]),
        ("/?f=%00", None, 400, ["f"]),
    ],
)  # fmt: skip
def test_hostile_values_get_4xx_problems_never_5xx(
    server: str, path: str, params: dict[str, str] | None, status: int, fragments: list[str]
) -> None:
    assert_problem(get(f"{server}{path}", params), status, *fragments)


def _features(response: httpx.Response, layer: str) -> list[dict[str, Any]]:
    assert (
        response.status_code == 200
        and response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    )
    features: list[dict[str, Any]] = (
        mapbox_vector_tile.decode(response.content).get(layer, {}).get("features", [])
    )
    return features


def test_zoomed_out_tiles_on_the_world_edge_are_not_empty(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    # Two 20 km squares in the AMSS: a few tile units wide even at zoom 0 (the fixture's 2 km
    # ones vanish below a unit, as they should).
    big = [
        shapely.box(X0 - 15_000, Y0 - 10_000, X0 + 5_000, Y0 + 10_000),
        shapely.box(X0 + 5_000, Y0 - 10_000, X0 + 25_000, Y0 + 10_000),
    ]
    path = tmp_path / "big.gpkg"
    gpd.GeoDataFrame(MUNICIPALITIES, geometry=big, crs=UTM).to_file(path)
    fixtures.load(store, "municipalities", path, settings=settings)
    with serving(store, settings) as server:
        # z0 and z1 hold the AMSS in x = 0, whose buffered box reaches past -180°; then inner tiles.
        for zyx in ("0/0/0", "1/0/0", "2/1/1", "3/3/2"):
            response = get(f"{server}/collections/municipalities/tiles/WebMercatorQuad/{zyx}")
            codes = sorted(f["properties"]["code"] for f in _features(response, "municipalities"))
            assert codes == ["0001", "0002"], zyx


def test_tiles_apply_datetime(server: str) -> None:
    permit = get(f"{server}/collections/permits/items/P5").json()
    tile = TMS.tile(*permit["geometry"]["coordinates"], 12)
    url = f"{server}/collections/permits/tiles/WebMercatorQuad/12/{tile.y}/{tile.x}"
    every = {f["properties"]["permit_id"] for f in _features(get(url), "permits")}
    assert every == {"P1", "P2", "P3", "P4", "P5"}
    recent = _features(get(url, {"datetime": "2018-01-01/.."}), "permits")
    assert [f["properties"]["permit_id"] for f in recent] == ["P5"]
    assert get(url, {"datetime": "2030-01-01"}).content == b""


def test_etags_follow_host_scheme_and_coding(loaded: Store, settings: Settings) -> None:
    # Links on the request's Host (an allowed one) and, from a trusted proxy, its scheme.
    behind_proxy = {
        "allowed_hosts": ["127.0.0.1", "observatorio.example"],
        "forwarded_allow_ips": "127.0.0.1",
    }
    with serving(loaded, settings.model_copy(update=behind_proxy)) as server:
        _etags_follow_host_scheme_and_coding(server)


def _etags_follow_host_scheme_and_coding(server: str) -> None:
    url = f"{server}/collections/permits/items?limit=5"
    plain = get(url, **{"Accept-Encoding": "identity"})
    zipped = get(url, **{"Accept-Encoding": "gzip"})
    other_host = get(url, **{"Accept-Encoding": "identity", "Host": "observatorio.example"})
    https = get(url, **{"Accept-Encoding": "identity", "X-Forwarded-Proto": "https"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert other_host.json()["links"][0]["href"].startswith("http://observatorio.example/")
    assert https.json()["links"][0]["href"].startswith("https://")
    etags = [r.headers["etag"] for r in (plain, zipped, other_host, https)]
    assert len(set(etags)) == 4
    for response in (plain, zipped):
        vary = [part.strip() for part in response.headers["vary"].split(",")]
        assert {"Accept-Encoding", "Host", "X-Forwarded-Proto"} <= set(vary) and len(vary) == len(set(vary))
    # Each copy revalidates only as itself.
    assert get(url, **{"Accept-Encoding": "identity", "If-None-Match": etags[0]}).status_code == 304
    assert get(url, **{"Accept-Encoding": "gzip", "If-None-Match": etags[0]}).status_code == 200
    https_again = get(
        url, **{"Accept-Encoding": "identity", "X-Forwarded-Proto": "https", "If-None-Match": etags[0]}
    )
    assert https_again.status_code == 200 and https_again.json()["links"][0]["href"].startswith("https://")
    # A tile holds no links: its ETag follows the coding only.
    tile = f"{server}/collections/municipalities/tiles/WebMercatorQuad/0/0/0"
    first, moved = get(tile), get(tile, Host="observatorio.example")
    assert first.headers["etag"] == moved.headers["etag"]
    assert "Accept-Encoding" in first.headers["vary"] and "Host" not in first.headers["vary"]


def test_if_none_match_star_is_304_only_for_what_exists(server: str) -> None:
    assert_problem(
        get(f"{server}/collections/permits/items/NOPE", **{"If-None-Match": "*"}), 404, "no feature"
    )
    present = get(f"{server}/collections/permits/items/P1", **{"If-None-Match": "*"})
    assert present.status_code == 304 and present.content == b"" and present.headers["etag"]
    stale = get(f"{server}/collections/permits/items/P1", **{"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.json()["id"] == "P1"


def test_head_and_options_are_answered(server: str) -> None:
    url = f"{server}/collections/permits/items?limit=5"
    got = httpx.get(url, headers={"Accept-Encoding": "gzip"})
    head = httpx.head(url, headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "content-type", "content-length", "content-encoding", "vary"):
        assert head.headers[name] == got.headers[name], name
    assert len(gzip.compress(got.content)) > 0
    assert httpx.head(f"{server}/conformance").status_code == 200
    assert httpx.head(f"{server}/collections/nowhere").status_code == 404

    options = httpx.options(f"{server}/collections/permits/items")
    assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, OPTIONS"
    preflight = httpx.options(
        f"{server}/collections/permits/items",
        headers={"Origin": "https://observatorio.amb.gov.co", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    assert httpx.options(f"{server}/no/such/path").status_code == 404

    for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE"):
        refused = httpx.request(method, f"{server}/collections/permits/items")
        assert_problem(refused, 405)
        assert refused.headers["allow"] == "GET, HEAD, OPTIONS"
