"""Raster layers as stored: where each one's GeoTIFF lives, and statistics of its pixels per zone,
which is how indicators read a raster (mean elevation, population per municipality, ...)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio import Affine
from rasterio.errors import WindowError
from rasterio.features import geometry_mask
from rasterio.windows import Window, from_bounds

from observatory.settings import Settings, get_settings

Statistic = Literal["mean", "sum", "count", "min", "max"]
REDUCERS: dict[str, Callable[[np.ndarray], Any]] = {
    "mean": np.mean,
    "sum": np.sum,
    "min": np.min,
    "max": np.max,
}


def raster_file(layer_name: str, settings: Settings | None = None) -> Path:
    """The GeoTIFF of a raster layer, as ``etl.rasters.load_raster`` writes it."""
    return (settings or get_settings()).data_dir / "rasters" / f"{layer_name}.tif"


def zonal_statistics(
    raster_path: Path,
    zones: gpd.GeoDataFrame,
    *,
    id_column: str,
    stats: Sequence[Statistic] = ("mean", "sum", "count"),
) -> pd.DataFrame:
    """Statistics of the raster's valid pixels inside each zone.

    Parameters
    ----------
    raster_path
        A single-band GeoTIFF that declares its CRS and its nodata value.
    zones
        Polygons in any CRS (they are reprojected to the raster's).
    id_column
        The zones' identifier, copied to the result.
    stats
        Any of ``mean``, ``sum``, ``count``, ``min``, ``max``.

    Returns
    -------
    DataFrame
        One row per zone, in the zones' order: ``id_column`` then one column per statistic.

    Notes
    -----
    Each zone is reprojected to the raster's CRS; only the window of whole pixels covering its
    bounding box is read, and masked with :func:`rasterio.features.geometry_mask`
    (``all_touched=False``). A pixel belongs to a zone when its centre lies inside it, as GDAL
    rasterises polygons, so a pixel is never split:
    along a zone's edge the error is at most half a pixel's worth of values, and zones that tile
    the AMSS do not count the same pixel twice. Pixels equal to the file's nodata (and NaN) are
    excluded. ``count`` is the number of valid pixels; a zone with none (outside the raster, or
    all nodata) has ``count`` 0 and NaN for the other statistics, since no data is not zero.
    Values are not weighted by pixel area: ``sum`` is a zone's total for a quantity per pixel
    (people per pixel, as WorldPop counts), and ``mean`` is a plain mean of the pixels, which in
    a lon/lat raster leans very slightly towards the pixels nearer the pole.
    """
    unknown = sorted(set(stats) - {"count", *REDUCERS})
    if unknown:
        raise ValueError(f"unknown statistic(s) {', '.join(unknown)}")
    if zones.crs is None:
        raise ValueError("the zones declare no CRS")
    rows: list[dict[str, Any]] = []
    with rasterio.open(raster_path) as dataset:
        if dataset.crs is None or dataset.nodata is None:
            raise ValueError(f"{raster_path}: a raster layer must declare its CRS and its nodata value")
        geometries = zones.to_crs(dataset.crs.to_wkt()).geometry
        for zone_id, geometry in zip(zones[id_column], geometries, strict=True):
            values = _zone_values(dataset, geometry)
            rows.append({id_column: zone_id, **{name: _statistic(name, values) for name in stats}})
    return pd.DataFrame(rows, columns=[id_column, *stats])


def window_transform(transform: Affine, window: Window) -> Affine:
    """The transform of a window of a grid; rasterio's own (``DatasetReader.window_transform``,
    ``rasterio.mask``) multiplies with ``*``, which affine 3 deprecates with a warning."""
    return transform @ Affine.translation(window.col_off, window.row_off)


def _zone_values(dataset: rasterio.DatasetReader, geometry: shapely.Geometry | None) -> np.ndarray:
    """The zone's valid pixel values, as float64 (empty when the zone misses the raster)."""
    if geometry is None or shapely.is_empty(geometry):
        return np.empty(0)
    bounds = from_bounds(*shapely.bounds(geometry), transform=dataset.transform)
    col0, row0 = int(np.floor(bounds.col_off)), int(np.floor(bounds.row_off))
    col1 = int(np.ceil(bounds.col_off + bounds.width))
    row1 = int(np.ceil(bounds.row_off + bounds.height))
    try:
        window = Window(col0, row0, col1 - col0, row1 - row0).intersection(
            Window(0, 0, dataset.width, dataset.height)
        )
    except WindowError:  # the zone does not overlap the raster
        return np.empty(0)
    pixels = dataset.read(1, window=window, masked=True)
    outside = geometry_mask(
        [geometry], out_shape=pixels.shape, transform=window_transform(dataset.transform, window)
    )
    values = pixels.data[~(np.ma.getmaskarray(pixels) | outside)].astype("float64")
    return values[~np.isnan(values)]


def _statistic(name: Statistic, values: np.ndarray) -> float | int:
    if name == "count":
        return len(values)
    if not len(values):
        return float("nan")
    return float(REDUCERS[name](values))
