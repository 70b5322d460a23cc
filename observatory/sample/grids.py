"""The grid a sample raster is drawn on (the AMSS's bounding box, padded) and how it is written:
a tiled, deflate-compressed GeoTIFF, as the raster loads expect and small enough to commit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio import Affine
from rasterio.features import rasterize
from scipy.ndimage import distance_transform_edt, gaussian_filter

from observatory.settings import METRIC_CRS, STORAGE_CRS

PAD_M = 500.0
"""Margin around the AMSS, so that the loads' padded window lies inside the file."""
DEGREE_M = 111_320.0
"""Metres in a degree of latitude (and of longitude at the equator): turns a pixel size in metres
into degrees for a lon/lat grid."""


@dataclass(frozen=True)
class Grid:
    """A north-up grid and the lon/lat and UTM 16N coordinates of its pixel centres."""

    crs: str
    transform: Affine
    lon: np.ndarray
    lat: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.lon.shape


def amss_grid(municipalities: gpd.GeoDataFrame, *, resolution_m: float, crs: str = METRIC_CRS) -> Grid:
    """Pixels of ``resolution_m`` over the municipalities' bounding box, in UTM 16N or in lon/lat
    (``crs`` EPSG:4326: square pixels of ``resolution_m / DEGREE_M`` degrees, as WorldCover's)."""
    lonlat = crs == STORAGE_CRS
    size = resolution_m / DEGREE_M if lonlat else resolution_m
    pad = PAD_M / DEGREE_M if lonlat else PAD_M
    west, south, east, north = municipalities.to_crs(crs).total_bounds
    width, height = (
        int(np.ceil((east - west + 2 * pad) / size)),
        int(np.ceil((north - south + 2 * pad) / size)),
    )
    transform = Affine(size, 0, west - pad, 0, -size, north + pad)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    u, v = transform.c + cols * size, transform.f - rows * size
    if lonlat:
        x, y = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True).transform(u, v)
        return Grid(crs, transform, u, v, np.asarray(x), np.asarray(y))
    lon, lat = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True).transform(u, v)
    return Grid(crs, transform, np.asarray(lon), np.asarray(lat), u, v)


def smooth_noise(grid: Grid, rng: np.random.Generator, *, scale_m: float) -> np.ndarray:
    """Spatially correlated noise of unit spread over ``scale_m`` (patches, not salt and pepper,
    which would also defeat compression)."""
    resolution = float(np.hypot(grid.x[0, 1] - grid.x[0, 0], grid.y[0, 1] - grid.y[0, 0]))
    field = gaussian_filter(rng.standard_normal(grid.shape), sigma=scale_m / resolution)
    return field / (field.std() or 1.0)


def metres_to(grid: Grid, lonlat: tuple[float, float]) -> np.ndarray:
    """Distance (m, UTM 16N) from each pixel centre to a lon/lat point."""
    x, y = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True).transform(*lonlat)
    return np.hypot(grid.x - x, grid.y - y)


def metres_to_lines(grid: Grid, lines: list[list[tuple[float, float]]]) -> np.ndarray:
    """Distance (m) from each pixel centre to the nearest of some polylines given in lon/lat: the
    lines are burnt into the grid and scipy's Euclidean distance transform measures the rest, with
    the pixel's size in metres along each axis (a lon/lat pixel is narrower than it is tall)."""
    shapes = [shapely.LineString(line) for line in lines]
    if grid.crs != STORAGE_CRS:
        shapes = [shapely.transform(shape, _to_metric) for shape in shapes]
    burnt = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, all_touched=True)
    width, height = grid.transform.a, -grid.transform.e
    if grid.crs == STORAGE_CRS:
        height *= DEGREE_M
        width *= DEGREE_M * np.cos(np.radians(grid.lat.mean()))
    return np.asarray(distance_transform_edt(burnt == 0, sampling=(height, width)))


def _to_metric(xy: np.ndarray) -> np.ndarray:
    x, y = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def write_geotiff(path: Path, values: np.ndarray, grid: Grid, *, nodata: float) -> Path:
    height, width = values.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=1, dtype=values.dtype.name,
        crs=grid.crs, transform=grid.transform, nodata=nodata, tiled=True, blockxsize=256,
        blockysize=256, compress="deflate", predictor=3 if values.dtype.kind == "f" else 2,
    ) as output:  # fmt: skip
        output.write(values, 1)
    return path
