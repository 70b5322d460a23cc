"""The planners' map in headless Chromium (MapLibre on SwiftShader WebGL), at desktop and phone sizes.

One loaded server and one browser for the module. Each test opens the page at a size, checks what is
on screen for one point of issue 8 (texts, legend classes, features drawn, URL state), saves a
screenshot under test-artifacts/, checks that no request left 127.0.0.1 and runs axe-core.

Hand-known values of the tiny AMSS (tests/fixtures.py): Oeste (0001, 4 km², 10,000 people) and Este
(0002, 6 km², 3,000); permits resolved in 2017: P1, P2 (Oeste), P3 and the ruling P4 (Este); in 2018:
P5 (Oeste). Population density 2007: 2,500 and 500 hab/km².
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from observatory.indicators import compute_indicators
from observatory.settings import Settings
from observatory.store import open_store
from tests import fixtures
from tests.conftest import serving

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]  # fmt: skip
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
SIZES = pytest.mark.parametrize("size", ["desktop", "phone"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tiny AMSS on the GeoPackage store, loaded and computed once for the module."""
    folder = tmp_path_factory.mktemp("map")
    settings = Settings(data_dir=folder / "store")
    store = open_store(settings)
    sources = {
        "municipalities": fixtures.write_municipalities(folder),
        "zoning": fixtures.write_zoning(folder),
        "permits": fixtures.write_permits(folder),
    }
    for layer, path in sources.items():
        fixtures.load(store, layer, path, settings=settings)
    compute_indicators(store, settings=settings)
    with serving(store, settings) as url:
        yield url
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def opened(browser: Browser, url: str, size: str, name: str) -> Iterator[Page]:
    """The map page at a size, ready (choropleth drawn); on leaving: screenshot, only local
    requests, no failed request or script error, a Content-Security-Policy without
    'unsafe-inline' that nothing on the page broke, and no serious or critical axe violation."""
    context = browser.new_context(viewport=DESKTOP if size == "desktop" else PHONE, accept_downloads=True)
    page = context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: problems.append(f"failed {request.url}"))
    page.on("pageerror", lambda error: problems.append(f"script error {error}"))
    violations = policy_violations(page)
    response = page.goto(url)
    assert response is not None and "unsafe-inline" not in response.headers["content-security-policy"]
    if page.locator("#map").count():
        wait_drawn(page)
    try:
        yield page
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"map-{name}-{size}.png")
        hosts = {urlparse(u).hostname for u in requested if urlparse(u).scheme in ("http", "https")}
        assert hosts == {"127.0.0.1"}, hosts
        assert problems == []
        assert violations() == []
        # Through the debugger, not a <script> tag: the page's policy refuses inline scripts.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]
                   if v["impact"] in ("serious", "critical")]  # fmt: skip
        assert serious == []
    finally:
        context.close()


