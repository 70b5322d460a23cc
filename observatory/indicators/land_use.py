"""Land-use indicators from the zoning plan (Esquema Director)."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd

from observatory.indicators.registry import indicator
from observatory.settings import METRIC_CRS
from zoning import LAND_USE_CLASSES


def plan_year(version: str | None) -> int | None:
    """The year a plan version names (``ED-2017`` -> 2017), None when it names none."""
    found = re.search(r"(19|20)\d{2}", version or "")
    return int(found.group()) if found else None


@indicator(
    id="land_use_mix",
    theme="urban_control",
    title_es="Mezcla de usos del suelo (entropía)",
    title_en="Land-use mix (entropy)",
    formula="−Σ pᵢ ln pᵢ / ln K, pᵢ = área de la clase i en el municipio / área zonificada, K = clases",
    unit="índice 0–1",
    direction="higher_is_better",
    inputs=("zoning", "municipalities"),
    references=(
        "Cervero, R. & Kockelman, K. (1997). Travel demand and the 3Ds. Transportation Research D 2(3)",
        "Song, Y., Merlin, L. & Rodriguez, D. (2013). Comparing measures of urban land use mix. CEUS 42",
    ),
)
def land_use_mix(*, zoning: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame) -> pd.DataFrame:
    """Normalised Shannon entropy of the zoning classes' areas within each municipality.

    Notes
    -----
    :math:`E_m = -\\sum_i p_i \\ln p_i / \\ln K`, where :math:`p_i` is the share of the
    municipality's zoned area in class *i* and *K* the number of Esquema Director classes, so
    0 means one single use and 1 all classes in equal shares (Cervero & Kockelman 1997).
    Areas are measured in UTM 16N.
    """
    pieces = gpd.overlay(
        zoning[["land_use_class", "plan_version", "geom"]].to_crs(METRIC_CRS),
        municipalities[["code", "geom"]].to_crs(METRIC_CRS),
        how="intersection",
        keep_geom_type=True,
    )
    pieces["area"] = pieces.area
    pieces["period"] = pieces["plan_version"].map(plan_year)
    areas = pieces.dropna(subset=["period"]).groupby(["code", "period", "land_use_class"])["area"].sum()
    shares = areas / areas.groupby(level=["code", "period"]).transform("sum")
    entropy = -(shares * np.log(shares)).groupby(level=["code", "period"]).sum() / np.log(
        len(LAND_USE_CLASSES)
    )
    frame = entropy.rename("value").reset_index().rename(columns={"code": "municipality_code"})
    frame["period"] = frame["period"].astype(int)
    return frame
