"""Compute registered indicators from the store and keep them as a time series with provenance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
from rich.progress import Progress

from layers import get_layer
from observatory import __version__
from observatory.errors import MissingInput, NotFound
from observatory.indicators.registry import REGISTRY, Indicator
from observatory.settings import Settings, get_settings
from observatory.store import Store


def compute_indicators(
    store: Store,
    ids: Iterable[str] | None = None,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> gpd.GeoDataFrame:
    """Compute indicators (all by default) and store their values.

    A recomputed (indicator, period) replaces that pair's earlier values; every other period is
    kept. Each value records its inputs, their load run ids, when it was computed and by which
    code version. Returns the newly computed rows.
    """
    settings = settings or get_settings()
    selected = _select(ids)
    frames = _read_inputs(store, selected)
    runs = {run.layer: run.run_id for run in store.load_runs()}
    municipalities = frames["municipalities"]
    computed_at = datetime.now(UTC).isoformat(timespec="seconds")
    task = progress.add_task("compute indicators", total=len(selected)) if progress else None
    parts = []
    for item in selected:
        arguments = {name: frames[name] for name in item.inputs}
        arguments.update({option: getattr(settings, option) for option in item.options})
        values = item.compute(**arguments)
        values = values.assign(
            indicator_id=item.id,
            theme=item.theme,
            unit=item.unit,
            inputs=",".join(item.inputs),
            input_runs=",".join(runs.get(name, "") for name in item.inputs),
            computed_at=computed_at,
            code_version=__version__,
        )
        parts.append(values)
        if progress is not None and task is not None:
            progress.advance(task)
    new = pd.concat(parts, ignore_index=True)
    new["value_id"] = new["indicator_id"] + ":" + new["municipality_code"] + ":" + new["period"].astype(str)
    outlines = municipalities.set_index("code")
    new["municipality_name"] = new["municipality_code"].map(outlines["name"])
    computed = gpd.GeoDataFrame(
        new, geometry=new["municipality_code"].map(outlines.geometry).values, crs=municipalities.crs
    )

    layer = get_layer("indicators")
    existing = store.read_layer(layer)
    replaced = existing.set_index(["indicator_id", "period"]).index.isin(
        computed.set_index(["indicator_id", "period"]).index
    )
    kept = existing[~replaced].rename_geometry("geometry")
    merged = pd.concat([kept, computed[[*layer.properties, "geometry"]]], ignore_index=True)
    store.replace_layer(layer, gpd.GeoDataFrame(merged, geometry="geometry", crs=computed.crs), run=None)
    return computed


def _select(ids: Iterable[str] | None) -> list[Indicator]:
    if ids is None:
        return list(REGISTRY.values())
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        raise NotFound(f"unknown indicator(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    return [REGISTRY[i] for i in ids]


def _read_inputs(store: Store, selected: list[Indicator]) -> dict[str, gpd.GeoDataFrame]:
    names = sorted({"municipalities", *(name for item in selected for name in item.inputs)})
    frames = {name: store.read_layer(get_layer(name)) for name in names}
    empty = [name for name, frame in frames.items() if frame.empty]
    if empty:
        raise MissingInput(f"load these layers before computing indicators: {', '.join(empty)}")
    return frames
