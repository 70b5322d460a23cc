"""Compute registered indicators from the store and keep them as a time series with provenance."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rich.progress import Progress

from layers import catalogue, get_layer, get_raster_layer, raster_catalogue
from observatory import __version__
from observatory.disclosure import SUPPRESSED, incident_cells, protect, public_frame
from observatory.errors import NotFound
from observatory.indicators import coverage
from observatory.indicators.denominators import CENSUS_YEAR
from observatory.indicators.hotspots import RESOLUTION as HOTSPOT_RESOLUTION
from observatory.indicators.hotspots import point_cells
from observatory.indicators.land_use import plan_year
from observatory.indicators.registry import METROPOLITAN_CODE, REGISTRY, Indicator
from observatory.indicators.violence import EVERY_INCIDENT
from observatory.rasters import raster_file
from observatory.settings import Settings, get_settings
from observatory.store import Store
from observatory.store.base import conform, empty_frame

MUNICIPALITIES_2007 = "municipios_2007"
"""Geography of the 14 municipalities of the AMSS (districts since 2024)."""
MUNICIPALITIES_2024 = "municipios_2024"
"""Geography of the 6 municipalities of 2024 the 14 became districts of."""


@dataclass(frozen=True)
class ComputeOutcome:
    values: gpd.GeoDataFrame
    """The newly computed rows."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Indicator id -> why it was not computed."""


