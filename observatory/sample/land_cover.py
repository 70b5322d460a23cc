"""Land cover as ESA WorldCover delivers it (GeoTIFF in lon/lat, its class codes): built-up land
dense around San Salvador's centre and Santa Tecla's, trees on the volcano, the Cerro San Jacinto
and the ravines, cropland and grass in the north, Lake Ilopango's water in the east."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np

from observatory.sample.geometry import HISTORIC_CENTRE
from observatory.sample.grids import Grid, amss_grid, metres_to, metres_to_lines, smooth_noise, write_geotiff
from observatory.sample.hazards import RAVINES, SAN_JACINTO, VOLCANO
from observatory.settings import STORAGE_CRS

LAND_COVER_FILE = "cobertura_suelo.tif"
NODATA = 0
TREES, SHRUBS, GRASS, CROPS, BUILT, WATER = 10, 20, 30, 40, 50, 80
SANTA_TECLA = (-89.279, 13.673)
"""Santa Tecla's centre, the second urban nucleus."""
LAKE_ILOPANGO = (-89.055, 13.675)
LAKE_RADIUS_M = 4_500.0


def land_cover(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """WorldCover class of each pixel (uint8): the class with the highest score, each score a
    gradient of the place plus patchy noise."""
    centre_km = metres_to(grid, HISTORIC_CENTRE) / 1000
    crater_km = metres_to(grid, VOLCANO) / 1000
    north = np.clip((grid.lat - 13.76) / 0.08, 0, 1)
    scores = {
        BUILT: np.maximum(2.4 * np.exp(-centre_km / 6), 1.6 * np.exp(-metres_to(grid, SANTA_TECLA) / 2_500))
        - 0.8 * north,
        TREES: 1.8 * np.exp(-(((crater_km - 2.5) / 3.0) ** 2))
        + 1.6 * (metres_to_lines(grid, RAVINES) < 90)
        + 1.5 * np.exp(-((metres_to(grid, SAN_JACINTO) / 1000) ** 2)),
        CROPS: 0.3 + 1.1 * north,
        GRASS: 0.6 + 0.3 * north,
        SHRUBS: np.full(grid.shape, 0.35),
    }
    classes = np.array(list(scores), dtype="uint8")
    stacked = np.stack([score + 0.35 * smooth_noise(grid, rng, scale_m=250) for score in scores.values()])
    cover = classes[np.argmax(stacked, axis=0)]
    cover[metres_to(grid, LAKE_ILOPANGO) < LAKE_RADIUS_M] = WATER
    return cover


def write_land_cover(
    out_dir: Path, municipalities: gpd.GeoDataFrame, seed: int, *, resolution_m: float = 30.0
) -> Path:
    """Write the land-cover GeoTIFF (``resolution_m`` 10 is the real product's, 30 the sample's)."""
    rng = np.random.default_rng([seed, 6_200])
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = amss_grid(municipalities, resolution_m=resolution_m, crs=STORAGE_CRS)
    return write_geotiff(out_dir / LAND_COVER_FILE, land_cover(grid, rng), grid, nodata=NODATA)
