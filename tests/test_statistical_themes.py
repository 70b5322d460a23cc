"""The statistical themes (demography, education, labour, productivity, land rent, infrastructure,
quality of life, equity) on the tiny AMSS, every value computed by hand.

Both squares became districts of one 2024 municipality, M1: its values must come from summed
numerators and denominators (each case below is built so that the mean of the two districts'
values differs), and its metropolitan indices are taken across that one municipality.
"""

from __future__ import annotations

import math
from pathlib import Path

import libpysal
import numpy as np
import pandas as pd
import pytest

from etl import load_source, read_manifest
from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.indicators.registry import METROPOLITAN_CODE
from observatory.indicators.statistical.equity import weighted_gini, weighted_theil
from observatory.sample.boundaries import amss_facts
from observatory.sample.census import census_frame
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures

X0, Y0 = fixtures.X0, fixtures.Y0


def cells(
    code: str, year: int, young: tuple[int, int], working: tuple[int, int], old: tuple[int, int]
) -> list:
    """Census population (men, women) by age group as statistics rows."""
    groups = {"0_14": young, "15_64": working, "65_mas": old}
    return [
        (code, year, f"poblacion_{age}_{sex}", count)
        for age, pair in groups.items()
        for sex, count in zip(("hombres", "mujeres"), pair, strict=True)
    ]


CENSUS = [
    # 0001: 1,000 people in 1992, 2,000 in 2007 (900 men, 1,100 women; 600 young, 1,200 working, 200 old).
    *cells("0001", 1992, (200, 200), (250, 250), (50, 50)),
    *cells("0001", 2007, (300, 300), (500, 700), (100, 100)),
    # 0002: no 1992 census; 720 people in 2007, 120 in each cell.
    *cells("0002", 2007, (120, 120), (120, 120), (120, 120)),
    ("0001", 1992, "viviendas", 200), ("0001", 1992, "viviendas_agua_caneria", 100),
    ("0001", 2007, "hogares", 500), ("0001", 2007, "hogares_hacinamiento", 100),
    ("0001", 2007, "viviendas", 400), ("0001", 2007, "viviendas_agua_caneria", 300),
    ("0001", 2007, "viviendas_alcantarillado", 200), ("0001", 2007, "viviendas_electricidad", 390),
    ("0002", 2007, "hogares", 100), ("0002", 2007, "hogares_hacinamiento", 50),
    ("0002", 2007, "viviendas", 100), ("0002", 2007, "viviendas_agua_caneria", 50),
    ("0002", 2007, "viviendas_alcantarillado", 10), ("0002", 2007, "viviendas_electricidad", 100),
    ("0001", 2007, "hogares_pobreza", 100), ("0002", 2007, "hogares_pobreza", 60),
]  # fmt: skip
SURVEY = [
    ("0001", 2020, "poblacion_4_17", 200), ("0001", 2020, "asisten_4_17", 180),
    ("0002", 2020, "poblacion_4_17", 100), ("0002", 2020, "asisten_4_17", 60),
    ("0001", 2020, "poblacion_10_mas", 1000), ("0001", 2020, "alfabetos_10_mas", 950),
    ("0002", 2020, "alfabetos_10_mas", 90),  # without its denominator
    ("0001", 2020, "poblacion_16_mas", 800), ("0001", 2020, "pea_16_mas", 500),
    ("0001", 2020, "ocupados_16_mas", 450),
    ("0002", 2020, "poblacion_16_mas", 200), ("0002", 2020, "pea_16_mas", 100),
    ("0002", 2020, "ocupados_16_mas", 100),
]  # fmt: skip
ECONOMY = [
    ("0001", 2019, "establecimientos", 40), ("0001", 2019, "personal_ocupado", 200),
    ("0002", 2019, "establecimientos", 10), ("0002", 2019, "personal_ocupado", 20),
    ("0001", 2019, "poblacion_estimada", 2000), ("0002", 2019, "poblacion_estimada", 1000),
    ("0001", 2005, "establecimientos", 30), ("0001", 2005, "personal_ocupado", 90),
]  # fmt: skip
# Beyond the fixture's five permits, all in the west square: one without floor area, one without
# investment, one denied, one more in 2017 (10, 16.7 and 11 USD/m²: a skewed three), one
# submitted in 2017 but resolved in 2018, and a site-suitability ruling (not a construction permit).
PERMITS = [
    *fixtures.PERMITS,
    ("P6", "permiso_construccion", "comercio", None, 9000, "2017-03-01", "2017-03-20", X0 + 600, Y0 + 600),
    ("P7", "permiso_construccion", "comercio", 100, None, "2017-03-01", "2017-03-20", X0 + 700, Y0 + 700),
    ("P8", "permiso_construccion", "comercio", 200, 20000, "2017-03-01", "2017-03-20", X0 + 800, Y0 + 800),
    ("P9", "permiso_construccion", "habitacional", 100, 1100, "2017-06-01", "2017-06-20", X0 + 900, Y0 + 900),
    ("P10", "permiso_construccion", "comercio", 100, 5000, "2017-12-20", "2018-01-10", X0 + 400, Y0 + 900),
    ("P11", "calificacion_lugar", "comercio", 1000, 100, "2018-02-01", "2018-02-15", X0 + 300, Y0 + 300),
]  # fmt: skip
DENIED = "P8"


