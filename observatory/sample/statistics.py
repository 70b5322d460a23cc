"""A statistics table without geometry, with the 2007 census and poverty figures written the way real
tables write names ("Nueva San Salvador", "Delgado", upper case), plus a subtotal row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from observatory.sample.boundaries import amss_facts
from observatory.settings import REFERENCE_DIR

STATISTICS_YEAR = 2007
STATISTICS_VARIABLES = {
    # variable: (column of the facts file, unit)
    "poblacion_total": ("population_2007", "personas"),
    "poblacion_hombres": ("men_2007", "personas"),
    "poblacion_mujeres": ("women_2007", "personas"),
    "pobreza_hogares": ("poverty_rate_2007_pct", "% de hogares"),
}
STATISTICS_NAMES = {
    "0511": "Nueva San Salvador",
    "0619": "Delgado",
    "0617": "SOYAPANGO",
    "0613": "SAN MARTÍN",
}
"""Names the statistics table writes instead of the official ones, as real tables do."""
STATISTICS_TOTAL_NAME = "TOTAL AMSS"


def statistics_frame(reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """The 2007 census and poverty figures per municipality, in long format, as a statistics office
    publishes them: names as written in real tables and a metropolitan subtotal row at the end.
    Values are text as written in the facts file (whole numbers without a decimal point)."""
    facts = amss_facts(reference_dir)
    rows = [
        (STATISTICS_NAMES.get(fact["code"], fact["name"]), STATISTICS_YEAR, variable, str(fact[column]), unit)
        for fact in facts.to_dict("records")
        for variable, (column, unit) in STATISTICS_VARIABLES.items()
    ]
    total = int(facts["population_2007"].sum())
    rows.append((STATISTICS_TOTAL_NAME, STATISTICS_YEAR, "poblacion_total", str(total), "personas"))
    return pd.DataFrame(rows, columns=["municipio", "anio", "variable", "valor", "unidad"])
