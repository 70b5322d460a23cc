"""Indicator values on the tiny AMSS, computed by hand (see tests/fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from layers import get_layer
from observatory.indicators import REGISTRY, compute_indicators
from observatory.indicators.registry import METROPOLITAN_CODE, indicator
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures


def values_of(store: Store, indicator_id: str) -> dict[tuple[str, int], float]:
    frame = store.read_layer(get_layer("indicators"))
    frame = frame[frame["indicator_id"] == indicator_id]
    return {(row.municipality_code, int(row.period)): float(row.value) for row in frame.itertuples()}


def test_population_density_falls_back_on_the_measured_area(loaded: Store) -> None:
    # No official area in the source: 10,000 people on 4 km², 3,000 on 6 km² (measured in UTM).
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
    # Construction permits P1 10, P2 38 (Holy Thursday and Good Friday are holidays), P3 4, P5 10
    # business days; P4 is a site ruling, timed apart (tests/test_urban_control.py). The limit is 30.
    assert values_of(loaded, "median_processing_days") == {
        ("0001", 2017): 24, ("0002", 2017): 4, ("0001", 2018): 10,
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


def test_sheets_print_each_setting_as_its_value_and_the_readme_lists_it() -> None:
    """A reader cannot look up ``legal_limit_business_days``: the sheet says 30, or whatever the
    server runs with, and the README's settings table explains every setting a sheet uses."""
    settings = Settings(legal_limit_business_days_rulings=20, complaint_permit_distance_m=75.5)
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| `OBSERVATORY_")]
    used = [(item, name) for item in REGISTRY.values() for name in item.options]
    assert {name for _, name in used} >= {"legal_limit_business_days_rulings", "complaint_permit_days"}
    for item, name in used:
        sheet = item.sheet(settings)
        variable = f"OBSERVATORY_{name.upper()}"
        shown = getattr(settings, name)
        assert name not in sheet["formula"] and "{" not in sheet["formula"], item.id
        assert f"{shown:g} ({variable})" in sheet["formula"], item.id
        assert sheet["settings"][variable] == shown
        assert any(line.startswith(f"| `{variable}` | `") for line in table), variable
    rulings = REGISTRY["resolved_within_legal_limit_rulings"].sheet(settings)["formula"]
    assert "≤ 20 (OBSERVATORY_LEGAL_LIMIT_BUSINESS_DAYS_RULINGS)" in rulings
    assert "≤ 30 " in REGISTRY["resolved_within_legal_limit"].sheet(settings)["formula"]


@pytest.fixture
def crosswalked(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    """The tiny AMSS whose two squares became districts of one 2024 municipality, M1 ("Uno"), with
    official areas of 8 and 6 km², loaded and computed."""
    fixtures.load_municipalities_2024(
        store, sources["municipalities"], settings=settings, districts_of=fixtures.BOTH_IN_M1,
        official_areas={"0001": 8, "0002": 6},
    )  # fmt: skip
    for layer in ("zoning", "permits"):
        fixtures.load(store, layer, sources[layer], settings=settings)
    compute_indicators(store, settings=settings)
    return store


def test_2024_geography_is_recomputed_from_the_records_never_averaged(crosswalked: Store) -> None:
    frame = crosswalked.read_layer(get_layer("indicators"))
    on_2024 = frame[frame["geography"] == "municipios_2024"]

    def value(indicator_id: str, code: str, period: int, rows: pd.DataFrame = frame) -> float:
        found = rows[(rows["indicator_id"] == indicator_id) & (rows["municipality_code"] == code)]
        return float(found.loc[found["period"] == period, "value"].item())

    # Official areas, not the measured 4 and 6 km²: 10,000 / 8 and 3,000 / 6.
    assert value("population_density", "0001", 2007) == pytest.approx(1_250)
    assert value("population_density", "0002", 2007) == pytest.approx(500)
    # Summed numerator over summed denominator (13,000 / 14), not the mean of 1,250 and 500.
    assert value("population_density", "M1", 2007, on_2024) == pytest.approx(13_000 / 14)
    assert value("permits_count", "M1", 2017, on_2024) == 3
    assert value("permits_count", "M1", 2018, on_2024) == 1
    # 2017 construction permits took 10, 38 and 4 business days: their median is 10 (the medians
    # of the two districts, 24 and 4, would average 14).
    assert value("median_processing_days", "M1", 2017, on_2024) == 10
    # Zoned areas 2, 2 and 6 km² in three classes: −Σ p ln p / ln 8.
    shares = np.array([0.2, 0.2, 0.6])
    assert value("land_use_mix", "M1", 2017, on_2024) == pytest.approx(
        -(shares * np.log(shares)).sum() / np.log(8), abs=1e-6
    )
    row = on_2024[on_2024["value_id"] == "permits_count:M1:2017"].iloc[0]
    assert row["municipality_name"] == "Uno"
    assert set(on_2024["municipality_code"]) == {"M1"}
    assert set(frame.loc[frame["geography"] == "municipios_2007", "municipality_code"]) == {"0001", "0002"}


def test_compute_skips_indicators_whose_inputs_are_missing(
    store: Store, settings: Settings, sources: dict[str, Path]
) -> None:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)

    outcome = compute_indicators(store, settings=settings)

    assert set(outcome.values["indicator_id"]) == {"population_density"}
    assert outcome.skipped["land_use_mix"] == "needs zoning, not loaded"
    assert outcome.skipped["permits_count"] == "needs permits, not loaded"
    assert len(outcome.skipped) == len(REGISTRY) - 1


