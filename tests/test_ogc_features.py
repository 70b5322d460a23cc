"""OGC API - Features parts 1, 2 and 3 on the fixture permits, on both stores: CQL2 text and JSON
(examples in the standard's forms, values known by hand), injection attempts, queryables and
schemas, sortby, properties, numberMatched, CSV, CRS, paging, languages and the OpenAPI document.

The five permits (tests/fixtures.py): P1 habitacional 100 m² 1,000 USD (west), P2 comercio 300 m²
5,000 USD (west), P3 industria 50 m² 200 USD (east), P4 a calificación de lugar without area or
investment (east), P5 habitacional 70 m² 700 USD submitted in 2018 (west).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import morecantile
import pyproj
import pytest
import shapely

from tests import fixtures
from tests.conftest import STORES, permits_server

WGS84_UTM = pyproj.Transformer.from_crs(fixtures.UTM, "OGC:CRS84", always_xy=True)
INSIDE_WEST = shapely.box(fixtures.X0 + 100, fixtures.Y0 + 100, fixtures.X0 + 1_900, fixtures.Y0 + 1_900)
"""Most of the west square (UTM), holding P1, P2 and P5 and no east permit."""
WEST_LONLAT = shapely.transform(INSIDE_WEST, lambda xy: list(zip(*WGS84_UTM.transform(*xy.T), strict=True)))
WEST_WKT = shapely.to_wkt(WEST_LONLAT, rounding_precision=9)
WEST_GEOJSON = json.loads(shapely.to_geojson(WEST_LONLAT))


@pytest.fixture(scope="module", params=STORES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp(request.param)
    with permits_server(request.param, folder) as (url, _), httpx.Client(base_url=url, timeout=20) as client:
        yield client


def ids(client: httpx.Client, **params: Any) -> list[str]:
    response = client.get("/collections/permits/items", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [feature["id"] for feature in response.json()["features"]]


# Each case: CQL2 text, the same in CQL2 JSON, the permits it selects (worked out by hand above).
CASES = [
    ("floor_area_m2 > 60", {"op": ">", "args": [{"property": "floor_area_m2"}, 60]}, ["P1", "P2", "P5"]),
    ("kind = 'calificacion_lugar'",
     {"op": "=", "args": [{"property": "kind"}, "calificacion_lugar"]}, ["P4"]),
    ("floor_area_m2 IS NULL", {"op": "isNull", "args": [{"property": "floor_area_m2"}]}, ["P4"]),
    ("NOT (kind = 'permiso_construccion')",
     {"op": "not", "args": [{"op": "=", "args": [{"property": "kind"}, "permiso_construccion"]}]}, ["P4"]),
    ("use_class IN ('comercio', 'industria')",
     {"op": "in", "args": [{"property": "use_class"}, ["comercio", "industria"]]}, ["P2", "P3"]),
    ("use_class LIKE 'hab%'", {"op": "like", "args": [{"property": "use_class"}, "hab%"]}, ["P1", "P5"]),
    # LIKE is case-sensitive on both stores (SQLite's is not, unless told).
    ("use_class LIKE 'HAB%'", {"op": "like", "args": [{"property": "use_class"}, "HAB%"]}, []),
    ("floor_area_m2 BETWEEN 50 AND 100",
     {"op": "between", "args": [{"property": "floor_area_m2"}, 50, 100]}, ["P1", "P3", "P5"]),
    ("submitted < DATE('2017-02-01')",
     {"op": "<", "args": [{"property": "submitted"}, {"date": "2017-02-01"}]}, ["P1"]),
    ("submitted >= '2017-03-01' AND submitted <= '2017-12-31'",
     {"op": "and", "args": [{"op": ">=", "args": [{"property": "submitted"}, {"date": "2017-03-01"}]},
                            {"op": "<=", "args": [{"property": "submitted"}, {"date": "2017-12-31"}]}]},
     ["P2", "P4"]),
    # AND binds tighter than OR: P4, or (habitacional and over 80 m²) = P1.
    ("kind = 'calificacion_lugar' OR use_class = 'habitacional' AND floor_area_m2 > 80",
     {"op": "or", "args": [
         {"op": "=", "args": [{"property": "kind"}, "calificacion_lugar"]},
         {"op": "and", "args": [{"op": "=", "args": [{"property": "use_class"}, "habitacional"]},
                                {"op": ">", "args": [{"property": "floor_area_m2"}, 80]}]}]},
     ["P1", "P4"]),
    # Arithmetic: USD per m² above 12 is P2 alone (16.7; P1 and P5 10, P3 4).
    ("investment_usd / floor_area_m2 > 12",
     {"op": ">", "args": [
         {"op": "/", "args": [{"property": "investment_usd"}, {"property": "floor_area_m2"}]}, 12]},
     ["P2"]),
    # A division by zero (P1: 100 - 100) is null, not an error, on both stores.
    ("investment_usd / (floor_area_m2 - 100) > 0",
     {"op": ">", "args": [{"op": "/", "args": [{"property": "investment_usd"},
                                               {"op": "-", "args": [{"property": "floor_area_m2"}, 100]}]},
                          0]}, ["P2"]),
    (f"S_INTERSECTS(geom, {WEST_WKT})",
     {"op": "s_intersects", "args": [{"property": "geom"}, WEST_GEOJSON]}, ["P1", "P2", "P5"]),
    (f"S_WITHIN(geom, {WEST_WKT})",
     {"op": "s_within", "args": [{"property": "geom"}, WEST_GEOJSON]}, ["P1", "P2", "P5"]),
    (f"NOT S_INTERSECTS(geom, {WEST_WKT})",
     {"op": "not", "args": [{"op": "s_intersects", "args": [{"property": "geom"}, WEST_GEOJSON]}]},
     ["P3", "P4"]),
    (f"S_DISJOINT(geom, {WEST_WKT})",
     {"op": "s_disjoint", "args": [{"property": "geom"}, WEST_GEOJSON]}, ["P3", "P4"]),
    (f"S_INTERSECTS(geom, BBOX({', '.join(str(v) for v in WEST_LONLAT.bounds)}))",
     {"op": "s_intersects", "args": [{"property": "geom"}, {"bbox": list(WEST_LONLAT.bounds)}]},
     ["P1", "P2", "P5"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "tree", "expected"), CASES, ids=[case[0][:40] for case in CASES])
def test_cql2_text_and_json_select_the_same_permits(
    api: httpx.Client, text: str, tree: dict[str, Any], expected: list[str]
) -> None:
    assert ids(api, filter=text) == expected
    assert ids(api, filter=json.dumps(tree), **{"filter-lang": "cql2-json"}) == expected


def test_cql2_combines_with_bbox_datetime_and_equality_filters(api: httpx.Client) -> None:
    west, south, east, north = WEST_LONLAT.bounds
    assert ids(api, filter="floor_area_m2 >= 70", bbox=f"{west},{south},{east},{north}") == ["P1", "P2", "P5"]
    assert ids(api, filter="floor_area_m2 >= 70", datetime="../2017-12-31") == ["P1", "P2"]
    assert ids(api, filter="floor_area_m2 >= 70", use_class="habitacional") == ["P1", "P5"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"filter": "nope = 1"}, "unknown property 'nope'"),
        ({"filter": "floor_area_m2 >"}, "syntax error"),
        ({"filter": "floor_area_m2 = 'big'"}, "compared with a number"),
        ({"filter": "kind = 3"}, "quote it"),
        ({"filter": "CASEI(kind) = 'x'"}, "function 'lower'"),
        ({"filter": "S_INTERSECTS(kind, POINT(1 2))"}, "spatial predicate"),
        ({"filter": "floor_area_m2 > 99999999999999999999"}, "64-bit"),
        ({"filter": '{"op": "nope"}', "filter-lang": "cql2-json"}, "not a valid cql2-json"),
        ({"filter": "kind = 'x'", "filter-lang": "sql"}, "filter-lang"),
        ({"filter": "kind = 'x'", "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}, "CRS84 only"),
        ({"sortby": "-nope"}, "sortby: unknown property 'nope'"),
        ({"properties": "kind,nope"}, "unknown ['nope']"),
        ({"crs": "EPSG:2154"}, "crs='EPSG:2154': not served"),
    ],
)
def test_bad_filters_and_parameters_are_400_problems_naming_the_problem(
    api: httpx.Client, params: dict[str, str], named: str
) -> None:
    response = api.get("/collections/permits/items", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert named in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "\"kind; DROP TABLE permits; --\" = 'x'"},
        {"filter": '{"op": "=", "args": [{"property": "kind\\" = kind; DROP TABLE permits; --"}, "x"]}',
         "filter-lang": "cql2-json"},
        {"sortby": "kind; DROP TABLE permits"},
        {"properties": "kind FROM permits; DROP TABLE permits; --"},
    ],
)  # fmt: skip
def test_injection_through_names_is_refused_and_the_table_stays(
    api: httpx.Client, params: dict[str, str]
) -> None:
    assert api.get("/collections/permits/items", params=params).status_code == 400
    assert ids(api) == ["P1", "P2", "P3", "P4", "P5"]


def test_values_are_bound_never_spliced(api: httpx.Client) -> None:
    """A value shaped like SQL matches nothing (spliced into SQL it would match every row)."""
    tree = {"op": "=", "args": [{"property": "kind"}, "x' OR '1'='1"]}
    assert ids(api, filter=json.dumps(tree), **{"filter-lang": "cql2-json"}) == []
    assert ids(api) == ["P1", "P2", "P3", "P4", "P5"]


def test_sortby_orders_by_catalogue_properties_nulls_last(api: httpx.Client) -> None:
    assert ids(api, sortby="-floor_area_m2") == ["P2", "P1", "P5", "P3", "P4"]
    assert ids(api, sortby="+floor_area_m2") == ["P3", "P5", "P1", "P2", "P4"]
    assert ids(api, sortby="use_class,-permit_id") == ["P2", "P5", "P1", "P3", "P4"]


def test_properties_selects_what_each_feature_carries(api: httpx.Client) -> None:
    body = api.get("/collections/permits/items", params={"properties": "floor_area_m2", "limit": 2}).json()
    assert [(f["id"], f["properties"]) for f in body["features"]] == [
        ("P1", {"floor_area_m2": 100.0}),
        ("P2", {"floor_area_m2": 300.0}),
    ]


def test_number_matched_counts_the_filter_not_the_page(api: httpx.Client) -> None:
    body = api.get("/collections/permits/items", params={"filter": "floor_area_m2 > 60", "limit": 1}).json()
    assert (body["numberMatched"], body["numberReturned"]) == (3, 1)
    assert "numberMatchedEstimated" not in body
    assert [link["rel"] for link in body["links"]].count("next") == 1
    assert api.get("/collections/permits/items").json()["numberMatched"] == 5


def test_a_filter_binding_no_value_filters_every_page_and_the_count(api: httpx.Client) -> None:
    # IS NOT NULL binds no value: the GeoPackage took that for "no filter" in numberMatched and
    # past the first page (P1, P2, P3, P5 have an area; P4 has none).
    body = api.get(
        "/collections/permits/items", params={"filter": "floor_area_m2 IS NOT NULL", "limit": 2, "offset": 2}
    ).json()
    assert [feature["id"] for feature in body["features"]] == ["P3", "P5"]
    assert body["numberMatched"] == 4
    assert ids(api, limit=1, offset=0, filter="floor_area_m2 IS NULL") == ["P4"]
    assert (
        api.get("/collections/permits/items", params={"filter": "floor_area_m2 IS NULL"}).json()[
            "numberMatched"
        ]
        == 1
    )


def test_numbers_are_numbers_and_dates_iso_in_the_geojson(api: httpx.Client) -> None:
    properties = api.get("/collections/permits/items/P2").json()["properties"]
    assert properties["floor_area_m2"] == 300.0 and isinstance(properties["floor_area_m2"], float)
    assert properties["investment_usd"] == 5000.0
    assert (properties["submitted"], properties["resolved"]) == ("2017-03-01", "2017-04-26")


def test_pages_by_offset_are_slices_of_the_ordered_layer(api: httpx.Client) -> None:
    everything = ids(api)
    for offset in range(6):
        assert ids(api, limit=2, offset=offset) == everything[offset : offset + 2]
    # A bbox around the whole world encloses the layer: same pages, filtered or not.
    assert ids(api, limit=2, offset=3, bbox="-180,-90,180,90") == ["P4", "P5"]
    assert ids(api, limit=1, offset=1, filter="floor_area_m2 > 60") == ["P2"]


def test_csv_has_the_page_rows_with_wkt_geometry(api: httpx.Client) -> None:
    response = api.get(
        "/collections/permits/items",
        params={"f": "csv", "filter": "use_class = 'habitacional'", "properties": "permit_id,floor_area_m2"},
    )
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(row["permit_id"], float(row["floor_area_m2"])) for row in rows] == [("P1", 100.0), ("P5", 70.0)]
    p1 = shapely.from_wkt(rows[0]["geometry"])
    assert (
        p1.distance(shapely.Point(api.get("/collections/permits/items/P1").json()["geometry"]["coordinates"]))
        < 1e-12
    )
    assert p1.distance(shapely.Point(WGS84_UTM.transform(fixtures.X0 + 500, fixtures.Y0 + 500))) < 1e-6


@pytest.mark.parametrize(
    ("crs", "target"),
    [
        ("http://www.opengis.net/def/crs/EPSG/0/32616", "EPSG:32616"),
        ("http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326"),
        ("http://www.opengis.net/def/crs/EPSG/0/3857", "EPSG:3857"),
        ("http://www.opengis.net/def/crs/EPSG/0/5460", "EPSG:5460"),
    ],
)
def test_crs_reprojects_in_the_authority_axis_order(api: httpx.Client, crs: str, target: str) -> None:
    response = api.get("/collections/permits/items/P1", params={"crs": crs})
    assert response.headers["content-crs"] == f"<{crs}>"
    x, y = response.json()["geometry"]["coordinates"]
    # P1 was drawn at (X0 + 500, Y0 + 500) in UTM 16N; PROJ gives it in the target's own axis order.
    expected = pyproj.Transformer.from_crs(fixtures.UTM, target).transform(
        fixtures.X0 + 500, fixtures.Y0 + 500
    )
    tolerance = 1e-7 if target == "EPSG:4326" else 0.01
    assert x == pytest.approx(expected[0], abs=tolerance) and y == pytest.approx(expected[1], abs=tolerance)
    if target == "EPSG:32616":
        assert (x, y) == pytest.approx((fixtures.X0 + 500, fixtures.Y0 + 500), abs=0.01)
    if target == "EPSG:4326":
        assert 13 < x < 14 and -90 < y < -89  # latitude first


def test_default_crs_is_crs84(api: httpx.Client) -> None:
    response = api.get("/collections/permits/items", params={"limit": 1})
    assert response.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    lon, lat = response.json()["features"][0]["geometry"]["coordinates"]
    assert -90 < lon < -89 and 13 < lat < 14


def test_bbox_crs_reads_the_box_in_that_crs(api: httpx.Client) -> None:
    west, south, east, north = INSIDE_WEST.bounds
    utm = "http://www.opengis.net/def/crs/EPSG/0/32616"
    assert ids(api, bbox=f"{west},{south},{east},{north}", **{"bbox-crs": utm}) == ["P1", "P2", "P5"]
    lon_min, lat_min, lon_max, lat_max = WEST_LONLAT.bounds
    latlon = "http://www.opengis.net/def/crs/EPSG/0/4326"
    assert ids(api, bbox=f"{lat_min},{lon_min},{lat_max},{lon_max}", **{"bbox-crs": latlon}) == [
        "P1",
        "P2",
        "P5",
    ]


def test_a_projected_bbox_selects_its_own_area_not_the_lon_lat_box_around_it(api: httpx.Client) -> None:
    # A tall UTM box whose west edge passes 10 m east of P1: UTM's grid is turned about half a
    # degree from the meridians here, so the lon/lat box enclosing it holds P1 too.
    box = [fixtures.X0 + 510, fixtures.Y0 - 19_500, fixtures.X0 + 30_000, fixtures.Y0 + 20_500]
    west, south, east, north = pyproj.Transformer.from_crs(fixtures.UTM, "OGC:CRS84").transform_bounds(*box)
    lon, lat = WGS84_UTM.transform(fixtures.X0 + 500, fixtures.Y0 + 500)
    assert west <= lon <= east and south <= lat <= north  # P1 is in the enclosing lon/lat box
    utm = "http://www.opengis.net/def/crs/EPSG/0/32616"
    bbox = ",".join(map(str, box))
    assert ids(api, bbox=bbox, **{"bbox-crs": utm}) == ["P2", "P3", "P4", "P5"]
    body = api.get("/collections/permits/items", params={"bbox": bbox, "bbox-crs": utm, "limit": 1}).json()
    assert body["numberMatched"] == 4


def test_a_box_of_no_area_is_a_point_or_a_line_not_an_error(api: httpx.Client) -> None:
    """Reliability report defect 2: a zero-area bbox in a projected bbox-crs was a 500."""
    utm = "http://www.opengis.net/def/crs/EPSG/0/32616"
    x, y = fixtures.X0 + 500, fixtures.Y0 + 500
    for bbox in (f"{x},{y},{x},{y}", f"{x},{y - 100},{x},{y + 100}", "1,1,1,1"):
        response = api.get("/collections/permits/items", params={"bbox": bbox, "bbox-crs": utm})
        assert response.status_code in (200, 400), (bbox, response.text)
        if response.status_code == 400:  # far outside UTM 16N's area: a problem body, not a crash
            assert response.headers["content-type"] == "application/problem+json"
    # a tall line through P1's column, well within the zone: answered, and no permit lies on it
    line = f"{x + 3.7},{y - 100},{x + 3.7},{y + 100}"
    assert ids(api, bbox=line, **{"bbox-crs": utm}) == []


@pytest.mark.parametrize("literal", ["BBOX(nan,nan,nan,nan)", "BBOX(-89,14,-90,13)", "BBOX(-90,13,-89,inf)"])
def test_a_bbox_literal_that_is_no_box_is_a_400(api: httpx.Client, literal: str) -> None:
    """Reliability report defect 4: BBOX(nan,…) in a spatial filter was a 500."""
    response = api.get("/collections/permits/items", params={"filter": f"S_INTERSECTS(geom, {literal})"})
    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    assert "BBOX" in response.json()["detail"]


def test_collection_lists_its_crs_and_links(api: httpx.Client) -> None:
    body = api.get("/collections/permits").json()
    assert body["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert "http://www.opengis.net/def/crs/EPSG/0/5460" in body["crs"]
    rels = {link["rel"]: link["href"] for link in body["links"]}
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/queryables"].endswith(
        "/collections/permits/queryables"
    )
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"].endswith(
        "/collections/permits/tiles"
    )


def test_queryables_and_schema_type_every_property(api: httpx.Client) -> None:
    queryables = api.get("/collections/permits/queryables", headers={"Accept": "application/schema+json"})
    assert queryables.headers["content-type"] == "application/schema+json"
    schema = api.get("/collections/permits/schema").json()
    for body in (queryables.json(), schema):
        properties = body["properties"]
        assert properties["floor_area_m2"]["type"] == "number"
        assert properties["investment_usd"]["type"] == "number"
        assert (properties["submitted"]["type"], properties["submitted"]["format"]) == ("string", "date")
        assert properties["permit_id"] == {"title": "permit_id", "type": "string", "x-ogc-role": "id"}
        assert properties["resolved"]["x-ogc-role"] == "primary-instant"
        assert properties["geom"] == {"title": "Geometría", "x-ogc-role": "primary-geometry",
                                      "format": "geometry-point"}  # fmt: skip
        assert body["additionalProperties"] is False
    indicators = api.get("/collections/indicators/schema").json()["properties"]
    assert indicators["period"]["type"] == "integer" and indicators["n"]["type"] == "integer"
    assert api.get("/collections/nope/queryables").status_code == 404


@pytest.mark.parametrize(
    ("headers", "params", "language"),
    [
        ({}, {}, "es"),
        ({}, {"lang": "en"}, "en"),
        ({"Accept-Language": "en-US,en;q=0.9"}, {}, "en"),
        ({"Accept-Language": "fr, en;q=0.5"}, {}, "en"),
        ({"Accept-Language": "es;q=0.2, en;q=0.8"}, {}, "en"),
        ({"Accept-Language": "fr"}, {}, "es"),
        ({"Accept-Language": "en;q=NaN"}, {}, "es"),  # no qvalue: not asked for
        ({"Accept-Language": "en;q=2, es;q=0.5"}, {}, "es"),
        ({"Accept-Language": "en;q=inf"}, {}, "es"),
        ({"Accept-Language": "es;q=0.1, en;q=0.300"}, {}, "en"),
        ({"Accept-Language": "en"}, {"lang": "es"}, "es"),
    ],
)
def test_titles_follow_lang_then_accept_language(
    api: httpx.Client, headers: dict[str, str], params: dict[str, str], language: str
) -> None:
    titles = {"es": "Permisos de construcción y calificaciones de lugar",
              "en": "Construction permits and site-suitability rulings"}  # fmt: skip
    for path in ("/collections/permits", "/collections/permits/tiles/WebMercatorQuad"):
        response = api.get(path, headers=headers, params=params)
        assert response.json()["title"] == titles[language]
        assert response.headers["content-language"] == language
        assert "Accept-Language" in response.headers["vary"]
    listed = api.get("/collections", headers=headers, params=params).json()["collections"]
    assert {c["id"]: c["title"] for c in listed}["permits"] == titles[language]
    assert api.get("/", headers=headers, params=params).headers["content-language"] == language


def test_unknown_language_is_a_400(api: httpx.Client) -> None:
    assert api.get("/collections/permits", params={"lang": "de"}).status_code == 400
    assert api.get("/", params={"lang": "de"}).status_code == 400


def test_openapi_is_3_0_with_the_limit_maximum_enforced(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    assert document["openapi"] == "3.0.3"
    assert '"type": "null"' not in json.dumps(document) and '"const":' not in json.dumps(document)
    parameters = document["paths"]["/collections/permits/items"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 10_000)
    languages = next(p for p in parameters if p["name"] == "filter-lang")["schema"]["enum"]
    assert {"cql2-text", "cql2-json"} <= set(languages)
    assert api.get("/collections/permits/items", params={"limit": 10_001}).status_code == 400
    assert api.get("/collections/permits/items", params={"limit": 10_000}).status_code == 200


def test_conformance_declares_what_is_served(api: httpx.Client) -> None:
    classes = set(api.get("/conformance").json()["conformsTo"])
    for name in ("ogcapi-features-2/1.0/conf/crs", "ogcapi-features-3/1.0/conf/features-filter",
                 "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json", "cql2/1.0/conf/basic-cql2",
                 "cql2/1.0/conf/advanced-comparison-operators", "cql2/1.0/conf/spatial-functions",
                 "cql2/1.0/conf/arithmetic", "ogcapi-tiles-1/1.0/conf/tilesets-list"):  # fmt: skip
        assert f"http://www.opengis.net/spec/{name}" in classes


def test_tileset_metadata_links_resolve(api: httpx.Client) -> None:
    tilesets = api.get("/collections/municipalities/tiles").json()["tilesets"]
    self_link = next(link["href"] for link in tilesets[0]["links"] if link["rel"] == "self")
    tileset = api.get(self_link)
    assert tileset.status_code == 200
    body = tileset.json()
    links = {link["rel"]: link for link in body["links"]}
    assert api.get(links["http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"]["href"]).status_code == 200
    assert "{tileMatrix}/{tileRow}/{tileCol}" in links["item"]["href"]
    assert body["layers"][0]["propertiesSchema"]["properties"]["code"]["type"] == "string"
    # Zoom 12 limits: the tiles the two squares fall in (morecantile, from the squares' corners).
    limits = {limit["tileMatrix"]: limit for limit in body["tileMatrixSetLimits"]}
    tms = morecantile.tms.get("WebMercatorQuad")
    west, south = WGS84_UTM.transform(fixtures.X0, fixtures.Y0)
    east, north = WGS84_UTM.transform(fixtures.X0 + 5_000, fixtures.Y0 + 2_000)
    first, last = tms.tile(west, north, 12), tms.tile(east, south, 12)
    assert (limits["12"]["minTileCol"], limits["12"]["maxTileRow"]) == (first.x, last.y)
    assert api.get("/collections/municipalities/tiles/WebMercatorQuad/tilejson.json").status_code == 200


def test_q_finds_words_in_any_text_property_case_aside(api: httpx.Client) -> None:
    assert ids(api, q="COMERCIO") == ["P2"]
    assert ids(api, q="comercio,industria") == ["P2", "P3"]
    assert ids(api, q="calificacion") == ["P4"]  # in kind
    assert ids(api, q="p_") == []  # a character, not a wildcard ("aprobado" would match p + any)
    assert ids(api, q="habitacional", filter="floor_area_m2 > 80") == ["P1"]


def test_temporal_operators_on_dates(api: httpx.Client) -> None:
    def json_ids(tree: dict[str, Any]) -> list[str]:
        return ids(api, filter=json.dumps(tree), **{"filter-lang": "cql2-json"})

    after = {"op": "t_after", "args": [{"property": "submitted"}, {"date": "2017-12-31"}]}
    assert json_ids(after) == ["P5"]
    during = {
        "op": "t_during",
        "args": [{"property": "submitted"}, {"interval": ["2017-02-01", "2017-04-30"]}],
    }
    assert json_ids(during) == ["P2", "P3"]
    assert ids(api, filter="submitted T_BEFORE DATE('2017-01-03')") == ["P1"]
