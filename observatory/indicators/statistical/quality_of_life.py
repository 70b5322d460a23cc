"""Quality of life: overcrowded households and dwellings with electricity, from the censuses."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.indicators.statistical.demography import CENSUSES
from observatory.indicators.statistical.tables import ratio


@indicator(
    id="overcrowding_rate",
    theme="quality_of_life",
    title_es="Hogares en hacinamiento",
    title_en="Overcrowded households",
    formula="100 × hogares con más de 3 personas por dormitorio / hogares",
    unit="% de hogares",
    direction="lower_is_better",
    inputs=("statistics",),
    references=(*CENSUSES, "UN-Habitat: SDG 11.1.1 (sufficient living area, one of the five slum "
                "household deprivations)"),
)  # fmt: skip
def overcrowding_rate(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "hogares_hacinamiento", "hogares")


@indicator(
    id="electricity_coverage",
    theme="quality_of_life",
    title_es="Viviendas con alumbrado eléctrico",
    title_en="Dwellings with electricity",
    formula="100 × viviendas ocupadas con alumbrado eléctrico / viviendas ocupadas",
    unit="% de viviendas",
    direction="higher_is_better",
    inputs=("statistics",),
    references=(*CENSUSES, "SDG 7.1.1, proportion of population with access to electricity (here of "
                "dwellings)"),
    sdg_target="7.1.1",
)  # fmt: skip
def electricity_coverage(*, statistics: gpd.GeoDataFrame) -> pd.DataFrame:
    return ratio(statistics, "viviendas_electricidad", "viviendas")
