"""The tables without geometry behind the statistical themes, written as their sources publish
them: the censuses (Excel), the population estimates, the poverty map, the household survey and
the economic censuses, each loaded into the ``statistics`` layer as a source of its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from observatory.sample.census import census_frame, estimates_frame, poverty_map_frame, write_census
from observatory.sample.economy import economic_census_frame
from observatory.sample.surveys import survey_frame

STATISTICS_STREAM = 7101
"""These tables' own random stream (with the seed), whatever the other generators draw."""


@dataclass(frozen=True)
class StatisticalTables:
    census: Path
    population_estimates: Path
    poverty_map: Path
    survey: Path
    economic_census: Path


def write_statistical_tables(out_dir: Path, *, seed: int) -> StatisticalTables:
    rng = np.random.default_rng([seed, STATISTICS_STREAM])
    tables = StatisticalTables(
        census=out_dir / "censos_poblacion_vivienda.xlsx",
        population_estimates=out_dir / "proyecciones_poblacion.csv",
        poverty_map=out_dir / "mapa_pobreza_urbana.csv",
        survey=out_dir / "ehpm_municipal.csv",
        economic_census=out_dir / "censos_economicos.csv",
    )
    census = census_frame(rng)
    write_census(tables.census, census)
    estimates = estimates_frame(census, rng)
    estimates.to_csv(tables.population_estimates, index=False)
    poverty_map_frame(census).to_csv(tables.poverty_map, index=False)
    survey_frame(estimates, rng).to_csv(tables.survey, index=False)
    economic_census_frame(estimates, rng).to_csv(tables.economic_census, index=False)
    return tables
