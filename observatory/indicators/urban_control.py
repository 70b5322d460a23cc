"""Urban-control indicators: permits granted, floor area, investment and processing times."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd

from observatory.indicators.registry import indicator

CONSTRUCTION = "permiso_construccion"
APPROVED = "aprobado"
SOURCE = "OPAMSS, registro de trámites de control urbano"


def business_days(submitted: pd.Series, resolved: pd.Series) -> pd.Series:
    """Business days (Monday to Friday) from submission to resolution, as the law counts them."""
    done = submitted.notna() & resolved.notna()
    days = pd.Series(np.nan, index=submitted.index)
    days[done] = np.busday_count(
        submitted[done].to_numpy(dtype="datetime64[D]"),
        resolved[done].to_numpy(dtype="datetime64[D]"),
    )
    return days


def _per_municipality_year(
    permits: pd.DataFrame,
    municipalities: gpd.GeoDataFrame,
    value: pd.Series,
    aggregate: Callable[[pd.Series], float] | str,
    *,
    fill: float | None,
) -> pd.DataFrame:
    """Aggregate ``value`` by municipality and year of resolution.

    With ``fill`` every municipality gets a row for every year that has any permit (a municipality
    with no permit that year scores ``fill``); without it, only observed pairs are returned.
    """
    frame = pd.DataFrame(
        {
            "municipality_code": permits["municipality_code"],
            "period": permits["resolved"].dt.year,
            "value": value,
        }
    ).dropna(subset=["period", "value"])
    frame["period"] = frame["period"].astype(int)
    values = frame.groupby(["municipality_code", "period"])["value"].agg(aggregate)
    if fill is not None:
        grid = pd.MultiIndex.from_product(
            [sorted(municipalities["code"]), sorted(frame["period"].unique())],
            names=["municipality_code", "period"],
        )
        values = values.reindex(grid, fill_value=fill)
    return values.astype(float).reset_index()


def _granted_total(permits: pd.DataFrame, municipalities: gpd.GeoDataFrame, column: str) -> pd.DataFrame:
    """Sum of ``column`` over approved construction permits, by municipality and year."""
    granted = (permits["kind"] == CONSTRUCTION) & (permits["status"] == APPROVED)
    amounts = permits[column].where(granted, 0.0).fillna(0.0)
    return _per_municipality_year(permits, municipalities, amounts, "sum", fill=0.0)


@indicator(
    id="permits_count",
    theme="urban_control",
    title_es="Permisos de construcción otorgados",
    title_en="Construction permits granted",
    formula="número de permisos de construcción aprobados, por año de resolución",
    unit="permisos",
    direction="neutral",
    inputs=("permits", "municipalities"),
    references=(SOURCE,),
)
def permits_count(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _granted_total(permits.assign(one=1.0), municipalities, "one")


@indicator(
    id="authorised_floor_area",
    theme="urban_control",
    title_es="Superficie de construcción autorizada",
    title_en="Authorised floor area",
    formula="Σ área de construcción (m²) de los permisos de construcción aprobados, por año",
    unit="m²",
    direction="neutral",
    inputs=("permits", "municipalities"),
    references=(SOURCE,),
)
def authorised_floor_area(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _granted_total(permits, municipalities, "floor_area_m2")


@indicator(
    id="declared_investment",
    theme="urban_control",
    title_es="Inversión declarada en construcción",
    title_en="Declared construction investment",
    formula="Σ inversión declarada (USD) de los permisos de construcción aprobados, por año",
    unit="USD",
    direction="higher_is_better",
    inputs=("permits", "municipalities"),
    references=(SOURCE,),
)
def declared_investment(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    return _granted_total(permits, municipalities, "investment_usd")


@indicator(
    id="median_processing_days",
    sdg_target="16.6",
    theme="urban_control",
    title_es="Tiempo mediano de resolución",
    title_en="Median processing time",
    formula="mediana de días hábiles entre ingreso y resolución de los trámites, por año de resolución",
    unit="días hábiles",
    direction="lower_is_better",
    inputs=("permits", "municipalities"),
    references=(
        SOURCE,
        "Ley Especial de Agilización de Trámites para el Fomento de Proyectos de Construcción",
    ),
)
def median_processing_days(*, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    days = business_days(permits["submitted"], permits["resolved"])
    return _per_municipality_year(permits, municipalities, days, "median", fill=None)


@indicator(
    id="resolved_within_legal_limit",
    sdg_target="16.6",
    theme="urban_control",
    title_es="Trámites resueltos dentro del plazo legal",
    title_en="Files resolved within the legal limit",
    formula="100 × trámites resueltos en ≤ plazo legal (días hábiles) / trámites resueltos, por año",
    unit="%",
    direction="higher_is_better",
    inputs=("permits", "municipalities"),
    references=(
        SOURCE,
        "Ley Especial de Agilización de Trámites para el Fomento de Proyectos de Construcción",
    ),
    options=("legal_limit_business_days",),
)
def resolved_within_legal_limit(
    *, permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, legal_limit_business_days: int
) -> pd.DataFrame:
    days = business_days(permits["submitted"], permits["resolved"])
    within = (days <= legal_limit_business_days).astype(float).where(days.notna())
    return _per_municipality_year(permits, municipalities, 100.0 * within, "mean", fill=None)
