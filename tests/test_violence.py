"""Violence: incidents load through the sample's manifest (rejects with reasons), rates per 100,000
computed here by hand on the tiny AMSS (West 0001, 10,000 inhabitants; East 0002, 3,000; both
districts of the 2024 municipality M1), local Empirical-Bayes smoothing checked against esda's
documented example and Marshall's formulas written out, Gi* hot spots with permutation inference on
a hand-made H3 grid, and small counts withheld from public outputs.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import geopandas as gpd
import h3
import httpx
import libpysal
import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from etl import LoadResult, load_source, read_manifest
from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.indicators.hotspots import getis_ord_star, hotspot_cells, point_counts
from observatory.indicators.violence import (
    homicide_rate_smoothed,
    population_in_hotspots_share,
    smoothed_rates,
)
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.conftest import serving
from tests.fixtures import UTM, X0, Y0

SAMPLE_DIR = Path(__file__).parents[1] / "data" / "sample"
TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
WEST, EAST, M1 = "0001", "0002", "M1"
W_IN, E_IN = (X0 + 500, Y0 + 500), (X0 + 3_000, Y0 + 1_000)
"""A point inside West, and one inside East (UTM)."""
RATES = ["homicide_rate", "homicide_rate_smoothed", "violent_incident_rate", "robbery_rate", "extortion_rate"]

# id, police code, date as the police writes it, victims who died, point (UTM)
INCIDENTS = [
    ("H1", "HOM", "31/12/2019", 2, W_IN),  # a double homicide on the last day of 2019
    ("H2", "HOM", "15/06/2019", 1, W_IN),
    ("R1", "ROB", "10/03/2019", 0, W_IN),  # a robbery: never a homicide
    ("L1", "LES", "11/03/2019", 0, W_IN),
    ("H3", "HOM", "01/01/2020", 1, W_IN),  # the first day of 2020
    ("H4", "HOM", "20/05/2019", 1, E_IN),
    ("E1", "EXT", "21/05/2019", 0, E_IN),
    ("R2", "ROB", "05/05/2020", 0, E_IN),
]


def write_incidents(
    folder: Path,
    rows: list[tuple[str, str, str, int, tuple[float, float]]],
    coverage: str = "",
) -> Path:
    """The rows as the police exports them, beside a copy of the sample's manifest declaring
    ``coverage`` (its TOML table; empty: none, the years come from the records) instead of the
    sample's 2015-2023."""
    records = []
    for incident_id, code, day, victims, (x, y) in rows:
        lon, lat = TO_LONLAT.transform(x, y)
        records.append({"id_hecho": incident_id, "fecha": day, "delito": code, "fallecidos": victims,
                        "latitud": round(lat, 7), "longitud": round(lon, 7)})  # fmt: skip
    pd.DataFrame(records).to_csv(folder / "incidentes_pnc.csv", index=False)
    manifest = (SAMPLE_DIR / "incidentes_pnc.toml").read_text(encoding="utf-8")
    declared = manifest.index("[coverage]")
    (folder / "incidentes_pnc.toml").write_text(manifest[:declared] + coverage, encoding="utf-8")
    return folder / "incidentes_pnc.toml"


def load_manifest(store: Store, manifest: Path, settings: Settings) -> LoadResult:
    return load_source(store, read_manifest(manifest), settings=settings)


@pytest.fixture
def amss(store: Store, settings: Settings, tmp_path: Path) -> Store:
    """The tiny AMSS, both squares districts of M1 ("Uno") since 2024."""
    folder = tmp_path / "sources"
    folder.mkdir()
    municipalities = fixtures.write_municipalities(folder)
    fixtures.load_municipalities_2024(
        store, municipalities, settings=settings, districts_of=fixtures.BOTH_IN_M1
    )
    return store


def values(store: Store, indicator_id: str) -> pd.DataFrame:
    frame = store.read_layer(get_layer("indicators"))
    return frame[frame["indicator_id"] == indicator_id].set_index(["municipality_code", "period"])


