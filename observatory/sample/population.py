"""The population surface as WorldPop publishes it: a GeoTIFF of people per pixel (float32,
EPSG:4326, about 250 m), cut to the AMSS.

Each municipality's 2007 census population is shared out among the pixels whose centre lies in it,
in whole people (a multinomial draw), so that its pixels sum exactly to the census figure. The odds
of a pixel follow urban cores (San Salvador's historic centre first, then the centres of the other
municipalities), fall on the slopes of the San Salvador volcano (Santa Tecla, Antiguo Cuscatlán,
Nejapa's north) and toward the rural north, with some noise; Lake Ilopango holds nobody (0).
Pixels outside the AMSS are nodata: the file is the metropolitan cut of a national grid.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio import Affine

from observatory.sample.geometry import HISTORIC_CENTRE
from observatory.settings import STORAGE_CRS

PIXEL_DEG = 0.00225
"""Pixel side in degrees (about 243 m × 249 m here): some 9,100 populated cells. WorldPop's own
3 arc-seconds (0.000833°) gives about 62,000; 0.00065° about 98,000 (the benchmark's 100,000)."""
NODATA = -99999.0
"""WorldPop's nodata value."""
KM_PER_DEG_LAT = 110.6
KM_PER_DEG_LON = 108.1
"""Kilometres per degree at the AMSS's latitude (13.7° N), for distances in the density model."""

URBAN_CORES = [
    # (lon, lat, relative density at the core, e-folding radius in km)
    (*HISTORIC_CENTRE, 1.0, 2.5),
    (-89.213, 13.740, 0.6, 1.5),  # Mejicanos
    (-89.186, 13.737, 0.8, 1.0),  # Cuscatancingo
    (-89.201, 13.752, 0.4, 1.0),  # Ayutuxtepeque
    (-89.170, 13.722, 0.6, 1.2),  # Ciudad Delgado
    (-89.150, 13.707, 0.7, 2.0),  # Soyapango
    (-89.110, 13.700, 0.4, 1.5),  # Ilopango
    (-89.055, 13.737, 0.4, 1.2),  # San Martín
    (-89.183, 13.659, 0.5, 1.2),  # San Marcos
    (-89.245, 13.676, 0.4, 1.2),  # Antiguo Cuscatlán
    (-89.279, 13.676, 0.5, 1.5),  # Santa Tecla
    (-89.180, 13.806, 0.5, 1.5),  # Apopa
    (-89.118, 13.780, 0.3, 1.0),  # Tonacatepeque
    (-89.232, 13.813, 0.2, 1.0),  # Nejapa
]
BACKGROUND = 0.02
"""Relative density far from every core: scattered rural homes."""
VOLCANO = (-89.290, 13.734, 5.0)
"""El Boquerón, the San Salvador volcano's crater, and the radius (km) of its sparsely settled slopes."""
RURAL_NORTH_LAT, RURAL_NORTH_KM = 13.80, 3.0
"""North of this latitude density falls by a factor e every this many kilometres."""
LAKE_ILOPANGO = (-89.047, 13.665, 0.055, 0.037)
"""Centre and semi-axes (degrees of lon and lat) of the ellipse taken for Lake Ilopango."""
NOISE_SIGMA = 0.5
"""Spread of the pixel-to-pixel log-normal noise."""


def population_grid(
    municipalities: gpd.GeoDataFrame, rng: np.random.Generator, *, pixel_deg: float = PIXEL_DEG
) -> tuple[np.ndarray, Affine]:
    """People per pixel (float32, whole numbers, NODATA outside the municipalities, 0 on the
    lake) over the municipalities' extent, on a grid aligned to multiples of ``pixel_deg``, and
    its transform. ``municipalities`` needs ``code``, ``population_2007`` and a geometry in EPSG:4326."""
    west, south, east, north = municipalities.total_bounds
    left, top = np.floor(west / pixel_deg) * pixel_deg, np.ceil(north / pixel_deg) * pixel_deg
    width = int(np.ceil((east - left) / pixel_deg))
    height = int(np.ceil((top - south) / pixel_deg))
    lon = left + (np.arange(width) + 0.5) * pixel_deg
    lat = top - (np.arange(height) + 0.5) * pixel_deg
    lon, lat = np.meshgrid(lon, lat)
    lake = _in_lake(lon, lat)
    odds = _density(lon, lat) * rng.lognormal(0.0, NOISE_SIGMA, lon.shape) * ~lake
    people = np.full(lon.shape, NODATA)
    people[lake] = 0.0
    for code, polygon, population in zip(
        municipalities["code"], municipalities.geometry, municipalities["population_2007"], strict=True
    ):
        inside = shapely.contains_xy(polygon, lon, lat) & ~lake
        if not inside.any():
            raise ValueError(f"pixels of {pixel_deg}° are too coarse: none has its centre in {code}")
        people[inside] = rng.multinomial(int(population), odds[inside] / odds[inside].sum())
    return people.astype("float32"), Affine(pixel_deg, 0, left, 0, -pixel_deg, top)


def write_population_raster(
    path: Path, municipalities: gpd.GeoDataFrame, rng: np.random.Generator, *, pixel_deg: float = PIXEL_DEG
) -> None:
    """Write ``population_grid`` as a compressed GeoTIFF declaring its CRS and nodata."""
    people, transform = population_grid(municipalities, rng, pixel_deg=pixel_deg)
    height, width = people.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32", crs=STORAGE_CRS,
        transform=transform, nodata=NODATA, compress="deflate", predictor=3, tiled=True,
    ) as output:  # fmt: skip
        output.write(people, 1)


def _km(lon: np.ndarray, lat: np.ndarray, to: tuple[float, float]) -> np.ndarray:
    return np.hypot((lon - to[0]) * KM_PER_DEG_LON, (lat - to[1]) * KM_PER_DEG_LAT)


def _density(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Relative density: urban cores over a rural background, damped on the volcano and the north."""
    density = np.full(lon.shape, BACKGROUND)
    for core_lon, core_lat, peak, radius in URBAN_CORES:
        density += peak * np.exp(-_km(lon, lat, (core_lon, core_lat)) / radius)
    volcano_lon, volcano_lat, volcano_km = VOLCANO
    density *= 1 - 0.95 * np.exp(-((_km(lon, lat, (volcano_lon, volcano_lat)) / volcano_km) ** 2))
    density *= np.exp(-np.clip(lat - RURAL_NORTH_LAT, 0, None) * KM_PER_DEG_LAT / RURAL_NORTH_KM)
    return density


def _in_lake(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lake_lon, lake_lat, half_width, half_height = LAKE_ILOPANGO
    return ((lon - lake_lon) / half_width) ** 2 + ((lat - lake_lat) / half_height) ** 2 <= 1
