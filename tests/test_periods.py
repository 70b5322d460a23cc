"""Periods: compute --period replaces only that period; the latest period through the API."""

from __future__ import annotations

import geopandas as gpd
import httpx
import pytest

from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.settings import Settings
from observatory.store import Store


def _tamper(store: Store, value: float) -> None:
    layer = get_layer("indicators")
    stored = store.read_layer(layer)
    stored.loc[stored["indicator_id"] == "permits_count", "value"] = value
    store.replace_layer(layer, gpd.GeoDataFrame(stored, geometry=stored.geometry.name), run=None)


def _permits_count(store: Store) -> dict[tuple[str, int], float]:
    stored = store.read_layer(get_layer("indicators"))
    own = stored[(stored["indicator_id"] == "permits_count") & (stored["geography"] == "municipios_2007")]
    return {(row.municipality_code, int(row.period)): row.value for row in own.itertuples()}


def test_compute_one_period_replaces_only_that_period(loaded: Store, settings: Settings) -> None:
    _tamper(loaded, -1.0)
    outcome = compute_indicators(loaded, ["permits_count"], period=2018, settings=settings)
    assert set(outcome.values["period"]) == {2018}
    # 2018: 0001 has P5, 0002 none (a true zero); 2017 keeps the stored (tampered) values
    assert _permits_count(loaded) == {("0001", 2017): -1.0, ("0002", 2017): -1.0,
                                      ("0001", 2018): 1.0, ("0002", 2018): 0.0}  # fmt: skip


def test_compute_every_period_replaces_them_all(loaded: Store, settings: Settings) -> None:
    _tamper(loaded, -1.0)
    compute_indicators(loaded, ["permits_count"], settings=settings)
    assert _permits_count(loaded) == {("0001", 2017): 2.0, ("0002", 2017): 1.0,
                                      ("0001", 2018): 1.0, ("0002", 2018): 0.0}  # fmt: skip


def test_latest_period_query_and_periods_on_the_sheet(server: str) -> None:
    sheet = httpx.get(f"{server}/indicators/permits_count").json()
    assert sheet["periods"] == [2017, 2018] and sheet["latest_period"] == 2018
    page = httpx.get(
        f"{server}/collections/indicators/items",
        params={"indicator_id": "permits_count", "period": "latest", "geography": "municipios_2007"},
    ).json()
    assert {f["properties"]["period"] for f in page["features"]} == {2018}
    assert len(page["features"]) == 2


@pytest.mark.parametrize(
    ("params", "status"),
    [({"period": "latest"}, 400), ({"indicator_id": "cpi_overall", "period": "latest"}, 404)],
)
def test_latest_without_one_indicator_or_values_is_a_problem(
    server: str, params: dict[str, str], status: int
) -> None:
    response = httpx.get(f"{server}/collections/indicators/items", params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