def test_incidents_load_through_the_sample_manifest_with_reasons_for_rejects(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    outside = (X0 - 5_000, Y0 - 5_000)
    rows = [
        ("OK", "HOM", "31/12/2019", 1, W_IN),
        ("BAD_DATE", "HOM", "2019-12-31", 1, W_IN),  # ISO, not the export's dd/mm/yyyy
        ("NO_DAY", "HOM", "31/02/2019", 1, W_IN),
        ("UNKNOWN", "XYZ", "01/01/2019", 0, W_IN),
        ("OUTSIDE", "ROB", "01/01/2019", 0, outside),
        ("NEGATIVE", "HOM", "01/01/2019", -1, W_IN),
    ]
    result = load_manifest(amss, write_incidents(tmp_path, rows), settings)
    assert result.run.rows_read == 6 and result.run.rows_loaded == 1 and result.run.rows_rejected == 5
    report = pd.read_csv(result.run.report_file)
    reasons = dict(
        zip(report["values"].str.extract(r'"id_hecho": "(\w+)"')[0], report["reason"], strict=True)
    )
    assert "date" in reasons["BAD_DATE"] and "2019-12-31" in reasons["BAD_DATE"]
    assert "31/02/2019" in reasons["NO_DAY"]
    assert "XYZ" in reasons["UNKNOWN"]
    assert reasons["OUTSIDE"] == "outside every AMSS municipality"
    assert "fatalities" in reasons["NEGATIVE"] and "below 0" in reasons["NEGATIVE"]
    loaded = amss.read_layer(get_layer("incidents")).iloc[0]
    assert loaded["incident_id"] == "OK" and loaded["type"] == "homicidio" and loaded["source"] == "PNC"
    assert pd.Timestamp(loaded["date"]) == pd.Timestamp("2019-12-31")
    assert loaded["municipality_code"] == WEST and loaded["fatalities"] == 1


@pytest.fixture
def computed(amss: Store, settings: Settings, tmp_path: Path) -> Store:
    load_manifest(amss, write_incidents(tmp_path, INCIDENTS), settings)
    compute_indicators(amss, RATES, settings=settings)
    return amss


def test_homicide_rate_counts_victims_per_calendar_year_and_only_homicides(computed: Store) -> None:
    rates = values(computed, "homicide_rate")
    # West 2019: H1 (2 victims, 31 Dec) and H2 (1): 3 victims / 10,000. Counting events would give
    # 20; counting the robbery or the injury too would make n 3 or 4.
    assert rates.loc[(WEST, 2019), "value"] == pytest.approx(30.0)
    assert rates.loc[(WEST, 2019), "n"] == 2
    # H3 on 1 January belongs to 2020.
    assert rates.loc[(WEST, 2020), "value"] == pytest.approx(10.0)
    assert rates.loc[(EAST, 2019), "value"] == pytest.approx(1 / 3_000 * 1e5)
    # East had no homicide in 2020, a year the register covers: a true zero, with n = 0.
    assert rates.loc[(EAST, 2020), "value"] == 0 and rates.loc[(EAST, 2020), "n"] == 0
    # 2024 geography: summed victims over summed population (4 / 13,000), not the mean of 30 and 33.3.
    assert rates.loc[(M1, 2019), "value"] == pytest.approx(4 / 13_000 * 1e5)
    assert rates.loc[(M1, 2019), "n"] == 3
    assert set(rates.index.get_level_values("period")) == {2019, 2020}


def test_rates_per_type_count_events(computed: Store) -> None:
    violent, robbery, extortion = (values(computed, i) for i in RATES[2:])
    # West 2019: H1, H2, R1 and L1 are four events (victims do not weigh here): 4 / 10,000.
    assert violent.loc[(WEST, 2019), "value"] == pytest.approx(40.0)
    assert violent.loc[(M1, 2019), "value"] == pytest.approx(6 / 13_000 * 1e5)
    assert robbery.loc[(WEST, 2019), "value"] == pytest.approx(10.0)
    assert robbery.loc[(WEST, 2020), "value"] == 0
    assert robbery.loc[(EAST, 2020), "value"] == pytest.approx(1 / 3_000 * 1e5)
    assert extortion.loc[(EAST, 2019), "value"] == pytest.approx(1 / 3_000 * 1e5)
    assert extortion.loc[(WEST, 2019), "value"] == 0
    assert robbery.loc[(M1, 2020), "value"] == pytest.approx(1 / 13_000 * 1e5)


def test_a_count_is_zero_only_where_the_source_declares_it_looked(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    """The feed declares homicides and robberies for 2018-2020: 2018 has no record and is a zero
    for both; extortions it never covered have no value at all (not 0 in every year), though E1
    is in the file; every incident counts over the years covered."""
    declared = '[coverage]\nyears = [2018, 2020]\ntypes = ["homicidio", "robo"]\n'
    load_manifest(amss, write_incidents(tmp_path, INCIDENTS, declared), settings)
    compute_indicators(amss, RATES, settings=settings)
    homicides = values(amss, "homicide_rate")
    assert homicides.loc[(WEST, 2018), "value"] == 0 and homicides.loc[(M1, 2018), "value"] == 0
    assert set(homicides.index.get_level_values("period")) == {2018, 2019, 2020}
    assert set(values(amss, "robbery_rate").index.get_level_values("period")) == {2018, 2019, 2020}
    assert values(amss, "extortion_rate").empty
    assert set(values(amss, "violent_incident_rate").index.get_level_values("period")) == {2018, 2019, 2020}


def test_without_a_declaration_a_type_counts_zero_only_in_years_it_was_recorded(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    """No [coverage]: extortions were recorded in 2019 only (E1), so 2020 has no extortion rate
    (the register may not have kept them), while 2019 gives West its true 0."""
    load_manifest(amss, write_incidents(tmp_path, INCIDENTS, coverage=""), settings)
    compute_indicators(amss, RATES, settings=settings)
    extortion = values(amss, "extortion_rate")
    assert set(extortion.index.get_level_values("period")) == {2019}
    assert extortion.loc[(WEST, 2019), "value"] == 0
    assert set(values(amss, "robbery_rate").index.get_level_values("period")) == {2019, 2020}


def write_estimates(folder: Path, rows: list[tuple[str, int, int]]) -> Path:
    """Yearly population estimates (code, year, people) beside a copy of the sample's manifest."""
    table = pd.DataFrame(rows, columns=["codigo_municipio", "anio", "poblacion_estimada"])
    table.to_csv(folder / "proyecciones_poblacion.csv", index=False)
    shutil.copy(SAMPLE_DIR / "proyecciones_poblacion.toml", folder / "proyecciones_poblacion.toml")
    return folder / "proyecciones_poblacion.toml"


def test_rates_divide_by_the_population_of_their_year(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    """West is estimated at 12,000 in 2019 and 8,000 in 2018 (the census said 10,000); 2020 has
    no estimate and takes 2019's, the latest before it. East has none: its 2007 census. M1 sums
    its districts' estimates only where both have one: never here, so its census 13,000."""
    load_manifest(amss, write_estimates(tmp_path, [(WEST, 2018, 8_000), (WEST, 2019, 12_000)]), settings)
    load_manifest(amss, write_incidents(tmp_path, INCIDENTS), settings)
    compute_indicators(amss, RATES, settings=settings)
    rates = values(amss, "homicide_rate")
    assert rates.loc[(WEST, 2019), "value"] == pytest.approx(3 / 12_000 * 1e5)  # not 3 / 8,000 or 10,000
    assert rates.loc[(WEST, 2020), "value"] == pytest.approx(1 / 12_000 * 1e5)
    assert rates.loc[(EAST, 2019), "value"] == pytest.approx(1 / 3_000 * 1e5)
    assert rates.loc[(M1, 2019), "value"] == pytest.approx(4 / 13_000 * 1e5)
    vintages = rates["input_periods"].map(json.loads)
    assert vintages[(WEST, 2020)] == {"incidents": 2020, "population": 2019}
    assert vintages[(EAST, 2019)] == {"incidents": 2019, "population": 2007}
    violent = values(amss, "violent_incident_rate")
    assert violent.loc[(WEST, 2019), "value"] == pytest.approx(4 / 12_000 * 1e5)


def test_the_2024_geography_sums_estimates_only_when_every_district_has_one(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    estimates = [(WEST, 2019, 12_000), (EAST, 2019, 4_000), (WEST, 2020, 12_500)]
    load_manifest(amss, write_estimates(tmp_path, estimates), settings)
    load_manifest(amss, write_incidents(tmp_path, INCIDENTS), settings)
    compute_indicators(amss, ["violent_incident_rate"], settings=settings)
    rates = values(amss, "violent_incident_rate")
    assert rates.loc[(M1, 2019), "value"] == pytest.approx(6 / 16_000 * 1e5)
    # 2020: only West has an estimate; M1 keeps its latest complete one, 2019's 16,000 (not 12,500).
    assert rates.loc[(M1, 2020), "value"] == pytest.approx(2 / 16_000 * 1e5)
    assert json.loads(rates.loc[(M1, 2020), "input_periods"]) == {"incidents": 2020, "population": 2019}


def test_smoothed_rates_follow_esda_documented_example() -> None:
    """esda's docstring of Spatial_Empirical_Bayes: St Louis homicides (stl_hom.csv, columns 11 and
    14) with the contiguity of stl.gal."""
    table = libpysal.io.open(libpysal.examples.get_path("stl_hom.csv"), "r")
    events, population = np.array(table[:, 10]), np.array(table[:, 13])
    gal = libpysal.io.open(libpysal.examples.get_path("stl.gal"), "r")
    try:
        weights = gal.read()
    finally:
        gal.close()
    position = {key: i for i, key in enumerate(weights.id_order)}
    neighbours = [[position[n] for n in weights.neighbors[key]] for key in weights.id_order]
    documented = [4.01485749e-05, 3.62437513e-05, 4.93034844e-05, 5.09387329e-05, 3.72735210e-05,
                  3.69333797e-05, 5.40245456e-05, 2.99806055e-05, 3.73034109e-05, 3.47270722e-05]  # fmt: skip
    assert smoothed_rates(events, population, neighbours)[:10] == pytest.approx(documented, rel=1e-7)


def marshall_local(events: list[float], population: list[float], hood: list[int], own: int) -> float:
    """Marshall's (1991) local estimator for area ``own`` over the areas ``hood``, written out."""
    e, b = np.array(events, dtype=float)[hood], np.array(population, dtype=float)[hood]
    mean = e.sum() / b.sum()
    spread = np.sum(b * (e / b - mean) ** 2) / b.sum() - mean / b.mean()
    spread = max(spread, 0.0)
    rate = events[own] / population[own]
    return float(mean + (rate - mean) * spread / (spread + mean / population[own]))


ROW = [[1], [0, 2], [1, 3], [2]]
"""Four areas in a row: each touches the one before and the one after."""


def test_a_small_area_with_an_extreme_rate_is_pulled_towards_its_neighbours_a_large_one_barely_moves() -> (
    None
):
    # A (100,000 people, 100 victims), B (2,000, 10: a raw rate of 500 per 100,000), C (100,000, 120).
    events, population = [100.0, 10.0, 120.0], [100_000.0, 2_000.0, 100_000.0]
    smoothed = smoothed_rates(np.array(events), np.array(population), [[1], [0, 2], [1]]) * 1e5
    # B's neighbourhood is all three: mean 230 / 202,000 = 113.86; local variance
    # 3.212e-2 / 202,000 − 1.1386e-3 / 67,333 = 1.421e-7; weight 1.421e-7 / (1.421e-7 + 1.1386e-3 /
    # 2,000) = 0.1998: 113.86 + 0.1998 × (500 − 113.86) = 190.99.
    assert smoothed[1] == pytest.approx(marshall_local(events, population, [0, 1, 2], 1) * 1e5)
    assert smoothed[1] == pytest.approx(190.99, abs=0.01)
    # A's neighbourhood is A and B: mean 107.84, weight 0.96: 100.29, a move of 0.3 %.
    assert smoothed[0] == pytest.approx(marshall_local(events, population, [0, 1], 0) * 1e5)
    assert smoothed[0] == pytest.approx(100.29, abs=0.01)
    assert abs(smoothed[0] - 100) / 100 < 0.005 and abs(smoothed[2] - 120) / 120 < 0.005
    assert abs(smoothed[1] - 500) > 300


def test_a_year_whose_global_variance_is_negative_still_gives_each_area_its_own_value() -> None:
    # Four areas of 10,000 with 2, 3, 4 and 5 victims (20, 30, 40, 50 per 100,000).
    events, population = [2.0, 3.0, 4.0, 5.0], [10_000.0] * 4
    rates, mean = np.array(events) / 1e4, sum(events) / 4e4
    # Global moment estimate: 1.25e-8 − 3.5e-4 / 10,000 < 0, so the global estimator gives all four
    # the pooled 35 per 100,000 (a flat map).
    assert np.mean((rates - mean) ** 2) - mean / 1e4 < 0
    smoothed = smoothed_rates(np.array(events), np.array(population), ROW) * 1e5
    # Locally the variance is below chance too, so each area takes its neighbourhood's mean:
    # A (A, B) 25, B (A, B, C) 30, C (B, C, D) 40, D (C, D) 45.
    hoods = [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3]]
    expected = [marshall_local(events, population, hood, i) * 1e5 for i, hood in enumerate(hoods)]
    assert smoothed == pytest.approx(expected) and smoothed == pytest.approx([25.0, 30.0, 40.0, 45.0])
    assert len(set(np.round(smoothed, 9))) == 4


def test_withheld_areas_get_the_prior_of_their_published_neighbours_and_take_no_part() -> None:
    # B's count is withheld (NaN): A's and C's neighbourhoods are themselves alone (B takes no part),
    # and B gets the rate of A and C together, (10 + 30) / (10,000 + 20,000).
    smoothed = smoothed_rates(np.array([10.0, np.nan, 30.0]), np.array([1e4, 3e3, 2e4]), [[1], [0, 2], [1]])
    assert smoothed == pytest.approx([10 / 1e4, 40 / 3e4, 30 / 2e4])
    # Without a published neighbour there is nothing to borrow: no value. Neighbourhoods without any
    # event give 0 (esda's 0 / 0).
    alone = smoothed_rates(np.array([np.nan, 0.0, 0.0]), np.array([1e4, 3e3, 2e4]), [[], [2], [1]])
    assert np.isnan(alone[0]) and alone[1:].tolist() == [0.0, 0.0]


def published_rates(rows: list[tuple[str, int, float, float | None, int | None]]) -> pd.DataFrame:
    """Homicide rates as the public see them: (code, year, population, victims or None when
    withheld, events or None)."""
    return pd.DataFrame(
        [{"indicator_id": "homicide_rate", "municipality_code": code, "period": year,
          "value": None if victims is None else victims / population * 1e5, "n": n}
         for code, year, population, victims, n in rows]
    ).astype({"value": float})  # fmt: skip


def squares_in_a_row(codes: list[str], population: list[float]) -> gpd.GeoDataFrame:
    """Municipalities as 1 km squares side by side, west to east."""
    return gpd.GeoDataFrame(
        {"code": codes, "population_2007": population},
        geometry=[
            shapely.box(X0 + 1_000 * i, Y0, X0 + 1_000 * (i + 1), Y0 + 1_000) for i in range(len(codes))
        ],
        crs=UTM,
    )


def test_smoothed_rates_are_computed_from_the_published_rates_only() -> None:
    municipalities = squares_in_a_row(["A", "B", "C", "D"], [10e3, 3e3, 8e3, 5e3])
    rows = [("A", 2019, 10e3, 30.0, 25), ("B", 2019, 3e3, 2.0, 2), ("C", 2019, 8e3, None, None),
            ("D", 2019, 5e3, 12.0, 11)]  # fmt: skip
    # No yearly estimates loaded: the rates, and so the smoothing, divide by the 2007 census.
    no_estimates = pd.DataFrame({"municipality_code": [], "period": [], "variable": [], "value": []})
    smoothed = homicide_rate_smoothed(
        indicators=published_rates(rows), municipalities=municipalities, statistics=no_estimates
    )
    smoothed = smoothed.set_index("municipality_code")
    # C's rate is withheld: it takes part in no neighbourhood, so B's is A and B, D's D alone; C
    # gets its published neighbours' rate, (2 + 12) / (3,000 + 5,000), without n.
    events, population = [30.0, 2.0, 0.0, 12.0], [10e3, 3e3, 8e3, 5e3]
    assert list(smoothed.index) == ["A", "B", "C", "D"]
    assert smoothed.loc["A", "value"] == pytest.approx(marshall_local(events, population, [0, 1], 0) * 1e5)
    assert smoothed.loc["B", "value"] == pytest.approx(marshall_local(events, population, [0, 1], 1) * 1e5)
    assert smoothed.loc["D", "value"] == pytest.approx(12 / 5e3 * 1e5)
    assert smoothed.loc["C", "value"] == pytest.approx(14 / 8e3 * 1e5)
    assert pd.isna(smoothed.loc["C", "n"]) and smoothed.loc["B", "n"] == 2
    assert smoothed.loc["C", "input_periods"] == {"indicators": 2019, "population": 2007}
    assert smoothed["period"].tolist() == [2019] * 4
    # With yearly estimates loaded the rates divide by them (B 4,000 and D 6,000 in 2019), and so
    # does the smoothing: C's prior is (2 + 12) / (4,000 + 6,000), not over the census.
    estimates = pd.DataFrame(
        {"municipality_code": ["B", "D"], "period": [2019, 2019], "variable": "poblacion_estimada",
         "value": [4e3, 6e3]}
    )  # fmt: skip
    on_estimates = [("A", 2019, 10e3, 30.0, 25), ("B", 2019, 4e3, 2.0, 2), ("C", 2019, 8e3, None, None),
                    ("D", 2019, 6e3, 12.0, 11)]  # fmt: skip
    yearly = homicide_rate_smoothed(
        indicators=published_rates(on_estimates), municipalities=municipalities, statistics=estimates
    ).set_index("municipality_code")
    assert yearly.loc["C", "value"] == pytest.approx(14 / 10e3 * 1e5)
    assert yearly.loc["B", "input_periods"] == {"indicators": 2019, "population": 2019}
    # So no smoothed value moves with the withheld count: with C's 40 victims known, B's would.
    known = smoothed_rates(np.array([30.0, 2.0, 40.0, 12.0]), np.array(population), ROW) * 1e5
    assert smoothed.loc["B", "value"] != pytest.approx(known[1])


def test_no_smoothed_rate_where_every_rate_is_withheld(computed: Store) -> None:
    # West (2 events) and East (1) in 2019 are both too few, and so is M1 (3): nothing is published
    # to smooth; the 2024 geography's single municipality has no published rate either.
    assert values(computed, "homicide_rate_smoothed").empty
    withheld = values(computed, "homicide_rate")
    assert (withheld.loc[[(WEST, 2019), (EAST, 2019), (M1, 2019)], "flag"] == "suppressed").all()


def test_police_homicide_rate_from_the_counts_table(amss: Store, settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "nombres.csv").write_text("code,name\n0001,Oeste\n0002,Este\n", encoding="utf-8")
    manifest = (SAMPLE_DIR / "homicidios_pnc.toml").read_text(encoding="utf-8")
    (tmp_path / "homicidios_pnc.toml").write_text(
        manifest.replace("../reference/nombres_municipios.csv", "nombres.csv"), encoding="utf-8"
    )
    (tmp_path / "homicidios_pnc.csv").write_text(
        "DEPARTAMENTO,MUNICIPIO,AÑO,HOMICIDIOS\nSAN SALVADOR,OESTE,2019,7\nSAN SALVADOR,ESTE,2019,2\n"
        "SAN SALVADOR,OESTE,2020,5\nSAN SALVADOR,TOTAL SAN SALVADOR,2019,9\n",
        encoding="utf-8",
    )
    result = load_manifest(amss, tmp_path / "homicidios_pnc.toml", settings)
    assert result.run.rows_loaded == 3  # the subtotal is skipped
    compute_indicators(amss, ["homicide_rate_police"], settings=settings)
    rates = values(amss, "homicide_rate_police")
    assert rates.loc[(WEST, 2019), "value"] == pytest.approx(70.0) and rates.loc[(WEST, 2019), "n"] == 7
    assert rates.loc[(EAST, 2019), "value"] == pytest.approx(2 / 3_000 * 1e5)
    # East's 2 are withheld, and so are West's 7: M1's 9 minus West's would give East's away.
    assert rates.loc[(EAST, 2019), "flag"] == "suppressed" and rates.loc[(WEST, 2019), "flag"] == "suppressed"
    assert rates.loc[(M1, 2019), "value"] == pytest.approx(9 / 13_000 * 1e5)
    assert pd.isna(rates.loc[(M1, 2019), "flag"])
    # The table has no 2020 row for East: no value, not 0.
    assert (EAST, 2020) not in rates.index and rates.loc[(WEST, 2020), "value"] == pytest.approx(50.0)


# A hand-made grid of 37 H3 cells (rings 0-3 around CENTRE): 10 incidents in the centre and 6 in
# each of its ring, 7 in one cell of ring 3 (FAR) and 3 in each of its free neighbours.
CENTRE = h3.latlng_to_cell(13.70, -89.20, 8)
GRID = sorted(h3.grid_disk(CENTRE, 3))
FAR = sorted(h3.grid_ring(CENTRE, 3))[0]


def grid_counts() -> pd.Series:
    counts = pd.Series(0, index=GRID)
    counts[CENTRE] = 10
    counts[list(h3.grid_ring(CENTRE, 1))] = 6
    counts[FAR] = 7
    free = [cell for cell in h3.grid_ring(FAR, 1) if cell in counts.index and counts[cell] == 0]
    counts[free] = 3
    return counts


def test_getis_ord_star_by_hand_and_fdr() -> None:
    counts = grid_counts()
    result = getis_ord_star(counts)
    # Gi* of the centre under conditional permutation (its own 10 held): its 6 neighbours' sum, 36,
    # against 6 draws without replacement from the 36 other cells (mean μ, variance σ²).
    n, x = len(counts), counts.to_numpy(dtype=float)
    others = np.delete(x, GRID.index(CENTRE))
    mu, var = others.mean(), others.var()
    z = (36 - 6 * mu) / math.sqrt(6 * var * (n - 1 - 6) / (n - 2))
    assert result.loc[CENTRE, "z"] == pytest.approx(z)
    # Only 7 of the C(36, 6) = 1,947,792 draws reach 36 (six of the seven cells of 6 or 7), so none
    # of the 9,999 permutations does: the smallest two-sided pseudo p-value, 2 / 10,000.
    assert math.comb(36, 6) == 1_947_792
    assert result.loc[CENTRE, "p"] == pytest.approx(2 / 10_000)
    # A cell of the ring has p < 0.05 alone but not among 37 tests: Benjamini-Hochberg keeps the k
    # smallest p-values where p(k) < k × 0.05 / 37: the centre alone (0.0002 < 0.00135; the next,
    # about 0.03, is above 2 × 0.05 / 37).
    p = np.sort(result["p"].to_numpy())
    assert p[0] < 0.05 / n and 2 * 0.05 / n <= p[1] < 0.05
    assert result["hot"].tolist() == [cell == CENTRE for cell in counts.index]
    # Seeded: the same counts give the same result, every time.
    assert result.equals(getis_ord_star(counts))


def test_a_significant_cold_spot_is_never_hot() -> None:
    # Every cell holds 5 incidents but a pocket of 7 empty cells (the centre and its ring): the
    # centre's neighbours are all 0, which only 1 of the C(36, 6) draws gives (the six other zeros).
    counts = pd.Series(5, index=GRID)
    counts[list(h3.grid_disk(CENTRE, 1))] = 0
    result = getis_ord_star(counts)
    assert result.loc[CENTRE, "z"] < 0 and result.loc[CENTRE, "p"] == pytest.approx(2 / 10_000)
    assert result.loc[CENTRE, "cold"] and not result.loc[CENTRE, "hot"]
    assert not result["hot"].any()
    # In hotspot_cells too: nobody lives in a hot spot that year.
    published = pd.DataFrame({"cell": counts.index, "period": 2021, "incidents": counts.values})
    outline = shapely.union_all(
        [shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(c)]) for c in GRID]
    )
    area = gpd.GeoDataFrame({"code": ["A"]}, geometry=[outline], crs="EPSG:4326")
    cells = hotspot_cells(published[published["incidents"] > 0], area).set_index("cell")
    assert cells.loc[CENTRE, "cold"] and not cells["hot"].any()
    population = gpd.GeoDataFrame(
        {"cell_id": ["c1"], "population": [500.0], "period": 2020, "municipality_code": ["A"]},
        geometry=[_cell_point(CENTRE).buffer(0.0005)],
        crs="EPSG:4326",
    )
    share = population_in_hotspots_share(
        incident_cells=published.rename(columns={"cell": "h3_cell", "period": "year"}).assign(
            municipality_code="A"
        ),
        population=population,
        municipalities=area,
    )
    assert share["value"].tolist() == [0.0]


def _cell_point(cell: str) -> shapely.Point:
    lat, lon = h3.cell_to_latlng(cell)
    return shapely.Point(lon, lat)


def test_hot_spots_per_year_and_population_living_in_them() -> None:
    # The published cells, as incident_cells holds them (one row per cell, municipality and year).
    counts = grid_counts()
    published = pd.DataFrame(
        {
            "h3_cell": counts.index,
            "year": 2021,
            "municipality_code": "A",
            "incidents": counts.values,
        }
    )
    published = published[published["incidents"] > 0]
    # One incident in 2022 in the centre alone: that year is analysed on its own. The centre's ten
    # of 2021 are split over two municipalities' cells: both count.
    published.loc[published["h3_cell"] == CENTRE, "incidents"] = 6
    extra = [(CENTRE, 2021, "B", 4), (CENTRE, 2022, "A", 1)]
    published = pd.concat([published, pd.DataFrame(extra, columns=published.columns)], ignore_index=True)
    # Two municipalities: A covers the grid but FAR's side, B the rest.
    hull = shapely.union_all([shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(c)]) for c in GRID])
    far_side = shapely.union_all(
        [shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(c)]) for c in h3.grid_disk(FAR, 1)]
    )
    municipalities = gpd.GeoDataFrame(
        {"code": ["A", "B"]},
        geometry=[hull.difference(far_side), far_side.intersection(hull)],
        crs="EPSG:4326",
    )
    cells = hotspot_cells(published.rename(columns={"h3_cell": "cell", "year": "period"}), municipalities)
    in_2021 = cells[cells["period"] == 2021].set_index("cell")
    assert set(GRID) <= set(in_2021.index) and in_2021.loc[CENTRE, "incidents"] == 10
    assert in_2021.loc[CENTRE, "hot"] and not in_2021.loc[FAR, "hot"]
    assert in_2021.crs == "EPSG:4326" and in_2021.loc[CENTRE].geometry.contains(_cell_point(CENTRE))
    # People in 2020: 300 in the centre and 700 in ring 3 (A), 100 in FAR (B). The layer also holds
    # 2007, when the centre had 100 and ring 3 900: the latest period is the one counted.
    quiet = next(c for c in sorted(h3.grid_ring(CENTRE, 3)) if c != FAR and not h3.grid_distance(c, FAR) <= 1)
    homes = [(CENTRE, 300.0, "A", 2020), (quiet, 700.0, "A", 2020), (FAR, 100.0, "B", 2020),
             (CENTRE, 100.0, "A", 2007), (quiet, 900.0, "A", 2007), (FAR, 100.0, "B", 2007)]  # fmt: skip
    population = gpd.GeoDataFrame(
        {"cell_id": [f"c{i}" for i in range(len(homes))], "population": [h[1] for h in homes],
         "period": [h[3] for h in homes], "municipality_code": [h[2] for h in homes]},
        geometry=[_cell_point(h[0]).buffer(0.0005) for h in homes],
        crs="EPSG:4326",
    )  # fmt: skip
    share = population_in_hotspots_share(
        incident_cells=published, population=population, municipalities=municipalities
    ).set_index(["municipality_code", "period"])["value"]
    assert share[("A", 2021)] == pytest.approx(30.0)  # 2007's people would give 10
    assert share[("B", 2021)] == 0
    assert set(share.index.get_level_values("period")) == {2021, 2022}


