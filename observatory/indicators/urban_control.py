"""Urban-control indicators: what OPAMSS grants, how fast, where, and what escapes it.

Two procedures are kept apart throughout, each timed against a legal limit of its own: construction
permits (``permiso_construccion``) and site-suitability rulings (``calificacion_lugar``). Values go
by municipality and year of resolution (of the complaint, for complaints); each carries ``n``, the
records behind it. A municipality without a usable record in a year has no row, except for counts
and totals of granted permits, where a year with permits elsewhere truly gives it 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import holidays
import numpy as np
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.settings import METRIC_CRS
from zoning import compatibility_table

CONSTRUCTION = "permiso_construccion"
RULING = "calificacion_lugar"
APPROVED = "aprobado"
DECIDED = ("aprobado", "denegado")
"""Statuses of a file the office resolved. Withdrawn or archived files (``desistido``,
``archivado``) stopped on the applicant's side and say nothing of the office's time."""
HOUSING = "habitacional"
OFFICE_SUBDIVISION = "SS"
"""OPAMSS sits in San Salvador: its calendar also closes for the city's August feasts."""
SOURCE = "OPAMSS, registro de trámites de control urbano"
LAW = "Ley Especial de Agilización de Trámites para el Fomento de Proyectos de Construcción (D.L. 521, 2013)"
COUNTING_RULE = (
    "días hábiles: lunes a viernes sin los asuetos nacionales ni las fiestas agostinas de San Salvador "
    "(paquete holidays, SV/SS); no se cuenta el día de ingreso y sí el de resolución (ingreso el viernes y "
    "resolución el lunes siguiente: 1 día; resolución en asueto: ese día no cuenta)"
)
KEYS = ["municipality_code", "period"]


def business_days(submitted: pd.Series, resolved: pd.Series) -> pd.Series:
    """Business days the office took, by COUNTING_RULE: NaN where a date is missing."""
    done = submitted.notna() & resolved.notna()
    days = pd.Series(np.nan, index=submitted.index)
    if not done.any():
        return days
    years = range(int(submitted[done].dt.year.min()), int(resolved[done].dt.year.max()) + 1)
    closed = holidays.country_holidays("SV", subdiv=OFFICE_SUBDIVISION, years=years)
    one_day = np.timedelta64(1, "D")
    days[done] = np.busday_count(
        submitted[done].to_numpy(dtype="datetime64[D]") + one_day,
        resolved[done].to_numpy(dtype="datetime64[D]") + one_day,
        holidays=np.array(sorted(closed), dtype="datetime64[D]"),
    )
    return days


def _summarise(records: pd.DataFrame, value: pd.Series, how: str) -> pd.DataFrame:
    """``value`` aggregated (``how``) per municipality and period over the records where it is
    known; ``n`` is how many those are. Groups with no known value get no row."""
    frame = records[KEYS].assign(value=value).dropna(subset=["period", "value"])
    frame["period"] = frame["period"].astype(int)
    grouped = frame.groupby(KEYS)["value"].agg(value=how, n="count").reset_index()
    return grouped.astype({"value": float})


def _resolved(permits: pd.DataFrame, kind: str, statuses: Iterable[str]) -> pd.DataFrame:
    """Files of one procedure in the given statuses, with the year they were resolved as period."""
    chosen = permits[(permits["kind"] == kind) & permits["status"].isin(list(statuses))]
    return chosen.assign(period=chosen["resolved"].dt.year)


def _granted_total(
    permits: pd.DataFrame, municipalities: pd.DataFrame, kind: str, column: str | None
) -> pd.DataFrame:
    """Count (``column`` None) or sum of ``column`` over approved files: the sum of the known
    amounts, n of them. Every municipality gets every year with an approved file somewhere; one
    with none of its own scores 0 (n 0), one whose files all lack the amount gets no row."""
    granted = _resolved(permits, kind, [APPROVED])
    amounts = pd.Series(1.0, index=granted.index) if column is None else granted[column]
    totals = _summarise(granted, amounts, "sum").set_index(KEYS)
    grid = granted_grid(permits, municipalities, kind)
    with_files = pd.MultiIndex.from_frame(granted[KEYS].dropna().astype({"period": int}))
    empty = grid[~grid.isin(with_files)]
    zeros = pd.DataFrame({"value": 0.0, "n": 0}, index=empty)
    return pd.concat([totals, zeros]).sort_index().reset_index()


