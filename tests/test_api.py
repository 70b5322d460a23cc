"""The API through a live uvicorn server on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import morecantile
import pyproj
import pytest

from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import PERMITS, PERMITS_IN_WEST, write_permits

TMS = morecantile.tms.get("WebMercatorQuad")


def get(url: str, **params: object) -> httpx.Response:
    return httpx.get(url, params=params, timeout=30)


def assert_rfc7946(feature: dict[str, Any]) -> None:
    geometry = feature["geometry"]
    assert feature["type"] == "Feature" and isinstance(feature["id"], str)
    coordinates = geometry["coordinates"]
    while isinstance(coordinates[0], list):
        coordinates = coordinates[0]
    lon, lat = coordinates[:2]
    assert -90 < lon < -88 and 13 < lat < 14.5  # lon/lat order, in the AMSS


def test_landing_conformance_and_openapi(server: str) -> None:
    landing = get(f"{server}/?f=json").json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conformance = get(f"{server}/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance
    spec = get(f"{server}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    # Written out per layer, with each layer's property filters typed and bounded.
    items = spec["paths"]["/collections/indicators/items"]["get"]
    parameters = {p["name"]: p for p in items["parameters"]}
    assert parameters["limit"]["schema"]["minimum"] == 1 and parameters["limit"]["schema"]["maximum"] == 10000
    year, latest = parameters["period"]["schema"]["anyOf"]  # a year, or "latest"
    assert year == {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
    assert latest["enum"] == ["latest"]
    assert "datetime" not in parameters  # indicators have no temporal property
    assert sorted(items["responses"]) == ["200", "304", "400", "404", "503"]
    assert "Retry-After" in items["responses"]["503"]["headers"]
    assert "422" not in str(spec["paths"])
    ids = {c["id"] for c in get(f"{server}/collections").json()["collections"]}
    assert {"municipalities", "zoning", "permits", "indicators"} <= ids


def test_items_are_geojson_in_lon_lat(server: str) -> None:
    response = get(f"{server}/collections/municipalities/items")
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection" and body["numberReturned"] == 2
    for feature in body["features"]:
        assert_rfc7946(feature)
    assert [f["id"] for f in body["features"]] == ["0001", "0002"]


def test_paging_follows_next_links_to_every_feature_once(server: str) -> None:
    url: str | None = f"{server}/collections/permits/items?limit=2"
    pages = []
    while url:
        body = httpx.get(url, timeout=30).json()
        pages.append([f["id"] for f in body["features"]])
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert pages == [["P1", "P2"], ["P3", "P4"], ["P5"]]


def test_bbox_property_and_datetime_filters(server: str) -> None:
    west = get(f"{server}/collections/municipalities/items/0001").json()
    lons = [p[0] for p in west["geometry"]["coordinates"][0][0]]
    lats = [p[1] for p in west["geometry"]["coordinates"][0][0]]
    inner = f"{min(lons) + 1e-4},{min(lats) + 1e-4},{max(lons) - 0.002},{max(lats) - 1e-4}"
    in_west = get(f"{server}/collections/permits/items", bbox=inner, limit=100).json()
    assert {f["id"] for f in in_west["features"]} == PERMITS_IN_WEST
    rulings = get(f"{server}/collections/permits/items", kind="calificacion_lugar").json()
    assert [f["id"] for f in rulings["features"]] == ["P4"]
    recent = get(f"{server}/collections/permits/items", datetime="2018-01-01/..").json()
    assert [f["id"] for f in recent["features"]] == ["P5"]
    spring = get(f"{server}/collections/permits/items", datetime="2017-02-01/2017-05-31").json()
    assert [f["id"] for f in spring["features"]] == ["P2", "P3", "P4"]


def test_indicator_values_are_a_collection(server: str) -> None:
    body = get(f"{server}/collections/indicators/items", indicator_id="permits_count", period=2017).json()
    values = {f["properties"]["municipality_code"]: f["properties"]["value"] for f in body["features"]}
    assert values == {"0001": 2, "0002": 1}
    one = get(f"{server}/collections/indicators/items/permits_count:0002:2017").json()
    assert one["properties"]["value"] == 1 and one["geometry"]["type"] == "MultiPolygon"
    sheets = {s["id"]: s for s in get(f"{server}/indicators").json()["indicators"]}
    assert sheets["population_density"]["unit"] == "hab/km²"


def test_themes_list_every_indicator_once_in_the_reports_order(empty_server: str) -> None:
    themes = get(f"{empty_server}/themes").json()["themes"]
    assert [t["id"] for t in themes[:3]] == ["services", "risk", "mobility"]  # the report's order
    assert themes[0]["title"] == {"es": "Servicios y espacio público", "en": "Services and public space"}
    listed = [key for theme in themes for key in theme["indicators"]]
    sheets = get(f"{empty_server}/indicators").json()["indicators"]
    assert sorted(listed) == sorted(sheet["id"] for sheet in sheets)  # each exactly once
    density = next(s for s in sheets if s["id"] == "population_density")
    assert density["theme_title"]["es"] == "Densidad y ocupación del suelo"


def test_vector_tiles_decode_to_the_expected_features(server: str) -> None:
    permit = get(f"{server}/collections/permits/items/P1").json()
    lon, lat = permit["geometry"]["coordinates"]
    tile = TMS.tile(lon, lat, 14)
    response = get(f"{server}/collections/permits/tiles/WebMercatorQuad/14/{tile.y}/{tile.x}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    decoded = mapbox_vector_tile.decode(response.content)
    by_id = {f["properties"]["permit_id"]: f for f in decoded["permits"]["features"]}
    assert "P1" in by_id and set(by_id) <= {"P1", "P2", "P3", "P4", "P5"}
    # The point sits where Web Mercator puts it in the tile's 4096-unit grid (y up when decoded).
    bounds = TMS.xy_bounds(tile)
    x, y = TMS.xy(lon, lat)
    expected = (4096 * (x - bounds.left) / (bounds.right - bounds.left),
                4096 * (y - bounds.bottom) / (bounds.top - bounds.bottom))  # fmt: skip
    assert by_id["P1"]["geometry"]["coordinates"] == pytest.approx(expected, abs=1)

    overview = TMS.tile(lon, lat, 10)
    path = f"{server}/collections/municipalities/tiles/WebMercatorQuad/10/{overview.y}/{overview.x}"
    features = mapbox_vector_tile.decode(get(path).content)["municipalities"]["features"]
    assert sorted(f["properties"]["code"] for f in features) == ["0001", "0002"]
    assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}

    path = f"{server}/collections/indicators/tiles/WebMercatorQuad/10/{overview.y}/{overview.x}"
    chosen = mapbox_vector_tile.decode(get(path, indicator_id="population_density").content)
    values = {
        f["properties"]["municipality_code"]: f["properties"]["value"]
        for f in chosen["indicators"]["features"]
    }
    assert values == pytest.approx({"0001": 2500.0, "0002": 500.0})

    tilejson = get(f"{server}/collections/permits/tiles/WebMercatorQuad/tilejson.json").json()
    assert tilejson["tiles"][0].endswith("/collections/permits/tiles/WebMercatorQuad/{z}/{y}/{x}")


def assert_encloses(bbox: list[float], expected: list[float]) -> None:
    """``bbox`` is ``expected`` give or take 2 m, never smaller (the GeoPackage R-tree keeps 32-bit
    floats rounded outward, and extents are published to 6 decimals)."""
    assert bbox == pytest.approx(expected, abs=2e-5)
    tolerance = 1e-6
    assert bbox[0] <= expected[0] + tolerance and bbox[1] <= expected[1] + tolerance
    assert bbox[2] >= expected[2] - tolerance and bbox[3] >= expected[3] - tolerance


def test_extents_and_tile_bounds_come_from_the_data(
    server: str, loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    # The two squares span UTM 263,000–268,000 E, 1,515,000–1,517,000 N: the extent of their
    # corners in lon/lat (the stored outlines are those corners, reprojected).
    to_lonlat = pyproj.Transformer.from_crs(fixtures.UTM, "EPSG:4326", always_xy=True)
    xs, ys = to_lonlat.transform(
        [fixtures.X0 + dx for dx in (0, 2_000, 5_000) for _ in (0, 1)], [fixtures.Y0, fixtures.Y0 + 2_000] * 3
    )
    expected = [min(xs), min(ys), max(xs), max(ys)]
    collection = get(f"{server}/collections/municipalities").json()
    assert_encloses(collection["extent"]["spatial"]["bbox"][0], expected)
    tilejson = get(f"{server}/collections/municipalities/tiles/WebMercatorQuad/tilejson.json").json()
    assert_encloses(tilejson["bounds"], expected)
    # Permits: the extent of the five points, and it follows a reload at once.
    lons, lats = to_lonlat.transform([p[7] for p in PERMITS], [p[8] for p in PERMITS])
    bbox = get(f"{server}/collections/permits").json()["extent"]["spatial"]["bbox"][0]
    assert_encloses(bbox, [min(lons), min(lats), max(lons), max(lats)])
    shrinking = settings.model_copy(update={"max_shrink": 1.0})  # 5 permits to 1, deliberately
    fixtures.load(loaded, "permits", write_permits(tmp_path, PERMITS[:1], name="uno.csv"), settings=shrinking)
    (x, y) = to_lonlat.transform(PERMITS[0][7], PERMITS[0][8])
    bbox = get(f"{server}/collections/permits").json()["extent"]["spatial"]["bbox"][0]
    assert_encloses(bbox, [x, y, x, y])


def test_a_store_with_nothing_loaded_serves_empty_answers(empty_server: str) -> None:
    items = get(f"{empty_server}/collections/permits/items").json()
    assert items["features"] == [] and items["numberReturned"] == 0
    tile = get(f"{empty_server}/collections/municipalities/tiles/WebMercatorQuad/10/472/258")
    assert tile.status_code == 200 and tile.content == b""
    assert get(f"{empty_server}/collections/permits/items/P1").status_code == 404
    page = get(f"{empty_server}/map")
    assert page.status_code == 200 and "Observatorio Metropolitano" in page.text
    assert "extent" not in get(f"{empty_server}/collections/permits").json()
    tilejson = get(f"{empty_server}/collections/permits/tiles/WebMercatorQuad/tilejson.json").json()
    assert tilejson["bounds"] == [-180.0, -85.0511287798, 180.0, 85.0511287798]


def test_a_reload_shows_without_restart(
    server: str, loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    assert get(f"{server}/collections/permits/items/P4").status_code == 200
    fixtures.load(
        loaded, "permits", write_permits(tmp_path, PERMITS[:3], name="menos.csv"), settings=settings
    )
    assert get(f"{server}/collections/permits/items/P4").status_code == 404
    body = get(f"{server}/collections/permits/items").json()
    assert [f["id"] for f in body["features"]] == ["P1", "P2", "P3"]


def test_validators_let_clients_revalidate_until_a_load(
    server: str, loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    permit = get(f"{server}/collections/permits/items/P1").json()
    tile = TMS.tile(*permit["geometry"]["coordinates"], 14)
    urls = [
        f"{server}/collections/permits/items?limit=2",
        f"{server}/collections/permits/items/P1",
        f"{server}/collections/permits/tiles/WebMercatorQuad/14/{tile.y}/{tile.x}",
    ]
    first = [httpx.get(url) for url in urls]
    etags = [response.headers["etag"] for response in first]
    assert len(set(etags)) == 3 and all(r.headers["cache-control"] == "no-cache" for r in first)
    assert all(r.headers["last-modified"].endswith(" GMT") for r in first)
    for url, etag in zip(urls, etags, strict=True):
        again = httpx.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
    # If-Modified-Since: the date sent (or a later one) is current; a second earlier is not; an
    # If-None-Match that does not match wins over it (RFC 9110, 13.2.2); a date that is no date is ignored
    modified = [response.headers["last-modified"] for response in first]
    for url, date in zip(urls, modified, strict=True):
        earlier = format_datetime(parsedate_to_datetime(date) - timedelta(seconds=1), usegmt=True)
        assert httpx.get(url, headers={"If-Modified-Since": date}).status_code == 304
        assert httpx.get(url, headers={"If-Modified-Since": earlier}).status_code == 200
        both = {"If-Modified-Since": date, "If-None-Match": '"other"'}
        assert httpx.get(url, headers=both).status_code == 200
        assert httpx.get(url, headers={"If-Modified-Since": "yesterday"}).status_code == 200

    time.sleep(1.1)  # Last-Modified counts whole seconds: the reload must fall in a later one
    fixtures.load(loaded, "permits", write_permits(tmp_path, PERMITS[:4], name="otra.csv"), settings=settings)

    for url, etag, date in zip(urls, etags, modified, strict=True):
        fresh = httpx.get(url, headers={"If-None-Match": etag})
        assert fresh.status_code == 200 and fresh.headers["etag"] != etag
        assert httpx.get(url, headers={"If-Modified-Since": date}).status_code == 200
    assert httpx.get(urls[0]).json()["features"][0]["id"] == "P1"


def test_large_bodies_are_gzipped_and_cors_is_open(server: str) -> None:
    response = httpx.get(
        f"{server}/collections/permits/items?limit=5",
        headers={"Accept-Encoding": "gzip", "Origin": "https://observatorio.amb.gov.co"},
    )
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json()["numberReturned"] == 5


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/collections/nowhere/items", {}, 404, "no collection 'nowhere'"),
        ("/collections/permits/items", {"bbox": "1,2,3"}, 400, "bbox"),
        ("/collections/permits/items", {"bbox": "-89,14,-90,13"}, 400, "min ≤ max"),
        ("/collections/permits/items", {"limit": 0}, 400, "limit"),
        ("/collections/permits/items", {"limit": "many"}, 400, "limit"),
        ("/collections/permits/items", {"colour": "red"}, 400, "unknown parameter 'colour'"),
        ("/collections/permits/items", {"datetime": "yesterday"}, 400, "datetime"),
        (
            "/collections/municipalities/items",
            {"datetime": "2017-01-01"},
            400,
            "no temporal property",
        ),
        ("/collections/permits/items/NOPE", {}, 404, "no feature 'NOPE'"),
        ("/collections/permits/tiles/WebMercatorQuad/3/8/1", {}, 404, "outside"),
        ("/collections/permits/tiles/WebMercatorQuad/25/0/0", {}, 400, "z: Input should be less than"),
        ("/collections/permits/tiles/WebMercatorQuad/2/-1/0", {}, 400, "y: Input should be greater"),
        ("/collections/permits/tiles/WorldCRS84Quad/2/1/1", {}, 404, "no tile matrix set"),
        ("/collections/indicators/items", {"period": "last"}, 400, "not a valid integer"),
        ("/indicators/nothing", {}, 404, "no indicator"),
        ("/map", {"indicator": "nothing"}, 404, "no indicator"),
        ("/no/such/path", {}, 404, "Not Found"),
    ],
)
def test_bad_requests_get_problem_bodies(
    server: str, path: str, params: dict[str, Any], status: int, detail: str
) -> None:
    response = get(f"{server}{path}", **params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and detail in body["detail"]
    assert "Traceback" not in response.text
