"""Indicator values on the tiny AMSS, computed by hand (see tests/fixtures.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from layers import get_layer
from observatory.indicators import REGISTRY, compute_indicators
from observatory.settings import Settings
from observatory.store import Store


def values_of(store: Store, indicator_id: str) -> dict[tuple[str, int], float]:
    frame = store.read_layer(get_layer("indicators"))
    frame = frame[frame["indicator_id"] == indicator_id]
    return {(row.municipality_code, int(row.period)): float(row.value) for row in frame.itertuples()}


def test_population_density_uses_metric_area(loaded: Store) -> None:
    # 10,000 people on 4 km², 3,000 on 6 km².
    values = values_of(loaded, "population_density")
    assert values.keys() == {("0001", 2007), ("0002", 2007)}
    assert values[("0001", 2007)] == pytest.approx(2_500, rel=1e-6)
    assert values[("0002", 2007)] == pytest.approx(500, rel=1e-6)


def test_permit_counts_floor_area_and_investment(loaded: Store) -> None:
    # 2017: P1, P2 in the west; P3 in the east (P4 is a site ruling, not a construction permit).
    # 2018: P5 in the west; the east had none, which counts as zero.
    assert values_of(loaded, "permits_count") == {
        ("0001", 2017): 2, ("0002", 2017): 1, ("0001", 2018): 1, ("0002", 2018): 0,
    }  # fmt: skip
    assert values_of(loaded, "authorised_floor_area") == {
        ("0001", 2017): 400, ("0002", 2017): 50, ("0001", 2018): 70, ("0002", 2018): 0,
    }  # fmt: skip
    assert values_of(loaded, "declared_investment") == {
        ("0001", 2017): 6_000, ("0002", 2017): 200, ("0001", 2018): 700, ("0002", 2018): 0,
    }  # fmt: skip


def test_processing_times_in_business_days(loaded: Store) -> None:
    # P1 10, P2 40, P3 4, P4 10, P5 10 business days; the legal limit is 30.
    assert values_of(loaded, "median_processing_days") == {
        ("0001", 2017): 25, ("0002", 2017): 7, ("0001", 2018): 10,
    }  # fmt: skip
    assert values_of(loaded, "resolved_within_legal_limit") == {
        ("0001", 2017): 50, ("0002", 2017): 100, ("0001", 2018): 100,
    }  # fmt: skip


def test_land_use_mix_entropy(loaded: Store) -> None:
    # West: half residential, half commercial -> ln 2 / ln 8 = 1/3. East: one class -> 0.
    values = values_of(loaded, "land_use_mix")
    assert values[("0001", 2017)] == pytest.approx(1 / 3, abs=1e-6)
    assert values[("0002", 2017)] == pytest.approx(0, abs=1e-9)


def test_values_carry_provenance(loaded: Store) -> None:
    frame = loaded.read_layer(get_layer("indicators"))
    runs = {run.layer: run.run_id for run in loaded.load_runs()}
    row = frame[frame["value_id"] == "permits_count:0001:2017"].iloc[0]
    assert row["inputs"] == "permits,municipalities"
    assert row["input_runs"] == f"{runs['permits']},{runs['municipalities']}"
    assert row["unit"] == "permisos" and row["theme"] == "urban_control"
    assert row["municipality_name"] == "Oeste"
    assert row["computed_at"] and row["code_version"]


def test_recomputing_keeps_other_periods(loaded: Store, settings: Settings) -> None:
    layer = get_layer("indicators")
    frame = loaded.read_layer(layer)
    # Pretend an older period was computed earlier with another value.
    old = frame[frame["value_id"] == "permits_count:0001:2017"].copy()
    old["period"], old["value_id"], old["value"] = 2015, "permits_count:0001:2015", 9.0
    loaded.replace_layer(layer, pd.concat([frame, old], ignore_index=True), run=None)

    compute_indicators(loaded, ["permits_count"], settings=settings)

    values = values_of(loaded, "permits_count")
    assert values[("0001", 2015)] == 9
    assert values[("0001", 2017)] == 2
    assert len(loaded.read_layer(layer)) == len(frame) + 1


def test_every_indicator_has_a_complete_sheet() -> None:
    for item in REGISTRY.values():
        sheet = item.sheet()
        assert all(sheet[key] for key in ("id", "theme", "formula", "unit", "inputs", "references"))
        assert sheet["title"]["es"] and sheet["title"]["en"]
        assert item.direction in ("higher_is_better", "lower_is_better", "neutral")