def granted_grid(permits: pd.DataFrame, municipalities: pd.DataFrame, kind: str) -> pd.MultiIndex:
    """Every municipality × every year in which the office resolved an approved file of ``kind``:
    where a count of granted files is a true 0. A year with none resolved anywhere is not in it: the
    register says nothing of that year, and no record is not zero."""
    granted = _resolved(permits, kind, [APPROVED])
    periods = sorted(granted["period"].dropna().astype(int).unique())
    return pd.MultiIndex.from_product([sorted(municipalities["code"]), periods], names=KEYS)


def _processing_days(permits: pd.DataFrame, kind: str, how: str) -> pd.DataFrame:
    decided = _resolved(permits, kind, DECIDED)
    return _summarise(decided, business_days(decided["submitted"], decided["resolved"]), how)


def _within_limit(permits: pd.DataFrame, kind: str, limit: int) -> pd.DataFrame:
    decided = _resolved(permits, kind, DECIDED)
    days = business_days(decided["submitted"], decided["resolved"])
    return _summarise(decided, 100.0 * (days <= limit).astype(float).where(days.notna()), "mean")


def _use_share(permits: pd.DataFrame, kind: str, use_class: str) -> pd.DataFrame:
    granted = _resolved(permits, kind, [APPROVED])
    uses = granted["use_class"]
    return _summarise(granted, 100.0 * (uses == use_class).astype(float).where(uses.notna()), "mean")


URBAN_CONTROL: dict[str, Any] = {"theme": "urban_control", "references": (SOURCE,)}
TIMING: dict[str, Any] = {**URBAN_CONTROL, "references": (SOURCE, LAW), "sdg_target": "16.6"}
"""Processing times measure how effective the institution is (SDG 16.6)."""
COUNTED = ("permits", "municipalities")


