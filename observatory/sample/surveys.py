"""The household survey (EHPM-style) per municipality and year, 2015–2023: school attendance of
ages 4–17, literacy of ages 10+, and the labour force of ages 16+ (El Salvador's working age).

Values are expanded estimates (persons), drawn around the AMSS's published magnitudes: attendance
near 88 %, literacy near 95 %, participation near 62 %, unemployment near 6–7 % (higher in 2020).
Municipalities are named as the survey's tabulations write them (upper case, "NUEVA SAN SALVADOR",
"DELGADO"), without codes: the load finds the codes through the names table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from observatory.sample.boundaries import amss_facts
from observatory.settings import REFERENCE_DIR

SURVEY_YEARS = range(2015, 2024)
SURVEY_NAMES = {"0511": "NUEVA SAN SALVADOR", "0619": "DELGADO"}
PANDEMIC = (2020, 2021)


def survey_frame(
    estimates: pd.DataFrame, rng: np.random.Generator, reference_dir: Path = REFERENCE_DIR
) -> pd.DataFrame:
    """Long format (municipio, año, variable, estimación) over ``estimates``' population."""
    facts = amss_facts(reference_dir).set_index("code")
    population = estimates.set_index(["codigo_municipio", "anio"])["poblacion_estimada"]
    rows = []
    for code, fact in facts.iterrows():
        poverty = fact["poverty_rate_2007_pct"] / 100 - 0.25
        name = SURVEY_NAMES.get(str(code), str(fact["name"]).upper())
        for year in SURVEY_YEARS:
            people = population[(code, year)]
            trend, pandemic = year - 2015, year in PANDEMIC

            def noisy(rate: float, spread: float = 0.008) -> float:
                return min(0.995, rate + rng.normal(0, spread))

            school_age = round(people * (0.245 - 0.003 * trend))
            over_10 = round(people * (0.83 + 0.003 * trend))
            over_16 = round(people * (0.72 + 0.004 * trend))
            active = round(over_16 * noisy(0.62 - 0.1 * poverty))
            unemployed = noisy(0.065 + 0.1 * poverty + 0.03 * pandemic, 0.006)
            estimates_of = {
                "poblacion_4_17": school_age,
                "asisten_4_17": round(
                    school_age * noisy(0.88 - 0.3 * poverty + 0.003 * trend - 0.04 * pandemic)
                ),
                "poblacion_10_mas": over_10,
                "alfabetos_10_mas": round(over_10 * noisy(0.955 - 0.15 * poverty + 0.002 * trend, 0.004)),
                "poblacion_16_mas": over_16,
                "pea_16_mas": active,
                "ocupados_16_mas": round(active * (1 - unemployed)),
            }
            rows += [(name, year, variable, value) for variable, value in estimates_of.items()]
    return pd.DataFrame(rows, columns=["MUNICIPIO", "AÑO", "VARIABLE", "ESTIMACION"])