def compute_indicators(
    store: Store,
    ids: Iterable[str] | None = None,
    *,
    period: int | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> ComputeOutcome:
    """Compute indicators (all whose inputs are loaded, by default) on both geographies, and store them.

    A recomputed (indicator, period, geography) replaces that triple's earlier values; every other
    period is kept. With ``period`` only that period's values are kept from the computation (and so
    replaced); without it, every period the inputs give. Each value records its inputs, their load
    run ids, when it was computed and by which code version. On the 2024 geography every indicator
    is computed again from its inputs regrouped (counts summed, rates from summed numerators and
    denominators, medians from the records), never averaged from the 14 values.

    Indicators whose input is what the public see (the ``indicators`` layer itself, or the public
    form of a restricted layer: the smoothed rates, the composite index, the hot spots) are
    computed in a second pass, from what the first pass published (``observatory.disclosure``),
    each geography from its own values.
    """
    settings = settings or get_settings()
    selected = _select(ids)
    published_from = {layer.public_form: layer.name for layer in catalogue().values() if layer.public_form}
    sources = {
        item.id: [published_from.get(n, n) for n in item.inputs if n != STORED_VALUES] for item in selected
    }
    layer_names = sorted({name for names in sources.values() for name in names})
    frames = {name: _read_input(store, name, settings) for name in layer_names}
    frames.setdefault("municipalities", store.read_layer(get_layer("municipalities")))
    runs = store.load_runs()
    for name, frame in frames.items():
        if isinstance(frame, gpd.GeoDataFrame):
            pairs = coverage.declared(runs, name, partitioned=bool(get_layer(name).partition))
            if pairs is not None:
                frame.attrs[coverage.ATTRIBUTE] = pairs
    skipped = {
        item.id: "needs " + ", ".join(missing) + ", not loaded"
        for item in selected
        if (
            missing := [
                name
                for name in sources[item.id]
                if _missing(frames[name]) and name not in item.optional_inputs
            ]
        )
    }
    runnable = [item for item in selected if item.id not in skipped]
    geographies = {MUNICIPALITIES_2007: frames}
    regrouped = _regroup_2024(frames)
    if regrouped is not None:
        geographies[MUNICIPALITIES_2024] = regrouped
    task = progress.add_task("compute indicators", total=len(runnable)) if progress else None
    published = {STORED_VALUES, *published_from}
    first = [item for item in runnable if not published & set(item.inputs)]
    second = [item for item in runnable if published & set(item.inputs)]
    context = _Context(store, settings, period, progress, task)
    computed = [_compute_and_store(context, first, geographies)]
    values_layer = get_layer(STORED_VALUES)
    stored = store.read_layer(values_layer)
    _publish_incident_cells(store, frames, stored, settings)
    if second:
        forms = {name: store.read_layer(get_layer(name)) for name in published_from}
        for geography, inputs in geographies.items():
            inputs[STORED_VALUES] = public_frame(values_layer, stored[stored["geography"] == geography])
            inputs.update(forms)
        computed.append(_compute_and_store(context, second, geographies))
        produced = set(computed[-1]["indicator_id"])
        reason = "nothing published of what it combines"
        skipped.update({item.id: reason for item in second if item.id not in produced})
    filled = [part for part in computed if not part.empty]
    if not filled:
        return ComputeOutcome(computed[0], skipped)
    values = pd.concat(filled, ignore_index=True)
    return ComputeOutcome(gpd.GeoDataFrame(values, geometry="geometry", crs=filled[0].crs), skipped)


STORED_VALUES = "indicators"
"""The layer of stored indicator values: an indicator that takes it as input is computed after
the others."""
YEARLY = "yearly"
CENSUS = "census"
"""The input-period key of the 2007 census population of ``municipalities``."""


def dated(item: Indicator, inputs: dict[str, Input], values: pd.DataFrame) -> pd.DataFrame:
    """``values`` with the period of each input they used (``input_periods``, JSON) and dated by
    the indicator's ``period_rule`` (``registry.PERIOD_RULE`` unless it states its own).

    An input is yearly when its records are dated (a date, a ``year``) or it holds several
    periods: each value used that input's records of its own period. An input of one period
    (a census, a street extract, a raster's year) gives that period; a value resting on such
    inputs only takes the latest of them, so that street density and access on the same 2024
    streets carry the same year. A compute function that knows better (the population year a
    rate divided by, the components of an index) returns ``input_periods`` itself.
    """
    kinds = {name: _period_of(name, inputs[name]) for name in item.inputs if name != "municipalities"}
    fixed = {name: kind for name, kind in kinds.items() if isinstance(kind, int)}
    if item.census:
        fixed[CENSUS] = CENSUS_YEAR
    yearly = [name for name, kind in kinds.items() if kind == YEARLY]
    values = values.astype({"period": "int64"})
    if "input_periods" not in values.columns:
        values["input_periods"] = [
            {**fixed, **{name: int(period) for name in yearly}} for period in values["period"]
        ]
    if not yearly and not values.empty:
        latest = [
            max(periods.values(), default=period)
            for periods, period in zip(values["input_periods"], values["period"], strict=True)
        ]
        values["period"] = np.asarray(latest, dtype="int64")
    values["input_periods"] = [
        json.dumps(periods, sort_keys=True, separators=(",", ":")) for periods in values["input_periods"]
    ]
    return values


def _period_of(name: str, layer_input: Input) -> int | str | None:
    """An input's single period, ``YEARLY`` for dated records or several periods, None if undated
    (a register of facilities, the plan: not listed in ``input_periods``)."""
    if isinstance(layer_input, Path):
        return get_raster_layer(name).year
    layer = get_layer(name)
    if layer.datetime or "year" in layer.properties:
        return YEARLY
    if "plan_version" in layer_input.columns:  # the zoning plan: the year its version names
        years = {year for year in layer_input["plan_version"].dropna().map(plan_year) if year}
        return max(years) if years else None
    if "period" not in layer_input.columns:
        return None
    periods = layer_input["period"].dropna().unique()
    if len(periods) == 1:
        return int(periods[0])
    return YEARLY if len(periods) else None


@dataclass(frozen=True)
class _Context:
    store: Store
    settings: Settings
    period: int | None
    progress: Progress | None
    task: Any


def _compute_and_store(
    context: _Context, items: list[Indicator], geographies: dict[str, dict[str, Input]]
) -> gpd.GeoDataFrame:
    """Compute ``items`` on every geography and store them (replacing their periods' earlier values)."""
    store, settings = context.store, context.settings
    runs = {run.layer: run.run_id for run in store.load_runs()}
    computed_at = datetime.now(UTC).isoformat(timespec="seconds")
    outlines_of = {
        geography: _outlines(inputs["municipalities"]) for geography, inputs in geographies.items()
    }
    parts = []
    for item in items:
        for geography, inputs in geographies.items():
            arguments: dict[str, Any] = {name: inputs[name] for name in item.inputs}
            arguments.update({option: getattr(settings, option) for option in item.options})
            values = dated(item, inputs, item.compute(**arguments))
            if context.period is not None:
                values = values[values["period"] == context.period]
            if values.empty:
                continue
            outlines = outlines_of[geography]
            parts.append(
                gpd.GeoDataFrame(
                    values.assign(
                        indicator_id=item.id,
                        theme=item.theme,
                        geography=geography,
                        unit=item.unit,
                        inputs=",".join(item.inputs),
                        input_runs=",".join(runs.get(name, "") for name in item.inputs),
                        computed_at=computed_at,
                        code_version=__version__,
                        municipality_name=values["municipality_code"].map(outlines["name"]),
                    ),
                    geometry=values["municipality_code"].map(outlines.geometry).values,
                    crs=outlines.crs,
                )
            )
        if context.progress is not None and context.task is not None:
            context.progress.advance(context.task)
    layer = get_layer(STORED_VALUES)
    if not parts:
        return empty_frame(layer)
    computed = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)
    computed["value_id"] = (
        computed["indicator_id"] + ":" + computed["municipality_code"] + ":" + computed["period"].astype(str)
    )
    # Both geographies have a metropolitan value of their own (an index across 14 or across 6).
    metropolitan = computed["municipality_code"] == METROPOLITAN_CODE
    computed.loc[metropolitan, "value_id"] += ":" + computed.loc[metropolitan, "geography"]
    if "n" not in computed.columns:
        computed["n"] = pd.NA
    small = (computed["n"].astype("Float64") < settings.small_n).fillna(False).astype(bool)
    computed["flag"] = pd.Series("small_n", index=computed.index, dtype=object).where(small)
    computed.loc[_withheld(computed, geographies, settings), "flag"] = SUPPRESSED
    existing = store.read_layer(layer)
    key = ["indicator_id", "period", "geography"]
    replaced = existing.set_index(key).index.isin(computed.set_index(key).index)
    kept = existing[~replaced].rename_geometry("geometry")
    merged = pd.concat([kept, computed[[*layer.properties, "geometry"]]], ignore_index=True)
    store.replace_layer(layer, gpd.GeoDataFrame(merged, geometry="geometry", crs=computed.crs), run=None)
    return computed


