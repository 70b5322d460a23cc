"""Demography: growth between censuses, dependency and sex ratios, from the census tables of the
population by age group and sex (``statistics``)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.indicators.statistical.tables import population_cells, tidy, totals

CENSUSES = (
    "DIGESTYC, V Censo de Población y IV de Vivienda 1992",
    "DIGESTYC, VI Censo de Población y V de Vivienda 2007",
)


@indicator(
    id="population_growth_rate",
    theme="demography",
    title_es="Tasa de crecimiento anual de la población",
    title_en="Annual population growth rate",
    formula="100 × ((P_t / P_s)^(1 / (t − s)) − 1) entre dos censos consecutivos s < t; P = Σ población "
    "por sexo y grupo de edad; el valor se fecha en el censo t",
    unit="% anual",
    direction="neutral",
    inputs=("statistics",),
    references=(*CENSUSES, "United Nations (2022). World Population Prospects: methodology (exponential and "
                "geometric growth)"),
)  # fmt: skip
def population_growth_rate(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    """Mean annual geometric growth between consecutive censuses of each municipality.

    Notes
    -----
    :math:`r = (P_t / P_s)^{1/(t-s)} - 1`: the constant yearly rate that turns the population
    :math:`P_s` of census year :math:`s` into :math:`P_t`. Only consecutive censuses with the same
    number of records are compared (on the 2024 geography, the same districts).
    """
    cells = population_cells()
    frame = pd.DataFrame(
        {"population": totals(statistics, cells).sum(axis=1), "records": _records(statistics, cells[0])}
    ).dropna(subset=["population"])
    frame = frame.reset_index().sort_values(["municipality_code", "period"])
    earlier = frame.groupby("municipality_code")[["period", "population", "records"]].shift(1)
    ratio = frame["population"] / earlier["population"]
    rate = 100.0 * (np.power(ratio, 1.0 / (frame["period"] - earlier["period"])) - 1.0)
    value = rate.where(earlier["records"] == frame["records"])
    return tidy(value.set_axis(pd.MultiIndex.from_frame(frame[["municipality_code", "period"]])))


def _records(statistics: pd.DataFrame, variable: str) -> pd.Series:
    """How many records (districts, on the 2024 geography) report ``variable`` per municipality and
    period."""
    rows = statistics[(statistics["variable"] == variable) & statistics["value"].notna()]
    return rows.assign(period=rows["period"].astype(int)).groupby(["municipality_code", "period"]).size()


@indicator(
    id="dependency_ratio",
    theme="demography",
    title_es="Razón de dependencia",
    title_en="Dependency ratio",
    formula="100 × (población de 0 a 14 años + población de 65 años y más) / población de 15 a 64 años",
    unit="dependientes por 100 personas en edad de trabajar",
    direction="neutral",
    inputs=("statistics",),
    references=(*CENSUSES, "United Nations, Demographic Yearbook: total dependency ratio"),
)
def dependency_ratio(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    young, working, old = (population_cells(ages=(age,)) for age in ("0_14", "15_64", "65_mas"))
    sums = totals(statistics, [*young, *working, *old])
    dependants = sums[young + old].sum(axis=1)
    workers = sums[working].sum(axis=1)
    return tidy(100.0 * dependants / workers, n=workers)


@indicator(
    id="sex_ratio",
    theme="demography",
    title_es="Índice de masculinidad",
    title_en="Sex ratio",
    formula="100 × hombres / mujeres (Σ de los grupos de edad)",
    unit="hombres por 100 mujeres",
    direction="neutral",
    inputs=("statistics",),
    references=(*CENSUSES, "United Nations, Demographic Yearbook: sex ratio"),
)
def sex_ratio(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    men, women = population_cells(sexes=("hombres",)), population_cells(sexes=("mujeres",))
    sums = totals(statistics, [*men, *women])
    female = sums[women].sum(axis=1)
    return tidy(100.0 * sums[men].sum(axis=1) / female, n=female)
