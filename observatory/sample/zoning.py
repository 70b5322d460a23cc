"""The land-use plan (Esquema Director): a Voronoi partition of the metropolitan outline, denser in
codes of commerce and high-density housing near San Salvador's centre."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from observatory.sample.geometry import centre_metric, random_points_in
from observatory.settings import METRIC_CRS

MIN_ZONE_AREA_M2 = 1_000.0
"""Zone parts smaller than this (slivers of the clipping) are dropped."""
ZONING_CODES = ["HAB-AD", "HAB-MD", "HAB-BD", "COM", "IND", "EQ", "MX", "EP", "PE", "AG"]
PLAN_VERSION = "ED-2017"


def zoning_frame(
    outline: shapely.Geometry, rng: np.random.Generator, *, zones: int = 320
) -> gpd.GeoDataFrame:
    """Zones of the land-use plan: Voronoi cells clipped to the outline (metric CRS), more commercial
    and denser toward San Salvador's centre."""
    seeds = random_points_in(outline, zones, rng)
    voronoi = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=outline))
    cells = []
    for clipped in shapely.intersection(voronoi, outline):
        parts = [part for part in shapely.get_parts(clipped) if part.geom_type == "Polygon"]
        parts = [part for part in parts if part.area >= MIN_ZONE_AREA_M2]
        if parts:
            cells.append(shapely.MultiPolygon(parts))
    centre = centre_metric()
    codes = []
    for cell in cells:
        weights = _zoning_weights(shapely.distance(cell.centroid, centre) / 1000)
        codes.append(rng.choice(ZONING_CODES, p=weights / weights.sum()))
    return gpd.GeoDataFrame(
        {
            "ZONA_ID": [f"Z{index:04d}" for index in range(1, len(cells) + 1)],
            "COD_USO": codes,
            "VERSION": PLAN_VERSION,
        },
        geometry=cells,
        crs=METRIC_CRS,
    )


def _zoning_weights(km_from_centre: float) -> np.ndarray:
    """Relative odds of each of ZONING_CODES for a zone this far from San Salvador's centre."""
    d = km_from_centre
    odds = {
        "HAB-AD": max(0.5, 4 - d / 3), "HAB-MD": 3.0, "HAB-BD": max(0.5, 1 + d / 5),
        "COM": max(0.3, 3 - d / 3), "IND": 1.0, "EQ": 1.2, "MX": max(0.3, 2.5 - d / 4),
        "EP": 0.8, "PE": max(0.2, d / 4), "AG": max(0.1, d / 5 - 1),
    }  # fmt: skip
    return np.array([odds[code] for code in ZONING_CODES])
