"""Territorial safety (risk) indicators: people, land and new construction exposed to floods and
landslides, read from the hazard rasters by exact cell coverage."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from layers import get_raster_layer
from observatory.indicators.memo import BoundedMemo
from observatory.indicators.registry import indicator
from observatory.indicators.urban_control import APPROVED, CONSTRUCTION, granted_grid
from observatory.rasters import Condition, values_at, zonal_areas

FLOOD_DEPTH_M = 0.5
"""Depth above which a flood endangers people and buildings (strictly deeper counts)."""
LANDSLIDE_HIGH_CLASS = 4
"""Susceptibility classes 4 (alta) and 5 (muy alta) count as high."""
FLOOD_100Y = "flood_depth_100y"
LANDSLIDE = "landslide_susceptibility"
FLOOD_REFERENCES = (
    "MARN, Observatorio Ambiental: mapas de amenaza por inundación",
    "Umbral de 0,5 m: profundidad a la que el agua arrastra a personas (FEMA/DEFRA, FD2321)",
    "Cobertura exacta de celdas: exactextract (Baston, isciences)",
)
LANDSLIDE_REFERENCES = (
    "MARN, mapa de susceptibilidad a deslizamientos de El Salvador",
    "Cobertura exacta de celdas: exactextract (Baston, isciences)",
)


def flooded(depth: np.ndarray) -> np.ndarray:
    return depth > FLOOD_DEPTH_M


def high_landslide(susceptibility: np.ndarray) -> np.ndarray:
    return susceptibility >= LANDSLIDE_HIGH_CLASS


CACHED_SHARES = 4
"""Hazard shares kept in memory: a compute run needs two (the flood's and the landslides')."""
_shares: BoundedMemo[np.ndarray] = BoundedMemo(CACHED_SHARES)


def exposed_shares(cells: gpd.GeoDataFrame, hazard: Path, where: Condition) -> np.ndarray:
    """Each cell's share of its area on the hazard raster where ``where`` holds, in the cells' order
    (read-only; 0 for a cell off the raster).

    Measured once per set of cells, raster and condition: a compute run asks four times per raster
    (two indicators on two geographies). The key is what the shares depend on, by content: the
    cells' geometries (the 2024 geography gets a copy of the frame, with other municipality codes),
    the raster file's bytes (a reloaded raster is measured again) and the condition.
    """
    with hazard.open("rb") as raster:
        raster_digest = hashlib.file_digest(raster, "blake2b").digest()
    geometries = pickle.dumps(shapely.to_wkb(cells.geometry.to_numpy()))  # exact, missing ones too
    key = (hashlib.blake2b(geometries).digest(), str(cells.crs), raster_digest, where)

    def measure() -> np.ndarray:
        areas = zonal_areas(hazard, cells.reset_index(drop=True), id_column="cell_id", where=where)
        share = (areas["where_area_m2"] / areas["area_m2"]).where(areas["area_m2"] > 0, 0.0).to_numpy()
        share.flags.writeable = False
        return share

    return _shares.get(key, measure)


def exposed_population(population: gpd.GeoDataFrame, hazard: Path, where: Condition) -> pd.DataFrame:
    """People exposed and people counted, per municipality and period of the population cells.

    Notes
    -----
    :math:`E_m = \\sum_j P_j \\, A_j^{h} / A_j`: each cell's people :math:`P_j` weighted by the
    share of its area on the hazard raster where ``where`` holds (areal weighting with exact cell
    coverage: people are taken as spread evenly within a cell). A cell off the raster is not
    exposed, as a nodata pixel is not.
    """
    share = exposed_shares(population, hazard, where)
    people = population["population"].astype(float).to_numpy()
    frame = pd.DataFrame(
        {
            "municipality_code": population["municipality_code"].to_numpy(),
            "period": population["period"].to_numpy(),
            "exposed": people * share,
            "people": people,
        }
    ).dropna(subset=["municipality_code", "period"])
    totals = frame.groupby(["municipality_code", "period"], as_index=False)[["exposed", "people"]].sum()
    return totals.astype({"period": int})


def _exposed_count(population: gpd.GeoDataFrame, hazard: Path, where: Condition) -> pd.DataFrame:
    totals = exposed_population(population, hazard, where)
    return totals.assign(value=totals["exposed"])[["municipality_code", "period", "value"]]


def _exposed_share(population: gpd.GeoDataFrame, hazard: Path, where: Condition) -> pd.DataFrame:
    totals = exposed_population(population, hazard, where)
    totals = totals[totals["people"] > 0]
    return totals.assign(value=100 * totals["exposed"] / totals["people"])[
        ["municipality_code", "period", "value"]
    ]


@indicator(
    id="flood_exposed_population_100y",
    sdg_target="11.5.1",
    theme="risk",
    title_es="Población expuesta a inundación (100 años, > 0,5 m)",
    title_en="Population exposed to the 100-year flood (> 0.5 m)",
    formula="Σ población de cada celda × (área de la celda con profundidad > 0,5 m / área de la celda); "
    "píxeles sin dato no cuentan como expuestos",
    unit="personas",
    direction="lower_is_better",
    inputs=("population", FLOOD_100Y),
    references=FLOOD_REFERENCES,
)
def flood_exposed_population_100y(*, population: gpd.GeoDataFrame, flood_depth_100y: Path) -> pd.DataFrame:
    return _exposed_count(population, flood_depth_100y, flooded)


@indicator(
    id="flood_exposed_population_share_100y",
    sdg_target="11.5.1",
    theme="risk",
    title_es="Porcentaje de población expuesta a inundación (100 años, > 0,5 m)",
    title_en="Share of population exposed to the 100-year flood (> 0.5 m)",
    formula="100 × población expuesta a profundidad > 0,5 m / población de las celdas del municipio",
    unit="%",
    direction="lower_is_better",
    inputs=("population", FLOOD_100Y),
    references=FLOOD_REFERENCES,
)
def flood_exposed_population_share_100y(
    *, population: gpd.GeoDataFrame, flood_depth_100y: Path
) -> pd.DataFrame:
    return _exposed_share(population, flood_depth_100y, flooded)


@indicator(
    id="flood_exposed_area_100y",
    sdg_target="11.5",
    theme="risk",
    title_es="Área inundable (100 años, > 0,5 m)",
    title_en="Area flooded deeper than 0.5 m (100-year event)",
    formula="Σ área (km²) de píxeles con profundidad > 0,5 m × fracción del píxel dentro del municipio",
    unit="km²",
    direction="lower_is_better",
    inputs=("municipalities", FLOOD_100Y),
    references=FLOOD_REFERENCES,
)
def flood_exposed_area_100y(*, municipalities: gpd.GeoDataFrame, flood_depth_100y: Path) -> pd.DataFrame:
    areas = zonal_areas(flood_depth_100y, municipalities, id_column="code", where=flooded)
    return pd.DataFrame(
        {
            "municipality_code": areas["code"],
            "period": get_raster_layer(FLOOD_100Y).year,
            "value": areas["where_area_m2"] / 1e6,
        }
    )


@indicator(
    id="landslide_high_population",
    sdg_target="11.5.1",
    theme="risk",
    title_es="Población en susceptibilidad alta o muy alta a deslizamientos",
    title_en="Population in high or very high landslide susceptibility",
    formula="Σ población de cada celda × (área de la celda en clases ≥ 4 / área de la celda)",
    unit="personas",
    direction="lower_is_better",
    inputs=("population", LANDSLIDE),
    references=LANDSLIDE_REFERENCES,
)
def landslide_high_population(
    *, population: gpd.GeoDataFrame, landslide_susceptibility: Path
) -> pd.DataFrame:
    return _exposed_count(population, landslide_susceptibility, high_landslide)


@indicator(
    id="landslide_high_population_share",
    sdg_target="11.5.1",
    theme="risk",
    title_es="Porcentaje de población en susceptibilidad alta o muy alta a deslizamientos",
    title_en="Share of population in high or very high landslide susceptibility",
    formula="100 × población en clases ≥ 4 / población de las celdas del municipio",
    unit="%",
    direction="lower_is_better",
    inputs=("population", LANDSLIDE),
    references=LANDSLIDE_REFERENCES,
)
def landslide_high_population_share(
    *, population: gpd.GeoDataFrame, landslide_susceptibility: Path
) -> pd.DataFrame:
    return _exposed_share(population, landslide_susceptibility, high_landslide)


def permits_in_hazard(permits: gpd.GeoDataFrame, flood: Path, landslide: Path) -> pd.Series:
    """Whether each approved construction permit lies on a pixel deeper than 0.5 m in the 100-year
    flood or of landslide class ≥ 4 (a nodata pixel or a point off the rasters is neither)."""
    granted = ((permits["kind"] == CONSTRUCTION) & (permits["status"] == APPROVED)).to_numpy()
    hazard = flooded(values_at(flood, permits.geometry)) | high_landslide(
        values_at(landslide, permits.geometry)
    )
    return pd.Series(granted & hazard, index=permits.index)


def _per_municipality_resolved_year(
    permits: gpd.GeoDataFrame, municipalities: gpd.GeoDataFrame, value: pd.Series
) -> pd.DataFrame:
    """Sum of ``value`` by municipality and year of resolution, as every other permit indicator;
    every municipality gets every year in which construction permits were granted (0 where none
    lies in a hazard zone), and a year with none granted has no value."""
    construction = permits[permits["kind"] == CONSTRUCTION]
    frame = pd.DataFrame(
        {
            "municipality_code": construction["municipality_code"],
            "period": construction["resolved"].dt.year,
            "value": value[construction.index],
        }
    ).dropna(subset=["municipality_code", "period"])
    totals = frame.astype({"period": int}).groupby(["municipality_code", "period"])["value"].sum()
    grid = granted_grid(permits, municipalities, CONSTRUCTION)
    return totals.reindex(grid, fill_value=0.0).astype(float).reset_index()


PERMIT_REFERENCES = (
    "OPAMSS, registro de trámites de control urbano",
    *FLOOD_REFERENCES[:2],
    LANDSLIDE_REFERENCES[0],
)


@indicator(
    id="permits_in_hazard_zones",
    theme="risk",
    title_es="Permisos de construcción otorgados en zonas de amenaza",
    title_en="Construction permits granted in hazard zones",
    formula="número de permisos de construcción aprobados cuyo punto cae donde la inundación de 100 años "
    "supera 0,5 m o la susceptibilidad a deslizamientos es ≥ 4, por año de resolución (como los "
    "demás indicadores de permisos)",
    unit="permisos",
    direction="lower_is_better",
    inputs=("permits", "municipalities", FLOOD_100Y, LANDSLIDE),
    references=PERMIT_REFERENCES,
)
def permits_in_hazard_zones(
    *,
    permits: gpd.GeoDataFrame,
    municipalities: gpd.GeoDataFrame,
    flood_depth_100y: Path,
    landslide_susceptibility: Path,
) -> pd.DataFrame:
    inside = permits_in_hazard(permits, flood_depth_100y, landslide_susceptibility)
    return _per_municipality_resolved_year(permits, municipalities, inside.astype(float))


@indicator(
    id="floor_area_in_hazard_zones",
    theme="risk",
    title_es="Superficie de construcción autorizada en zonas de amenaza",
    title_en="Floor area authorised in hazard zones",
    formula="Σ área de construcción (m²) de los permisos de construcción aprobados en zonas de amenaza "
    "(inundación de 100 años > 0,5 m o deslizamiento clase ≥ 4), por año de resolución",
    unit="m²",
    direction="lower_is_better",
    inputs=("permits", "municipalities", FLOOD_100Y, LANDSLIDE),
    references=PERMIT_REFERENCES,
)
def floor_area_in_hazard_zones(
    *,
    permits: gpd.GeoDataFrame,
    municipalities: gpd.GeoDataFrame,
    flood_depth_100y: Path,
    landslide_susceptibility: Path,
) -> pd.DataFrame:
    inside = permits_in_hazard(permits, flood_depth_100y, landslide_susceptibility)
    return _per_municipality_resolved_year(
        permits, municipalities, permits["floor_area_m2"].where(inside, 0.0).fillna(0.0)
    )