def policy_violations(page: Page) -> Callable[[], list[str]]:
    """What the page's Content-Security-Policy refused, as Chromium reports it: the console's
    errors ("Refused to execute inline script ...") and the ``securitypolicyviolation`` events."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));"
    )

    def collected() -> list[str]:
        refused = [text for text in console if "Content Security Policy" in text]
        return refused + list(page.evaluate("window.__violations"))

    return collected


def wait_drawn(page: Page) -> None:
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    settle(page)


def settle(page: Page) -> None:
    """Wait until the map has drawn everything it asked for."""
    page.evaluate(
        "new Promise((done) => { if (map.loaded() && !map.isMoving()) done(); else map.once('idle', done); })"
    )


def state(page: Page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def rendered(page: Page, layer: str, key: str) -> list[Any]:
    """The distinct ``key`` of the features drawn on ``layer`` (a feature cut by tiles counts once)."""
    return sorted(
        page.evaluate(
            f"[...new Set(map.queryRenderedFeatures({{layers: ['{layer}']}})"
            f".map((f) => f.properties['{key}']))]"
        )
    )


def legend_classes(page: Page) -> list[str]:
    return page.locator("#legend-classes li").all_inner_texts()


def click_lonlat(page: Page, lon: float, lat: float) -> None:
    box = page.locator("#map").bounding_box()
    assert box is not None
    point = page.evaluate(f"map.project([{lon}, {lat}])")
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def lonlat(x: float, y: float) -> tuple[float, float]:
    """A fixture point (UTM 16N) in lon/lat."""
    import pyproj

    return pyproj.Transformer.from_crs(fixtures.UTM, "EPSG:4326", always_xy=True).transform(x, y)


def open_legend(page: Page) -> None:
    if not page.locator("#legend-box").evaluate("(box) => box.open"):
        page.locator("#legend-box summary").click()


def open_drawer(page: Page, size: str) -> None:
    if size == "phone" and page.get_attribute("#drawer-toggle", "aria-expanded") == "false":
        page.click("#drawer-toggle")


@SIZES
def test_spanish_by_default_with_an_english_switch(browser: Browser, server: str, size: str) -> None:
    """Points 1, 2 and 5: language, themes by title with search, legend classes and formats."""
    with opened(browser, f"{server}/map?indicator=declared_investment&period=2017", size, "language") as page:
        assert page.get_attribute("html", "lang") == "es"
        assert page.locator("h1").inner_text() == "Observatorio Metropolitano del AMSS"
        open_legend(page)
        # 6,000 and 200 USD (Oeste, Este): es-SV groups thousands with a comma.
        assert legend_classes(page) == ["200", "6,000", "sin datos"]
        assert "Inversión declarada en construcción · 2017" in page.locator("#legend").inner_text()
        open_drawer(page, size)
        themes = page.locator("#theme option").all_inner_texts()
        assert "Control urbano" in themes and "Densidad y ocupación del suelo" in themes
        assert not {"urban_control", "density"} & set(themes)
        page.fill("#search", "tramitacion")  # accents ignored: "tramitación"
        assert page.locator("#search-results button").count() == 0
        page.fill("#search", "tiempo promedio")
        results = page.locator("#search-results button").all_inner_texts()
        assert results[0].startswith("Tiempo promedio de resolución de permisos de construcción")
        page.locator("#search-results button").first.click()
        page.wait_for_selector("body[data-drawn^='mean_processing_days:2017']")
        assert state(page)["indicator"] == "mean_processing_days"
        assert page.locator("#indicator").input_value() == "mean_processing_days"
        with page.expect_navigation():
            page.click("#lang-switch")
        wait_drawn(page)
        assert page.get_attribute("html", "lang") == "en" and state(page)["lang"] == "en"
        open_legend(page)
        assert "Mean processing time of construction permits · 2017" in page.locator("#legend").inner_text()
        assert legend_classes(page) == ["4", "24", "no data"]
        open_drawer(page, size)
        assert "Urban development control" in page.locator("#theme option").all_inner_texts()


@SIZES
def test_the_period_slider_and_play_drive_every_view(browser: Browser, server: str, size: str) -> None:
    """Point 3: the slider and play change the map, legend and profile; a missing period is said."""
    url = f"{server}/map?indicator=permits_count&period=2017&municipality=0001"
    with opened(browser, url, size, "time") as page:
        open_legend(page)
        assert legend_classes(page) == ["1", "2", "sin datos"]
        open_drawer(page, size)
        assert (
            page.locator("#profile-table tr[data-indicator=permits_count] .value").inner_text()
            == "2 permisos (pocos registros)"
        )
        page.locator("#period-slider").fill("2")  # periods 2007, 2017, 2018
        page.wait_for_selector("body[data-drawn='permits_count:2018:quantiles:5']")
        assert state(page)["period"] == "2018" and page.locator("#period-label").inner_text() == "2018"
        assert legend_classes(page) == ["0", "1", "sin datos"]
        assert (
            page.locator("#profile-table tr[data-indicator=permits_count] .value").inner_text()
            == "1 permisos (pocos registros)"
        )
        page.locator("#period-slider").fill("0")
        page.wait_for_selector("body[data-drawn='permits_count:2007:quantiles:5']")
        note = page.locator("#period-note").inner_text()
        assert "no tiene datos para 2007" in note and "2017, 2018" in note
        assert legend_classes(page) == ["sin datos"]
        assert page.evaluate("map.getPaintProperty('choropleth', 'fill-color')") == "#bdbdbd"
        page.click("#play")
        page.wait_for_selector("body[data-drawn='permits_count:2017:quantiles:5']", timeout=5000)
        assert page.locator("#play").inner_text() == "Pausa"
        page.click("#play")
        assert page.locator("#play").inner_text() == "Reproducir"


@SIZES
def test_profile_ranking_and_comparison(browser: Browser, server: str, size: str) -> None:
    """Point 4: a click on a municipality opens its profile (values, ranks, series charts); the
    ranking chart orders the 14 (here 2); 2 to 4 municipalities side by side."""
    west = lonlat(fixtures.X0 + 1_000, fixtures.Y0 + 1_000)
    with opened(browser, f"{server}/map?indicator=mean_processing_days&period=2017", size, "profile") as page:
        click_lonlat(page, *west)
        page.wait_for_selector("#profile-table")
        assert state(page)["municipality"] == "0001"
        if size == "phone":
            assert page.get_attribute("#drawer-toggle", "aria-expanded") == "true"
        assert page.locator("#profile-title").inner_text() == "Oeste: Control urbano, 2017"
        rows = page.locator("#profile-table tbody tr")
        assert rows.count() == 15  # every indicator of the theme, once
        mean = page.locator("#profile-table tr[data-indicator=mean_processing_days]")
        assert mean.locator(".value").inner_text() == "24 días hábiles (pocos registros)"
        assert mean.locator(".rank").inner_text() == "2 de 2"  # lower is better: Este's 4 days rank first
        assert page.evaluate("Chart.getChart('series-mean_processing_days').data.labels") == [2017, 2018]
        assert page.evaluate("Chart.getChart('series-mean_processing_days').data.datasets[0].data") == [
            24,
            10,
        ]
        ranking = page.evaluate("Chart.getChart('ranking-chart').data")
        assert ranking["labels"] == ["Este", "Oeste"] and ranking["datasets"][0]["data"] == [4, 24]
        page.check("#compare-0001")
        page.check("#compare-0002")
        page.wait_for_selector("#compare-table")
        assert page.locator("#compare-table thead th").all_inner_texts() == ["Indicador", "Oeste", "Este"]
        row = page.locator("#compare-table tr[data-indicator=permits_count] td").all_inner_texts()
        assert row == ["2 (1 de 2)", "1 (2 de 2)"]
        compared = page.evaluate(
            "Chart.getChart('compare-chart').data.datasets.map((d) => [d.label, d.data])"
        )
        assert compared == [["Oeste", [24, 10]], ["Este", [4, None]]]
        assert state(page)["compare"] == "0001,0002"


@SIZES
def test_legends_follow_the_classification_chosen(browser: Browser, server: str, size: str) -> None:
    """Point 5: method and class count from the server (mapclassify), metric scale bar."""
    url = f"{server}/map?indicator=population_density&period=2007&method=equal_interval&k=3"
    with opened(browser, url, size, "legend") as page:
        open_legend(page)
        assert legend_classes(page) == ["500", "2,500", "sin datos"]  # 10,000/4 km² and 3,000/6 km²
        fills = page.evaluate("map.getPaintProperty('choropleth', 'fill-color')")
        assert fills[:2] == ["match", ["get", "code"]] and fills[-1] == "#bdbdbd"  # no value: grey
        assert dict(zip(fills[2:-1:2], fills[3:-1:2], strict=True)) == {"0002": "#a1dab4", "0001": "#253494"}
        assert rendered(page, "choropleth", "code") == ["0001", "0002"]
        scale = page.locator(".maplibregl-ctrl-scale").inner_text().replace("\xa0", " ")
        assert scale.endswith(" km") or scale.endswith(" m")
        open_drawer(page, size)
        assert (
            page.locator("#method").input_value() == "equal_interval"
            and page.locator("#k").input_value() == "3"
        )
        page.select_option("#method", "natural_breaks")
        page.wait_for_selector("body[data-drawn='population_density:2007:natural_breaks:3']")
        assert state(page)["method"] == "natural_breaks"


@SIZES
def test_zoning_and_permit_overlays(browser: Browser, server: str, size: str) -> None:
    """Point 6: a zone click opens the zone; permits follow the period and kind; no zoom lock."""
    centre = lonlat(fixtures.X0 + 2_500, fixtures.Y0 + 1_000)
    view = f"at=12.5/{centre[1]}/{centre[0]}"
    url = f"{server}/map?indicator=permits_count&period=2017&overlays=zoning,permits&{view}"
    with opened(browser, url, size, "overlays") as page:
        assert rendered(page, "zoning", "zone_id") == ["Z1", "Z2", "Z3"]
        assert rendered(page, "permits", "permit_id") == ["P1", "P2", "P3", "P4"]  # resolved in 2017
        # Single records (no `count` yet): radius 4 px as count 1, and no aggregate labels.
        radius = page.evaluate("map.getPaintProperty('permits', 'circle-radius')")
        assert radius[2] == ["sqrt", ["coalesce", ["get", "count"], 1]] and radius[3:5] == [1, 4]
        assert page.locator(".count-label").count() == 0
        open_legend(page)
        zones = page.locator("[data-layer=zoning] li").all_inner_texts()
        assert zones[:3] == ["Habitacional", "Comercio y servicios", "Industria"] and len(zones) == 8
        assert "Resueltos en 2017" in page.locator("[data-layer=permits]").inner_text()
        if size == "phone":  # the open legend would cover the zone clicked below
            page.locator("#legend-box summary").click()
        click_lonlat(page, *lonlat(fixtures.X0 + 2_500, fixtures.Y0 + 1_600))  # inside zone Z3, no permit
        popup = page.locator(".maplibregl-popup-content")
        assert (
            "Zona" in popup.inner_text() and "Z3" in popup.inner_text() and "Industria" in popup.inner_text()
        )
        assert "municipality" not in state(page)
        page.click(".maplibregl-popup-close-button")
        click_lonlat(page, *lonlat(fixtures.X0 + 3_000, fixtures.Y0 + 1_000))  # permit P3
        popup = page.locator(".maplibregl-popup-content", has_text="P3")
        text = popup.inner_text()
        assert "Expediente" in text and "Permiso de construcción" in text and "Este" in text
        assert (
            "Fecha de ingreso\t6 de febrero de 2017" in text
        )  # the calendar day, not shifted by a time zone
        assert "0002" not in text and "municipality_code" not in text
        assert "Industria" in text and "Aprobado" in text  # use and status in words, not codes
        assert "industria" not in text and "aprobado" not in text
        page.keyboard.press("Escape")  # closes the popup
        assert page.locator(".maplibregl-popup").count() == 0
        open_drawer(page, size)
        page.select_option("#kind", "permiso_construccion")
        settle(page)
        assert rendered(page, "permits", "permit_id") == ["P1", "P2", "P3"]
        assert "kind=permiso_construccion" in page.evaluate("map.getSource('permits').tiles[0]")
        page.locator("#period-slider").fill("2")
        page.wait_for_selector("body[data-drawn^='permits_count:2018']")
        settle(page)
        assert rendered(page, "permits", "permit_id") == ["P5"]
        page.evaluate("map.jumpTo({zoom: 9})")
        settle(page)
        assert page.evaluate("map.getZoom()") == 9 and page.evaluate("map.getMinZoom()") < 9  # no lock
        assert state(page)["at"].startswith("9.00/")


@SIZES
def test_basemap_attribution_and_sheet(browser: Browser, server: str, size: str) -> None:
    """Points 7 and 8: outlines and names from our layers, every source credited, the sheet."""
    with opened(browser, f"{server}/map?indicator=permits_count&period=2017", size, "sheet") as page:
        assert page.locator(".place-label").all_inner_texts() == ["Oeste", "Este"]
        assert rendered(page, "outlines", "code") == ["0001", "0002"]
        if size == "phone":
            page.locator(".maplibregl-ctrl-attrib-button").click()
        attribution = page.locator(".maplibregl-ctrl-attrib").inner_text()
        assert "geoBoundaries" in attribution and "OPAMSS" in attribution
        assert page.locator("#sample-badge").is_hidden()  # the fixtures are not the sample
        open_drawer(page, size)
        page.click("#open-sheet")
        sheet = page.locator("#sheet")
        assert (
            sheet.locator("#sheet-title").inner_text() == "Ficha técnica: Permisos de construcción otorgados"
        )
        terms = sheet.locator("dt").all_inner_texts()
        values = dict(zip(terms, sheet.locator("dd").all_inner_texts(), strict=True))
        assert values["Fórmula"].startswith("número de permisos de construcción aprobados")
        assert values["Unidad"] == "permisos" and values["Sentido"] == "Neutro"
        assert values["Registros (n) por municipio (2017)"] == "Oeste: 2\nEste: 1"
        assert values["Alertas"] == "Oeste: pocos registros\nEste: pocos registros"
        assert values["Periodos"] == "2017, 2018" and values["Fuentes (capas)"] == "permits, municipalities"
        assert " de 20" in values["Último cálculo"]  # a long es-SV date: "26 de noviembre de 2026"
        assert values["Cargas de origen"].startswith("permits-")
        assert values["Cómo se fecha"].startswith("periodo: el año de sus registros anuales")
        assert values["Periodo de cada insumo (2017)"] == "permits: 2017"
        page.click("#sheet-close")


@SIZES
def test_downloads_and_the_state_in_the_url(browser: Browser, server: str, size: str) -> None:
    """Point 9: CSV and GeoJSON of the values shown; a shared URL restores the whole view."""
    url = (f"{server}/map?indicator=permits_count&period=2017&municipality=0002&compare=0001,0002"
           "&method=equal_interval&k=4&overlays=zoning&kind=calificacion_lugar"
           "&at=12.50/13.7/-89.2")  # fmt: skip
    with opened(browser, url, size, "downloads") as page:
        assert state(page) == {
            "indicator": "permits_count", "period": "2017", "municipality": "0002", "compare": "0001,0002",
            "method": "equal_interval", "k": "4", "overlays": "zoning", "kind": "calificacion_lugar",
            "at": "12.50/13.70000/-89.20000",
        }  # fmt: skip
        open_drawer(page, size)
        assert page.locator("#profile-title").inner_text() == "Este: Control urbano, 2017"
        assert (
            page.locator("#overlay-zoning").is_checked()
            and page.locator("#kind").input_value() == "calificacion_lugar"
        )
        with page.expect_download() as download:
            page.click("#download-csv")
        assert download.value.suggested_filename == "permits_count_2017.csv"
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
        assert sorted((r["municipality_name"], r["value"], r["n"], r["flag"]) for r in rows) == [
            ("Este", "1", "1", "small_n"), ("Oeste", "2", "2", "small_n"),
        ]  # fmt: skip
        # A name a spreadsheet would run is written as text; a negative number stays a number.
        page.evaluate(
            "data.items.features[0].properties.municipality_name = '=HYPERLINK(\"http://evil.example\")';"
            "data.items.features[0].properties.value = -3; drawDownloads()"
        )
        with page.expect_download() as download:
            page.click("#download-csv")
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
        assert (rows[0]["municipality_name"], rows[0]["value"]) == (
            '\'=HYPERLINK("http://evil.example")',
            "-3",
        )
        with page.expect_download() as download:
            page.click("#download-geojson")
        collection = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert sorted(f["properties"]["municipality_code"] for f in collection["features"]) == [
            "0001",
            "0002",
        ]
        assert {f["properties"]["period"] for f in collection["features"]} == {2017}


def test_phone_drawer_nothing_overlapping_and_pinch_zoom(browser: Browser, server: str) -> None:
    """Point 10: controls in a drawer, nothing on the map overlapping, pinch-zoom allowed."""
    with opened(browser, f"{server}/map?indicator=permits_count&period=2017", "phone", "drawer") as page:
        viewport = page.get_attribute("meta[name=viewport]", "content") or ""
        assert "user-scalable=no" not in viewport and "maximum-scale" not in viewport
        assert page.evaluate("map.touchZoomRotate.isEnabled()")
        assert page.locator("#panel").is_hidden()
        boxes = {
            selector: page.locator(selector).bounding_box()
            for selector in ("header.topbar", ".maplibregl-ctrl-zoom-in", ".maplibregl-ctrl-scale",
                             "#legend-box", ".maplibregl-ctrl-attrib")
        }  # fmt: skip
        names = list(boxes)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                a, b = boxes[first], boxes[second]
                assert a is not None and b is not None
                apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                         or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])  # fmt: skip
                assert apart, (first, second)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "drawer-toggle"
        page.keyboard.press("Enter")
        assert page.locator("#panel").is_visible() and page.locator("#indicator").is_visible()
        page.locator("#indicator").select_option("site_rulings_count")  # the selector can be used
        page.wait_for_selector("body[data-drawn^='site_rulings_count']")
        page.locator("#municipality").select_option("0001")
        page.wait_for_selector("#profile-table")
        page.locator("#profile-heading").scroll_into_view_if_needed()
        # the profile's series charts stay inside the drawer, and its heading clear of the close button
        assert page.evaluate(
            "(() => { const p = document.getElementById('panel'); return p.scrollWidth <= p.clientWidth; })()"
        ), "the profile table overflows"
        table, drawer = page.locator("#profile-table").bounding_box(), page.locator("#panel").bounding_box()
        assert table is not None and drawer is not None
        assert table["x"] + table["width"] <= drawer["x"] + drawer["width"]
        page.evaluate("document.getElementById('profile').scrollIntoView({block: 'start'})")
        heading, toggle = (
            page.locator("#profile-heading").bounding_box(),
            page.locator("#drawer-toggle").bounding_box(),
        )
        assert heading is not None and toggle is not None and heading["y"] >= toggle["y"] + toggle["height"]
        page.keyboard.press("Escape")  # the drawer closes from the keyboard, focus back on its button
        assert page.get_attribute("#drawer-toggle", "aria-expanded") == "false"
        assert page.evaluate("document.activeElement.id") == "drawer-toggle"
        shown = page.evaluate(
            "[...document.querySelectorAll('.place-label')].filter((e) => e.style.visibility !== 'hidden')"
            ".map((e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"
        )
        for i, a in enumerate(shown):  # place names never drawn over one another
            for b in shown[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


@SIZES
def test_a_shared_url_with_an_unknown_municipality(browser: Browser, server: str, size: str) -> None:
    """Point 9: a bookmarked view naming a municipality the store lacks still opens (the code dropped)."""
    url = f"{server}/map?indicator=permits_count&period=2017&municipality=9999&compare=0001,0002,9999"
    with opened(browser, url, size, "unknown-municipality") as page:
        page.wait_for_selector("#compare-table", state="attached")
        assert page.locator("#compare-table thead th").all_text_contents() == ["Indicador", "Oeste", "Este"]
        assert "municipality" not in state(page) and state(page)["compare"] == "0001,0002"


@SIZES
def test_browsers_get_an_html_error_page(browser: Browser, server: str, size: str) -> None:
    with opened(browser, f"{server}/map?indicator=nope", size, "error") as page:
        assert page.get_attribute("html", "lang") == "es"
        assert page.locator("h1").inner_text() == "No se encontró lo que buscaba"
        assert "nope" in page.locator("#error-detail").inner_text()
        assert page.get_attribute("#error-detail", "lang") == "en"  # the API's own words, marked as English
        assert page.locator("#error-explanation").inner_text().startswith("La dirección no corresponde")
        assert page.locator("main a").get_attribute("href") == "/map"


def test_the_api_docs_run_under_the_policy(browser: Browser, server: str) -> None:
    """Swagger UI on /docs, started from a file (no inline script), draws the API's operations."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    try:
        violations = policy_violations(page)
        response = page.goto(f"{server}/docs")
        assert response is not None and "unsafe-inline" not in response.headers["content-security-policy"]
        page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
        assert "Observatorio Metropolitano del AMSS" in page.locator(".swagger-ui .info .title").inner_text()
        page.locator(".swagger-ui .opblock-summary").first.click()  # expands: more of its UI drawn
        page.wait_for_selector(".swagger-ui .opblock-body", timeout=10_000)
        assert violations() == []
    finally:
        context.close()