def write_statistics(folder: Path, name: str, rows: list, source: str) -> Path:
    pd.DataFrame(rows, columns=["codigo", "anio", "variable", "valor"]).to_csv(
        folder / f"{name}.csv", index=False
    )
    manifest = folder / f"{name}.toml"
    manifest.write_text(
        f'layer = "statistics"\n[source]\npath = "{name}.csv"\n[fields]\nmunicipality_code = "codigo"\n'
        f'period = "anio"\nvariable = "variable"\nvalue = "valor"\nsource = {{ value = "{source}" }}\n',
        encoding="utf-8",
    )
    return manifest


@pytest.fixture
def computed(store: Store, settings: Settings, sources: dict[str, Path]) -> pd.DataFrame:
    """The tiny AMSS (both squares districts of M1) with the tables above, computed."""
    folder = sources["municipalities"].parent
    fixtures.load_municipalities_2024(
        store,
        sources["municipalities"],
        settings=settings,
        districts_of=fixtures.BOTH_IN_M1,
    )
    permits = fixtures.permits_table(PERMITS)
    permits.loc[permits["expediente"] == DENIED, "estado"] = "denegado"
    permits.to_csv(folder / "permisos.csv", index=False)
    fixtures.load(store, "permits", folder / "permisos.csv", settings=settings)
    for name, rows in (("censo", CENSUS), ("ehpm", SURVEY), ("economia", ECONOMY)):
        load_source(store, read_manifest(write_statistics(folder, name, rows, name)), settings=settings)
    compute_indicators(store, settings=settings)
    return store.read_layer(get_layer("indicators"))


def values(frame: pd.DataFrame, indicator_id: str, geography: str = "municipios_2007") -> dict:
    rows = frame[(frame["indicator_id"] == indicator_id) & (frame["geography"] == geography)]
    return {(row.municipality_code, int(row.period)): float(row.value) for row in rows.itertuples()}


def on_2024(frame: pd.DataFrame, indicator_id: str) -> dict:
    return values(frame, indicator_id, "municipios_2024")


