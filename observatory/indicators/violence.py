"""Violence indicators: rates of incidents per 100,000 inhabitants, raw and Empirical-Bayes smoothed,
from incident points and from the police's counts per municipality, and the share of people living
in hot spots of incidents.

Every rate divides by the municipality's population in the same year (SDG 16.1.1 practice:
``observatory.indicators.denominators``), and counts zero only in the years and types its source
covers (``observatory.indicators.coverage``): no record outside them is no data, not zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from esda.smoothing import Spatial_Empirical_Bayes
from libpysal.weights import Queen, W

from observatory.indicators.coverage import covered_years
from observatory.indicators.denominators import POPULATION_RULE, PROJECTIONS, yearly_population
from observatory.indicators.hotspots import (
    ALPHA,
    PERMUTATIONS,
    RESOLUTION,
    SEED,
    hotspot_cells,
    population_cells,
)
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
    title_es="Tasa de homicidios suavizada (Bayes empírico local) por 100 000 habitantes",
    title_en="Local Empirical-Bayes smoothed homicide rate per 100,000 inhabitants",
    formula="estimador bayesiano empírico LOCAL de Marshall (1991, sección 3; "
    "esda.smoothing.Spatial_Empirical_Bayes), cada año, sobre las víctimas de homicidio "
    "e_i = tasa publicada × población del año / 100 000 y la población del año b_i (la misma con "
    "la que se calculó la tasa); vecindario N_i = el "
    "municipio y sus colindantes (contigüidad reina de los polígonos de la geografía calculada, "
    "libpysal) cuya tasa se publica; media local m_i = Σ_{N_i} e / Σ_{N_i} b; varianza local "
    "s²_i = Σ_{N_i} b_j (r_j − m_i)² / Σ_{N_i} b − m_i / b̄_i (b̄_i = media de b en N_i), llevada a 0 "
    "si es negativa (Marshall 1991), cada municipio por separado; tasa suavizada "
    "m_i + (r_i − m_i) s²_i / (s²_i + m_i / b_i) × 100 000 (m_i = 0: 0). Un municipio con la tasa "
    "reservada no entra en ningún vecindario y recibe la media local a priori de sus colindantes "
    "publicados (Σ e / Σ b sobre ellos; sin colindante publicado, sin valor), sin n: no depende de "
    "su recuento" + DENOMINATOR + "; n = hechos (eventos) del municipio, vacío si su tasa está reservada",
    unit="por 100 000 hab",
    direction="lower_is_better",
    inputs=("indicators", "municipalities", "statistics"),
    optional_inputs=("statistics",),
    references=(
        "Marshall, R. J. (1991). Mapping disease and mortality rates using empirical Bayes estimators. "
        "Journal of the Royal Statistical Society C 40(2), 283-294 (local estimator, section 3)",
        "Anselin, L., Lozano, N. & Koschinsky, J. (2006). Rate transformations and smoothing. "
        "Spatial Analysis Laboratory, University of Illinois (spatial Empirical Bayes)",
        "PySAL esda: esda.smoothing.Spatial_Empirical_Bayes; libpysal.weights.Queen",
        PROJECTIONS,
        CENSUS,
    ),
    sdg_target="16.1.1",
    disclosure="derived",
)
def homicide_rate_smoothed(
    *, indicators: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, statistics: gpd.GeoDataFrame
) -> pd.DataFrame:
    """Homicide rates shrunk towards the rate of each municipality's neighbourhood (itself and the
    municipalities it touches), the more so the smaller the municipality and the less the
    neighbourhood's rates vary beyond chance (see :func:`smoothed_rates`).

    Notes
    -----
    Computed from the published homicide rates (``indicators`` as the public see them: a withheld
    rate has no value): a local mean or variance carrying a withheld count would let it be solved
    for from the smoothed rates. A municipality whose own rate is withheld gets the local prior
    mean of its published neighbours and no ``n``: the posterior of a unit without data is its
    prior, and it is a function of published values alone, so it tells nothing about the withheld
    count. Neighbours are queen-contiguous polygons of the geography computed
    (:func:`contiguous_neighbours`).

    The global estimator (one mean and one variance over the 14 or 6 units) was replaced because
    with so few units its moment estimate of the between-area variance is negative in some years,
    and then every unit takes the pooled rate (a flat map).
    """
    rates = indicators[indicators["indicator_id"] == "homicide_rate"].astype({"period": "int64"})
    years = sorted(rates["period"].unique())
    population = yearly_population(municipalities, statistics, years)
    rates = rates.merge(population, on=["municipality_code", "period"], how="inner")
    touching = contiguous_neighbours(municipalities[municipalities["code"].isin(rates["municipality_code"])])
    parts = [pd.DataFrame({"municipality_code": [], "period": [], "value": [], "n": [], "input_periods": []})]
    for period, year in rates.groupby("period"):
        codes = year["municipality_code"].tolist()
        position = {code: i for i, code in enumerate(codes)}
        neighbours = [[position[c] for c in touching.get(code, []) if c in position] for code in codes]
        victims = (year["value"] * year["population"] / PER).to_numpy(dtype=float)
        smoothed = smoothed_rates(victims, year["population"].to_numpy(dtype=float), neighbours)
        parts.append(
            pd.DataFrame(
                {
                    "municipality_code": codes,
                    "period": int(period),
                    "value": smoothed * PER,
                    "n": year["n"].where(year["value"].notna()).to_numpy(dtype=float),
                    "input_periods": [
                        {"indicators": int(period), "population": int(used)}
                        for used in year["population_period"]
                    ],
                }
            ).dropna(subset=["value"])
        )
    return pd.concat(parts, ignore_index=True)


def contiguous_neighbours(municipalities: gpd.GeoDataFrame) -> dict[str, list[str]]:
    """Each municipality's code -> the codes of the municipalities its polygon touches (queen
    contiguity: a shared vertex suffices; ``libpysal.weights.Queen``)."""
    if municipalities.empty:
        return {}
    codes = municipalities["code"].astype(str).tolist()
    weights = Queen.from_dataframe(municipalities, ids=codes, use_index=False, silence_warnings=True)
    return {code: sorted(str(n) for n in weights.neighbors[code]) for code in codes}


def smoothed_rates(
    events: np.ndarray, population: np.ndarray, neighbours: Sequence[Sequence[int]]
) -> np.ndarray:
    """Local Empirical-Bayes rates (events per inhabitant) of areas with these events, populations
    and neighbours (``neighbours[i]``: positions of the areas touching area ``i``, not ``i``).

    An area whose events are NaN (withheld) takes no part in any neighbourhood and gets its prior:
    the rate of its neighbours with events together (NaN without one).

    Notes
    -----
    Marshall (1991, section 3), as ``esda.smoothing.Spatial_Empirical_Bayes`` computes it: with
    :math:`N_i` area :math:`i` and its neighbours, :math:`r_j = e_j / b_j`,

    .. math::

        m_i = \\frac{\\sum_{N_i} e_j}{\\sum_{N_i} b_j}, \\quad
        s^2_i = \\max\\Big(0, \\frac{\\sum_{N_i} b_j (r_j - m_i)^2}{\\sum_{N_i} b_j}
            - \\frac{m_i}{\\bar b_i}\\Big), \\quad
        \\hat r_i = m_i + (r_i - m_i) \\frac{s^2_i}{s^2_i + m_i / b_i}

    with :math:`\\bar b_i` the mean population of :math:`N_i`. Where :math:`s^2_i` would be
    negative (the neighbourhood's rates vary less than chance alone would make them) it is 0 for
    that area alone, which then takes its local mean: unlike the global estimator, where a
    negative variance gives every area the one pooled rate, the local means still differ. Where
    the neighbourhood has no events at all (:math:`m_i = 0`), the rate is 0 (esda divides 0 by 0).

    Examples
    --------
    Three areas in a row, the middle one small with an extreme rate: it is pulled towards its
    neighbours, the large ones barely move.

    >>> smoothed_rates(np.array([10.0, 5.0, 12.0]), np.array([10_000.0, 1_000.0, 12_000.0]),
    ...                [[1], [0, 2], [1]]).round(5)
    array([0.00104, 0.00234, 0.00103])
    """
    events, population = np.asarray(events, dtype=float), np.asarray(population, dtype=float)
    published = ~np.isnan(events)
    where = [int(i) for i in np.flatnonzero(published)]
    position = {i: k for k, i in enumerate(where)}
    smoothed = np.full(len(events), np.nan)
    if len(where):
        weights = W(
            {k: [position[j] for j in neighbours[i] if j in position] for k, i in enumerate(where)},
            id_order=list(range(len(where))),
            silence_warnings=True,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            local = np.asarray(
                Spatial_Empirical_Bayes(events[where], population[where], weights).r, dtype=float
            ).ravel()
        smoothed[where] = np.nan_to_num(local, nan=0.0)  # 0 / 0: a neighbourhood without events
    for i in (int(i) for i in np.flatnonzero(~published)):
        around = [j for j in neighbours[i] if published[j]]
        if around:
            smoothed[i] = events[around].sum() / population[around].sum()
    return smoothed


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
    formula=(
        f"población (capa population, periodo más reciente) de las celdas H3 (resolución {RESOLUTION}) "
        f"que son puntos calientes del año / población del municipio × 100. Retícula: las celdas H3 de "
        f"resolución {RESOLUTION} "
        "cuyo centro cae dentro de la unión de los polígonos de los municipios (h3.geo_to_cells), más toda "
        "celda con un recuento publicado en cualquier año (incident_cells; las celdas reservadas y las "
        "demás cuentan como cero); valor por celda = hechos de cualquier tipo y municipio de la celda en "
        "el año. Estadístico: Gi* de Getis-Ord (esda.G_Local, star=True) con pesos binarios: la celda y "
        "sus vecinas del anillo 1 (h3.grid_disk(celda, 1)) que están en la retícula. Inferencia: "
        f"permutación condicional ({PERMUTATIONS:,} permutaciones, semilla fija {SEED}: resultado "
        f"determinista), p bilateral = min(1, 2 × min(p≥, p≤)) con p≥ = (#{{G*_sim ≥ G*}} + 1) / "
        f"{PERMUTATIONS + 1:,} (empates en ambas colas), corrección de Benjamini-Hochberg (esda.fdr, alfa "
        f"{ALPHA:g}) sobre todas las celdas del año; "
        "z = (suma de las vecinas − k × media de las demás celdas) / su desviación bajo la permutación. "
        "Punto caliente = z > 0 y p bajo el umbral (z < 0 y p bajo el umbral es un punto frío, que "
        "nunca cuenta). Personas de cada celda de población según su punto representativo"
    ),
    unit="%",
    direction="lower_is_better",
    inputs=("incident_cells", "population", "municipalities"),
    references=(
        "Getis, A. & Ord, J. K. (1992). The analysis of spatial association by use of distance "
        "statistics. Geographical Analysis 24(3); Ord & Getis (1995), Geographical Analysis 27(4)",
        "Anselin, L. (1995). Local indicators of spatial association - LISA. Geographical Analysis "
        "27(2) (conditional permutation)",
        "Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57(1)",
        "Caldas de Castro, M. & Singer, B. H. (2006). Controlling the false discovery rate: a new "
        "application to account for multiple and dependent tests in local statistics of spatial "
        "association. Geographical Analysis 38(2)",
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
