"""Run one load job: read, check, enrich, report rejects, and swap the layer in atomically."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
from rich.progress import Progress

from etl.checks import check_geometries, drop_duplicates, map_columns, parse_values
from etl.jobs import JOBS
from etl.rejects import Rejects
from etl.sources import read_source
from layers import get_layer
from observatory import __version__
from observatory.errors import LoadError, NotFound
from observatory.settings import Settings, get_settings
from observatory.store import LoadRun, Store

STEPS = 6


@dataclass(frozen=True)
class LoadResult:
    run: LoadRun
    unchanged: bool
    """True when the same file was already the layer's last load: nothing was written."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_layer(
    store: Store,
    layer_name: str,
    source: Path,
    *,
    settings: Settings | None = None,
    table_crs: str | None = None,
    progress: Progress | None = None,
) -> LoadResult:
    """Load ``source`` as the whole content of ``layer_name``.

    Re-running with the same file changes nothing. A file that cannot be loaded raises
    :class:`LoadError` and leaves the store as it was; rows that cannot be loaded are listed with
    their reasons in the rejects report named by the run record.
    """
    if layer_name not in JOBS:
        raise NotFound(f"no load job for layer {layer_name!r}; known: {', '.join(JOBS)}")
    settings = settings or get_settings()
    job, layer = JOBS[layer_name], get_layer(layer_name)
    source = Path(source)
    started = datetime.now(UTC)
    task = progress.add_task(f"load {layer_name}: reading", total=STEPS) if progress else None

    def step(next_stage: str) -> None:
        if progress is not None and task is not None:
            progress.update(task, advance=1, description=f"load {layer_name}: {next_stage}")

    if not source.exists():
        raise LoadError(f"{source}: file not found")
    sha256 = file_sha256(source)
    last = _last_runs(store)
    if _unchanged(last, layer_name, sha256, job.depends_on):
        if progress is not None and task is not None:
            progress.update(task, completed=STEPS, description=f"load {layer_name}: unchanged")
        return LoadResult(last[layer_name], unchanged=True)

    rejects = Rejects(source)
    raw = read_source(source, rejects, table_crs=table_crs or job.table_crs)
    rows_read = len(raw) + len(rejects)
    step(f"checking values of {rows_read:,} rows")
    frame = map_columns(raw, job.columns, optional=job.optional, source=source)
    frame = parse_values(frame, layer, rejects, required=job.required)
    step("checking geometries")
    frame = check_geometries(frame, layer, rejects, source=source)
    step("deduplicating and enriching")
    frame = drop_duplicates(frame, layer.id, rejects)
    frame = job.enrich(frame, store, rejects)
    step("writing the rejects report")
    for column in layer.properties:
        if column not in frame.columns:
            frame[column] = None
    run_id = f"{layer_name}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    rejects_file = settings.rejects_dir / f"{run_id}.csv"
    rejects.write(rejects_file)
    if frame.empty:
        raise LoadError(f"{source}: no row could be loaded; reasons in {rejects_file}")
    step(f"writing {len(frame):,} rows to the store")
    run = LoadRun(
        run_id=run_id,
        layer=layer_name,
        source_file=str(source),
        source_sha256=sha256,
        rows_read=rows_read,
        rows_loaded=len(frame),
        rows_rejected=len(rejects),
        rejects_file=str(rejects_file),
        started_at=started.isoformat(timespec="microseconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        code_version=__version__,
    )
    store.replace_layer(layer, gpd.GeoDataFrame(frame, geometry=frame.geometry.name), run=run)
    step(f"{len(frame):,} rows loaded, {len(rejects):,} rejected")
    return LoadResult(run, unchanged=False)


def _last_runs(store: Store) -> dict[str, LoadRun]:
    return {run.layer: run for run in store.load_runs()}


def _unchanged(last: dict[str, LoadRun], layer: str, sha256: str, depends_on: tuple[str, ...]) -> bool:
    """The layer's last load used this very file, and no layer it depends on was reloaded since."""
    if layer not in last or last[layer].source_sha256 != sha256:
        return False
    return all(
        dependency not in last or last[dependency].finished_at <= last[layer].started_at
        for dependency in depends_on
    )
