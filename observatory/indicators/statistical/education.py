"""Education: school attendance and literacy, from the household survey (EHPM) per municipality."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.indicators.statistical.tables import ratio

SURVEY = "DIGESTYC, Encuesta de Hogares de Propósitos Múltiples (EHPM), tabulados municipales"


@indicator(
    id="school_attendance_rate",
    theme="education",
    title_es="Tasa de asistencia escolar (4 a 17 años)",
    title_en="School attendance rate (ages 4 to 17)",
    formula="100 × población de 4 a 17 años que asiste a un centro educativo / población de 4 a 17 años "
    "(estimaciones expandidas de la encuesta)",
    unit="%",
    direction="higher_is_better",
    inputs=("statistics",),
    references=(SURVEY, "UNESCO UIS: attendance rate; SDG target 4.1 (primary and secondary education)"),
    sdg_target="4.1",
)
def school_attendance_rate(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "asisten_4_17", "poblacion_4_17", counted=False)


@indicator(
    id="literacy_rate",
    theme="education",
    title_es="Tasa de alfabetismo (10 años y más)",
    title_en="Literacy rate (aged 10 and over)",
    formula="100 × población de 10 años y más que sabe leer y escribir / población de 10 años y más",
    unit="%",
    direction="higher_is_better",
    inputs=("statistics",),
    references=(SURVEY, "UNESCO UIS: literacy rate; SDG target 4.6 (youth and adult literacy)"),
    sdg_target="4.6",
)
def literacy_rate(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "alfabetos_10_mas", "poblacion_10_mas", counted=False)
