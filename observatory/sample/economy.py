"""The economic censuses per municipality: businesses (establishments) and the people they employ,
in 2005 and 2019.

Magnitudes follow the 2005 economic census of the AMSS (some 80,000 establishments and 400,000
employees): San Salvador, Antiguo Cuscatlán and Santa Tecla concentrate commerce and services and
larger firms; the dormitory municipalities have few and small ones; Nejapa has few but industrial.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ECONOMIC_CENSUS_YEARS = (2005, 2019)
BUSINESS_DENSITY = {"0614": 2.2, "0501": 1.7, "0511": 1.4, "0609": 0.6}
"""Establishments per inhabitant relative to the AMSS's typical municipality (1.0 elsewhere)."""
FIRM_SIZE = {"0614": 7.0, "0501": 9.0, "0511": 5.5, "0609": 8.0}
"""Employees per establishment where it departs from the typical 3.5."""


def economic_census_frame(estimates: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Long format (codigo, anio, variable, valor, unidad) for the economic census years."""
    rows = []
    for record in estimates[estimates["anio"].isin(ECONOMIC_CENSUS_YEARS)].itertuples():
        later = 1.15 if record.anio == 2019 else 1.0
        density = 0.035 * BUSINESS_DENSITY.get(record.codigo_municipio, 1.0) * later
        businesses = round(record.poblacion_estimada * density * rng.lognormal(0, 0.08))
        size = FIRM_SIZE.get(record.codigo_municipio, 3.5) * (1.05 if later > 1 else 1.0)
        employees = round(businesses * size * rng.lognormal(0, 0.05))
        rows += [
            (record.codigo_municipio, record.anio, "establecimientos", businesses, "establecimientos"),
            (record.codigo_municipio, record.anio, "personal_ocupado", employees, "personas"),
        ]
    return pd.DataFrame(rows, columns=["codigo", "anio", "variable", "valor", "unidad"])