@pytest.fixture
def four_and_five(amss: Store, settings: Settings, tmp_path: Path) -> Store:
    """2021: five homicides in West, four in East."""
    rows = [(f"W{i}", "HOM", f"0{i}/03/2021", 1, W_IN) for i in range(1, 6)]
    rows += [(f"E{i}", "HOM", f"0{i}/03/2021", 1, E_IN) for i in range(1, 5)]
    load_manifest(amss, write_incidents(tmp_path, rows), settings)
    compute_indicators(amss, ["homicide_rate"], settings=settings)
    return amss


def test_four_events_are_withheld_in_public_outputs_and_so_are_the_five_beside_them(
    four_and_five: Store, settings: Settings
) -> None:
    east = 4 / 3_000 * 1e5
    # The store and the Python API keep the real values; East's 4 are too few, and West's 5 are
    # withheld too, as M1's 9 (published) minus them would give East's away.
    kept = values(four_and_five, "homicide_rate")
    assert kept.loc[(EAST, 2021), "value"] == pytest.approx(east)
    assert kept.loc[(EAST, 2021), "flag"] == "suppressed" and kept.loc[(WEST, 2021), "flag"] == "suppressed"
    assert pd.isna(kept.loc[(M1, 2021), "flag"]) and kept.loc[(M1, 2021), "n"] == 9
    with serving(four_and_five, settings) as url:
        items = f"{url}/collections/indicators/items"
        query = {"indicator_id": "homicide_rate", "geography": "municipios_2007"}
        features = httpx.get(items, params={**query, "limit": 50}, timeout=30).json()["features"]
        served = {f["properties"]["municipality_code"]: f["properties"] for f in features}
        assert served[EAST]["value"] is None and served[EAST]["flag"] == "suppressed"
        assert served[EAST]["n"] is None  # the small count itself could point at the victims
        assert served[WEST]["value"] is None and served[WEST]["n"] is None
        # Nor can the withheld value be found by filtering on it.
        found = httpx.get(items, params={**query, "value": repr(east)}, timeout=30).json()["features"]
        assert found == []
        one = httpx.get(f"{items}/homicide_rate:{EAST}:2021", timeout=30).json()
        assert one["properties"]["value"] is None
        lon, lat = TO_LONLAT.transform(X0 + 2_500, Y0 + 1_000)
        tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 10)
        content = httpx.get(
            f"{url}/collections/indicators/tiles/WebMercatorQuad/10/{tile.y}/{tile.x}",
            params=query,
            timeout=30,
        ).content
        in_tile = {
            f["properties"]["municipality_code"]: f["properties"]
            for f in mapbox_vector_tile.decode(content)["indicators"]["features"]
        }
        assert (
            "value" not in in_tile[EAST]
            and "n" not in in_tile[EAST]
            and in_tile[EAST]["flag"] == "suppressed"
        )
        assert "value" not in in_tile[WEST] and in_tile[WEST]["flag"] == "suppressed"
        on_2024 = httpx.get(
            items, params={"indicator_id": "homicide_rate", "municipality_code": M1}, timeout=30
        )
        assert on_2024.json()["features"][0]["properties"]["value"] == pytest.approx(9 / 13_000 * 1e5)