def test_demography(computed: pd.DataFrame) -> None:
    # Geometric growth: (2000 / 1000)^(1/15) − 1, not the linear 100/15 % nor ln 2 / 15. 0002 has no
    # 1992 census: no value; nor has M1, whose 1992 and 2007 censuses cover different districts.
    assert values(computed, "population_growth_rate") == pytest.approx(
        {("0001", 2007): 100 * (2 ** (1 / 15) - 1)}
    )
    assert on_2024(computed, "population_growth_rate") == {}
    # (young + old) / working: 1992 (400 + 100) / 500; 2007 (600 + 200) / 1200 and 480 / 240.
    assert values(computed, "dependency_ratio") == pytest.approx(
        {("0001", 1992): 100.0, ("0001", 2007): 100 * 800 / 1200, ("0002", 2007): 200.0}
    )
    assert on_2024(computed, "dependency_ratio") == pytest.approx(
        {("M1", 1992): 100.0, ("M1", 2007): 100 * 1280 / 1440}
    )
    # Men per 100 women: 900 / 1100 and 360 / 360; M1 1260 / 1460 (the mean would be 90.9).
    assert values(computed, "sex_ratio") == pytest.approx(
        {("0001", 1992): 100.0, ("0001", 2007): 100 * 900 / 1100, ("0002", 2007): 100.0}
    )
    assert on_2024(computed, "sex_ratio")[("M1", 2007)] == pytest.approx(100 * 1260 / 1460)


def test_education_and_labour(computed: pd.DataFrame) -> None:
    assert values(computed, "school_attendance_rate") == pytest.approx(
        {("0001", 2020): 90.0, ("0002", 2020): 60.0}
    )
    assert on_2024(computed, "school_attendance_rate") == pytest.approx({("M1", 2020): 100 * 240 / 300})
    # 0002 reports the literate but not the population aged 10+: no value, not 0 nor infinite; and
    # none for M1, whose numerator would cover two districts and its denominator one (104 %).
    assert values(computed, "literacy_rate") == pytest.approx({("0001", 2020): 95.0})
    assert on_2024(computed, "literacy_rate") == {}
    assert values(computed, "employment_rate") == pytest.approx(
        {("0001", 2020): 100 * 450 / 800, ("0002", 2020): 50.0}
    )
    assert on_2024(computed, "employment_rate") == pytest.approx({("M1", 2020): 55.0})
    # Unemployed over the active (50 / 500), not over the population of working age (50 / 800);
    # 0002's zero unemployment is a true 0.
    assert values(computed, "unemployment_rate") == pytest.approx({("0001", 2020): 10.0, ("0002", 2020): 0.0})
    assert on_2024(computed, "unemployment_rate") == pytest.approx({("M1", 2020): 100 * 50 / 600})


def test_productivity(computed: pd.DataFrame) -> None:
    # 2005 has businesses but no population estimate: no value, never an infinite or 0 one.
    assert values(computed, "businesses_per_1000") == pytest.approx(
        {("0001", 2019): 20.0, ("0002", 2019): 10.0}
    )
    assert on_2024(computed, "businesses_per_1000") == pytest.approx({("M1", 2019): 1000 * 50 / 3000})
    assert values(computed, "employees_per_business") == pytest.approx(
        {("0001", 2005): 3.0, ("0001", 2019): 5.0, ("0002", 2019): 2.0}
    )
    assert on_2024(computed, "employees_per_business")[("M1", 2019)] == pytest.approx(220 / 50)


def test_infrastructure_and_quality_of_life(computed: pd.DataFrame) -> None:
    assert values(computed, "piped_water_coverage") == pytest.approx(
        {("0001", 1992): 50.0, ("0001", 2007): 75.0, ("0002", 2007): 50.0}
    )
    assert on_2024(computed, "piped_water_coverage")[("M1", 2007)] == pytest.approx(70.0)
    assert values(computed, "sewer_coverage") == pytest.approx({("0001", 2007): 50.0, ("0002", 2007): 10.0})
    assert on_2024(computed, "sewer_coverage") == pytest.approx({("M1", 2007): 100 * 210 / 500})
    assert values(computed, "overcrowding_rate") == pytest.approx(
        {("0001", 2007): 20.0, ("0002", 2007): 50.0}
    )
    assert on_2024(computed, "overcrowding_rate") == pytest.approx({("M1", 2007): 100 * 150 / 600})
    assert values(computed, "electricity_coverage") == pytest.approx(
        {("0001", 2007): 97.5, ("0002", 2007): 100.0}
    )
    assert on_2024(computed, "electricity_coverage") == pytest.approx({("M1", 2007): 100 * 490 / 500})