def _publish_incident_cells(
    store: Store, frames: dict[str, Input], stored: gpd.GeoDataFrame, settings: Settings
) -> None:
    """Write the public form of the incidents (``incident_cells``), hiding the cells of every
    municipality and year whose count of incidents is withheld in the ``stored`` values."""
    incidents = frames.get("incidents")
    if not isinstance(incidents, gpd.GeoDataFrame):
        incidents = store.read_layer(get_layer("incidents"))
    if incidents.empty:
        return
    withheld = stored[
        (stored["flag"] == SUPPRESSED)
        & (stored["geography"] == MUNICIPALITIES_2007)
        & (stored["indicator_id"] == EVERY_INCIDENT)
    ]
    hidden = set(zip(withheld["municipality_code"], withheld["period"].astype(int), strict=True))
    layer = get_layer("incident_cells")
    cells = incident_cells(
        incidents,
        cells=point_cells(incidents.geometry, resolution=HOTSPOT_RESOLUTION),
        threshold=settings.small_n,
        hidden_groups=hidden,
    )
    store.replace_layer(layer, conform(layer, cells), run=None)


def _withheld(
    computed: pd.DataFrame, geographies: dict[str, dict[str, Input]], settings: Settings
) -> pd.Series:
    """The rows of count indicators that public outputs withhold (``observatory.disclosure``)."""
    counts = {key for key, item in REGISTRY.items() if item.disclosure == "counts"}
    rows = computed[computed["indicator_id"].isin(counts)]
    withheld = pd.Series(False, index=computed.index)
    if rows.empty:
        return withheld
    districts = geographies[MUNICIPALITIES_2007]["municipalities"]
    assert isinstance(districts, gpd.GeoDataFrame)
    parents = districts.set_index("code")["municipality_2024_code"]
    crosswalk = {
        code: (parent if MUNICIPALITIES_2024 in geographies and isinstance(parent, str) else None)
        for code, parent in parents.items()
    }
    geography_pair = (MUNICIPALITIES_2007, MUNICIPALITIES_2024)
    parts = {key: item.part_of for key, item in REGISTRY.items() if key in counts and item.part_of}
    protected = protect(
        rows, crosswalk=crosswalk, geographies=geography_pair, threshold=settings.small_n, parts=parts
    )
    withheld[protected.index] = protected
    return withheld


