"""Load one GeoTIFF into a raster layer: the band's window over the AMSS, cast to the catalogue's
data type and nodata, written as a tiled, compressed GeoTIFF under ``data_dir/rasters/``.

Only the window covering the AMSS (plus a margin of a few pixels) is read, so a national or
continental source costs what the AMSS costs. The file is not a table: the store records the run
(``Writer.record``) and the new file replaces the old one only once that record is committed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import rasterio
from rasterio import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioIOError
from rasterio.windows import Window, from_bounds
from rich.progress import Progress

from etl.derive import Context
from etl.manifest import Manifest
from etl.runs import LoadResult, attempt, withdraw_indicators
from layers import RasterLayer, get_raster_layer
from observatory import __version__
from observatory.errors import LoadError, MissingInput
from observatory.rasters import raster_file, window_transform
from observatory.settings import Settings, get_settings
from observatory.store import LoadRun, Store

PAD_PIXELS = 3
"""Margin read around the AMSS: pixels along its edge keep their neighbours (a slope needs 3×3)."""
BLOCK_SIZE = 256


@dataclass(frozen=True)
class _Cut:
    """The AMSS window of one band, in the layer's data type, missing pixels set to its nodata."""

    values: np.ndarray
    valid: int
    transform: Affine
    crs: CRS


