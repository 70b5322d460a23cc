"""Urban land rent: declared construction investment per authorised m², a proxy of land value
(no cadastral valuation is published for the AMSS), from OPAMSS's construction permits."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.indicators.statistical.tables import tidy
from observatory.indicators.urban_control import APPROVED, CONSTRUCTION, SOURCE

PROXY = (
    "Aproximación (proxy) del valor del suelo: la inversión declarada en los permisos mide el costo de lo "
    "que se construye, no el precio del suelo; crece donde el suelo es más caro porque allí se construye "
    "más caro por m²"
)


def _priced_permits(permits: gpd.GeoDataFrame) -> pd.DataFrame:
    """Approved construction permits with both a floor area and an investment, by year of
    resolution: a permit missing either is missing, never a 0 that would pull the value down."""
    priced = (
        (permits["kind"] == CONSTRUCTION)
        & (permits["status"] == APPROVED)
        & permits["floor_area_m2"].notna()
        & permits["investment_usd"].notna()
        & permits["resolved"].notna()
    )
    rows = permits.loc[priced]
    return pd.DataFrame(
        {
            "municipality_code": rows["municipality_code"],
            "period": rows["resolved"].dt.year.astype(int),
            "floor_area_m2": rows["floor_area_m2"].astype(float),
            "investment_usd": rows["investment_usd"].astype(float),
        }
    ).dropna(subset=["municipality_code"])


@indicator(
    id="investment_per_authorised_m2",
    theme="land_rent",
    title_es="Inversión declarada por m² autorizado (proxy del valor del suelo)",
    title_en="Declared investment per authorised m² (land value proxy)",
    formula="Σ inversión declarada (USD) / Σ área de construcción autorizada (m²) de los permisos de "
    "construcción aprobados que declaran ambas, por año de resolución. " + PROXY,
    unit="USD/m²",
    direction="neutral",
    inputs=("permits",),
    references=(SOURCE, "UN-Habitat (2016). Urban land value and land-based finance (proxies of land value)"),
)
def investment_per_authorised_m2(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    grouped = _priced_permits(permits).groupby(["municipality_code", "period"])
    sums = grouped[["investment_usd", "floor_area_m2"]].sum()
    return tidy(sums["investment_usd"] / sums["floor_area_m2"], n=grouped.size())


@indicator(
    id="median_investment_per_m2",
    theme="land_rent",
    title_es="Mediana de la inversión por m² de los permisos (proxy del valor del suelo)",
    title_en="Median investment per m² of the permits (land value proxy)",
    formula="mediana, sobre los permisos de construcción aprobados que declaran ambas, de inversión "
    "declarada (USD) / área de construcción (m²), por año de resolución. " + PROXY,
    unit="USD/m²",
    direction="neutral",
    inputs=("permits",),
    references=(SOURCE,),
)
def median_investment_per_m2(*, permits: gpd.GeoDataFrame) -> pd.DataFrame:
    """The typical permit's price per m², which one large project cannot move as it moves the
    ratio of sums."""
    priced = _priced_permits(permits)
    grouped = (priced["investment_usd"] / priced["floor_area_m2"]).groupby(
        [priced["municipality_code"], priced["period"]]
    )
    return tidy(grouped.median(), n=grouped.size())
