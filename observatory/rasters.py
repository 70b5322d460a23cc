"""Raster layers as stored: where each one's GeoTIFF lives, and what lies under each zone, which is
how indicators read a raster (mean elevation, area flooded deeper than 0.5 m, green cover, ...).

Zones are measured by exact cell coverage (exactextract): a pixel that a zone covers by 30 % counts
for 30 % of its value and of its area, so zones that tile the AMSS share an edge pixel without
counting it twice, and a small zone (a population cell) is not all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from exactextract import exact_extract
from exactextract.feature import Feature, FeatureSource
from pyproj import Geod
from rasterio import Affine
from rasterio.transform import rowcol
from rasterio.windows import Window

from observatory.settings import Settings, get_settings

Statistic = Literal["mean", "sum", "count", "min", "max"]
STATISTICS: tuple[Statistic, ...] = ("mean", "sum", "count", "min", "max")
Condition = Callable[[np.ndarray], np.ndarray]
"""Pixel values (float64, valid pixels only) -> whether each one counts (a boolean array)."""
WGS84 = Geod(ellps="WGS84")
AREA_COLUMNS = ("area_m2", "valid_area_m2", "where_area_m2")
PIXELS_PER_RUN = 1_000_000
"""Pixels whose areas are summed together (some 50 MB of arrays)."""


def raster_file(layer_name: str, settings: Settings | None = None) -> Path:
    """The GeoTIFF of a raster layer, as ``etl.rasters.load_raster`` writes it."""
    return (settings or get_settings()).data_dir / "rasters" / f"{layer_name}.tif"


def window_transform(transform: Affine, window: Window) -> Affine:
    """The transform of a window of a grid; rasterio's own (``DatasetReader.window_transform``,
    ``rasterio.mask``) multiplies with ``*``, which affine 3 deprecates with a warning."""
    return transform @ Affine.translation(window.col_off, window.row_off)


def zonal_statistics(
    raster_path: Path,
    zones: gpd.GeoDataFrame,
    *,
    id_column: str,
    stats: Sequence[Statistic] = ("mean", "sum", "count"),
) -> pd.DataFrame:
    """Statistics of the raster's valid pixels inside each zone, weighted by cell coverage.

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
    With :math:`c_i` the fraction of pixel :math:`i` inside the zone and :math:`v_i` its value,
    over the valid pixels (not nodata, not NaN): ``count`` :math:`= \\sum c_i` (pixels' worth,
    fractional), ``sum`` :math:`= \\sum c_i v_i`, ``mean`` :math:`=` sum / count; ``min`` and
    ``max`` are over the pixels the zone touches at all (exactextract's definitions). A zone
    with no valid pixel (outside the raster, or all nodata) has ``count`` 0 and NaN for the other
    statistics, since no data is not zero. Values are not weighted by pixel area: ``sum`` is a
    zone's total of a quantity per pixel (people per pixel, as WorldPop counts); for areas use
    :func:`zonal_areas`.
    """
    unknown = sorted(set(stats) - set(STATISTICS))
    if unknown:
        raise ValueError(f"unknown statistic(s) {', '.join(unknown)}")
    found = _exact_extract(raster_path, zones, sorted({"count", *stats}))
    result = pd.DataFrame({id_column: zones[id_column].to_numpy()})
    for name in stats:
        column = found[name] if name in found else pd.Series(np.nan, index=result.index)
        result[name] = column.fillna(0.0) if name == "count" else column.where(found["count"] > 0)
    return result


def zonal_areas(
    raster_path: Path, zones: gpd.GeoDataFrame, *, id_column: str, where: Condition
) -> pd.DataFrame:
    """The area of each zone on the raster, on its valid pixels, and on the pixels meeting ``where``.

    Returns
    -------
    DataFrame
        One row per zone, in the zones' order: ``id_column``, ``area_m2`` (the zone's area on the
        raster, nodata pixels included), ``valid_area_m2`` (on valid pixels) and ``where_area_m2``
        (on valid pixels whose value meets ``where``). A zone off the raster has 0 for all three.

    Notes
    -----
    Area :math:`= \\sum c_i a_i` over the pixels counted, :math:`c_i` being the fraction of pixel
    :math:`i` inside the zone (exactextract) and :math:`a_i` the pixel's area in m²: in a raster of
    projected metres, the grid's pixel area (UTM 16N: the map's area, within 0.1 % of the ground's
    in the AMSS); in a lon/lat raster, the WGS84 ellipsoid area of the pixel's row, since a
    0.0001° pixel covers fewer m² the farther it lies from the equator.
    """
    cells = _exact_extract(raster_path, zones, ["values", "coverage", "center_y"], with_nodata=True)
    with rasterio.open(raster_path) as dataset:
        nodata, grid, crs = dataset.nodata, dataset.transform, dataset.crs
    # zones taken in runs of about PIXELS_PER_RUN pixels: numpy works on a run's pixels at once,
    # without a Python loop per zone (100,000 population cells), and without a copy of every pixel
    run = np.cumsum(cells["coverage"].map(len).to_numpy(dtype=np.int64)) // PIXELS_PER_RUN
    found = pd.concat(
        [pd.DataFrame(columns=AREA_COLUMNS, dtype="float64")]
        + [_areas(part, nodata, grid, crs, where) for _, part in cells.groupby(run, sort=False)]
    )
    result = pd.DataFrame({id_column: zones[id_column].to_numpy()})
    return result.join(found).fillna(0.0)


def _areas(
    cells: pd.DataFrame, nodata: float, grid: Affine, crs: rasterio.crs.CRS, where: Condition
) -> pd.DataFrame:
    """``zonal_areas``'s three areas of each zone, from exactextract's arrays for those zones."""
    values, coverage, centre_y = (_concatenated(cells[name]) for name in ("values", "coverage", "center_y"))
    zone = np.repeat(np.arange(len(cells)), cells["coverage"].map(len).to_numpy(dtype=np.int64))
    valid = (values != nodata) & ~np.isnan(values)
    met = np.zeros_like(valid)
    met[valid] = where(values[valid])
    area = coverage * _pixel_areas(centre_y, grid, crs)
    return pd.DataFrame(
        {
            column: np.bincount(zone, weights=np.where(counted, area, 0.0), minlength=len(cells))
            for column, counted in zip(AREA_COLUMNS, (True, valid, met), strict=True)
        },
        index=cells.index,
    )


def values_at(raster_path: Path, points: gpd.GeoSeries) -> np.ndarray:
    """The pixel value under each point (float64), NaN where it is nodata or off the raster.

    The band is read once and indexed with every point's row and column (``rowcol``, as
    ``dataset.sample`` computes them): sampling reads a window per point, minutes per million.
    """
    if points.crs is None:
        raise ValueError("the points declare no CRS")
    with rasterio.open(raster_path) as dataset:
        _check(dataset, raster_path)
        projected = points.to_crs(dataset.crs.to_wkt())
        present = ~(projected.isna() | projected.is_empty).to_numpy()
        xy = shapely.get_coordinates(projected[present].to_numpy())
        rows, cols = (np.asarray(i, dtype=np.int64) for i in rowcol(dataset.transform, xy[:, 0], xy[:, 1]))
        on = (rows >= 0) & (rows < dataset.height) & (cols >= 0) & (cols < dataset.width)
        band = dataset.read(1, masked=True)
    sampled = np.full(len(xy), np.nan)
    sampled[on] = np.ma.filled(band[rows[on], cols[on]].astype("float64"), np.nan)
    values = np.full(len(points), np.nan)
    values[present] = sampled
    return values


def _exact_extract(
    raster_path: Path, zones: gpd.GeoDataFrame, operations: list[str], *, with_nodata: bool = False
) -> pd.DataFrame:
    """exactextract's results for the zones, indexed like ``zones`` by position; rows of zones with
    no geometry are missing. ``with_nodata`` keeps nodata pixels in array results, as the nodata
    value, so that areas can count them."""
    if zones.crs is None:
        raise ValueError("the zones declare no CRS")
    with rasterio.open(raster_path) as dataset:
        _check(dataset, raster_path)
        crs, nodata = dataset.crs.to_wkt(), dataset.nodata
    geometries = zones.geometry.reset_index(drop=True).to_crs(crs)
    present = geometries[~(geometries.isna() | geometries.is_empty)]
    if with_nodata:
        operations = [f"{name}={name}(default_value={nodata:g})" for name in operations]
    if present.empty:
        return pd.DataFrame(columns=[op.split("=")[0] for op in operations])
    found = exact_extract(
        str(raster_path), WKBZones(present), operations, output="pandas",
        strategy="raster-sequential",  # each block read once, not once per zone it touches
    )  # fmt: skip
    assert isinstance(found, pd.DataFrame)
    return found.set_axis(present.index)


def _concatenated(arrays: pd.Series) -> np.ndarray:
    return np.concatenate([np.zeros(0), *(np.asarray(array, dtype="float64") for array in arrays)])


class WKBZones(FeatureSource):
    """Zones handed to exactextract as WKB. Its GeoDataFrame source writes each zone out as GeoJSON
    text, which for 100,000 population cells costs as much as measuring their coverage."""

    def __init__(self, geometries: gpd.GeoSeries) -> None:
        super().__init__()
        self.wkb = shapely.to_wkb(geometries.to_numpy())
        self.crs = geometries.crs.to_wkt()

    def count(self) -> int:
        return len(self.wkb)

    def __iter__(self) -> Iterator[Feature]:
        return map(_WKBZone, self.wkb)

    def srs_wkt(self) -> str:
        return self.crs


class _WKBZone(Feature):
    """One zone: its WKB and no attributes (results are matched to zones by their order)."""

    def __init__(self, wkb: bytes) -> None:
        super().__init__()
        self.wkb = wkb

    def geometry(self) -> bytes:
        return self.wkb

    def fields(self) -> list[str]:
        return []


def _check(dataset: rasterio.DatasetReader, raster_path: Path) -> None:
    if dataset.crs is None or dataset.nodata is None:
        raise ValueError(f"{raster_path}: a raster layer must declare its CRS and its nodata value")


def _pixel_areas(centre_y: np.ndarray, grid: Affine, crs: rasterio.crs.CRS) -> np.ndarray:
    """Each pixel's area in m², from the y of its centre (lon/lat) or the grid (projected metres)."""
    width, height = abs(grid.a), abs(grid.e)
    if not crs.is_geographic:
        unit, factor = crs.linear_units_factor
        if factor != 1.0:
            raise ValueError(f"pixel areas need a raster in metres or in lon/lat, not in {unit}")
        return np.full(len(centre_y), width * height)
    rows, inverse = np.unique(centre_y, return_inverse=True)
    areas = np.array(
        [
            abs(
                WGS84.polygon_area_perimeter(
                    [0, width, width, 0], [y - height / 2] * 2 + [y + height / 2] * 2
                )[0]
            )
            for y in rows
        ]
    )
    return areas[inverse]
