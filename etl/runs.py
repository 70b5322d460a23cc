"""What every load shares, vector or raster: its start (run id, source hash, the runs so far and
whether anything changed), its result, and the withdrawal of indicator values it makes stale."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from layers import catalogue, get_layer
from observatory.errors import LoadError
from observatory.store import LoadRun, Store
from observatory.store.base import Writer


@dataclass(frozen=True)
class LoadResult:
    run: LoadRun
    unchanged: bool
    """True when the same file and manifest were already the layer's last load: nothing was written."""
    dry_run: bool = False
    rederived: list[LoadRun] = field(default_factory=list)
    """Runs of the layers derived again because they depend on this one."""
    withdrawn_indicators: list[str] = field(default_factory=list)
    """Indicators whose values were computed from a changed layer and were removed."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Rejected rows per kind of reason."""


@dataclass(frozen=True)
class Attempt:
    """What every load starts from: when, its run id, the source's hash and the runs so far."""

    started: datetime
    run_id: str
    sha256: str
    runs: list[LoadRun]
    """Every run so far, oldest first."""

    @property
    def last(self) -> dict[str, LoadRun]:
        """Each layer's latest run."""
        return {run.layer: run for run in self.runs}

    def unchanged(
        self, layer: str, manifest_sha256: str, needs: set[str], *, manifest_file: str = ""
    ) -> bool:
        """The layer's last load (of this manifest, for a layer fed by several) used this very file and
        manifest, and no layer it reads changed since."""
        own = [
            r
            for r in self.runs
            if r.layer == layer and (not manifest_file or r.manifest_file == manifest_file)
        ]
        last = self.last
        run = own[-1] if own else None
        if run is None or run.source_sha256 != self.sha256 or run.manifest_sha256 != manifest_sha256:
            return False
        return all(dep not in last or last[dep].finished_at <= run.started_at for dep in needs)


def attempt(store: Store, layer: str, source: Path) -> Attempt:
    """Start a load of ``source`` into ``layer``: a missing file is a LoadError naming it."""
    if not source.exists():
        raise LoadError(f"{source}: file not found")
    started = datetime.now(UTC)
    return Attempt(started, new_run_id(layer, started), file_sha256(source), store.load_runs())


def new_run_id(layer: str, started: datetime) -> str:
    return f"{layer}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def file_sha256(path: Path) -> str:
    """The hash of a file, or of a folder's files (a GTFS feed unzipped) by name and content."""
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        if member != path:
            digest.update(str(member.relative_to(path)).encode())
        with open(member, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def withdraw_indicators(store: Store, writer: Writer, changed: set[str]) -> list[str]:
    """Remove indicator values computed from a changed layer; they no longer describe the data."""
    layer = get_layer("indicators")
    values = store.read_layer(layer)
    if values.empty:
        return []
    inputs = values["inputs"].fillna("").str.split(",")
    # What is computed from a layer's public form (incidents counted on cells) changed with it.
    changed = changed | {
        layer.public_form for layer in catalogue().values() if layer.name in changed and layer.public_form
    }
    stale = inputs.map(lambda names: bool(changed & set(names)))
    if not stale.any():
        return []
    stale |= inputs.map(lambda names: "indicators" in names)  # computed from values just withdrawn
    writer.begin(layer)
    writer.append(layer, values[~stale])
    writer.finish(layer, None)
    return sorted(set(values.loc[stale, "indicator_id"]))
