"""The population a yearly rate divides by: the municipality's people in that year.

Rule (printed on every sheet that uses it, as ``POPULATION_RULE``): for year Y, the loaded yearly
estimate of Y (``statistics``, variable ``poblacion_estimada``: DIGESTYC's municipal projections);
a year after the last estimate takes the latest one before it; a municipality without any
estimate up to Y takes the 2007 census. Never a fixed census where a yearly series exists: by
2023 the projections are 4.8 % above the census AMSS-wide and 12.9 % in Cuscatancingo. Each value
records the year of the population it used (``input_periods``).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

ESTIMATE = "poblacion_estimada"
CENSUS_YEAR = 2007
POPULATION_RULE = (
    "denominador: la población del municipio en el año (estimación anual cargada, variable "
    f"{ESTIMATE} de las estadísticas: proyecciones municipales de DIGESTYC; en la geografía 2024, la "
    "suma de sus distritos si todos la tienen; un año posterior a la "
    "última estimación toma la última anterior; un municipio sin estimaciones, el censo de 2007); "
    "el año de la población usada consta en input_periods"
)
PROJECTIONS = "DIGESTYC, Estimaciones y proyecciones de población municipal (denominador)"


def yearly_population(
    municipalities: pd.DataFrame, statistics: pd.DataFrame, years: Iterable[int]
) -> pd.DataFrame:
    """Population of each municipality in each year by ``POPULATION_RULE``.

    Returns
    -------
    DataFrame
        ``municipality_code``, ``period``, ``population`` and ``population_period`` (the year of
        the figure used); no row where neither an estimate nor the census is known.

    Notes
    -----
    On the 2024 geography (``municipalities`` has ``districts``, the number of districts of each
    municipality) a year's estimate is the sum over the districts, and counts only when every
    district has one (a partial sum would understate the people and overstate the rate); a year
    without takes the latest complete one before it.
    """
    codes = municipalities["code"].astype(str)
    districts = (
        municipalities.set_index("code")["districts"] if "districts" in municipalities.columns else None
    )
    rows = statistics[(statistics["variable"] == ESTIMATE) & statistics["value"].notna()]
    sums = rows.groupby(["municipality_code", rows["period"].astype(int)])["value"].agg(["sum", "count"])
    sums = sums.reset_index()
    expected = sums["municipality_code"].map(districts) if districts is not None else 1
    complete = sums[sums["count"] == expected]
    estimates = pd.DataFrame(
        {
            "municipality_code": complete["municipality_code"].astype(str),
            "population_period": complete["period"].astype("int64"),
            "population": complete["sum"].astype(float),
        }
    ).sort_values("population_period")
    grid = (
        pd.MultiIndex.from_product(
            [codes, [int(year) for year in years]], names=["municipality_code", "period"]
        )
        .to_frame(index=False)
        .astype({"municipality_code": str, "period": "int64"})
    )
    latest = pd.merge_asof(
        grid.sort_values("period"), estimates, left_on="period", right_on="population_period",
        by="municipality_code", direction="backward",
    )  # fmt: skip
    census = municipalities.set_index("code")["population_2007"].astype(float)
    estimated = latest["population"].notna()
    latest["population"] = latest["population"].where(estimated, latest["municipality_code"].map(census))
    latest["population_period"] = latest["population_period"].where(estimated, CENSUS_YEAR)
    latest = latest.dropna(subset=["population"])
    return latest.astype({"population": float, "population_period": int}).sort_values(
        ["municipality_code", "period"], ignore_index=True
    )
