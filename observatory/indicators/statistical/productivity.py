"""Productivity: business density and size, from the economic census per municipality and the
population estimates of the same year."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.indicators.statistical.tables import ratio, tidy, totals

ECONOMIC_CENSUS = "DIGESTYC, Censos Económicos (establecimientos y personal ocupado por municipio)"
PROJECTIONS = "DIGESTYC, Estimaciones y proyecciones de población municipal"


@indicator(
    id="businesses_per_1000",
    theme="productivity",
    title_es="Establecimientos económicos por 1.000 habitantes",
    title_en="Businesses per 1,000 inhabitants",
    formula="1.000 × establecimientos del censo económico / población estimada del mismo año",
    unit="establecimientos por 1.000 hab",
    direction="higher_is_better",
    inputs=("statistics",),
    references=(ECONOMIC_CENSUS, PROJECTIONS, "ISO 37120:2014, 5.6 Number of businesses per 100 000 "
                "population (here per 1,000)"),
    iso37120="5.6",
)  # fmt: skip
def businesses_per_1000(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    sums = totals(statistics, ["establecimientos", "poblacion_estimada"])
    return tidy(1_000.0 * sums["establecimientos"] / sums["poblacion_estimada"], n=sums["establecimientos"])


@indicator(
    id="employees_per_business",
    theme="productivity",
    title_es="Personal ocupado por establecimiento",
    title_en="Employees per business",
    formula="personal ocupado / establecimientos (censo económico)",
    unit="personas por establecimiento",
    direction="neutral",
    inputs=("statistics",),
    references=(ECONOMIC_CENSUS,),
)
def employees_per_business(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "personal_ocupado", "establecimientos", per=1.0)