@indicator(
    id="permits_count",
    title_es="Permisos de construcción otorgados",
    title_en="Construction permits granted",
    formula="número de permisos de construcción aprobados, por año de resolución (0 donde no hubo)",
    unit="permisos",
    direction="neutral",
    inputs=COUNTED,
    **URBAN_CONTROL,
)
def permits_count(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _granted_total(permits, municipalities, CONSTRUCTION, None)


@indicator(
    id="site_rulings_count",
    title_es="Calificaciones de lugar otorgadas",
    title_en="Site-suitability rulings granted",
    formula="número de calificaciones de lugar aprobadas, por año de resolución (0 donde no hubo)",
    unit="trámites",
    direction="neutral",
    inputs=COUNTED,
    **URBAN_CONTROL,
)
def site_rulings_count(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _granted_total(permits, municipalities, RULING, None)


@indicator(
    id="authorised_floor_area",
    title_es="Superficie de construcción autorizada",
    title_en="Authorised floor area",
    formula=(
        "Σ área de construcción (m²) conocida de los permisos de construcción aprobados, por año de "
        "resolución; n = permisos con área; sin valor si ninguno la declara (nunca 0 por omisión)"
    ),
    unit="m²",
    direction="neutral",
    inputs=COUNTED,
    **URBAN_CONTROL,
)
def authorised_floor_area(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _granted_total(permits, municipalities, CONSTRUCTION, "floor_area_m2")


@indicator(
    id="declared_investment",
    title_es="Inversión declarada en construcción",
    title_en="Declared construction investment",
    formula=(
        "Σ inversión declarada (USD) conocida de los permisos de construcción aprobados, por año de "
        "resolución; n = permisos con inversión; sin valor si ninguno la declara (nunca 0 por omisión)"
    ),
    unit="USD",
    direction="higher_is_better",
    inputs=COUNTED,
    **URBAN_CONTROL,
)
def declared_investment(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _granted_total(permits, municipalities, CONSTRUCTION, "investment_usd")


PERMITS_TIMES = f"de los permisos de construcción resueltos (aprobados o denegados), por año de resolución; {COUNTING_RULE}"  # noqa: E501
RULINGS_TIMES = f"de las calificaciones de lugar resueltas (aprobadas o denegadas), por año de resolución; {COUNTING_RULE}"  # noqa: E501
DAYS: dict[str, Any] = {
    **TIMING,
    "unit": "días hábiles",
    "direction": "lower_is_better",
    "inputs": ("permits",),
}
WITHIN: dict[str, Any] = {**TIMING, "unit": "%", "direction": "higher_is_better", "inputs": ("permits",)}


@indicator(
    id="mean_processing_days",
    title_es="Tiempo promedio de resolución de permisos de construcción",
    title_en="Mean processing time of construction permits",
    formula=f"media de días hábiles entre ingreso y resolución {PERMITS_TIMES}",
    **DAYS,
)
def mean_processing_days(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    return _processing_days(permits, CONSTRUCTION, "mean")


@indicator(
    id="median_processing_days",
    title_es="Tiempo mediano de resolución de permisos de construcción",
    title_en="Median processing time of construction permits",
    formula=f"mediana de días hábiles entre ingreso y resolución {PERMITS_TIMES}",
    **DAYS,
)
def median_processing_days(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    return _processing_days(permits, CONSTRUCTION, "median")


@indicator(
    id="resolved_within_legal_limit",
    title_es="Permisos de construcción resueltos dentro del plazo legal",
    title_en="Construction permits resolved within the legal limit",
    formula="100 × permisos con días hábiles ≤ {legal_limit_business_days} / permisos, " + PERMITS_TIMES,
    options=("legal_limit_business_days",),
    **WITHIN,
)
def resolved_within_legal_limit(*, permits: gpd.GeoDataFrame, legal_limit_business_days: int) -> pd.DataFrame:
    return _within_limit(permits, CONSTRUCTION, legal_limit_business_days)


@indicator(
    id="mean_processing_days_rulings",
    title_es="Tiempo promedio de resolución de calificaciones de lugar",
    title_en="Mean processing time of site-suitability rulings",
    formula=f"media de días hábiles entre ingreso y resolución {RULINGS_TIMES}",
    **DAYS,
)
def mean_processing_days_rulings(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    return _processing_days(permits, RULING, "mean")


@indicator(
    id="median_processing_days_rulings",
    title_es="Tiempo mediano de resolución de calificaciones de lugar",
    title_en="Median processing time of site-suitability rulings",
    formula=f"mediana de días hábiles entre ingreso y resolución {RULINGS_TIMES}",
    **DAYS,
)
def median_processing_days_rulings(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    return _processing_days(permits, RULING, "median")


@indicator(
    id="resolved_within_legal_limit_rulings",
    title_es="Calificaciones de lugar resueltas dentro del plazo legal",
    title_en="Site-suitability rulings resolved within the legal limit",
    formula=(
        "100 × calificaciones con días hábiles ≤ {legal_limit_business_days_rulings} / calificaciones, "
        + RULINGS_TIMES
    ),
    options=("legal_limit_business_days_rulings",),
    **WITHIN,
)
def resolved_within_legal_limit_rulings(
    *, permits: gpd.GeoDataFrame, legal_limit_business_days_rulings: int
) -> pd.DataFrame:
    return _within_limit(permits, RULING, legal_limit_business_days_rulings)


SHARE: dict[str, Any] = {**URBAN_CONTROL, "unit": "%", "direction": "neutral", "inputs": ("permits",)}


@indicator(
    id="housing_permits_share",
    title_es="Permisos de construcción de uso habitacional",
    title_en="Housing share of construction permits",
    formula="100 × permisos de construcción aprobados de uso habitacional / aprobados con uso conocido, por año de resolución",  # noqa: E501
    **SHARE,
)
def housing_permits_share(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    return _use_share(permits, CONSTRUCTION, HOUSING)


@indicator(
    id="housing_rulings_share",
    title_es="Calificaciones de lugar de uso habitacional",
    title_en="Housing share of site-suitability rulings",
    formula="100 × calificaciones de lugar aprobadas de uso habitacional / aprobadas con uso conocido, por año de resolución",  # noqa: E501
    **SHARE,
)
def housing_rulings_share(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    return _use_share(permits, RULING, HOUSING)


@indicator(
    id="permits_compatible_share",
    theme="urban_control",
    title_es="Permisos de construcción compatibles con el Esquema Director",
    title_en="Construction permits compatible with the land-use plan",
    formula=(
        "100 × permisos de construcción aprobados cuyo uso es compatible o condicionado (permitido con "
        "condiciones que el propio permiso verifica) con la clase de uso del suelo de la zona donde está "
        "su punto / permisos evaluables, por año de resolución; tabla zoning/compatibility.csv; no "
        "evaluables (uso fuera de la tabla, punto fuera de toda zona) quedan fuera de n"
    ),
    unit="%",
    direction="higher_is_better",
    inputs=("permits", "zoning"),
    references=(SOURCE, "OPAMSS, Esquema Director del AMSS: matriz de compatibilidad de usos del suelo"),
)
def permits_compatible_share(*, permits: gpd.GeoDataFrame, zoning: gpd.GeoDataFrame) -> pd.DataFrame:
    granted = _resolved(permits, CONSTRUCTION, [APPROVED])
    zones = zoning[["land_use_class", zoning.geometry.name]].to_crs(granted.crs)
    placed = gpd.sjoin(granted, zones, how="left", predicate="within")
    land_use = placed.loc[~placed.index.duplicated(keep="first"), "land_use_class"]
    level = pd.Series(
        [compatibility_table().get(pair) for pair in zip(granted["use_class"], land_use, strict=True)],
        index=granted.index,
        dtype=object,
    )
    return _summarise(granted, 100.0 * (level != "incompatible").astype(float).where(level.notna()), "mean")


def covered_by_permit(
    complaints: gpd.GeoDataFrame, permits: gpd.GeoDataFrame, *, distance_m: float, days: int
) -> pd.Series:
    """Whether each complaint has an approved construction permit within ``distance_m`` metres
    (≤, in METRIC_CRS) submitted 0 to ``days`` days (both included) before the complaint."""
    granted = permits[(permits["kind"] == CONSTRUCTION) & (permits["status"] == APPROVED)]
    pairs = gpd.sjoin(
        complaints[["date", complaints.geometry.name]].to_crs(METRIC_CRS),
        granted[["submitted", granted.geometry.name]].to_crs(METRIC_CRS),
        predicate="dwithin",
        distance=distance_m,
    )
    lag = (pairs["date"] - pairs["submitted"]).dt.days
    in_window = pairs.index[(lag >= 0) & (lag <= days)]
    return pd.Series(complaints.index.isin(in_window), index=complaints.index)


@indicator(
    id="complaints_without_permit_share",
    theme="urban_control",
    title_es="Denuncias de construcción ilegal sin permiso cercano",
    title_en="Complaints of illegal construction with no permit nearby",
    formula=(
        "100 × denuncias sin permiso de construcción aprobado a ≤ {complaint_permit_distance_m} metros "
        "ingresado entre {complaint_permit_days} días antes y el día de la denuncia / denuncias, por año "
        "de la denuncia"
    ),
    unit="%",
    direction="lower_is_better",
    inputs=("complaints", "permits"),
    references=(SOURCE, "OPAMSS, registro de denuncias ciudadanas"),
    options=("complaint_permit_distance_m", "complaint_permit_days"),
)
def complaints_without_permit_share(
    *,
    complaints: gpd.GeoDataFrame,
    permits: gpd.GeoDataFrame,
    complaint_permit_distance_m: float,
    complaint_permit_days: int,
) -> pd.DataFrame:
    covered = covered_by_permit(
        complaints, permits, distance_m=complaint_permit_distance_m, days=complaint_permit_days
    )
    dated = complaints.assign(period=complaints["date"].dt.year)
    return _summarise(dated, 100.0 * (~covered).astype(float), "mean")
