"""``observatory export DIR``: the snapshot of the published tiny AMSS, served by a plain static
file server (with byte ranges, as object stores answer) and read back by GDAL 3.6 and pmtiles."""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import mapbox_vector_tile
import pytest
from pmtiles.reader import Reader, all_tiles
from pmtiles.tile import TileType
from typer.testing import CliRunner

from observatory.cli import app
from observatory.export import export_snapshot
from observatory.settings import Settings, get_settings
from observatory.store import Store
from tests.fixtures import PERMITS


class RangeHandler(SimpleHTTPRequestHandler):
    """Python's static file server plus single byte ranges, which GDAL's /vsicurl/ needs."""

    def send_head(self) -> Any:
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if match is None or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(match[1]), min(int(match[2] or size - 1), size - 1)
        with path.open("rb") as file:
            file.seek(start)
            self.body = file.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return None

    def do_GET(self) -> None:
        self.body = b""
        super().do_GET()
        if self.body:
            self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def snapshot(published: tuple[Store, Settings], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("snapshot") / "site"
    export_snapshot(published[0], folder)
    return folder


@pytest.fixture(scope="module")
def site(snapshot: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(snapshot)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_command_writes_the_same_bytes_again(
    published: tuple[Store, Settings], snapshot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = published[1]
    monkeypatch.setenv("OBSERVATORY_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("OBSERVATORY_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("OBSERVATORY_DB_SCHEMA", settings.db_schema)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["export", str(tmp_path / "again")])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "4 collections" in done.output
    again = digests(tmp_path / "again")
    assert again == digests(snapshot)
    assert "collections/permits/permits.pmtiles" in again


def ogrinfo(url: str, *options: str) -> str:
    """GDAL's own command (in its own process: the static server answers from this one)."""
    done = subprocess.run(["ogrinfo", "-ro", *options, f"/vsicurl/{url}"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(("suffix", "date_type"), [("geojson", "Date"), ("fgb", "DateTime")])
def test_gdal_reads_the_collections_over_http(site: str, suffix: str, date_type: str) -> None:
    info = ogrinfo(f"{site}/collections/permits/permits.{suffix}", "-so", "-al")
    assert "Feature Count: 5" in info
    assert "floor_area_m2: Real" in info and "investment_usd: Real" in info
    assert f"submitted: {date_type}" in info
    assert "Feature Count: 2" in ogrinfo(
        f"{site}/collections/municipalities/municipalities.{suffix}", "-so", "-al"
    )
    indicators = f"{site}/collections/indicators/indicators.{suffix}"
    permits = ogrinfo(indicators, "-al", "-q", "-where", "value_id = 'permits_count:M1:2017'")
    assert "value (Real) = 3\n" in permits and "Feature Count" not in permits
    withheld = ogrinfo(indicators, "-al", "-q", "-where", "value_id = 'homicide_rate:0001:2017'")
    assert "flag (String) = suppressed" in withheld
    assert "value_id (String)" in withheld and not re.search(r"  value \(Real\) = \d", withheld)


def test_pmtiles_hold_every_permit_at_every_zoom(site: str) -> None:
    archive = httpx.get(f"{site}/collections/permits/permits.pmtiles", timeout=30).content

    def get_bytes(offset: int, length: int) -> bytes:
        ranged = httpx.get(f"{site}/collections/permits/permits.pmtiles", timeout=30,
                           headers={"Range": f"bytes={offset}-{offset + length - 1}"})  # fmt: skip
        assert ranged.status_code == 206
        return ranged.content

    reader = Reader(get_bytes)
    header, metadata = reader.header(), reader.metadata()
    assert header["tile_type"] == TileType.MVT and (header["min_zoom"], header["max_zoom"]) == (0, 14)
    assert metadata["vector_layers"][0]["id"] == "permits"
    ids: dict[int, set[str]] = {}
    for (z, _x, _y), data in all_tiles(lambda offset, length: archive[offset : offset + length]):
        layer = mapbox_vector_tile.decode(gzip.decompress(data))["permits"]
        ids.setdefault(z, set()).update(f["properties"]["permit_id"] for f in layer["features"])
    every = {row[0] for row in PERMITS}
    assert ids == {zoom: every for zoom in range(15)}  # points are served from zoom 0
    world = mapbox_vector_tile.decode(gzip.decompress(reader.get(0, 0, 0)))["permits"]["features"]
    assert sum(f["properties"]["count"] for f in world) == len(every)


def test_stac_catalogue_links_every_asset(site: str) -> None:
    catalog = httpx.get(f"{site}/catalog.json", timeout=30).json()
    assert catalog["type"] == "Catalog" and catalog["stac_version"] == "1.0.0"
    children = [link["href"] for link in catalog["links"] if link["rel"] == "child"]
    names = ("indicators", "municipalities", "permits", "zoning")
    assert sorted(children) == [f"./collections/{name}/collection.json" for name in names]
    permits = httpx.get(f"{site}/collections/permits/collection.json", timeout=30).json()
    assert permits["type"] == "Collection" and permits["id"] == "permits"
    assert permits["extent"]["temporal"]["interval"] == [["2017-01-16T00:00:00Z", "2018-01-22T00:00:00Z"]]
    west, south, east, north = permits["extent"]["spatial"]["bbox"][0]
    assert -90 < west < east < -88 and 13 < south < north < 14.5
    assert sorted(permits["assets"]) == ["fgb", "geojson", "pmtiles"]
    for asset in permits["assets"].values():
        assert httpx.head(f"{site}/collections/permits/{asset['href']}", timeout=30).status_code == 200


def test_feed_files_follow_the_feed_schema(site: str) -> None:
    schema = httpx.get(f"{site}/feeds/v1/schema.json", timeout=30).json()
    wide = httpx.get(f"{site}/feeds/v1/indicators-municipios_2007-latest-wide.geojson", timeout=30).json()
    jsonschema.Draft202012Validator(schema).validate(wide)
    rows = {f["id"]: f["properties"] for f in wide["features"]}
    assert rows["0001"]["permits_count"] == 1.0 and rows["0002"]["permits_count"] == 0.0
    assert rows["0001"]["homicide_rate"] is None and rows["0001"]["homicide_rate__flag"] == "suppressed"
    long = httpx.get(f"{site}/feeds/v1/indicators-municipios_2024-latest-long.csv", timeout=30).text
    assert "permits_count:M1:2018" in long
