"""Violence indicators: rates of incidents per 100,000 inhabitants, raw and Empirical-Bayes smoothed,
from incident points and from the police's counts per municipality, and the share of people living
in hot spots of incidents.

Every rate divides by the municipality's population in the same year (SDG 16.1.1 practice:
``observatory.indicators.denominators``), and counts zero only in the years and types its source
covers (``observatory.indicators.coverage``): no record outside them is no data, not zero.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from esda.smoothing import Empirical_Bayes

from observatory.indicators.coverage import covered_years
from observatory.indicators.denominators import POPULATION_RULE, PROJECTIONS, yearly_population
from observatory.indicators.hotspots import hotspot_cells, population_cells
from observatory.indicators.people import population_points
from observatory.indicators.registry import indicator

HOMICIDE, ROBBERY, EXTORTION = "homicidio", "robo", "extorsion"
PER = 100_000
EVERY_INCIDENT = "violent_incident_rate"
"""The indicator counting incidents of every type: where one of its values is withheld, the public
incident cells of that municipality and year are too."""
POLICE_HOMICIDES = "homicidios"
"""The variable of the police's (PNC) homicide counts in the ``statistics`` layer."""
CENSUS = "DIGESTYC, VI Censo de Población y V de Vivienda 2007 (denominador donde no hay estimación)"
DENOMINATOR = "; " + POPULATION_RULE
COVERAGE = (
    "; cero solo en los años y tipos que la fuente declara cubrir (manifiesto, [coverage]) o, sin "
    "declaración, en los que registra ese tipo en algún municipio: fuera de ellos, sin valor"
)


def yearly_counts(
    incidents: gpd.GeoDataFrame,
    municipalities: gpd.GeoDataFrame,
    statistics: gpd.GeoDataFrame,
    *,
    types: tuple[str, ...] | None,
) -> pd.DataFrame:
    """Events and victims of the given types (all when None) per municipality and calendar year,
    with the municipality's population that year (``yearly_population``).

    Every municipality gets every year the source covers for those types (``covered_years``): a
    covered year without such incidents is a true zero; a year or type it does not cover has no row.
    """
    dated = incidents.assign(period=pd.to_datetime(incidents["date"]).dt.year)
    years = covered_years(dated, dated["period"], types)
    selected = dated if types is None else dated[dated["type"].isin(types)]
    grouped = selected.groupby(["municipality_code", "period"])
    counts = pd.DataFrame({"events": grouped.size(), "victims": grouped["fatalities"].sum().astype(float)})
    population = yearly_population(municipalities, statistics, years).set_index(
        ["municipality_code", "period"]
    )
    table = population.join(counts).fillna({"events": 0, "victims": 0.0})
    return table.reset_index()


def _rate(counts: pd.DataFrame, numerator: str, source: str) -> pd.DataFrame:
    """Per 100,000 of the year's population; each value names the year of its records (``source``)
    and of its population."""
    periods = counts["period"].astype(int)
    return pd.DataFrame(
        {
            "municipality_code": counts["municipality_code"],
            "period": periods,
            "value": counts[numerator] / counts["population"] * PER,
            "n": counts["events"].astype(int),
            "input_periods": [
                {source: int(year), "population": int(used)}
                for year, used in zip(periods, counts["population_period"], strict=True)
            ],
        }
    )


RATE_INPUTS = ("incidents", "municipalities", "statistics")
RATE_REFERENCES = ("PNC, registro de hechos delictivos", PROJECTIONS, CENSUS)