Input: TypeAlias = gpd.GeoDataFrame | Path
"""A vector layer as a frame, or a raster layer as its GeoTIFF (indicators read it by zones)."""


def _outlines(municipalities: Input) -> gpd.GeoDataFrame:
    """Name and outline per code, the metropolitan area (the union) included."""
    assert isinstance(municipalities, gpd.GeoDataFrame)
    outlines = municipalities.set_index("code")[["name", "geom"]]
    metropolitan = gpd.GeoDataFrame(
        {"name": ["Área Metropolitana de San Salvador"]},
        geometry=[shapely.union_all(outlines.geometry.values)],
        index=pd.Index([METROPOLITAN_CODE], name="code"),
        crs=outlines.crs,
    ).rename_geometry("geom")
    return gpd.GeoDataFrame(pd.concat([outlines, metropolitan]), geometry="geom", crs=outlines.crs)


def _read_input(store: Store, name: str, settings: Settings) -> Input:
    if name in raster_catalogue():
        return raster_file(name, settings)
    return store.read_layer(get_layer(name))


def _missing(layer_input: Input) -> bool:
    if isinstance(layer_input, Path):
        return not layer_input.is_file()
    return layer_input.empty


def _regroup_2024(frames: dict[str, Input]) -> dict[str, Input] | None:
    """The inputs on the 2024 geography: municipalities dissolved into their 2024 municipality,
    codes in other layers mapped through the same crosswalk. None without a crosswalk."""
    municipalities = frames["municipalities"]
    assert isinstance(municipalities, gpd.GeoDataFrame)
    crosswalk = municipalities.set_index("code")["municipality_2024_code"]
    if crosswalk.isna().any():
        return None
    grouped = municipalities.groupby("municipality_2024_code", sort=True)

    def complete_sum(column: str) -> pd.Series:
        """A total only where every member has a value: a partial sum would be silently wrong."""
        return grouped[column].apply(lambda values: values.sum() if values.notna().all() else np.nan)

    names = grouped["municipality_2024_name"].first()
    dissolved = gpd.GeoDataFrame(
        {
            "code": names.index,
            "name": names.to_numpy(),
            "population_2007": complete_sum("population_2007").reindex(names.index).to_numpy(),
            "official_area_km2": complete_sum("official_area_km2").reindex(names.index).to_numpy(),
            "area_km2": complete_sum("area_km2").reindex(names.index).to_numpy(),
            "districts": grouped.size().reindex(names.index).to_numpy(),
        },
        geometry=[shapely.union_all(grouped.get_group(code).geometry.values) for code in names.index],
        crs=municipalities.crs,
    ).rename_geometry("geom")
    regrouped: dict[str, Input] = {"municipalities": dissolved}
    for name, frame in frames.items():
        if name != "municipalities":
            regrouped[name] = (
                frame.assign(municipality_code=frame["municipality_code"].map(crosswalk))
                if isinstance(frame, gpd.GeoDataFrame) and "municipality_code" in frame.columns
                else frame
            )
    return regrouped


def _select(ids: Iterable[str] | None) -> list[Indicator]:
    if ids is None:
        return list(REGISTRY.values())
    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        raise NotFound(f"unknown indicator(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    return [REGISTRY[i] for i in ids]
