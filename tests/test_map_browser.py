"""The map page in headless Chromium: choropleth, legend, popup, overlays, nothing off-machine."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.mark.parametrize("settings", ["geopackage"], indirect=True)
def test_choropleth_renders_offline_with_legend_and_popup(browser: Browser, server: str) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))

    page.goto(f"{server}/map?indicator=permits_count&period=2017")
    polygons = page.locator("path.leaflet-interactive")
    polygons.first.wait_for()
    assert polygons.count() == 2
    fills = {polygons.nth(i).get_attribute("fill") for i in range(2)}
    assert len(fills) == 2  # two municipalities, two different classes
    legend = page.locator("#legend")
    assert "Permisos de construcción otorgados" in legend.inner_text()
    assert "2017" in legend.inner_text()
    assert "geoBoundaries" in page.locator(".leaflet-control-attribution").inner_text()

    for label in page.locator(".leaflet-control-layers-overlays label").all()[1:]:
        label.click()
    page.wait_for_load_state("networkidle")
    tiles = [url for url in requested if "/tiles/WebMercatorQuad/" in url]
    assert any("/collections/zoning/" in url for url in tiles)
    assert any("/collections/permits/" in url for url in tiles)

    # With both overlays on, a municipality still opens its profile.
    polygons.nth(0).click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert "Oeste" in popup.inner_text() or "Este" in popup.inner_text()
    assert "Densidad de población" in popup.inner_text()

    hosts = {urlparse(url).hostname for url in requested if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}, hosts
    assert failed == []
    page.close()


@pytest.mark.parametrize("settings", ["geopackage"], indirect=True)
def test_picking_another_indicator_reloads_the_choropleth(browser: Browser, server: str) -> None:
    page = browser.new_page()
    page.goto(f"{server}/")
    assert page.url.endswith("/map")
    assert "Densidad de población" in page.locator("#legend").inner_text()
    with page.expect_navigation():
        page.select_option("select[name=indicator]", "declared_investment")
    assert "indicator=declared_investment" in page.url and "period" not in page.url
    assert "Inversión declarada" in page.locator("#legend").inner_text()
    assert "2018" in page.locator("#legend").inner_text()
    page.close()


@pytest.mark.parametrize("settings", ["geopackage"], indirect=True)
def test_api_docs_render_from_our_own_files(browser: Browser, server: str) -> None:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{server}/docs")
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/collections/permits/items" in path for path in paths)  # written out per layer
    assert {urlparse(url).hostname for url in requested if not url.startswith("data:")} == {"127.0.0.1"}
    page.close()


@pytest.mark.parametrize("settings", ["geopackage"], indirect=True)
def test_zooming_into_a_permit_and_clicking_it_shows_its_record(browser: Browser, server: str) -> None:
    permit = httpx.get(f"{server}/collections/permits/items/P3", timeout=30).json()
    lon, lat = permit["geometry"]["coordinates"]
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(f"{server}/map")
    page.locator(".leaflet-control-layers-overlays label", has_text="Permisos").click()
    map_name = page.evaluate("Object.keys(window).find((key) => key.startsWith('map_'))")
    page.evaluate(f"window['{map_name}'].setView([{lat}, {lon}], 16, {{animate: false}})")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    point = page.evaluate(f"window['{map_name}'].latLngToContainerPoint([{lat}, {lon}])")
    page.mouse.click(point["x"], point["y"])
    popup = page.locator(".feature-popup")
    popup.wait_for()
    assert "P3" in popup.inner_text() and "permiso_construccion" in popup.inner_text()
    page.close()
