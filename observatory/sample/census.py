"""The population and housing censuses of 1992 and 2007 per municipality (DIGESTYC), the yearly
population estimates built on them, and the urban poverty map's poor households (census 2007).

The 2007 population, men and women are the real census totals of the facts file, split into broad
age groups; everything else is drawn around plausible AMSS magnitudes (households of about 4 people,
coverage of services falling as poverty rises, 1992 older and less served). The censuses come as
DIGESTYC publishes its tables: an Excel sheet with a title above the header and a metropolitan
subtotal row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from observatory.sample.boundaries import amss_facts
from observatory.settings import REFERENCE_DIR

POPULATION_1992 = {
    "0501": 28_087, "0511": 116_575, "0602": 109_179, "0603": 23_424, "0604": 57_485, "0607": 91_736,
    "0608": 144_855, "0609": 23_525, "0612": 59_913, "0613": 58_615, "0614": 415_346, "0617": 261_122,
    "0618": 26_487, "0619": 109_863,
}  # fmt: skip
"""Population of the 1992 census per municipality (rounded on the published figures)."""

CENSUS_TITLE = "Censos de Población y Vivienda 1992 y 2007: población por sexo y edad, hogares y viviendas"
CENSUS_TOTAL = "TOTAL AMSS"
ESTIMATE_YEARS = range(2005, 2024)
UNITS = {"poblacion": "personas", "hogares": "hogares", "viviendas": "viviendas"}


def _split(total: int, shares: tuple[float, float]) -> tuple[int, int, int]:
    """``total`` people as 0–14, 15–64 and 65+ with the given young and old shares; whole numbers
    that add up exactly."""
    young, old = round(total * shares[0]), round(total * shares[1])
    return young, total - young - old, old


def census_frame(rng: np.random.Generator, reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """Both censuses in long format (code, name, year, variable, value, unit), 2007 totals exact."""
    rows = []
    for fact in amss_facts(reference_dir).to_dict("records"):
        poverty = fact["poverty_rate_2007_pct"] / 100
        total_1992 = POPULATION_1992[fact["code"]]
        men_1992 = round(total_1992 * rng.normal(0.472, 0.004))
        for year, men, women in (
            (1992, men_1992, total_1992 - men_1992),
            (2007, int(fact["men_2007"]), int(fact["women_2007"])),
        ):
            variables = _census_variables(men, women, poverty, older=float(year == 1992), rng=rng)
            rows += [
                (fact["code"], fact["name"], year, name, value, UNITS[name.split("_")[0]])
                for name, value in variables.items()
            ]
    frame = pd.DataFrame(rows, columns=["Código", "Municipio", "Año", "Variable", "Valor", "Unidad"])
    subtotals = frame.groupby(["Año", "Variable", "Unidad"], as_index=False, sort=False)["Valor"].sum()
    return pd.concat([frame, subtotals.assign(Código="", Municipio=CENSUS_TOTAL)], ignore_index=True)


def _census_variables(
    men: int, women: int, poverty: float, *, older: float, rng: np.random.Generator
) -> dict[str, int]:
    """One municipality's census: poorer municipalities younger, more crowded and less served;
    ``older`` (1 for 1992) makes the population younger and the services scarcer."""
    young = 0.27 + 0.4 * (poverty - 0.25) + 0.07 * older + rng.normal(0, 0.005)
    old = 0.07 - 0.1 * (poverty - 0.25) - 0.015 * older + rng.normal(0, 0.003)
    variables: dict[str, int] = {}
    for sex, people, extra_old in (("hombres", men, 0.0), ("mujeres", women, 0.012)):
        groups = _split(people, (young - extra_old, old + extra_old))
        for age, count in zip(("0_14", "15_64", "65_mas"), groups, strict=True):
            variables[f"poblacion_{age}_{sex}"] = count
    households = round((men + women) / (3.85 + 1.5 * (poverty - 0.25) + 0.6 * older))
    dwellings = round(households / rng.uniform(1.02, 1.05))
    served = {
        "viviendas_agua_caneria": 0.99 - 0.6 * poverty - 0.1 * older,
        "viviendas_alcantarillado": 1.05 - 1.5 * poverty - 0.12 * older,
        "viviendas_electricidad": 0.995 - 0.12 * poverty - 0.07 * older,
    }
    return (
        variables
        | {
            "hogares": households,
            "hogares_hacinamiento": round(households * (0.08 + 0.8 * poverty + 0.08 * older)),
            "viviendas": dwellings,
        }
        | {
            name: round(dwellings * min(0.99, max(0.05, rate + rng.normal(0, 0.012))))
            for name, rate in served.items()
        }
    )


def write_census(path: Path, census: pd.DataFrame) -> None:
    """The censuses as an Excel sheet: a title row and a source row above the header (row 3)."""
    with pd.ExcelWriter(path, engine="openpyxl") as workbook:
        census.to_excel(workbook, sheet_name="Municipios", index=False, startrow=2)
        workbook.sheets["Municipios"]["A1"] = CENSUS_TITLE
        workbook.sheets["Municipios"]["A2"] = (
            "Fuente: DIGESTYC (muestra sintética calibrada en el censo 2007)"
        )


def _census_population(census: pd.DataFrame, year: int) -> pd.Series:
    rows = census[(census["Año"] == year) & census["Variable"].str.startswith("poblacion_")]
    return rows[rows["Código"] != ""].groupby("Código")["Valor"].sum()


def estimates_frame(census: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Yearly population estimates per municipality (code, year, population) from the 2007 census
    at a slow growth of its own per municipality, as DIGESTYC's municipal projections do."""
    population = _census_population(census, 2007)
    growth = rng.normal(0.004, 0.004, size=len(population))
    rows = [
        (code, year, round(people * (1 + rate) ** (year - 2007)))
        for (code, people), rate in zip(population.items(), growth, strict=True)
        for year in ESTIMATE_YEARS
    ]
    return pd.DataFrame(rows, columns=["codigo_municipio", "anio", "poblacion_estimada"])


def poverty_map_frame(census: pd.DataFrame, reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """Households in poverty in 2007 per municipality: the real share of the facts file applied to
    the census households."""
    facts = amss_facts(reference_dir).set_index("code")
    households = census[
        (census["Año"] == 2007) & (census["Variable"] == "hogares") & (census["Código"] != "")
    ]
    households = households.set_index("Código")["Valor"]
    poor = (households * facts["poverty_rate_2007_pct"].reindex(households.index) / 100).round().astype(int)
    return pd.DataFrame(
        {"codigo": poor.index, "municipio": facts["name"].reindex(poor.index).to_numpy(), "anio": 2007,
         "hogares_pobres": poor.to_numpy()}
    )  # fmt: skip
