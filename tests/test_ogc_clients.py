"""Standard clients against a live server on the fixture permits, on both stores: Debian's GDAL 3.6
command-line tools (OAPIF), the GDAL 3.12 that pyogrio bundles (OAPIF and OGCAPI tiles) and
OWSLib. What they see is checked against the hand-known permits, and the server's request log
shows that filters run on the server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest
from owslib.ogcapi.features import Features

from tests.conftest import STORES, RequestLog, permits_server


@pytest.fixture(scope="module", params=STORES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, RequestLog]]:
    with permits_server(request.param, tmp_path_factory.mktemp(request.param)) as served:
        yield served


def items_requests(log: RequestLog, start: int) -> list[str]:
    """Query strings of the permits' items requests received since ``start``."""
    return [query for path, query in log.requests[start:] if path == "/collections/permits/items"]


def bundled_gdal(source: str, layer: str, **options: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows and column types read by pyogrio's GDAL 3.12 in a child process (it keeps the GIL while
    it reads, and the live server answers from a thread of this one)."""
    script = (
        "import json, sys, pyogrio\n"
        "frame = pyogrio.read_dataframe(sys.argv[1], layer=sys.argv[2], **json.loads(sys.argv[3]))\n"
        "print(frame.drop(columns='geometry').to_json(orient='records'))\n"
        "print(json.dumps({column: str(kind) for column, kind in frame.dtypes.items()}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, source, layer, json.dumps(options)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows, kinds = run.stdout.splitlines()[-2:]
    return json.loads(rows), json.loads(kinds)


def gdal(*arguments: str) -> str:
    run = subprocess.run(arguments, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ERROR" not in run.stderr, run.stderr
    return run.stdout


def test_gdal_cli_types_the_fields_from_the_schema(live: tuple[str, RequestLog]) -> None:
    url, _ = live
    out = gdal("ogrinfo", "-ro", "-so", f"OAPIF:{url}", "permits")
    for line in ("floor_area_m2: Real", "investment_usd: Real", "submitted: Date", "resolved: Date",
                 "permit_id: String", "Feature Count: 5", "Geometry: Point"):  # fmt: skip
        assert line in out, out


def test_gdal_cli_where_is_evaluated_by_the_server(live: tuple[str, RequestLog]) -> None:
    url, log = live
    start = len(log.requests)
    out = gdal("ogrinfo", "-ro", "-al", "-q", "-where", "floor_area_m2 > 60", f"OAPIF:{url}", "permits")
    assert sorted(
        line.split("=")[1].strip() for line in out.splitlines() if "permit_id (String)" in line
    ) == ["P1", "P2", "P5"]
    filtered = [query for query in items_requests(log, start) if "filter=" in query]
    assert len(filtered) == 1 and "filter-lang=cql-text" in filtered[0]
    # The only unfiltered page is the one GDAL reads to set up the layer.
    assert len(items_requests(log, start)) == len(filtered) + 1


def test_ogr2ogr_copies_filtered_typed_features(live: tuple[str, RequestLog], tmp_path: Path) -> None:
    url, _ = live
    copy = tmp_path / "copy.gpkg"
    gdal("ogr2ogr", "-f", "GPKG", str(copy), f"OAPIF:{url}", "permits", "-where",
         "kind = 'permiso_construccion' AND submitted < '2018-01-01'")  # fmt: skip
    frame = pyogrio.read_dataframe(copy).sort_values("permit_id")
    assert frame["permit_id"].tolist() == ["P1", "P2", "P3"]
    assert frame["floor_area_m2"].tolist() == [100.0, 300.0, 50.0]
    assert str(frame["submitted"].dtype).startswith("datetime64")


def test_newer_gdal_pages_by_the_advertised_maximum_and_filters_on_the_server(
    live: tuple[str, RequestLog],
) -> None:
    url, log = live
    start = len(log.requests)
    rows, kinds = bundled_gdal(f"OAPIF:{url}", "permits", where="investment_usd >= 1000")
    assert sorted(row["permit_id"] for row in rows) == ["P1", "P2"]
    assert (kinds["investment_usd"], kinds["floor_area_m2"]) == ("float64", "float64")
    assert kinds["submitted"].startswith("datetime64")
    pages = [query for query in items_requests(log, start) if "filter=" in query]
    assert len(pages) == 1 and "limit=1000" in pages[0]  # GDAL ≥ 3.8 caps the page at min(maximum, 1000)


def test_gdal_reads_vector_tiles_through_the_tileset_metadata(live: tuple[str, RequestLog]) -> None:
    """GDAL's OGCAPI driver follows tilesets -> tileset -> tiling scheme -> tiles. It takes the
    collection's CRS84 extent for tile-matrix coordinates, so the tileset's own bounding box (in
    EPSG:3857) is given as its MINX..MAXY open options."""
    url, log = live
    box = httpx.get(f"{url}/collections/permits/tiles/WebMercatorQuad").json()["boundingBox"]
    (minx, miny), (maxx, maxy) = box["lowerLeft"], box["upperRight"]
    options = {"API": "TILES", "MINX": str(minx), "MINY": str(miny), "MAXX": str(maxx), "MAXY": str(maxy)}
    start = len(log.requests)
    permits, _ = bundled_gdal(f"OGCAPI:{url}/collections/permits", "Zoom level 14", **options)
    assert {row["permit_id"] for row in permits} == {"P1", "P2", "P3", "P4", "P5"}
    paths = [path for path, _ in log.requests[start:]]
    assert "/tileMatrixSets/WebMercatorQuad" in paths
    assert any(path.startswith("/collections/permits/tiles/WebMercatorQuad/14/") for path in paths)
    towns, _ = bundled_gdal(f"OGCAPI:{url}/collections/municipalities", "Zoom level 12", **options)
    assert {row["code"] for row in towns} == {"0001", "0002"}


def test_owslib_reads_collections_queryables_and_items(live: tuple[str, RequestLog]) -> None:
    url, _ = live
    api = Features(url, headers={"Connection": "close"})  # no idle keep-alive to hold up the shutdown
    assert "permits" in {collection["id"] for collection in api.collections()["collections"]}
    queryables = api.collection_queryables("permits")["properties"]
    assert queryables["floor_area_m2"]["type"] == "number"
    page = api.collection_items(
        "permits", limit=2, sortby=("floor_area_m2", "desc"), properties="floor_area_m2"
    )
    assert [(f["id"], f["properties"]) for f in page["features"]] == [
        ("P2", {"floor_area_m2": 300.0}), ("P1", {"floor_area_m2": 100.0})
    ]  # fmt: skip
    assert page["numberMatched"] == 5
    found = api.collection_items("permits", q="industria", filter="floor_area_m2 < 60")
    assert [f["id"] for f in found["features"]] == ["P3"]
    west = api.collection_items(
        "permits", bbox=[-180, -90, 180, 90], crs="http://www.opengis.net/def/crs/EPSG/0/32616"
    )
    assert round(west["features"][0]["geometry"]["coordinates"][0]) == 263_500  # P1, drawn at X0 + 500
