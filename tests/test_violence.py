"""Violence: incidents load through the sample's manifest (rejects with reasons), rates per 100,000
computed here by hand on the tiny AMSS (West 0001, 10,000 inhabitants; East 0002, 3,000; both
districts of the 2024 municipality M1), Empirical-Bayes smoothing checked against esda's documented
example, Gi* hot spots on a hand-made H3 grid, and small counts withheld from public outputs.
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
    """esda's docstring of Empirical_Bayes: St Louis homicides (stl_hom.csv, columns 11 and 14)."""
    table = libpysal.io.open(libpysal.examples.get_path("stl_hom.csv"), "r")
    events, population = np.array(table[:, 10]), np.array(table[:, 13])
    documented = [2.36718950e-05, 4.54539167e-05, 4.78114019e-05, 2.76907146e-05, 6.58989323e-05,
                  3.66494122e-05, 5.79952721e-05, 2.03064590e-05, 3.31152999e-05, 3.02748380e-05]  # fmt: skip
    assert smoothed_rates(events, population)[:10] == pytest.approx(documented, rel=1e-7)


def test_smoothed_rates_by_hand() -> None:
    # Two areas of 1,000 with 0 and 50 events: mean rate 0.025, s² = 0.000625 - 0.025 / 1,000 =
    # 0.0006, weights 0.0006 / (0.0006 + 0.000025) = 0.96: 0.04 × 0.025 and 0.96 × 0.05 + 0.001.
    assert smoothed_rates(np.array([0, 50]), np.array([1_000, 1_000])) == pytest.approx([0.001, 0.049])
    # Rates closer than chance: s² < 0 is taken as 0, every area gets the mean 3.08e-4 (esda's own
    # weights, 2.9 and 0.6, would give 2.855e-4 and 2.859e-4, both below every raw rate).
    assert smoothed_rates(np.array([3, 1]), np.array([10_000, 3_000])) == pytest.approx([4 / 13_000] * 2)
    assert smoothed_rates(np.array([0, 0]), np.array([10_000, 3_000])) == pytest.approx([0, 0])


def published_rates(rows: list[tuple[str, int, float, float | None, int | None]]) -> pd.DataFrame:
    """Homicide rates as the public see them: (code, year, population, victims or None when
    withheld, events or None)."""
    return pd.DataFrame(
        [{"indicator_id": "homicide_rate", "municipality_code": code, "period": year,
          "value": None if victims is None else victims / population * 1e5, "n": n}
         for code, year, population, victims, n in rows]
    ).astype({"value": float})  # fmt: skip


def test_smoothed_rates_are_computed_from_the_published_rates_only() -> None:
    municipalities = pd.DataFrame({"code": ["A", "B", "C", "D"], "population_2007": [10e3, 3e3, 8e3, 5e3]})
    rows = [("A", 2019, 10e3, 30.0, 25), ("B", 2019, 3e3, 2.0, 2), ("C", 2019, 8e3, None, None),
            ("D", 2019, 5e3, 12.0, 11)]  # fmt: skip
    smoothed = homicide_rate_smoothed(indicators=published_rates(rows), municipalities=municipalities)
    smoothed = smoothed.set_index("municipality_code")
    # C's rate is withheld: it has no smoothed rate, and A, B and D shrink towards their own mean
    # and variance (44 victims / 18,000), never C's: esda on the three published ones.
    expected = smoothed_rates(np.array([30.0, 2.0, 12.0]), np.array([10e3, 3e3, 5e3])) * 1e5
    assert list(smoothed.index) == ["A", "B", "D"]
    assert smoothed["value"].to_numpy() == pytest.approx(expected)
    assert smoothed.loc["B", "n"] == 2 and smoothed["period"].tolist() == [2019] * 3
    # So no smoothed value moves with the withheld one (the mean would carry C's victims).
    overall = smoothed_rates(np.array([30.0, 2.0, 40.0, 12.0]), np.array([10e3, 3e3, 8e3, 5e3])) * 1e5
    assert smoothed.loc["B", "value"] != pytest.approx(overall[1])


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
    # Gi* of the centre (Ord & Getis 1995): itself and its 6 neighbours, binary weights.
    n, x = len(counts), counts.to_numpy(dtype=float)
    mean, spread = x.mean(), math.sqrt((x**2).mean() - x.mean() ** 2)
    local = 10 + 6 * 6
    z = (local - mean * 7) / (spread * math.sqrt((n * 7 - 7**2) / (n - 1)))
    assert result.loc[CENTRE, "z"] == pytest.approx(z)
    assert result.loc[CENTRE, "hot"] and result.loc[list(h3.grid_ring(CENTRE, 1)), "hot"].all()
    # FAR is significant at 5 % alone (one-sided p 0.041) but not among 37 tests: Benjamini-Hochberg
    # keeps the k smallest p-values where p(k) < k × 0.05 / 37, here the 7 of the cluster.
    p = np.sort(result["p"].to_numpy())
    assert p[6] < 7 * 0.05 / n and p[7] >= 8 * 0.05 / n
    assert result.loc[FAR, "z"] > 0 and result.loc[FAR, "p"] < 0.05
    assert not result.loc[FAR, "hot"]
    assert result["hot"].sum() == 7
    # A cold cell (negative z) is never hot, however small its p.
    cold = result[result["z"] < 0]
    assert len(cold) and not cold["hot"].any()


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
    # People: 300 in the centre and 700 in ring 3 (A), 100 in FAR (B).
    quiet = next(c for c in sorted(h3.grid_ring(CENTRE, 3)) if c != FAR and not h3.grid_distance(c, FAR) <= 1)
    homes = [(CENTRE, 300.0, "A"), (quiet, 700.0, "A"), (FAR, 100.0, "B")]
    population = gpd.GeoDataFrame(
        {"cell_id": ["c1", "c2", "c3"], "population": [h[1] for h in homes], "period": 2020,
         "municipality_code": [h[2] for h in homes]},
        geometry=[_cell_point(h[0]).buffer(0.0005) for h in homes],
        crs="EPSG:4326",
    )  # fmt: skip
    share = population_in_hotspots_share(
        incident_cells=published, population=population, municipalities=municipalities
    ).set_index(["municipality_code", "period"])["value"]
    assert share[("A", 2021)] == pytest.approx(30.0)
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
    assert 0 < cells["hot"].sum() < len(cells) / 4


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
