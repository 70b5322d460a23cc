"""Equity and social inclusion: the poverty rate per municipality, and how unequally poverty and
access to piped water are spread across the municipalities of the metropolitan area
(population-weighted Gini and Theil indices, with Theil's between/within decomposition)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
from inequality.gini import Gini
from inequality.theil import TheilD

from observatory.indicators.memo import BoundedMemo
from observatory.indicators.registry import METROPOLITAN_CODE, indicator
from observatory.indicators.statistical.demography import CENSUSES
from observatory.indicators.statistical.tables import population_cells, ratio, totals

POVERTY_MAP = (
    "FLACSO, MINEC y PNUD (2010). Mapa de pobreza urbana y exclusión social, El Salvador (censo 2007)"
)
INEQUALITY = (
    "Rey, S. J. & Sastré-Gutiérrez, M. L. (2010). Interregional inequality dynamics in Mexico "
    "(PySAL inequality)"
)
THEIL = (
    "Shorrocks, A. F. (1980). The class of additively decomposable inequality measures. Econometrica 48(3)"
)
WEIGHTS = (
    "ponderado por población: cada municipio cuenta tantas veces como habitantes tiene (Σ de la población "
    "por sexo y grupo de edad del censo del mismo año); solo períodos en que todos los municipios "
    "tienen valor"
)
GROUPS_2024 = "municipality_2024_code"


def weighted_gini(values: np.ndarray, people: np.ndarray) -> float:
    """Population-weighted Gini: the inequality package's Gini of the vector in which each
    municipality's value is repeated once per inhabitant (the package's Gini is unweighted).

    Notes
    -----
    :math:`G = \\sum_i \\sum_j p_i p_j |x_i - x_j| / (2 P^2 \\bar{x})`, with :math:`p_i` the
    population of municipality :math:`i`, :math:`P = \\sum p_i` and :math:`\\bar{x}` the
    population-weighted mean; people are counted in whole numbers, so the expansion is exact.
    """
    return float(Gini(np.repeat(values, people.astype(np.int64))).g)


def weighted_theil(values: np.ndarray, people: np.ndarray, groups: np.ndarray) -> TheilD:
    """Population-weighted Theil T of ``values`` and its decomposition between ``groups`` and
    within them: the inequality package's TheilD on the vector expanded as in ``weighted_gini``.

    Notes
    -----
    :math:`T = \\sum_i s_i \\ln(s_i / q_i)` with :math:`q_i` the population share of municipality
    :math:`i` and :math:`s_i` its share of the total (poor people, say); :math:`T = T_b + T_w`.
    """
    counts = people.astype(np.int64)
    codes, _ = pd.factorize(groups)
    # The total and its two parts are three indicators of one decomposition: computed once.
    key = (values.astype(float).tobytes(), counts.tobytes(), codes.tobytes())
    return _decompositions.get(
        key, lambda: TheilD(np.repeat(values.astype(float), counts), np.repeat(codes, counts))
    )


_decompositions: BoundedMemo[TheilD] = BoundedMemo(8)


def _with_population(statistics: pd.DataFrame, numerator: str, denominator: str) -> pd.DataFrame:
    """Per municipality and period: 100 × Σ numerator / Σ denominator, and the population."""
    cells = population_cells()
    sums = totals(statistics, [numerator, denominator, *cells])
    return pd.DataFrame(
        {"value": 100.0 * sums[numerator] / sums[denominator], "people": sums[cells].sum(axis=1)}
    ).dropna()


def _every_municipality(
    values: pd.DataFrame, municipalities: gpd.GeoDataFrame
) -> Iterator[tuple[int, pd.DataFrame]]:
    """The periods in which every municipality has a value (an index over some of them would not be
    the metropolitan one), each with its values in the order of ``municipalities``."""
    for period, group in values.groupby(level="period"):
        complete = group.droplevel("period").reindex(municipalities["code"])
        if complete.notna().all().all():
            yield int(period), complete


def _metropolitan(
    values: pd.DataFrame, municipalities: gpd.GeoDataFrame, index: Callable[[pd.DataFrame], float]
) -> pd.DataFrame:
    """One value over the metropolitan area per period, ``n`` being the municipalities compared."""
    rows = [
        (METROPOLITAN_CODE, period, index(frame), len(frame))
        for period, frame in _every_municipality(values, municipalities)
    ]
    frame = pd.DataFrame(rows, columns=["municipality_code", "period", "value", "n"])
    return frame.astype({"municipality_code": str, "period": int, "value": float, "n": int})


def _gini(frame: pd.DataFrame) -> float:
    return weighted_gini(frame["value"].to_numpy(), frame["people"].to_numpy())


@indicator(
    id="poverty_rate",
    theme="equity",
    title_es="Hogares en pobreza",
    title_en="Households in poverty",
    formula="100 × hogares en pobreza (mapa de pobreza urbana) / hogares (censo del mismo año)",
    unit="% de hogares",
    direction="lower_is_better",
    inputs=("statistics",),
    references=(POVERTY_MAP, *CENSUSES, "ISO 37120:2014, 5.3 Percentage of city population living in poverty "
                "(here of households)"),
    sdg_target="1.2.1",
    iso37120="5.3",
)  # fmt: skip
def poverty_rate(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "hogares_pobreza", "hogares")


@indicator(
    id="poverty_gini",
    theme="equity",
    title_es="Desigualdad de la pobreza entre municipios (Gini)",
    title_en="Inequality of poverty across municipalities (Gini)",
    formula="coeficiente de Gini de la tasa de pobreza de hogares de los municipios, " + WEIGHTS,
    unit="índice (0–1)",
    direction="lower_is_better",
    inputs=("statistics", "municipalities"),
    references=(POVERTY_MAP, INEQUALITY),
)
def poverty_gini(*, statistics: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    values = _with_population(statistics, "hogares_pobreza", "hogares")
    return _metropolitan(values, municipalities, _gini)


@indicator(
    id="access_gini",
    theme="equity",
    title_es="Desigualdad del acceso al agua por cañería entre municipios (Gini)",
    title_en="Inequality of access to piped water across municipalities (Gini)",
    formula="coeficiente de Gini del % de viviendas con agua por cañería de los municipios, " + WEIGHTS,
    unit="índice (0–1)",
    direction="lower_is_better",
    inputs=("statistics", "municipalities"),
    references=(*CENSUSES, INEQUALITY),
)
def access_gini(*, statistics: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    values = _with_population(statistics, "viviendas_agua_caneria", "viviendas")
    return _metropolitan(values, municipalities, _gini)


def _theil(statistics: pd.DataFrame, municipalities: gpd.GeoDataFrame, part: str) -> pd.DataFrame:
    """Theil's T of poverty (``part``: "T", "bg" or "wg"). The decomposition needs the 2024
    municipalities as groups: the 2024 geography, whose units they are, gets none."""
    values = _with_population(statistics, "hogares_pobreza", "hogares")
    if GROUPS_2024 in municipalities.columns and municipalities[GROUPS_2024].notna().all():
        groups = municipalities.set_index("code")[GROUPS_2024]  # T does not depend on the groups
    elif part == "T":
        groups = pd.Series(0, index=municipalities["code"].to_numpy())
    else:
        values = values.iloc[0:0]

    def index(frame: pd.DataFrame) -> float:
        people, groups_of = frame["people"].to_numpy(), groups.loc[frame.index].to_numpy()
        theil = weighted_theil(frame["value"].to_numpy(), people, groups_of)
        return float(np.asarray(getattr(theil, part)).item())

    return _metropolitan(values, municipalities, index)


THEIL_FORMULA = "índice de Theil T de la tasa de pobreza de hogares de los municipios, " + WEIGHTS


@indicator(
    id="poverty_theil",
    theme="equity",
    title_es="Desigualdad de la pobreza entre municipios (Theil)",
    title_en="Inequality of poverty across municipalities (Theil)",
    formula=THEIL_FORMULA + "; T = T entre + T dentro (municipios de 2024)",
    unit="índice (≥ 0)",
    direction="lower_is_better",
    inputs=("statistics", "municipalities"),
    references=(POVERTY_MAP, THEIL, INEQUALITY),
)
def poverty_theil(*, statistics: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _theil(statistics, municipalities, "T")


@indicator(
    id="poverty_theil_between",
    theme="equity",
    title_es="Desigualdad de la pobreza entre los municipios de 2024 (Theil entre grupos)",
    title_en="Inequality of poverty between the 2024 municipalities (Theil between groups)",
    formula=THEIL_FORMULA + "; parte entre grupos, con los 14 distritos agrupados en sus municipios de "
    "2024 (solo en la geografía de 2007)",
    unit="índice (≥ 0)",
    direction="lower_is_better",
    inputs=("statistics", "municipalities"),
    references=(POVERTY_MAP, THEIL, INEQUALITY),
)
def poverty_theil_between(*, statistics: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _theil(statistics, municipalities, "bg")


@indicator(
    id="poverty_theil_within",
    theme="equity",
    title_es="Desigualdad de la pobreza dentro de los municipios de 2024 (Theil dentro de grupos)",
    title_en="Inequality of poverty within the 2024 municipalities (Theil within groups)",
    formula=THEIL_FORMULA + "; parte dentro de los grupos (distritos de un mismo municipio de 2024; "
    "solo en la geografía de 2007)",
    unit="índice (≥ 0)",
    direction="lower_is_better",
    inputs=("statistics", "municipalities"),
    references=(POVERTY_MAP, THEIL, INEQUALITY),
)
def poverty_theil_within(*, statistics: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _theil(statistics, municipalities, "wg")
