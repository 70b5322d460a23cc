"""The composite index: normalisation, weights, missing dimensions, sensitivity to weights and to
aggregation (and its endpoint); and on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd
import pytest
import shapely

from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.indicators.composite import (
    OVERALL,
    SPEC,
    Component,
    CompositeSpec,
    Dimension,
    SpecError,
    component_periods,
    dimension_scores,
    dimension_weights,
    geometric_scores,
    normalise,
    overall_scores,
    read_spec,
    sensitivity,
)
from observatory.indicators.registry import REGISTRY
from observatory.settings import Settings
from observatory.store import Store
from observatory.store.base import conform
from tests import fixtures
from tests.conftest import serving


def component(indicator_id: str, dimension: str, *, weight: float = 1, lower: bool = False) -> Component:
    return Component(indicator_id, dimension, weight, 0.0, 50.0, "test", lower_is_better=lower)


def test_normalise_scores_the_benchmarks_edges_and_clips_beyond_them() -> None:
    values = pd.Series([-10.0, 0.0, 10.0, 50.0, 80.0])
    assert normalise(values, component("x", "d")).tolist() == [0.0, 0.0, 20.0, 100.0, 100.0]


def test_normalise_reverses_lower_is_better() -> None:
    values = pd.Series([-10.0, 0.0, 10.0, 50.0, 80.0])
    assert normalise(values, component("x", "d", lower=True)).tolist() == [100.0, 100.0, 80.0, 0.0, 0.0]


SMALL = CompositeSpec(
    dimensions={"a": Dimension("a", "A", "A", 3.0), "b": Dimension("b", "B", "B", 1.0)},
    components=(
        component("x", "a", weight=3),
        component("y", "a", weight=1),
        component("z", "b", lower=True),
    ),
)


def values(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["indicator_id", "municipality_code", "period", "value"])


def test_dimensions_are_weighted_means_and_the_overall_weighs_dimensions() -> None:
    stored = values([("x", "m1", 2020, 50), ("y", "m1", 2020, 10), ("z", "m1", 2020, 40)])
    scores = dimension_scores(stored, SMALL, 2020)
    # a: (3 × 100 + 1 × 20) / 4 = 80 (a plain mean would give 60); b: 100 × (50 − 40) / 50 = 20
    assert scores.loc["m1", "a"] == pytest.approx(80.0)
    assert scores.loc["m1", "b"] == pytest.approx(20.0)
    # overall: (3 × 80 + 1 × 20) / 4 = 65 (weights normalised to sum 1)
    assert overall_scores(scores, dimension_weights(SMALL)).loc["m1"] == pytest.approx(65.0)


def test_a_missing_indicator_leaves_its_dimension_and_the_overall_missing_not_zero() -> None:
    stored = values(
        [("x", "m1", 2020, 50), ("z", "m1", 2020, 40), ("x", "m2", 2020, 0), ("y", "m2", 2020, 0)]
    )
    scores = dimension_scores(stored, SMALL, 2020)
    assert pd.isna(scores.loc["m1", "a"])  # y missing
    assert scores.loc["m1", "b"] == pytest.approx(20.0)
    assert scores.loc["m2", "a"] == 0.0  # a true zero stays zero
    assert pd.isna(scores.loc["m2", "b"])
    assert overall_scores(scores, dimension_weights(SMALL)).isna().all()


def test_each_municipality_takes_its_latest_value_not_after_the_period() -> None:
    stored = values(
        [("x", "m1", 2018, 0), ("x", "m1", 2020, 50), ("x", "m1", 2022, 25), ("y", "m1", 2015, 10),
         ("z", "m1", 2019, 40), ("z", "AMSS", 2019, 0)]
    )  # fmt: skip
    scores = dimension_scores(stored, SMALL, 2021)
    assert scores.loc["m1", "a"] == pytest.approx(80.0)  # x of 2020 (not 2018, not 2022), y of 2015
    assert "AMSS" not in scores.index  # the metropolitan value is not a municipality
    assert dimension_scores(stored, SMALL, 2014).empty
    # and each value says which year of each component it rests on
    assert component_periods(stored, 2021) == {"m1": {"x": 2020, "y": 2015, "z": 2019}}
    assert component_periods(stored, 2019) == {"m1": {"x": 2018, "y": 2015, "z": 2019}}


def test_sensitivity_is_reproducible_with_its_seed_and_ranks_under_the_spec_weights() -> None:
    scores = pd.DataFrame({"a": [90.0, 50.0, 10.0], "b": [0.0, 50.0, 100.0]}, index=["m1", "m2", "m3"])
    weights = pd.Series({"a": 3.0, "b": 1.0})
    first = sensitivity(scores, weights, draws=200, seed=7)
    assert first.equals(sensitivity(scores, weights, draws=200, seed=7))
    # nominal: m1 67.5, m2 50, m3 32.5; m1 leads m3 only where a's weight exceeds 100/190
    assert first["rank"].to_dict() == {"m1": 1, "m2": 2, "m3": 3}
    assert first.loc["m1", "rank_min"] == 1 and first.loc["m1", "rank_max"] == 3
    assert first.loc["m3", "rank_min"] == 1 and first.loc["m3", "rank_max"] == 3
    assert first.loc["m2", "rank_min"] == first.loc["m2", "rank_max"] == 2  # 50 under any weights


def test_the_spec_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    entry = '[[indicators]]\nid = "{id}"\ndimension = "d"\nweight = 1\nmin = {low}\nmax = 10\nsource = "s"\n'
    head = '[dimensions.d]\ntitle_es = "D"\ntitle_en = "D"\nweight = 1\n'
    path.write_text(head + entry.format(id="population_density", low=0), encoding="utf-8")
    with pytest.raises(SpecError, match=r"spec.toml, \[\[indicators\]\] #1 .*neutral"):
        read_spec(path)
    path.write_text(head + entry.format(id="green_cover_share", low=10), encoding="utf-8")
    with pytest.raises(SpecError, match="min must be below max"):
        read_spec(path)
    path.write_text(head + entry.format(id="no_such", low=0), encoding="utf-8")
    with pytest.raises(SpecError, match="no such indicator"):
        read_spec(path)


def test_the_shipped_spec_weights_and_benchmarks() -> None:
    assert set(SPEC.dimensions) <= {item.theme for item in REGISTRY.values()}
    assert all(c.source and c.min < c.max for c in SPEC.components)
    assert REGISTRY["cpi_overall"].theme == "composite"


def test_composite_on_both_stores(loaded: Store, settings: Settings) -> None:
    """The tiny AMSS's only complete dimension is urban control (construction permits, business days
    without El Salvador's holidays, legal limit 30): 0001 in 2017: files of 10 and 38 days (Holy
    Thursday and Good Friday skipped), median 24 -> 100 × (60 − 24)/60 = 60, within 50 % -> 50;
    2018: one of 10 -> 83.33 and 100. 0002 in 2017: one permit of 4 days (the site ruling is timed
    apart) -> 93.33 and 100; in 2018 it keeps its 2017 values."""
    stored = loaded.read_layer(get_layer("indicators"))
    own = stored[(stored["indicator_id"] == "cpi_urban_control") & (stored["geography"] == "municipios_2007")]
    got = {(row.municipality_code, int(row.period)): row.value for row in own.itertuples()}
    assert got == pytest.approx(
        {("0001", 2017): (60 + 50) / 2, ("0001", 2018): (83.3333 + 100) / 2,
         ("0002", 2017): (93.3333 + 100) / 2, ("0002", 2018): (93.3333 + 100) / 2},
        abs=1e-3,
    )  # fmt: skip
    assert not (stored["indicator_id"] == "cpi_overall").any()  # other dimensions have no data: no row
    # 0002's 2018 value rests on its 2017 times, and says so
    vintages = own.set_index(["municipality_code", "period"])["input_periods"].map(json.loads)
    assert set(vintages[("0002", 2018)].values()) == {2017}
    assert set(vintages[("0001", 2018)].values()) == {2018}
    # a recompute of the composite alone reads the stored values again and gives the same
    again = compute_indicators(loaded, ["cpi_urban_control"], settings=settings).values
    assert len(again[again["geography"] == "municipios_2007"]) == 4


def test_a_reload_withdraws_the_composite_with_the_values_it_rests_on(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = [(*row[:3], 999, *row[4:]) if row[0] == "P1" else row for row in fixtures.PERMITS]
    result = fixtures.load(loaded, "permits", fixtures.write_permits(tmp_path, rows), settings=settings)
    assert "cpi_urban_control" in result.withdrawn_indicators
    assert not loaded.read_layer(get_layer("indicators"))["theme"].eq("composite").any()


def test_geometric_aggregation_floors_zero_and_compensates_less() -> None:
    scores = pd.DataFrame({"a": [50.0, 90.0, 0.0], "b": [50.0, 10.0, 100.0]}, index=["m1", "m2", "m3"])
    weights = pd.Series({"a": 1.0, "b": 1.0})
    geometric = geometric_scores(scores, weights)
    # √(50 × 50) = 50; √(90 × 10) = 30; m3's 0 counts as the floor 1: √(1 × 100) = 10 (not 0).
    assert geometric.tolist() == pytest.approx([50.0, 30.0, 10.0])
    assert overall_scores(scores, weights).tolist() == pytest.approx([50.0, 50.0, 50.0])
    # Weights are normalised to sum 1: 50^0.75 × 10^0.25 for m2 under 3:1 is 90^0.75 × 10^0.25.
    assert geometric_scores(scores, pd.Series({"a": 3.0, "b": 1.0})).loc["m2"] == pytest.approx(
        90**0.75 * 10**0.25
    )
    assert pd.isna(geometric_scores(pd.DataFrame({"a": [None], "b": [5.0]}, dtype=float), weights).iloc[0])


def test_sensitivity_reports_the_ranks_under_geometric_aggregation() -> None:
    # Arithmetic means tie m1 (50, 50) and m2 (90, 10) at 50 and put m3 (95, 15) first at 55; the
    # geometric means are 50, 30 and √(95 × 15) = 37.7: the unbalanced m2 and m3 fall behind m1.
    scores = pd.DataFrame({"a": [50.0, 90.0, 95.0], "b": [50.0, 10.0, 15.0]}, index=["m1", "m2", "m3"])
    table = sensitivity(scores, pd.Series({"a": 1.0, "b": 1.0}), draws=50, seed=1)
    assert table["rank"].to_dict() == {"m3": 1, "m1": 2, "m2": 2}
    assert table["rank_geometric"].to_dict() == {"m3": 2, "m1": 1, "m2": 3}
    assert table.loc["m3", "score_geometric"] == pytest.approx((95 * 15) ** 0.5)


def write_composite_values(store: Store) -> None:
    """Every component of the shipped spec for three districts and two 2024 municipalities, in
    2023 and 2024, and cpi_overall values for both years (as a compute would have stored them)."""
    layer = get_layer("indicators")
    outline = shapely.MultiPolygon([shapely.box(-89.2, 13.7, -89.19, 13.71)])
    rows = []
    units = [
        ("municipios_2007", code, share) for code, share in (("0001", 0.2), ("0002", 0.5), ("0003", 0.9))
    ]
    units += [("municipios_2024", code, share) for code, share in (("M1", 0.3), ("M2", 0.7))]
    for geography, code, share in units:
        for period in (2023, 2024):
            for c in SPEC.components:  # every component scores 100 × share
                position = 1 - share if c.lower_is_better else share
                rows.append((c.indicator_id, geography, code, period, c.min + position * (c.max - c.min)))
            rows.append((OVERALL, geography, code, period, 50.0))
    frame = gpd.GeoDataFrame(
        [{"value_id": f"{i}:{code}:{period}:{geography}", "indicator_id": i, "theme": "t",
          "municipality_code": code, "municipality_name": code, "period": period, "value": value,
          "unit": "u", "inputs": "x", "input_runs": "", "computed_at": "2024-12-01T00:00:00+00:00",
          "code_version": "test", "geography": geography, "n": None, "flag": None,
          "input_periods": json.dumps({"indicators": period})}
         for i, geography, code, period, value in rows],
        geometry=[outline] * len(rows),
        crs="EPSG:4326",
    )  # fmt: skip
    store.replace_layer(layer, conform(layer, frame), run=None)


def test_sensitivity_endpoint_defaults_to_the_latest_period_and_answers_bad_ones_with_a_problem(
    store: Store, settings: Settings
) -> None:
    write_composite_values(store)
    with serving(store, settings) as url:
        endpoint = f"{url}/indicators/cpi_overall/sensitivity"
        plain = httpx.get(endpoint, timeout=60)
        assert plain.status_code == 200, plain.text
        body = plain.json()
        assert body["period"] == 2024 and body["geography"] == "municipios_2007"
        assert body["aggregation"] == {
            "published": "arithmetic",
            "compared": "geometric",
            "geometric_floor": 1.0,
        }
        ranks = {row["municipality_code"]: row for row in body["ranks"]}
        assert set(ranks) == {"0001", "0002", "0003"}
        assert ranks["0003"]["rank"] == 1 and ranks["0003"]["rank_geometric"] == 1
        assert ranks["0001"]["rank_max"] == 3
        for params in ({"draws": 20}, {"seed": 5}, {"geography": "municipios_2024"}):
            alone = httpx.get(endpoint, params=params, timeout=60)
            assert alone.status_code == 200, (params, alone.text)
            assert alone.json()["period"] == 2024
        assert httpx.get(endpoint, params={"period": 2023}, timeout=60).json()["period"] == 2023
        for params, status, detail in (
            ({"period": 1999}, 404, "periods: [2023, 2024]"),
            ({"period": "last"}, 400, "period"),
            ({"draws": 0}, 400, "draws"),
            ({"geography": "nowhere"}, 400, "geography"),
        ):
            bad = httpx.get(endpoint, params=params, timeout=60)
            assert bad.status_code == status, (params, bad.text)
            assert bad.headers["content-type"] == "application/problem+json"
            assert detail in bad.json()["detail"] and "Traceback" not in bad.text