@pytest.fixture
def probe() -> Iterator[str]:
    """An indicator of the test's own: a count with its n per municipality, and one value over the
    whole metropolitan area (the number of municipalities)."""

    @indicator(
        id="_probe", theme="density", title_es="Sonda", title_en="Probe", formula="n", unit="registros",
        direction="neutral", inputs=("municipalities",), sdg_target="11.2.1", iso37120="10.3",
    )  # fmt: skip
    def compute(*, municipalities: pd.DataFrame) -> pd.DataFrame:
        n = {"0001": 4, "0002": 5, "M1": 9}
        codes = list(municipalities["code"])
        return pd.DataFrame(
            {
                "municipality_code": [*codes, METROPOLITAN_CODE],
                "period": 2020,
                "value": [float(n[c]) for c in codes] + [float(len(codes))],
                "n": [n[c] for c in codes] + [len(codes)],
            }
        )

    yield "_probe"
    del REGISTRY["_probe"]


def test_values_keep_their_n_and_few_records_are_flagged(
    crosswalked: Store, settings: Settings, probe: str
) -> None:
    loaded = crosswalked
    compute_indicators(loaded, [probe], settings=settings)
    frame = loaded.read_layer(get_layer("indicators"))
    rows = frame[frame["indicator_id"] == probe].set_index("value_id")
    # 4 records are fewer than 5: flagged; 5 are not (the limit is not itself small).
    assert rows.loc["_probe:0001:2020", "n"] == 4 and rows.loc["_probe:0001:2020", "flag"] == "small_n"
    assert rows.loc["_probe:0002:2020", "n"] == 5 and pd.isna(rows.loc["_probe:0002:2020", "flag"])
    assert pd.isna(rows.loc["_probe:M1:2020", "flag"])
    # The limit is a setting.
    compute_indicators(loaded, [probe], settings=settings.model_copy(update={"small_n": 10}))
    frame = loaded.read_layer(get_layer("indicators"))
    rows = frame[frame["indicator_id"] == probe].set_index("value_id")
    assert rows.loc["_probe:M1:2020", "flag"] == "small_n"
    # Indicators that give no n have none, and no flag.
    density = frame[frame["indicator_id"] == "population_density"]
    assert density["n"].isna().all() and density["flag"].isna().all()


def test_a_metropolitan_value_per_geography_on_the_union_of_its_municipalities(
    crosswalked: Store, settings: Settings, probe: str
) -> None:
    loaded = crosswalked
    compute_indicators(loaded, [probe], settings=settings)
    frame = loaded.read_layer(get_layer("indicators"))
    metropolitan = frame[(frame["indicator_id"] == probe) & (frame["municipality_code"] == METROPOLITAN_CODE)]
    by_geography = metropolitan.set_index("geography")
    # Two municipalities in 2007, one in 2024: each geography keeps its own value and id.
    assert by_geography.loc["municipios_2007", "value"] == 2
    assert by_geography.loc["municipios_2024", "value"] == 1
    assert set(metropolitan["value_id"]) == {
        "_probe:AMSS:2020:municipios_2007",
        "_probe:AMSS:2020:municipios_2024",
    }
    municipalities = loaded.read_layer(get_layer("municipalities")).to_crs("EPSG:32616")
    for geometry in metropolitan.to_crs("EPSG:32616").geometry:
        assert geometry.area == pytest.approx(municipalities.area.sum(), rel=1e-6)
    assert (metropolitan["municipality_name"] == "Área Metropolitana de San Salvador").all()


def test_sheets_name_their_sdg_target_and_iso_37120_code(probe: str) -> None:
    sheet = REGISTRY[probe].sheet()
    assert (sheet["sdg_target"], sheet["iso37120"]) == ("11.2.1", "10.3")
    assert REGISTRY["permits_count"].sheet()["sdg_target"] is None


def test_an_indicator_of_an_unknown_theme_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown theme 'densidad'"):
        indicator(
            id="_stray", theme="densidad", title_es="x", title_en="x", formula="x", unit="x",
            direction="neutral", inputs=("municipalities",),
        )(lambda **_: pd.DataFrame())  # fmt: skip
    assert "_stray" not in REGISTRY
