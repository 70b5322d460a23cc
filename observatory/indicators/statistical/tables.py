"""Variables of the ``statistics`` layer as sums per municipality and period, and rates from them.

On the 2024 geography the layer's ``municipality_code`` is the 2024 municipality, so summing the
records of a code adds up its districts: rates come from summed numerators and denominators, never
from averaged rates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

KEY = ["municipality_code", "period"]

AGE_GROUPS = ("0_14", "15_64", "65_mas")
SEXES = ("hombres", "mujeres")


def population_cells(*, ages: Sequence[str] = AGE_GROUPS, sexes: Sequence[str] = SEXES) -> list[str]:
    """Census variables of the population by age group and sex (``poblacion_0_14_hombres``...)."""
    return [f"poblacion_{age}_{sex}" for age in ages for sex in sexes]


def totals(statistics: pd.DataFrame, variables: Sequence[str]) -> pd.DataFrame:
    """One column per variable: its sum per municipality and period.

    A (municipality, period) is kept only where every variable has a value in the same number of
    records: on the 2024 geography a numerator summed over three districts and a denominator over
    two would give a rate that is silently wrong.
    """
    rows = statistics.loc[statistics["variable"].isin(variables) & statistics["value"].notna()]
    grouped = rows.assign(period=rows["period"].astype(int)).groupby([*KEY, "variable"])["value"]
    sums = grouped.sum().unstack("variable").reindex(columns=list(variables))
    counts = grouped.count().unstack("variable").reindex(columns=list(variables))
    complete = counts.notna().all(axis=1) & (counts.nunique(axis=1) == 1)
    return sums.loc[complete].astype(float)


def tidy(value: pd.Series, *, n: pd.Series | None = None) -> pd.DataFrame:
    """The indicator frame (municipality_code, period, value[, n]) from values indexed by
    municipality and period; an undefined value (a zero denominator) is missing, not a row."""
    frame = pd.DataFrame({"value": value.replace([np.inf, -np.inf], np.nan)})
    if n is not None:
        frame["n"] = n
    return frame.dropna(subset=["value"]).reset_index()


def ratio(
    statistics: pd.DataFrame, numerator: str, denominator: str, *, per: float = 100.0, counted: bool = True
) -> pd.DataFrame:
    """``per`` × Σ numerator / Σ denominator per municipality and period.

    ``counted``: the denominator counts the records behind the value (persons, households or
    dwellings of a census), kept as ``n``; a survey's expanded estimates are not records.
    """
    sums = totals(statistics, [numerator, denominator])
    value = per * sums[numerator] / sums[denominator]
    return tidy(value, n=sums[denominator] if counted else None)