def test_land_rent_proxy(computed: pd.DataFrame) -> None:
    # West 2017: P1 (1000 / 100), P2 (5000 / 300), P9 (1100 / 100); P6 and P7 lack a floor area or
    # an investment, P8 was denied. P10 was submitted in 2017 but resolved in 2018, with P5; P11 is a
    # site-suitability ruling.
    # The east square had no permit in 2018: no value, not 0.
    assert values(computed, "investment_per_authorised_m2") == pytest.approx(
        {("0001", 2017): 7100 / 500, ("0002", 2017): 4.0, ("0001", 2018): 5700 / 170}
    )
    assert on_2024(computed, "investment_per_authorised_m2") == pytest.approx(
        {("M1", 2017): 7300 / 550, ("M1", 2018): 5700 / 170}
    )
    # Medians of 10, 16.7 and 11 (their mean is 12.6); of 10 and 50; of 4, 10, 11 and 16.7.
    assert values(computed, "median_investment_per_m2") == pytest.approx(
        {("0001", 2017): 11.0, ("0002", 2017): 4.0, ("0001", 2018): 30.0}
    )
    assert on_2024(computed, "median_investment_per_m2")[("M1", 2017)] == pytest.approx(10.5)
    rows = computed[computed["value_id"] == "investment_per_authorised_m2:0001:2017"]
    assert rows["n"].tolist() == [3] and rows["flag"].tolist() == ["small_n"]


def weighted_gini_by_hand(values: list[float], people: list[int]) -> float:
    """Σ_i Σ_j p_i p_j |x_i − x_j| / (2 P² x̄), x̄ the population-weighted mean."""
    total = sum(people)
    mean = sum(p * x for p, x in zip(people, values, strict=True)) / total
    pairs = sum(
        p * q * abs(x - y)
        for p, x in zip(people, values, strict=True)
        for q, y in zip(people, values, strict=True)
    )
    return pairs / (2 * total**2 * mean)


def theil_by_hand(values: list[float], people: list[int]) -> float:
    """Σ s_i ln(s_i / q_i): s the shares of the poor, q the shares of the population."""
    poor = [p * x for p, x in zip(people, values, strict=True)]
    return sum(
        (n / sum(poor)) * math.log((n / sum(poor)) / (p / sum(people)))
        for n, p in zip(poor, people, strict=True)
    )


def test_equity(computed: pd.DataFrame) -> None:
    # Poor households / households: 100 / 500 and 60 / 100; M1 160 / 600 (the mean would be 40).
    assert values(computed, "poverty_rate") == pytest.approx({("0001", 2007): 20.0, ("0002", 2007): 60.0})
    assert on_2024(computed, "poverty_rate") == pytest.approx({("M1", 2007): 100 * 160 / 600})
    # Across the two districts, weighted by their 2,000 and 720 people (unweighted it would be 0.25).
    metropolitan = (METROPOLITAN_CODE, 2007)
    gini = weighted_gini_by_hand([20, 60], [2000, 720])
    assert gini == pytest.approx(2 * 2000 * 720 * 40 / (2 * 2720 * 83200))
    assert values(computed, "poverty_gini") == pytest.approx({metropolitan: gini})
    theil = theil_by_hand([20, 60], [2000, 720])
    assert values(computed, "poverty_theil") == pytest.approx({metropolitan: theil})
    # Both districts lie in M1: all the inequality is within the 2024 municipality.
    assert values(computed, "poverty_theil_between") == pytest.approx({metropolitan: 0.0}, abs=1e-12)
    assert values(computed, "poverty_theil_within") == pytest.approx({metropolitan: theil})
    # Piped water 75 % and 50 %; 1992 has no value: 0002 had no census then.
    assert values(computed, "access_gini") == pytest.approx(
        {metropolitan: weighted_gini_by_hand([75, 50], [2000, 720])}
    )
    # On the 2024 geography the indices run across one municipality, and no decomposition is made.
    assert on_2024(computed, "poverty_gini") == pytest.approx({metropolitan: 0.0}, abs=1e-12)
    assert on_2024(computed, "poverty_theil") == pytest.approx({metropolitan: 0.0}, abs=1e-9)
    assert on_2024(computed, "poverty_theil_between") == on_2024(computed, "poverty_theil_within") == {}
    row = computed[computed["value_id"] == "poverty_gini:AMSS:2007:municipios_2007"].iloc[0]
    assert (row["n"], row["flag"]) == (2, "small_n")