def test_committed_sample_loads_without_rejects_and_follows_the_real_magnitudes(
    store: Store, settings: Settings
) -> None:
    for name in ("municipios", "incidentes_pnc"):
        result = load_manifest(store, SAMPLE_DIR / f"{name}.toml", settings)
    assert result.run.rows_rejected == 0 and result.run.rows_loaded > 10_000
    police = load_manifest(store, SAMPLE_DIR / "homicidios_pnc.toml", settings)
    report = pd.read_csv(police.run.report_file)
    assert police.run.rows_loaded == 14 * 9 and report["reason"].str.startswith("skipped by rule").all()
    incidents = store.read_layer(get_layer("incidents"))
    facts = store.read_layer(get_layer("municipalities")).set_index("code")["population_2007"]
    homicides = incidents[incidents["type"] == "homicidio"]
    victims = homicides.groupby([homicides["date"].dt.year, "municipality_code"])["fatalities"].sum()
    amss_rate = victims.groupby(level=0).sum() / facts.sum() * 1e5
    # El Salvador's rate: about 103 per 100,000 in 2015, 2.4 in 2023 (few victims: a wider margin).
    assert amss_rate[2015] == pytest.approx(103, rel=0.1) and amss_rate[2023] == pytest.approx(2.4, rel=0.5)
    rate_2015 = victims[2015] / facts * 1e5
    assert rate_2015["0617"] > 2 * rate_2015["0501"] and rate_2015["0602"] > rate_2015["0511"]
    assert set(incidents["type"]) == {"homicidio", "robo", "extorsion", "lesiones", "violencia_sexual"}
    cells = hotspot_cells(
        point_counts(incidents[incidents["date"].dt.year == 2015]),
        store.read_layer(get_layer("municipalities")),
    )
    # Clusters stand out (z above 5), but these counts are skewed (a third of the cells are 0, a few
    # hold 30 to 110), so a random draw of six cells often holds as much: their permutation p-values
    # (0.0006 and up) do not pass Benjamini-Hochberg over 831 cells, and no cell is called hot.
    assert cells["z"].max() > 5 and cells["hot"].sum() < len(cells) / 4


