"""The order of several loads: a layer after the layers its rows are checked against."""

from __future__ import annotations

from etl.derive import needs
from etl.manifest import Manifest
from layers import get_layer
from observatory.errors import LoadError


def load_order(manifests: list[Manifest]) -> list[Manifest]:
    """``manifests`` sorted so that each comes after those of the layers it needs."""
    pending = list(manifests)
    ordered: list[Manifest] = []
    while pending:
        waiting = {m.layer for m in pending}
        ready = [m for m in pending if not (_needs(m) - {m.layer}) & waiting]
        if not ready:
            raise LoadError(f"these loads wait on each other: {', '.join(sorted(waiting))}")
        ordered += ready
        pending = [m for m in pending if m not in ready]
    return ordered


def _needs(manifest: Manifest) -> set[str]:
    """The layers a manifest's load reads: a raster's window is the municipalities' extent."""
    return {"municipalities"} if manifest.is_raster else needs(get_layer(manifest.layer))
