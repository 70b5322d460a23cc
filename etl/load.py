"""Run one load: a manifest's file, chunk by chunk, checked into its layer in one write session.

In the same session the layers that depend on it (permits placed in municipalities, statistics
joined to them) are derived again from their stored rows, and indicator values computed from any
changed layer are withdrawn until they are computed again: a reader sees the old state or the new
one, never a mixture.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyproj
import shapely
from rich.progress import Progress, TaskID

from etl.checks import Deduplicator, check_geometries
from etl.constraints import check_constraints
from etl.derive import Context, derive, needs, provides_geometry, require_inputs
from etl.fields import check_columns, map_fields, parse_values
from etl.manifest import Manifest, default_manifest
from etl.rasters import load_raster
from etl.report import REPAIRED, Report
from etl.runs import LoadResult, attempt, new_run_id, withdraw_indicators
from etl.sources import read_chunks
from layers import Layer, catalogue, get_layer
from observatory import __version__
from observatory.errors import LoadError, ObservatoryError
from observatory.settings import Settings, get_settings
from observatory.store import FeatureQuery, LoadRun, Store
from observatory.store.base import Writer

log = logging.getLogger(__name__)
ONE_ROW = FeatureQuery(limit=1)
LOCATION_REASONS = ("outside El Salvador", "outside every AMSS municipality", "only ")


def load_layer(
    store: Store,
    layer_name: str,
    source: Path,
    *,
    settings: Settings | None = None,
    table_crs: str | None = None,
    dry_run: bool = False,
    allow_shrink: bool = False,
    progress: Progress | None = None,
) -> LoadResult:
    """Load a file whose columns carry the catalogue's names (no manifest needed)."""
    manifest = default_manifest(layer_name, source, crs=table_crs)
    return load_source(
        store, manifest, settings=settings, dry_run=dry_run, allow_shrink=allow_shrink, progress=progress
    )


def load_source(
    store: Store,
    manifest: Manifest,
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    allow_shrink: bool = False,
    progress: Progress | None = None,
) -> LoadResult:
    """Load ``manifest``'s file as the whole content of its layer.

    Re-running with the same file and manifest changes nothing. A file that cannot be loaded
    raises :class:`LoadError` and leaves the store as it was; every rejected or repaired row is
    listed with its reason in the report named by the run record. A file that would leave the
    layer with fewer rows than ``settings.max_shrink`` allows (a file cut short, an export of one
    month) is refused unless ``allow_shrink``.
    """
    if manifest.is_raster:
        return load_raster(store, manifest, settings=settings, dry_run=dry_run, progress=progress)
    settings = settings or get_settings()
    layer = get_layer(manifest.layer)
    source = manifest.source.path
    start = attempt(store, layer.name, source)
    started, run_id, sha256, last = start.started, start.run_id, start.sha256, start.last
    own_runs = str(manifest.file or "") if layer.partition else ""
    if not dry_run and start.unchanged(layer.name, manifest.sha256, needs(layer), manifest_file=own_runs):
        return LoadResult(last[layer.name], unchanged=True)

    context = Context(store)
    context.min_share_inside = manifest.min_share_inside
    require_inputs(layer, context)
    report = Report(source)
    report_file = settings.reports_dir / f"{run_id}.csv"
    # Loaded layers derived from this one (one row says so: reading a million permits would not).
    dependents = [
        other for other in catalogue().values() if layer.name in needs(other) and store.select(other, ONE_ROW)
    ]
    keep = bool(dependents)
    task = progress.add_task(f"load {layer.name}: reading", total=1) if progress else None

    with _session(store, dry_run) as writer:
        writer.begin(layer)
        kept: list[gpd.GeoDataFrame] = []
        parts: set[object] = set()
        rows_read = rows_loaded = 0
        extent = _Extent()
        dedupe = Deduplicator(layer.id)
        with (
            contextlib.closing(read_chunks(manifest, report, context=context)) as chunks,  # type: ignore[type-var]
            _Pipeline(writer, layer) as pipeline,
        ):
            for number, raw in enumerate(chunks):
                if number == 0:
                    check_columns(manifest, [str(c) for c in raw.columns if c != "geometry"])
                rows_read = int(report.originals.index.max()) if len(report.originals) else rows_read
                extent.add(raw)
                rows = _rows(raw, manifest, layer, context, report, dedupe)
                pipeline.append(rows)
                rows_loaded += len(rows)
                if layer.partition:
                    parts.update(rows[layer.partition].dropna())
                if keep:
                    kept.append(rows)
                _advance(progress, task, f"load {layer.name}: {rows_loaded:,} of {rows_read:,} rows checked")
        if rows_loaded == 0:
            if not dry_run:
                report.write(report_file)
            raise LoadError(_refusal(manifest, report, extent, context, report_file))
        before = last[layer.name].rows_loaded if layer.name in last else 0
        if layer.partition:  # the file replaces only the rows of the sources it carries
            others = _other_partitions(context.layer(layer.name), layer, parts, set(dedupe.first_rows))
            before = len(context.layer(layer.name)) - len(others)
            writer.append(layer, others)
        shrink = _shrink(layer.name, before, rows_loaded, settings.max_shrink)
        if shrink and not allow_shrink:
            if not dry_run:
                report.write(report_file)
            raise LoadError(f"{source}: {shrink}; {_rejects(report, report_file, dry_run)}")
        run = LoadRun(
            run_id=run_id, layer=layer.name, source_file=str(source), source_sha256=sha256,
            manifest_file=str(manifest.file or ""), manifest_sha256=manifest.sha256,
            rows_read=rows_read, rows_loaded=rows_loaded, rows_repaired=report.count(REPAIRED),
            rows_rejected=report.rejected_rows, report_file=str(report_file),
            started_at=started.isoformat(timespec="microseconds"),
            finished_at=datetime.now(UTC).isoformat(timespec="microseconds"), code_version=__version__,
            coverage=manifest.coverage.model_dump_json() if manifest.coverage else "",
        )  # fmt: skip
        writer.finish(layer, run)
        if keep:
            context.frames = {
                layer.name: gpd.GeoDataFrame(pd.concat(kept), crs=kept[0].crs).rename_geometry("geom")
            }
        rederived = [
            _rederive(other, context, writer, last.get(other.name), settings) for other in dependents
        ]
        changed = {layer.name, *(r[0].layer for r in rederived)}
        withdrawn = withdraw_indicators(store, writer, changed)
        _advance(
            progress,
            task,
            f"load {layer.name}: {rows_loaded:,} rows loaded, {report.rejected_rows:,} rejected",
        )
    if not dry_run:
        report.write(report_file)
        for rerun, rereport in rederived:
            rereport.write(Path(rerun.report_file))
    return LoadResult(
        run, unchanged=False, dry_run=dry_run, rederived=[r[0] for r in rederived],
        withdrawn_indicators=withdrawn, reasons=report.reasons(),
    )  # fmt: skip


