"""The partner feed (/feeds/v1), /indicators/{id}/periods and whole-collection downloads, through a
live server over the published tiny AMSS on both stores (values in tests/fixtures.py)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import jsonschema
import pandas as pd
import pyogrio
import pytest

from observatory.indicators import REGISTRY

FEED = "/feeds/v1/indicators"


Params = list[tuple[str, str]] | dict[str, str] | None


def get(url: str, params: Params = None, **headers: str) -> httpx.Response:
    return httpx.get(url, params=params, headers=headers, timeout=30)


def feed(server: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = get(f"{server}{FEED}", params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    body: dict[str, Any] = response.json()
    return body


def values(body: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """value_id -> (value, n, flag, period) of a long feed."""
    rows = {f["id"]: f["properties"] for f in body["features"]}
    return {key: (row["value"], row["n"], row["flag"], row["period"]) for key, row in rows.items()}


def test_latest_is_each_indicators_own_latest_period(published_server: str) -> None:
    body = feed(
        published_server,
        [("indicator_id", "permits_count"), ("indicator_id", "population_density"),
         ("indicator_id", "housing_permits_share")],
    )  # fmt: skip
    # permits: 2018 (the latest year of permits); density: the 2007 census; the housing share's
    # latest is 2018, when only 0001 has one (0002's 2017 value is not its latest).
    assert values(body) == {
        "permits_count:0001:2018": (1.0, 1, "small_n", 2018),
        "permits_count:0002:2018": (0.0, 0, "small_n", 2018),
        "population_density:0001:2007": (pytest.approx(2500.0), None, None, 2007),
        "population_density:0002:2007": (pytest.approx(500.0), None, None, 2007),
        "housing_permits_share:0001:2018": (100.0, 1, "small_n", 2018),
    }
    assert body["period"] == "latest" and body["feed_version"] == "1.1.0"
    described = {item["id"]: item for item in body["indicators"]}
    assert described["population_density"]["periods"] == [2007]
    assert described["permits_count"]["periods"] == [2018]
    # Vintages: every value says the period of each input; the indicators member sums them up.
    vintages = {f["id"]: f["properties"]["input_periods"] for f in body["features"]}
    assert vintages["permits_count:0001:2018"] == {"permits": 2018}
    assert described["permits_count"]["input_periods"] == {"permits": [2018]}
    assert described["permits_count"]["period_rule"] == REGISTRY["permits_count"].period_rule
    assert described["permits_count"]["title"] == {
        "es": REGISTRY["permits_count"].title_es,
        "en": REGISTRY["permits_count"].title_en,
    }
    first = body["features"][0]["properties"]
    assert first["title_en"] == REGISTRY[first["indicator_id"]].title_en and first["unit"]
    order = [list(REGISTRY).index(f["properties"]["indicator_id"]) for f in body["features"]]
    assert order == sorted(order)  # the registry's (the report's) order
    assert body["numberMatched"] == body["numberReturned"] == 5


def test_repeated_keys_mean_any_of(published_server: str) -> None:
    by_theme = feed(published_server, [("period", "2017"), ("theme", "density"), ("theme", "land_rent")])
    assert values(by_theme) == {
        "housing_permit_density:0001:2017": (0.25, 1, "small_n", 2017),
        "housing_permit_density:0002:2017": (0.0, 0, "small_n", 2017),
        # the 2007 census over the urbanised land of the 2017 plan: dated 2017, its latest input
        "population_density_urbanised:0001:2017": (25.0, None, None, 2017),
        "population_density_urbanised:0002:2017": (5.0, None, None, 2017),
        "investment_per_authorised_m2:0001:2017": (15.0, 2, "small_n", 2017),
        "investment_per_authorised_m2:0002:2017": (4.0, 1, "small_n", 2017),
        "median_investment_per_m2:0001:2017": (pytest.approx(40 / 3), 2, "small_n", 2017),
        "median_investment_per_m2:0002:2017": (4.0, 1, "small_n", 2017),
    }
    one_place = feed(
        published_server,
        [("period", "2017"), ("municipality_code", "0002"), ("indicator_id", "permits_count"),
         ("indicator_id", "declared_investment")],
    )  # fmt: skip
    assert values(one_place) == {
        "declared_investment:0002:2017": (200.0, 1, "small_n", 2017),
        "permits_count:0002:2017": (1.0, 1, "small_n", 2017),
    }
    described = {item["id"]: item for item in by_theme["indicators"]}
    assert described["population_density_urbanised"]["input_periods"] == {"census": [2007], "zoning": [2017]}


def test_geography_2024_regroups_the_districts(published_server: str) -> None:
    body = feed(
        published_server,
        [("geography", "municipios_2024"), ("indicator_id", "permits_count"),
         ("indicator_id", "population_density")],
    )  # fmt: skip
    assert values(body) == {
        "permits_count:M1:2018": (1.0, 1, "small_n", 2018),
        "population_density:M1:2007": (pytest.approx(1300.0), None, None, 2007),  # 13,000 people on 10 km²
    }
    assert {f["properties"]["geography"] for f in body["features"]} == {"municipios_2024"}


def test_withheld_values_are_null_and_suppressed_in_both_formats(published_server: str) -> None:
    query = [("indicator_id", "homicide_rate")]
    assert values(feed(published_server, query)) == {
        "homicide_rate:0001:2017": (None, None, "suppressed", 2017),  # the count (2) goes too
        "homicide_rate:0002:2017": (40.0, 12, None, 2017),
    }
    wide = feed(published_server, [*query, ("format", "wide")])
    rows = {f["id"]: f["properties"] for f in wide["features"]}
    assert rows["0001"]["homicide_rate"] is None and rows["0001"]["homicide_rate__flag"] == "suppressed"
    assert rows["0001"]["homicide_rate__n"] is None
    assert rows["0002"]["homicide_rate"] == 40.0 and rows["0002"]["homicide_rate__n"] == 12
    text = get(f"{published_server}{FEED}", [*query, ("f", "csv")]).text
    table = pd.read_csv(io.StringIO(text), dtype={"municipality_code": str}).set_index("value_id")
    assert pd.isna(table.loc["homicide_rate:0001:2017", "value"])
    assert pd.isna(table.loc["homicide_rate:0001:2017", "n"])
    assert table.loc["homicide_rate:0001:2017", "flag"] == "suppressed"
    assert table.loc["homicide_rate:0002:2017", "value"] == 40.0
    # the flag is public and filterable: an outsider may list what is withheld, never its value
    for params in ({"flag": "suppressed"}, {"filter": "flag = 'suppressed'"}):
        items = get(f"{published_server}/collections/indicators/items", params).json()["features"]
        assert [(f["id"], f["properties"]["value"]) for f in items] == [("homicide_rate:0001:2017", None)]


def test_wide_and_long_agree_on_every_value(published_server: str) -> None:
    long = feed(published_server, [])
    wide = feed(published_server, [("format", "wide")])
    rows = {f["id"]: f["properties"] for f in wide["features"]}
    assert sorted(rows) == ["0001", "0002"]
    assert {f["properties"]["municipality_code"] for f in long["features"]} == {"0001", "0002"}
    for item in long["features"]:
        own = item["properties"]
        row = rows[own["municipality_code"]]
        key = own["indicator_id"]
        assert (row[key], row[f"{key}__n"], row[f"{key}__flag"]) == (own["value"], own["n"], own["flag"])
    # A municipality without a value of an indicator in its latest period has a null, not a 0.
    assert rows["0002"]["housing_permits_share"] is None and rows["0001"]["housing_permits_share"] == 100.0
    cells = sum(1 for row in rows.values() for key in row if key in REGISTRY and row[key] is not None)
    assert cells == sum(1 for f in long["features"] if f["properties"]["value"] is not None)
    assert wide["indicators"] == long["indicators"]
    csv = pd.read_csv(io.StringIO(get(f"{published_server}{FEED}", {"format": "wide", "f": "csv"}).text))
    assert list(csv.columns) == list(rows["0001"])
    assert csv.loc[0, "population_density"] == pytest.approx(2500.0) and csv.loc[1, "permits_count"] == 0.0


def test_wide_with_every_period_is_a_row_per_municipality_and_year(published_server: str) -> None:
    query = [("format", "wide"), ("period", "all"), ("indicator_id", "permits_count"),
             ("indicator_id", "population_density")]  # fmt: skip
    rows = {f["id"]: f["properties"] for f in feed(published_server, query)["features"]}
    assert sorted(rows) == ["0001:2007", "0001:2017", "0001:2018", "0002:2007", "0002:2017", "0002:2018"]
    assert rows["0001:2017"]["permits_count"] == 2.0 and rows["0001:2017"]["population_density"] is None
    assert (
        rows["0002:2007"]["population_density"] == pytest.approx(500.0)
        and rows["0002:2007"]["period"] == 2007
    )
    assert rows["0002:2007"]["permits_count"] is None  # no permits counted for the census year


def test_feed_matches_its_published_schema(published_server: str) -> None:
    schema = get(f"{published_server}/feeds/v1/schema.json")
    assert schema.headers["content-type"] == "application/schema+json"
    validator = jsonschema.Draft202012Validator(schema.json())
    for params in ([], [("format", "wide")], [("period", "2017"), ("format", "wide")],
                   [("period", "all"), ("format", "wide")]):  # fmt: skip
        body = feed(published_server, params)
        assert body["features"]
        validator.validate(body)
    wide = feed(published_server, [("format", "wide")])
    wide["features"][0]["properties"]["typo__n"] = 1
    assert not validator.is_valid(wide)  # the schema lists every property: it can fail
    links = {link["rel"]: link["href"] for link in wide["links"]}
    assert links["describedby"].endswith("/feeds/v1/schema.json")
    landing = get(f"{published_server}/feeds/v1").json()
    assert landing["feed_version"] == "1.1.0"
    assert {link["rel"]: link["href"] for link in landing["links"]}["describedby"] == links["describedby"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ([("indicator_id", "nope")], "unknown indicator_id 'nope'"),
        ([("theme", "nope")], "unknown theme 'nope'"),
        ([("period", "last")], "period"),
        ([("indicator", "permits_count")], "unknown parameter 'indicator'"),
        ([("format", "tall")], "format"),
        ([("geography", "municipios_1999")], "geography"),
    ],
)
def test_bad_feed_parameters_are_400_problems(
    published_server: str, params: list[tuple[str, str]], message: str
) -> None:
    response = get(f"{published_server}{FEED}", params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert message in response.json()["detail"]


def test_feed_is_cacheable(published_server: str) -> None:
    first = get(f"{published_server}{FEED}", {"format": "wide"}, Origin="https://bucaramanga.example")
    assert first.headers["access-control-allow-origin"] == "*"
    again = get(f"{published_server}{FEED}", {"format": "wide"}, **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


def test_periods_of_an_indicator(published_server: str) -> None:
    permits = get(f"{published_server}/indicators/permits_count/periods").json()
    assert permits["periods"] == [2017, 2018] and permits["latest"] == 2018
    homicides = get(f"{published_server}/indicators/homicide_rate/periods").json()
    assert homicides["geographies"] == {
        "municipios_2007": {"periods": [2017], "latest": 2017},
        "municipios_2024": {"periods": [], "latest": None},
    }
    assert get(f"{published_server}/indicators/population_density/periods").json()["latest"] == 2007
    missing = get(f"{published_server}/indicators/nope/periods")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def download(server: str, collection: str, f: str, folder: Path) -> Path:
    response = get(f"{server}/collections/{collection}/download", {"f": f})
    assert response.status_code == 200, response.text
    path = folder / f"{collection}.{f}"
    path.write_bytes(response.content)
    return path


@pytest.mark.parametrize("f", ["gpkg", "fgb", "geojson", "csv"])
def test_downloads_are_typed_files_gdal_reads(published_server: str, tmp_path: Path, f: str) -> None:
    path = download(published_server, "permits", f, tmp_path)
    options = {"AUTODETECT_TYPE": "YES"} if f == "csv" else {}
    info = pyogrio.read_info(path, **options)
    assert info["features"] == 5
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    # Numbers are numbers (CSV carries no types: GDAL's autodetection sees 300 as an integer).
    number = {"float64"} if f != "csv" else {"float64", "int32"}
    assert {types["floor_area_m2"], types["investment_usd"]} <= number
    assert types["submitted"].startswith("datetime64")  # a Date (or DateTime) field, not text
    frame = pyogrio.read_dataframe(path, **options).set_index("permit_id")
    assert frame.loc["P2", "floor_area_m2"] == 300.0 and frame.loc["P2", "investment_usd"] == 5000.0
    assert pd.isna(frame.loc["P4", "floor_area_m2"])
    assert str(frame.loc["P3", "submitted"].date()) == "2017-02-06"
    x, y = frame.loc["P1"].geometry.x, frame.loc["P1"].geometry.y
    assert -90 < x < -88 and 13 < y < 14.5  # lon/lat


def test_downloads_keep_withheld_values_withheld(published_server: str, tmp_path: Path) -> None:
    parquet = gpd.read_parquet(download(published_server, "indicators", "parquet", tmp_path))
    package = pyogrio.read_dataframe(download(published_server, "indicators", "gpkg", tmp_path))
    for frame in (parquet, package):
        rows = frame.set_index("value_id")
        assert pd.isna(rows.loc["homicide_rate:0001:2017", "value"])
        assert rows.loc["homicide_rate:0001:2017", "flag"] == "suppressed"
        assert rows.loc["homicide_rate:0002:2017", "value"] == 40.0
        assert rows.loc["permits_count:M1:2017", "value"] == 3.0
    assert len(parquet) == len(package) == 53 + 32 + 2  # 2007 values, 2024 values, homicide rates


def test_download_errors(published_server: str) -> None:
    unknown = get(f"{published_server}/collections/nope/download", {"f": "gpkg"})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert get(f"{published_server}/collections/permits/download", {"f": "shp"}).status_code == 400
