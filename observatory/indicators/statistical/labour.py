"""Labour: employment and unemployment of the population aged 16 and over (El Salvador's working
age in the EHPM), from the household survey per municipality."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.indicators.statistical.education import SURVEY
from observatory.indicators.statistical.tables import ratio, tidy, totals

ILO = "ILO (2013). Resolution concerning statistics of work, employment and labour underutilization"


@indicator(
    id="employment_rate",
    theme="labour",
    title_es="Tasa de ocupación (población de 16 años y más)",
    title_en="Employment-to-population ratio (aged 16 and over)",
    formula="100 × población ocupada de 16 años y más / población de 16 años y más",
    unit="%",
    direction="higher_is_better",
    inputs=("statistics",),
    references=(SURVEY, ILO),
)
def employment_rate(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "ocupados_16_mas", "poblacion_16_mas", counted=False)


@indicator(
    id="unemployment_rate",
    theme="labour",
    title_es="Tasa de desempleo",
    title_en="Unemployment rate",
    formula="100 × (población económicamente activa − ocupados) / población económicamente activa "
    "(16 años y más)",
    unit="%",
    direction="lower_is_better",
    inputs=("statistics",),
    references=(SURVEY, ILO, "ISO 37120:2014, 5.1 City's unemployment rate"),
    sdg_target="8.5.2",
    iso37120="5.1",
)
def unemployment_rate(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    sums = totals(statistics, ["pea_16_mas", "ocupados_16_mas"])
    active = sums["pea_16_mas"]
    return tidy(100.0 * (active - sums["ocupados_16_mas"]) / active)