def _rows(
    raw: pd.DataFrame,
    manifest: Manifest,
    layer: Layer,
    context: Context,
    report: Report,
    dedupe: Deduplicator,
) -> gpd.GeoDataFrame:
    """One chunk through every check, in the layer's properties and the storage CRS. Anything
    unforeseen becomes a clear refusal naming the file and rows (the traceback goes to the log, not
    to the user); the write session then leaves the store as it was."""
    try:
        frame = map_fields(raw, manifest, layer, report)
        frame = parse_values(frame, manifest, layer, report)
        frame = check_constraints(frame, layer, report)
        if "geometry" in frame.columns:
            frame = check_geometries(
                gpd.GeoDataFrame(frame, geometry="geometry", crs=raw["geometry"].crs), layer, report
            )
        elif not provides_geometry(layer):
            raise LoadError(
                f"{manifest.source.path}: no geometry and no coordinate columns found; name them with "
                f"source.x and source.y (the file has: {', '.join(map(str, raw.columns))})"
            )
        frame = dedupe(frame, report)
        frame = derive(gpd.GeoDataFrame(frame), layer, context, report)
        return gpd.GeoDataFrame(frame[[*layer.properties, "geometry"]], geometry="geometry", crs=frame.crs)
    except ObservatoryError:
        raise
    except Exception as error:
        log.exception("unexpected error checking %s", manifest.source.path)
        rows = f"rows {raw.index.min()}–{raw.index.max()}" if len(raw) else "the file"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise LoadError(
            f"{manifest.source.path}: {rows} could not be checked ({type(error).__name__}: {reason}); "
            "nothing was loaded"
        ) from None


def _rederive(
    layer: Layer, context: Context, writer: Writer, previous: LoadRun | None, settings: Settings
) -> tuple[LoadRun, Report]:
    """The layer's stored rows checked and derived again against a layer loaded in this session."""
    started = datetime.now(UTC)
    stored = context.store.read_layer(layer)
    stored.index = pd.RangeIndex(1, len(stored) + 1)
    report = Report(Path(f"{layer.name} (stored rows, derived again)"))
    report.reading(stored)
    rows = derive(stored, layer, context, report)
    writer.begin(layer)
    writer.append(layer, rows)
    run_id = new_run_id(layer.name, started)
    run = LoadRun(
        run_id=run_id, layer=layer.name,
        source_file=previous.source_file if previous else "",
        source_sha256=previous.source_sha256 if previous else "",
        manifest_file=previous.manifest_file if previous else "",
        manifest_sha256=previous.manifest_sha256 if previous else "",
        rows_read=len(stored), rows_loaded=len(rows), rows_repaired=0, rows_rejected=report.rejected_rows,
        report_file=str(settings.reports_dir / f"{run_id}.csv"),
        started_at=started.isoformat(timespec="microseconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="microseconds"), code_version=__version__,
        coverage=previous.coverage if previous else "",
    )  # fmt: skip
    writer.finish(layer, run)
    return run, report


class _Pipeline:
    """Writes checked chunks on a thread of its own, in order, while the next chunk is read and
    checked (parsing, projections and geometry tests release the GIL), two chunks at most ahead."""

    def __init__(self, writer: Writer, layer: Layer) -> None:
        self.writer, self.layer = writer, layer
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-writer")
        self.pending: list[Future[None]] = []

    def append(self, rows: gpd.GeoDataFrame) -> None:
        self.pending.append(self.pool.submit(self.writer.append, self.layer, rows))
        while len(self.pending) > 2:
            self.pending.pop(0).result()

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *failure: object) -> None:
        try:
            for future in self.pending:
                future.result()  # a write's error surfaces here, and fails the session
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _DryRun:
    """A writer that writes nothing: a dry run checks every row and reports, and stops there."""

    def begin(self, layer: Layer) -> None: ...

    def append(self, layer: Layer, frame: gpd.GeoDataFrame) -> None: ...

    def finish(self, layer: Layer, run: LoadRun | None) -> None: ...

    def record(self, run: LoadRun) -> None: ...


