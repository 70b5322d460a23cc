"""The map's server side: classes (mapclassify), profiles, context and the HTML error pages."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pandas as pd

from etl import load_source, read_manifest
from observatory.api.mapdata import classify, holds_sample
from observatory.map import preferred_lang
from observatory.settings import Settings
from observatory.store import Store

SAMPLE_MUNICIPALITIES = Path(__file__).resolve().parent.parent / "data" / "sample" / "municipios.toml"


def ranges(values: list[float], method: str, k: int) -> list[tuple[float, float]]:
    return classify(pd.Series(values, index=[str(i) for i in range(len(values))]), method=method, k=k).ranges  # type: ignore[arg-type]


def test_quantiles_of_counts_have_integer_limits_that_never_overlap() -> None:
    # np.percentile of 1..10 at 25/50/75/100 %: 3.25, 5.5, 7.75, 10 -> shown as the values each class holds.
    assert ranges(list(range(1, 11)), "quantiles", 4) == [(1, 3), (4, 5), (6, 7), (8, 10)]
    result = classify(pd.Series([3.0, 1.0, 10.0], index=["a", "b", "c"]), method="quantiles", k=3)
    assert result.integer and result.assigned == {"b": 0, "a": 1, "c": 2}


def test_equal_intervals_natural_breaks_and_fractions() -> None:
    assert ranges([0, 1, 2, 5, 9], "equal_interval", 3) == [(0, 2), (5, 5), (9, 9)]  # width 3: ≤3, ≤6, ≤9
    assert ranges([1, 2, 3, 10, 11, 12], "natural_breaks", 2) == [(1, 3), (10, 12)]
    halves = classify(pd.Series([0.5, 1.5, 2.5, 3.5], index=list("abcd")), method="quantiles", k=2)
    assert halves.ranges == [(0.5, 1.5), (2.5, 3.5)] and not halves.integer  # median 2.0


def test_ties_missing_values_and_nothing() -> None:
    assert ranges([7, 7, 7], "quantiles", 5) == [(7, 7)]
    with_gap = classify(pd.Series([1.0, math.nan, 2.0], index=["a", "b", "c"]), method="quantiles", k=5)
    assert with_gap.assigned == {"a": 0, "c": 1} and with_gap.counts == [1, 1]
    assert classify(pd.Series([], dtype=float), method="quantiles", k=5).ranges == []


def test_language_of_error_pages() -> None:
    assert preferred_lang(None) == "es"
    assert preferred_lang("en") == "en"
    assert preferred_lang("fr") == "es"


def test_the_sample_badge_follows_the_store(
    store: Store, settings: Settings, sources: dict[str, Path]
) -> None:
    from tests import fixtures

    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    assert not holds_sample(store)  # a manifest and file of our own
    load_source(store, read_manifest(SAMPLE_MUNICIPALITIES), settings=settings)
    assert holds_sample(store)


def test_classes_profile_context_and_errors(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as client:
        classes = client.get("/indicators/permits_count/classes", params={"period": 2017}).json()
        # Oeste (0001) 2 permits in 2017, Este (0002) 1: two classes of one value each, k clipped to 2.
        assert classes["classes"] == [{"min": 1, "max": 1, "count": 1}, {"min": 2, "max": 2, "count": 1}]
        assert classes["assigned"] == {"0002": 0, "0001": 1} and classes["integer"] is True
        lacking = client.get("/indicators/housing_rulings_share/classes", params={"period": 2018}).json()
        assert lacking["classes"] == [] and lacking["assigned"] == {}
        assert client.get("/indicators/nope/classes", params={"period": 2017}).status_code == 404
        bad = client.get("/indicators/permits_count/classes", params={"period": 2017, "method": "x"})
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"

        profile = client.get("/map/profile/0001", params={"theme": "urban_control", "period": 2017}).json()
        assert profile["name"] == "Oeste"
        rows = {row["id"]: row for row in profile["indicators"]}
        assert len(rows) == 15  # every indicator of the theme, once, with or without a value
        assert rows["permits_count"]["value"] == 2 and rows["permits_count"]["rank"] == 1
        assert rows["permits_count"]["input_periods"] == {"permits": 2017}
        assert rows["permits_count"]["series"] == [{"period": 2017, "value": 2}, {"period": 2018, "value": 1}]
        # Lower is better for processing times: Oeste's 24 days ranks below Este's 4.
        assert (rows["mean_processing_days"]["value"], rows["mean_processing_days"]["rank"]) == (24, 2)
        assert rows["mean_processing_days"]["ranked"] == 2
        assert (
            rows["housing_rulings_share"]["value"] is None and rows["housing_rulings_share"]["rank"] is None
        )
        later = client.get("/map/profile/0001", params={"theme": "urban_control", "period": 2018}).json()
        assert {row["id"]: row["value"] for row in later["indicators"]}["permits_count"] == 1
        assert (
            client.get("/map/profile/9999", params={"theme": "urban_control", "period": 2017}).status_code
            == 404
        )
        assert client.get("/map/profile/0001", params={"theme": "nope", "period": 2017}).status_code == 400

        context = client.get("/map/context").json()
        assert context["sample"] is False
        assert context["attribution"] == ["geoBoundaries (CC BY 4.0)", "OPAMSS: Esquema Director", "OPAMSS"]
        assert context["periods"] == [2007, 2017, 2018]  # population (2007 census) and permits
        assert [place["name"] for place in context["places"]] == ["Oeste", "Este"]
        assert [layer["name"] for layer in context["overlays"]] == ["permits", "zoning"]

        for path in ("/map?indicator=nope", "/collections/nope", "/collections/permits/items?limit=0"):
            page = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
            assert page.status_code in (400, 404) and page.headers["content-type"].startswith("text/html")
            assert '<html lang="es">' in page.text and "<h1>" in page.text and "<main>" in page.text
            api = client.get(path, headers={"Accept": "application/json"})
            assert api.status_code == page.status_code
            assert api.headers["content-type"] == "application/problem+json"
        english = client.get(
            "/collections/nope?lang=en", headers={"Accept": "text/html", "Accept-Language": "es"}
        )
        assert '<html lang="en">' in english.text and "Back to the map" in english.text
        assert client.get("/map", params={"lang": "en"}).text.startswith('<!doctype html>\n<html lang="en">')