@indicator(
    id="homicide_rate",
    theme="violence",
    title_es="Tasa de homicidios por 100 000 habitantes",
    title_en="Homicide rate per 100,000 inhabitants",
    formula="víctimas de homicidio (suma de fallecidos de los hechos de tipo homicidio del año) / "
    "población del año × 100 000" + DENOMINATOR + COVERAGE + "; n = hechos (eventos)",
    unit="por 100 000 hab",
    direction="lower_is_better",
    inputs=RATE_INPUTS,
    optional_inputs=("statistics",),
    references=(
        "UNODC, SDG indicator 16.1.1 metadata: number of victims of intentional homicide per 100,000",
        "ISO 37120:2018, 14.1 Number of homicides per 100 000 population",
        PROJECTIONS,
        CENSUS,
    ),
    sdg_target="16.1.1",
    iso37120="14.1",
    disclosure="counts",
    part_of=EVERY_INCIDENT,
)
def homicide_rate(
    *, incidents: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, statistics: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Victims of homicide per 100,000 inhabitants, per municipality and year.

    Notes
    -----
    :math:`r_{m,t} = 10^5 \\sum_i f_i / P_{m,t}` over the homicides :math:`i` of municipality
    :math:`m` in year :math:`t`, with :math:`f_i` the victims (fatalities) of event :math:`i`: SDG
    16.1.1 counts victims, not events; a double homicide counts twice. ``n`` is the number of events.
    """
    return _rate(
        yearly_counts(incidents, municipalities, statistics, types=(HOMICIDE,)), "victims", "incidents"
    )


@indicator(
    id="homicide_rate_smoothed",
    theme="violence",
    title_es="Tasa de homicidios suavizada (Bayes empírico) por 100 000 habitantes",
    title_en="Empirical-Bayes smoothed homicide rate per 100,000 inhabitants",
    formula="estimador bayesiano empírico (Marshall 1991, esda.smoothing.Empirical_Bayes) de víctimas de "
    "homicidio / población del censo 2007 × 100 000, cada año sobre los municipios de la geografía "
    "calculada cuya tasa de homicidios se publica (las víctimas, tasa publicada × población / 100 000; "
    "un municipio con la tasa reservada no tiene valor ni entra en la media ni en la varianza); si la "
    "varianza entre municipios estimada es negativa, todos toman la tasa del conjunto "
    "(Marshall 1991)" + DENOMINATOR + "; n = hechos (eventos)",
    unit="por 100 000 hab",
    direction="lower_is_better",
    inputs=("indicators", "municipalities"),
    references=(
        "Marshall, R. J. (1991). Mapping disease and mortality rates using empirical Bayes estimators. "
        "Journal of the Royal Statistical Society C 40(2), 283-294",
        "PySAL esda: esda.smoothing.Empirical_Bayes",
        CENSUS,
    ),
    sdg_target="16.1.1",
    disclosure="derived",
)
def homicide_rate_smoothed(*, indicators: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Homicide rates shrunk towards the year's rate over all municipalities, the more so the
    smaller the municipality, so that a small one's single homicide does not rank it first
    (see :func:`smoothed_rates`).

    Notes
    -----
    Computed from the published homicide rates (``indicators`` as the public see them): the mean
    and the variance the rates shrink towards would otherwise carry the withheld counts, and a
    withheld rate could be solved for from the smoothed ones.
    """
    population = municipalities.set_index("code")["population_2007"].astype(float)
    rates = indicators[(indicators["indicator_id"] == "homicide_rate") & indicators["value"].notna()]
    rates = rates.assign(population=rates["municipality_code"].map(population)).dropna(subset=["population"])
    parts = [pd.DataFrame({"municipality_code": [], "period": [], "value": [], "n": []})]
    for period, year in rates.groupby("period"):
        victims = (year["value"] * year["population"] / PER).to_numpy()
        smoothed = smoothed_rates(victims, year["population"].to_numpy())
        parts.append(
            pd.DataFrame(
                {
                    "municipality_code": year["municipality_code"].to_numpy(),
                    "period": int(period),
                    "value": smoothed * PER,
                    "n": year["n"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def smoothed_rates(events: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Empirical-Bayes rates (events per inhabitant) of areas with these events and populations.

    Notes
    -----
    esda's ``Empirical_Bayes`` (Marshall 1991): :math:`\\hat r_m = w_m r_m + (1 - w_m) \\bar r` with
    :math:`\\bar r = \\sum e / \\sum b`, :math:`w_m = s^2 / (s^2 + \\bar r / b_m)` and the moment
    estimate :math:`s^2 = \\sum b_m (r_m - \\bar r)^2 / \\sum b - \\bar r / \\bar b`. When
    :math:`s^2 < 0` (the rates vary less than chance alone would make them) Marshall sets it to 0,
    so every area takes :math:`\\bar r`; esda does not, and its weights then leave [0, 1] (a higher
    raw rate would get a lower smoothed one), so that case is handled here. No events at all: 0.
    """
    events, population = np.asarray(events, dtype=float), np.asarray(population, dtype=float)
    if events.sum() == 0:
        return np.zeros(len(events))
    overall = events.sum() / population.sum()
    between = np.sum(population * (events / population - overall) ** 2) / population.sum()
    if between - overall / population.mean() < 0:
        return np.full(len(events), overall)
    return np.asarray(Empirical_Bayes(events, population).r).ravel()


@indicator(
    id="violent_incident_rate",
    theme="violence",
    title_es="Hechos de violencia por 100 000 habitantes",
    title_en="Violent incidents per 100,000 inhabitants",
    formula="hechos registrados de cualquier tipo en el año / población del año × 100 000"
    + DENOMINATOR
    + COVERAGE,
    unit="por 100 000 hab",
    direction="lower_is_better",
    inputs=RATE_INPUTS,
    optional_inputs=("statistics",),
    references=RATE_REFERENCES,
    disclosure="counts",
)
def violent_incident_rate(
    *, incidents: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, statistics: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Events of every type per 100,000 inhabitants: :math:`10^5 E_{m,t} / P_{m,t}`."""
    return _rate(yearly_counts(incidents, municipalities, statistics, types=None), "events", "incidents")


@indicator(
    id="robbery_rate",
    theme="violence",
    title_es="Robos por 100 000 habitantes",
    title_en="Robberies per 100,000 inhabitants",
    formula="hechos de tipo robo en el año / población del año × 100 000" + DENOMINATOR + COVERAGE,
    unit="por 100 000 hab",
    direction="lower_is_better",
    inputs=RATE_INPUTS,
    optional_inputs=("statistics",),
    references=RATE_REFERENCES,
    disclosure="counts",
    part_of=EVERY_INCIDENT,
)
def robbery_rate(
    *, incidents: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, statistics: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Robberies per 100,000 inhabitants: :math:`10^5 E^{robo}_{m,t} / P_{m,t}`."""
    return _rate(
        yearly_counts(incidents, municipalities, statistics, types=(ROBBERY,)), "events", "incidents"
    )


@indicator(
    id="extortion_rate",
    theme="violence",
    title_es="Extorsiones por 100 000 habitantes",
    title_en="Extortions per 100,000 inhabitants",
    formula="hechos de tipo extorsión en el año / población del año × 100 000" + DENOMINATOR + COVERAGE,
    unit="por 100 000 hab",
    direction="lower_is_better",
    inputs=RATE_INPUTS,
    optional_inputs=("statistics",),
    references=RATE_REFERENCES,
    disclosure="counts",
    part_of=EVERY_INCIDENT,
)
def extortion_rate(
    *, incidents: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, statistics: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Extortions per 100,000 inhabitants: :math:`10^5 E^{extorsión}_{m,t} / P_{m,t}`."""
    return _rate(
        yearly_counts(incidents, municipalities, statistics, types=(EXTORTION,)), "events", "incidents"
    )


@indicator(
    id="homicide_rate_police",
    theme="violence",
    title_es="Tasa de homicidios según la PNC por 100 000 habitantes",
    title_en="Homicide rate per 100,000 inhabitants (police counts)",
    formula="homicidios contados por la PNC en el municipio y el año (estadísticas, variable "
    "'homicidios') / población del año × 100 000" + DENOMINATOR + "; un municipio o año que la tabla "
    "no da no tiene valor; n = homicidios",
    unit="por 100 000 hab",
    direction="lower_is_better",
    inputs=("statistics", "municipalities"),
    references=(
        "PNC / Mesa Técnica de Conciliación de Homicidios, homicidios por municipio",
        "ISO 37120:2018, 14.1 Number of homicides per 100 000 population",
        PROJECTIONS,
        CENSUS,
    ),
    sdg_target="16.1.1",
    iso37120="14.1",
    disclosure="counts",
)
def homicide_rate_police(*, statistics: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """The police's homicide counts per 100,000 inhabitants, per municipality and year.

    Notes
    -----
    :math:`r_{m,t} = 10^5 H_{m,t} / P_{m,t}`, the counts of the districts of a 2024 municipality summed
    before dividing. A municipality or year the table does not give has no value.
    """
    counts = statistics[statistics["variable"] == POLICE_HOMICIDES].dropna(subset=["value"])
    homicides = counts.groupby(["municipality_code", "period"])["value"].sum().rename("victims")
    years = sorted(homicides.index.get_level_values("period").astype(int).unique())
    population = yearly_population(municipalities, statistics, years).set_index(
        ["municipality_code", "period"]
    )
    table = population.join(homicides, how="inner").reset_index()
    return _rate(table.assign(events=table["victims"]), "victims", "statistics")


@indicator(
    id="population_in_hotspots_share",
    theme="violence",
    title_es="Población que vive en puntos calientes de violencia",
    title_en="Population living in violence hot spots",
    formula="población (capa population, periodo más reciente) de las celdas H3 (resolución 8) que son "
    "puntos calientes del año / población del municipio × 100; punto caliente = Gi* de Getis-Ord "
    "(esda.G_Local, star=True, pesos binarios de vecindad H3) de los hechos de cualquier tipo por "
    "celda con z > 0 y p (normal, unilateral) bajo el umbral de tasa de falsos descubrimientos "
    "(esda.fdr, alfa 0,05) entre todas las celdas del AMSS, sobre los recuentos publicados "
    "(incident_cells: las celdas reservadas cuentan como cero)",
    unit="%",
    direction="lower_is_better",
    inputs=("incident_cells", "population", "municipalities"),
    references=(
        "Getis, A. & Ord, J. K. (1992). The analysis of spatial association by use of distance "
        "statistics. Geographical Analysis 24(3); Ord & Getis (1995), Geographical Analysis 27(4)",
        "Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1)",
        "Uber H3 hexagonal grid, resolution 8 (about 0.74 km² per cell)",
    ),
    disclosure="derived",
)
def population_in_hotspots_share(
    *, incident_cells: gpd.GeoDataFrame, population: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Share of each municipality's people whose cell is a hot spot of incidents that year.

    Notes
    -----
    The hot spots come from :func:`observatory.indicators.hotspots.hotspot_cells` over the
    published incident cells (every type and municipality of a cell summed), on the whole area
    whatever the geography, so that no withheld count enters them; each population cell's people
    count where its representative point lies. A municipality without population cells has no value.
    """
    periods = population["period"].dropna()
    latest = population[population["period"] == periods.max()] if len(periods) else population
    people = population_cells(population_points(latest))
    residents = people.groupby("municipality_code")["population"].sum()
    residents = residents[residents.index.isin(municipalities["code"]) & (residents > 0)]
    parts = []
    counts = incident_cells.rename(columns={"h3_cell": "cell", "year": "period"})
    for year, cells in hotspot_cells(counts, municipalities).groupby("period"):
        hot = people["cell"].isin(cells.loc[cells["hot"], "cell"])
        in_hot = people[hot].groupby("municipality_code")["population"].sum().reindex(residents.index)
        share = 100 * in_hot.fillna(0.0) / residents
        parts.append(
            pd.DataFrame({"municipality_code": share.index, "period": int(year), "value": share.values})
        )
    columns = ["municipality_code", "period", "value"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