@contextlib.contextmanager
def _session(store: Store, dry_run: bool) -> Iterator[Writer]:
    if dry_run:
        yield _DryRun()
        return
    with store.writing() as writer:
        yield writer


class _Extent:
    """Where a file's features lie, as read: for the message when none of them is in the AMSS."""

    def __init__(self) -> None:
        self.bounds: list[tuple[float, float, float, float]] = []
        self.crs: pyproj.CRS | None = None

    def add(self, raw: pd.DataFrame) -> None:
        if "geometry" in raw.columns and len(raw):
            series = gpd.GeoSeries(raw["geometry"])
            self.crs = series.crs
            values = series.values
            if (~(shapely.is_missing(values) | shapely.is_empty(values))).any():
                self.bounds.append(tuple(series.total_bounds))

    def describe(self) -> str:
        if not self.bounds or self.crs is None:
            return ""
        west = min(b[0] for b in self.bounds)
        south = min(b[1] for b in self.bounds)
        east = max(b[2] for b in self.bounds)
        north = max(b[3] for b in self.bounds)
        span = f"{west:.6g}…{east:.6g} × {south:.6g}…{north:.6g}"
        where = f"read as {self.crs.to_string()}, its features span {span}"
        if not self.crs.is_geographic:
            to_lonlat = pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
            lon0, lat0, lon1, lat1 = to_lonlat.transform_bounds(west, south, east, north)
            where += f" (lon {lon0:.3f}…{lon1:.3f}, lat {lat0:.3f}…{lat1:.3f})"
        return where


def _refusal(manifest: Manifest, report: Report, extent: _Extent, context: Context, report_file: Path) -> str:
    path = manifest.source.path
    reasons = report.reasons()
    if not reasons:
        return f"{path}: the file has no rows"
    located = sum(count for reason, count in reasons.items() if reason.startswith(LOCATION_REASONS))
    listed = f"every row is listed with its reason in {report_file}"
    if located and located >= max(reasons.values()):
        municipalities = context.layer("municipalities")
        amss = ""
        if not municipalities.empty:
            west, south, east, north = municipalities.total_bounds
            amss = f", while the AMSS spans lon {west:.3f}…{east:.3f}, lat {south:.3f}…{north:.3f}"
        return (
            f"{path}: no feature lies in the AMSS; {extent.describe()}{amss}; is that the right CRS? {listed}"
        )
    top = "; ".join(f"{reason} ({count} rows)" for reason, count in reasons.most_common(3))
    where = f"; {extent.describe()}" if located and extent.describe() else ""
    return f"{path}: no row could be loaded: {top}{where}; {listed}"


def _other_partitions(
    stored: gpd.GeoDataFrame, layer: Layer, parts: set[object], ids: set[str]
) -> gpd.GeoDataFrame:
    """The stored rows a load into a partitioned layer keeps: those of the sources it does not carry
    (a row the new file carries again, by id, is the file's)."""
    assert layer.partition is not None
    keep = ~stored[layer.partition].isin(parts) & ~stored[layer.id].astype(str).isin(ids)
    return stored[keep]


def _shrink(layer: str, before: int, rows: int, max_shrink: float) -> str:
    """Why replacing ``before`` rows by ``rows`` shrinks the layer more than allowed ("" if it does not)."""
    if before == 0 or rows >= before * (1 - max_shrink):
        return ""
    share = 1 - rows / before
    return (
        f"loading it would shrink {layer} from {before:,} to {rows:,} rows "
        f"(-{share:.1%}), more than the {max_shrink:.0%} allowed (OBSERVATORY_MAX_SHRINK); if the file "
        "is complete, load it again with --allow-shrink"
    )


def _rejects(report: Report, report_file: Path, dry_run: bool) -> str:
    """What the refused load's rejects were, and where they are listed."""
    if not report.rejected_rows:
        return "no row was rejected"
    top = "; ".join(f"{reason} ({count} rows)" for reason, count in report.reasons().most_common(3))
    where = "" if dry_run else f", every row listed with its reason in {report_file}"
    return f"{report.rejected_rows:,} rows rejected: {top}{where}"


def _advance(progress: Progress | None, task: TaskID | None, description: str) -> None:
    if progress is not None and task is not None:
        progress.update(task, description=description)