def test_withheld_values_are_told_apart_from_missing_ones(browser: Browser, published_server: str) -> None:
    """A withheld value (0001's 2017 homicide rate) is drawn in its own grey under "valor
    reservado", and its profile says so, rather than passing for missing data."""
    url = f"{published_server}/map?indicator=homicide_rate&period=2017&municipality=0001"
    with opened(browser, url, "desktop", "withheld") as page:
        open_legend(page)
        assert legend_classes(page) == ["40", "valor reservado", "sin datos"]
        swatch = page.locator("#legend-classes .legend-withheld .swatch")
        assert swatch.evaluate("(s) => getComputedStyle(s).backgroundColor") == "rgb(111, 111, 111)"
        page.wait_for_selector("#profile-table")
        value = page.locator("#profile-table tr[data-indicator=homicide_rate] .value").inner_text()
        assert value == "valor reservado (protege recuentos pequeños)"
        colours = page.evaluate("JSON.stringify(map.getPaintProperty('choropleth', 'fill-color'))")
        assert '"0001","#6f6f6f"' in colours


def test_a_value_resting_on_older_inputs_says_so(browser: Browser, published_server: str) -> None:
    """Este's 2017 homicide rate divides by the 2007 census: its profile says "datos de 2007,
    2017" under the value; a permit count of 2017 from 2017 permits says nothing more."""
    url = f"{published_server}/map?indicator=homicide_rate&period=2017&municipality=0002"
    with opened(browser, url, "desktop", "vintages") as page:
        page.wait_for_selector("#profile-table")
        value = page.locator("#profile-table tr[data-indicator=homicide_rate] .value")
        assert value.locator(".vintages").inner_text() == "datos de 2007, 2017"
        assert value.inner_text().startswith("40 por 100 000 hab")
    url = f"{published_server}/map?indicator=permits_count&period=2017&municipality=0002"
    with opened(browser, url, "desktop", "no-vintages") as page:
        page.wait_for_selector("#profile-table tr[data-indicator=permits_count]")
        assert page.locator("#profile-table tr[data-indicator=permits_count] .vintages").count() == 0
