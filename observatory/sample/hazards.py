"""Hazard rasters as hydraulic and geotechnical studies deliver them (GeoTIFF, UTM 16N): the
100-year flood depth along the Acelhuate river and by Lake Ilopango, and landslide susceptibility
high on the San Salvador volcano, the Cerro San Jacinto and the ravines (quebradas)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np

from observatory.sample.grids import Grid, amss_grid, metres_to, metres_to_lines, smooth_noise, write_geotiff

FLOOD_FILE = "inundacion_100a.tif"
LANDSLIDE_FILE = "susceptibilidad_deslizamientos.tif"
FLOOD_NODATA = -9999.0
LANDSLIDE_NODATA = 255
ACELHUATE = [
    (-89.207, 13.662), (-89.196, 13.681), (-89.186, 13.700), (-89.178, 13.718), (-89.171, 13.737),
    (-89.166, 13.757), (-89.158, 13.781), (-89.150, 13.806), (-89.143, 13.835), (-89.137, 13.870),
]  # fmt: skip
"""The Acelhuate river, lon/lat, from the south of San Salvador north through Ciudad Delgado."""
ILOPANGO_SHORE = [(-89.088, 13.712), (-89.098, 13.702), (-89.104, 13.692), (-89.112, 13.682)]
"""The western shore of Lake Ilopango, whose lower land floods."""
VOLCANO = (-89.290, 13.735)
"""The crater of the San Salvador volcano (El Boquerón)."""
SAN_JACINTO = (-89.170, 13.676)
RAVINES = [
    [(-89.300, 13.700), (-89.265, 13.690), (-89.235, 13.688)],
    [(-89.285, 13.765), (-89.250, 13.770), (-89.220, 13.772)],
    [(-89.270, 13.800), (-89.240, 13.820), (-89.215, 13.845)],
    [(-89.215, 13.705), (-89.200, 13.720), (-89.195, 13.745)],
]
"""Quebradas cut into the volcano's eastern slope and into the city."""


def flood_depth(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Depth (m, float32) of the 100-year flood: 0–3 m in the valley floor, deeper downstream,
    0 on its margin and nodata beyond the modelled floodplain (most of the AMSS)."""
    river = metres_to_lines(grid, [ACELHUATE])
    shore = metres_to_lines(grid, [ILOPANGO_SHORE])
    downstream = np.clip((grid.lat - 13.66) / 0.2, 0, 1)  # the valley widens northwards
    half_width = 60 + 200 * downstream + 40 * smooth_noise(grid, rng, scale_m=400)
    river_depth = (1.0 + 2.0 * downstream) * (1 - river / np.maximum(half_width, 20))
    shore_depth = 2.2 * (1 - shore / 450) + 0.3 * smooth_noise(grid, rng, scale_m=300)
    depth = np.clip(np.maximum(river_depth, shore_depth), 0, 3).astype("float32")
    modelled = (river < 3 * half_width) | (shore < 900)
    return np.where(modelled, depth, np.float32(FLOOD_NODATA)).astype("float32")


def landslide_susceptibility(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Classes 1 (muy baja) … 5 (muy alta) as uint8: high on the volcano's slopes (2–8 km from the
    crater), on the Cerro San Jacinto and along the ravines; low on the valley floor."""
    crater_km = metres_to(grid, VOLCANO) / 1000
    slopes = 3.2 * np.exp(-(((crater_km - 4.5) / 3.0) ** 2))
    hill = 3.0 * np.exp(-((metres_to(grid, SAN_JACINTO) / 1200) ** 2))
    ravines = 3.0 * (metres_to_lines(grid, RAVINES) < 60)
    score = 1.4 + np.maximum.reduce([slopes, hill, ravines]) + 0.5 * smooth_noise(grid, rng, scale_m=600)
    return np.clip(np.round(score), 1, 5).astype("uint8")


def write_hazards(
    out_dir: Path, municipalities: gpd.GeoDataFrame, seed: int, *, resolution_m: float = 30.0
) -> tuple[Path, Path]:
    """Write the flood-depth and landslide GeoTIFFs; returns their paths."""
    rng = np.random.default_rng([seed, 6_100])
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = amss_grid(municipalities, resolution_m=resolution_m)
    flood = write_geotiff(out_dir / FLOOD_FILE, flood_depth(grid, rng), grid, nodata=FLOOD_NODATA)
    landslide = write_geotiff(
        out_dir / LANDSLIDE_FILE, landslide_susceptibility(grid, rng), grid, nodata=LANDSLIDE_NODATA
    )
    return flood, landslide