def load_raster(
    store: Store,
    manifest: Manifest,
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> LoadResult:
    """Load ``manifest``'s GeoTIFF as the whole content of its raster layer.

    Re-running with the same file and manifest changes nothing (unless the municipalities, which
    set the window, were loaded since, or the layer's file is gone). A file that cannot be loaded
    raises :class:`LoadError` and leaves the store and the layer's file as they were.
    """
    settings = settings or get_settings()
    layer = get_raster_layer(manifest.layer)
    source = manifest.source.path
    start = attempt(store, layer.name, source)
    started, run_id, sha256, last = start.started, start.run_id, start.sha256, start.last
    target = raster_file(layer.name, settings)
    # The window is the AMSS: reloaded municipalities make the same raster load again.
    if not dry_run and target.is_file() and start.unchanged(layer.name, manifest.sha256, {"municipalities"}):
        return LoadResult(last[layer.name], unchanged=True)
    municipalities = Context(store).layer("municipalities")
    task = progress.add_task(f"load {layer.name}: reading the AMSS window", total=1) if progress else None

    cut = _read_cut(manifest, layer, municipalities)
    temporary = target.with_name(f".{run_id}.tif")
    try:
        if not dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write(temporary, cut, layer)
        height, width = cut.values.shape
        run = LoadRun(
            run_id=run_id, layer=layer.name, source_file=str(source), source_sha256=sha256,
            manifest_file=str(manifest.file or ""), manifest_sha256=manifest.sha256,
            rows_read=width * height, rows_loaded=cut.valid, rows_repaired=0, rows_rejected=0,
            report_file="", started_at=started.isoformat(timespec="microseconds"),
            finished_at=datetime.now(UTC).isoformat(timespec="microseconds"), code_version=__version__,
        )  # fmt: skip
        if dry_run:
            return LoadResult(run, unchanged=False, dry_run=True)
        with store.writing() as writer:
            writer.record(run)
            withdrawn = withdraw_indicators(store, writer, {layer.name})
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    if progress is not None and task is not None:
        progress.update(task, description=f"load {layer.name}: {cut.valid:,} of {width * height:,} pixels")
    return LoadResult(run, unchanged=False, withdrawn_indicators=withdrawn)


@dataclass(frozen=True)
class SourceWindow:
    """A band's pixels over the AMSS as the source has them, and where they lie in its grid."""

    values: np.ndarray
    missing: np.ndarray
    """True where the pixel is the source's nodata (or NaN)."""
    transform: Affine
    crs: CRS
    row_off: int
    col_off: int
    """The window's first row and column in the source's grid."""


def read_amss_window(manifest: Manifest, municipalities: gpd.GeoDataFrame) -> SourceWindow:
    """The manifest's band over the municipalities (padded), checked: a readable north-up grid that
    declares (or is given) its CRS and nodata. Only that window is read."""
    if municipalities.empty:
        raise MissingInput(f"load municipalities before {manifest.layer}: its window is the AMSS")
    source = manifest.source
    try:
        dataset = rasterio.open(source.path)
    except RasterioIOError as error:
        raise LoadError(f"{source.path}: not a readable GeoTIFF ({error})") from None
    with dataset:
        if source.band > dataset.count:
            raise LoadError(f"{source.path}: no band {source.band}; the file has {dataset.count}")
        grid = dataset.transform
        if grid.b or grid.d or grid.a <= 0 or grid.e >= 0:
            raise LoadError(
                f"{source.path}: not a north-up grid (rotated or flipped); warp it first (gdalwarp)"
            )
        crs = _crs(dataset, manifest)
        nodata = source.nodata if source.nodata is not None else dataset.nodata
        if nodata is None:
            raise LoadError(
                f"{source.path}: the file declares no nodata value; declare source.nodata in the "
                "manifest (the value of its missing pixels)"
            )
        window = _amss_window(dataset, crs, municipalities, manifest)
        values = dataset.read(source.band, window=window)
        transform = window_transform(dataset.transform, window)
    missing = values == nodata
    if values.dtype.kind == "f":
        missing |= np.isnan(values)
    return SourceWindow(values, missing, transform, crs, int(window.row_off), int(window.col_off))


def _read_cut(manifest: Manifest, layer: RasterLayer, municipalities: gpd.GeoDataFrame) -> _Cut:
    window = read_amss_window(manifest, municipalities)
    stored = _cast(window.values, window.missing, layer, manifest)
    return _Cut(stored, int((~window.missing).sum()), window.transform, window.crs)


def _crs(dataset: rasterio.DatasetReader, manifest: Manifest) -> CRS:
    """The file's CRS, else the manifest's."""
    if dataset.crs is not None:
        return dataset.crs
    if manifest.source.crs is None:
        raise LoadError(f"{manifest.source.path}: the file declares no CRS; set source.crs")
    try:
        return CRS.from_user_input(manifest.source.crs)
    except CRSError as error:
        raise LoadError(f"{manifest.file}: source.crs {manifest.source.crs!r}: {error}") from None


def _amss_window(
    dataset: rasterio.DatasetReader, crs: CRS, municipalities: gpd.GeoDataFrame, manifest: Manifest
) -> Window:
    """The whole pixels covering the municipalities, padded, within the raster."""
    west, south, east, north = municipalities.to_crs(crs.to_wkt()).total_bounds
    left, bottom, right, top = dataset.bounds
    if west >= right or east <= left or south >= top or north <= bottom:
        lon0, lat0, lon1, lat1 = municipalities.total_bounds
        raise LoadError(
            f"{manifest.source.path}: the raster does not overlap the AMSS; it spans "
            f"x {left:.6g}…{right:.6g}, y {bottom:.6g}…{top:.6g} in {crs.to_string()}, while the "
            f"AMSS spans x {west:.6g}…{east:.6g}, y {south:.6g}…{north:.6g} there "
            f"(lon {lon0:.3f}…{lon1:.3f}, lat {lat0:.3f}…{lat1:.3f}); is that the right CRS?"
        )
    pad_x, pad_y = PAD_PIXELS * dataset.res[0], PAD_PIXELS * dataset.res[1]
    window = from_bounds(west - pad_x, south - pad_y, east + pad_x, north + pad_y, dataset.transform)
    return window.round().intersection(Window(0, 0, dataset.width, dataset.height))


def _cast(values: np.ndarray, missing: np.ndarray, layer: RasterLayer, manifest: Manifest) -> np.ndarray:
    """The values in the layer's data type, missing pixels set to its nodata; refuses values the
    type cannot hold, so that nothing is silently clipped, truncated or taken for missing."""
    kind = np.dtype(layer.dtype)
    valid = values[~missing]
    if valid.size:
        low, high = valid.min(), valid.max()
        limits = np.iinfo(kind) if kind.kind in "iu" else np.finfo(kind)
        problem = ""
        if low < limits.min or high > limits.max:
            problem = f"values {low}…{high} do not fit"
        elif kind.kind in "iu" and valid.dtype.kind == "f" and np.any(np.mod(valid, 1)):
            problem = "values with decimals do not fit"
        elif np.any(valid == layer.nodata):
            problem = f"valid pixels equal {layer.nodata:g}, the value that marks missing ones in"
        if problem:
            raise LoadError(f"{manifest.source.path}: {problem} layer {layer.name} ({layer.dtype})")
    stored = values.astype(kind)
    stored[missing] = layer.nodata
    return stored


def _write(path: os.PathLike[str], cut: _Cut, layer: RasterLayer) -> None:
    height, width = cut.values.shape
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": layer.dtype,
        "crs": cut.crs, "transform": cut.transform, "nodata": layer.nodata, "tiled": True,
        "blockxsize": BLOCK_SIZE, "blockysize": BLOCK_SIZE, "compress": "deflate",
        "predictor": 3 if np.dtype(layer.dtype).kind == "f" else 2,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as output:
        output.write(cut.values, 1)