def mexico() -> tuple[np.ndarray, np.ndarray]:
    """The inequality package's documented example: Mexican states' GDP per capita in 1940."""
    table = libpysal.io.open(libpysal.examples.get_path("mexico.csv"))
    return np.array(table.by_col["pcgdp1940"], dtype=float), np.array(table.by_col["hanson98"])


def test_weighted_indices_reduce_to_the_packages_documented_values() -> None:
    income, regions = mexico()
    ones = np.ones(len(income), dtype=int)
    assert weighted_gini(income, ones) == pytest.approx(0.35372371173452849, abs=1e-9)
    theil = weighted_theil(income, ones, regions)
    assert float(theil.T.item()) == pytest.approx(0.20894344, abs=1e-8)
    assert float(theil.bg.item()) == pytest.approx(0.0345889, abs=1e-7)
    assert float(theil.wg.item()) == pytest.approx(0.17435454, abs=1e-8)


def test_weighted_gini_counts_each_value_once_per_person() -> None:
    # 10 for three people, 40 for one: mean 17.5, Σ|x_i − x_j| over pairs of people 180 → 180 / 560.
    assert weighted_gini(np.array([10.0, 40.0]), np.array([3, 1])) == pytest.approx(180 / 560)
    assert weighted_gini(np.array([10.0, 40.0]), np.array([1, 1])) == pytest.approx(0.3)


def test_sample_census_matches_the_2007_totals_and_loads(store: Store, settings: Settings) -> None:
    census = census_frame(np.random.default_rng(1))
    assert census.equals(census_frame(np.random.default_rng(1)))  # the same seed, the same tables
    rows = census[(census["Año"] == 2007) & (census["Código"] != "")]
    people = rows[rows["Variable"].str.startswith("poblacion_")]
    facts = amss_facts().set_index("code")
    by_sex = (
        people.groupby(["Código", people["Variable"].str.rsplit("_", n=1).str[-1]])["Valor"].sum().unstack()
    )
    assert by_sex["hombres"].to_dict() == facts["men_2007"].to_dict()
    assert by_sex["mujeres"].to_dict() == facts["women_2007"].to_dict()
    assert (by_sex.sum(axis=1)).to_dict() == facts["population_2007"].to_dict()
    sample = Path(__file__).parent.parent / "data" / "sample"
    load_source(store, read_manifest(sample / "municipios.toml"), settings=settings)
    loaded = {
        name: load_source(store, read_manifest(sample / f"{name}.toml"), settings=settings).run
        for name in (
            "censos_poblacion_vivienda",
            "ehpm_municipal",
            "censos_economicos",
            "mapa_pobreza_urbana",
        )
    }
    # The census's 24 metropolitan subtotals are skipped; every survey name finds its code.
    census_run = loaded["censos_poblacion_vivienda"]
    assert (census_run.rows_read, census_run.rows_loaded) == (14 * 2 * 12 + 24, 14 * 2 * 12)
    assert (loaded["ehpm_municipal"].rows_loaded, loaded["ehpm_municipal"].rows_rejected) == (14 * 9 * 7, 0)
    statistics = store.read_layer(get_layer("statistics"))
    assert set(statistics["source"]) == {
        "DIGESTYC, Censos de Población y Vivienda 1992 y 2007",
        "DIGESTYC, Encuesta de Hogares de Propósitos Múltiples",
        "DIGESTYC, Censos Económicos 2005 y 2019",
        "FLACSO, MINEC y PNUD, Mapa de pobreza urbana y exclusión social 2010",
    }
    assert statistics.groupby("variable")["municipality_code"].nunique().eq(14).all()