def test_incident_cells_follow_the_indicators_and_a_reload_withdraws_what_rests_on_them(
    computed: Store, settings: Settings, tmp_path: Path
) -> None:
    # The fixture's eight incidents are too few for any cell of 5: nothing is published.
    assert computed.read_layer(get_layer("incident_cells")).empty
    rows = [(f"R{i}", "ROB", f"0{i}/03/2021", 0, W_IN) for i in range(1, 8)]  # 7 robberies in one cell
    rows += [(f"S{i}", "ROB", f"1{i}/03/2021", 0, (W_IN[0] + 1_500, W_IN[1])) for i in range(5)]  # 5 more
    load_manifest(computed, write_incidents(tmp_path, rows), settings)
    compute_indicators(computed, ["robbery_rate"], settings=settings)
    cells = computed.read_layer(get_layer("incident_cells"))
    # West's 12 robberies of 2021 sit in two cells of 7 and 5: publishing both would give West's
    # count, so the smaller is left out, and 5 stay unpublished beside the 7.
    assert cells[["municipality_code", "year", "incidents"]].values.tolist() == [[WEST, 2021, 7]]
    # A value computed from the cells (as the hot-spot share is) goes when the incidents change.
    layer = get_layer("indicators")
    values = computed.read_layer(layer)
    derived = values.iloc[[0]].assign(
        indicator_id="_from_cells", value_id="_from_cells:x", inputs="incident_cells"
    )
    computed.replace_layer(layer, pd.concat([values, derived], ignore_index=True), run=None)
    result = load_manifest(computed, write_incidents(tmp_path, rows[:-1]), settings)
    assert "_from_cells" in result.withdrawn_indicators
