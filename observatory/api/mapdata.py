"""What the planners' map needs beyond the OGC API: the page itself, choropleth classes computed
with mapclassify, a municipality's profile (values, ranks, series) and the store's context (sample
badge, sources to credit, periods, overlays). Everything here reads the catalogue and the store."""

from __future__ import annotations

import json
import tomllib
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import mapclassify
import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from layers import catalogue, get_layer
from observatory.api.features import store_of
from observatory.api.openapi import documented
from observatory.api.periods import INDICATORS
from observatory.errors import NotFound
from observatory.files import public_layer
from observatory.indicators import REGISTRY
from observatory.indicators.compute import MUNICIPALITIES_2007
from observatory.indicators.registry import METROPOLITAN_CODE
from observatory.indicators.themes import THEMES
from observatory.map import render_page
from observatory.settings import REFERENCE_DIR
from observatory.store import Store
from zoning import LAND_USE_CLASSES

router = APIRouter()

Geography = Literal["municipios_2007", "municipios_2024"]
Method = Literal["quantiles", "natural_breaks", "equal_interval"]
ThemeId = StrEnum("ThemeId", [(key, key) for key in THEMES])  # type: ignore[misc]
"""The themes' ids, listed in the OpenAPI document."""
CLASSIFIERS = {
    "quantiles": mapclassify.Quantiles,
    "natural_breaks": mapclassify.FisherJenks,  # Jenks' optimum, deterministic (NaturalBreaks is k-means)
    "equal_interval": mapclassify.EqualInterval,
}
SOURCES = {
    "municipalities": "geoBoundaries (CC BY 4.0)",
    "statistics": "DIGESTYC, FISDL, EHPM, PNC",
    "zoning": "OPAMSS: Esquema Director",
    "permits": "OPAMSS",
    "complaints": "OPAMSS",
    "streets": "© OpenStreetMap contributors (ODbL)",
    "population": "WorldPop",
    "facilities": "MINED, MINSAL",
    "public_spaces": "OPAMSS",
    "transit_stops": "VMT (GTFS)",
    "transit_routes": "VMT (GTFS)",
    "incidents": "PNC",
    "incident_cells": "PNC",
}
"""Who to credit for each loaded layer, as the map's attribution shows it."""
BASE_LAYERS = {"municipalities", "indicators", "statistics", "population"}
"""Layers the map draws itself (outlines, choropleth) or that have no map form: not overlays."""
SAMPLE_DIR = REFERENCE_DIR.parent / "sample"


@dataclass(frozen=True)
class Classes:
    """A choropleth classification: ranges that partition the values, and each value's class."""

    ranges: list[tuple[float, float]]
    """(lowest, highest) value of each non-empty class, ascending; never overlapping."""
    counts: list[int]
    assigned: dict[str, int]
    """Key (municipality code) -> class index; keys with no value are absent ("sin datos")."""
    integer: bool


def classify(values: pd.Series, *, method: Method, k: int) -> Classes:
    """Classes of ``values`` (indexed by key) by mapclassify; counts keep integer limits.

    The legend shows each class as the lowest and highest value it holds, so ranges never overlap
    and, for counts, never show fractions (a quantile limit of 10.8 holds values up to 10).
    """
    finite = values[np.isfinite(values.astype(float))].astype(float)
    if finite.empty:
        return Classes([], [], {}, integer=False)
    k = max(1, min(k, finite.nunique()))
    with warnings.catch_warnings():  # Fisher-Jenks without numba: pure Python, quick for a few dozen values
        warnings.filterwarnings("ignore", message="Numba not installed", category=UserWarning)
        bins = np.asarray([finite.max()]) if k == 1 else CLASSIFIERS[method](finite.to_numpy(), k=k).bins
    raw = np.searchsorted(bins, finite.to_numpy(), side="left")
    used = sorted(set(raw.tolist()))
    index = {c: i for i, c in enumerate(used)}
    assigned = {str(key): index[int(c)] for key, c in zip(finite.index, raw, strict=True)}
    ranges, counts = [], []
    for c in used:
        members = finite.to_numpy()[raw == c]
        ranges.append((float(members.min()), float(members.max())))
        counts.append(int(members.size))
    return Classes(ranges, counts, assigned, integer=bool((finite == finite.round()).all()))


def public_values(store: Store, *, geography: str) -> pd.DataFrame:
    """Indicator values of one geography without geometry, as public outputs serve them."""
    frame = pd.DataFrame(public_layer(store, get_layer(INDICATORS)).drop(columns="geom"))
    frame = frame[frame["geography"].fillna(MUNICIPALITIES_2007) == geography]
    return frame.assign(
        value=pd.to_numeric(frame["value"], errors="coerce"), period=frame["period"].astype(int)
    )


def _check_indicator(indicator_id: str) -> None:
    if indicator_id not in REGISTRY:
        raise NotFound(f"no indicator {indicator_id!r}; see /indicators")


@router.get(
    "/map",
    response_class=HTMLResponse,
    summary="The planners' map application (its state lives in the query string)",
    openapi_extra=documented(not_found=True),
)
async def map_page(
    indicator: Annotated[str | None, Query(description="indicator id; see /indicators")] = None,
    period: Annotated[int | None, Query(ge=1, le=9999, description="year (the page reads it)")] = None,
    lang: Annotated[Literal["es", "en"], Query(description="language of the page")] = "es",
) -> HTMLResponse:
    """The page is the same for every state; a bad indicator or period is refused before it loads."""
    if indicator is not None:
        _check_indicator(indicator)
    return HTMLResponse(render_page(lang=lang))


@router.get(
    "/indicators/{indicator_id}/classes",
    summary="Choropleth classes of one indicator and period (mapclassify), with each municipality's class",
    openapi_extra=documented(store=True, not_found=True),
)
def classes(
    request: Request,
    indicator_id: str,
    period: Annotated[int, Query(ge=1, le=9999, description="year")],
    geography: Annotated[Geography, Query(description="the geography classified")] = "municipios_2007",
    method: Annotated[Method, Query(description="classification method")] = "quantiles",
    k: Annotated[int, Query(ge=2, le=9, description="number of classes wanted")] = 5,
) -> dict[str, Any]:
    _check_indicator(indicator_id)
    values = public_values(store_of(request), geography=geography)
    own = values[(values["indicator_id"] == indicator_id) & (values["period"] == period)]
    own = own[own["municipality_code"] != METROPOLITAN_CODE]
    result = classify(own.set_index("municipality_code")["value"], method=method, k=k)
    return {
        "indicator_id": indicator_id, "period": period, "geography": geography, "method": method, "k": k,
        "integer": result.integer,
        "classes": [{"min": lo, "max": hi, "count": n} for (lo, hi), n in zip(result.ranges, result.counts,
                                                                             strict=True)],
        "assigned": result.assigned,
        "no_data": sorted(set(own["municipality_code"]) - set(result.assigned)),
    }  # fmt: skip


def _ranks(values: pd.Series, direction: str) -> pd.Series:
    """Rank 1 is the best value (the lowest when lower is better, else the highest); ties share."""
    return values.rank(ascending=direction == "lower_is_better", method="min")


@router.get(
    "/map/profile/{code}",
    summary="A municipality's profile: each indicator of a theme with its value, rank and series",
    openapi_extra=documented(store=True, not_found=True),
)
def profile(
    request: Request,
    code: str,
    theme: Annotated[ThemeId, Query(description="theme id; see /themes")],
    period: Annotated[int, Query(ge=1, le=9999, description="year")],
    geography: Annotated[Geography, Query(description="the geography")] = "municipios_2007",
) -> dict[str, Any]:
    values = public_values(store_of(request), geography=geography)
    places = values[values["municipality_code"] != METROPOLITAN_CODE]
    if code not in set(places["municipality_code"]):
        raise NotFound(f"no values for municipality {code!r} in {geography}")
    entries = []
    for item in (item for item in REGISTRY.values() if item.theme == theme.value):
        own = places[places["indicator_id"] == item.id]
        now = own[own["period"] == period].set_index("municipality_code")
        ranked = now["value"].dropna()
        ranks = _ranks(ranked, item.direction)
        mine = own[own["municipality_code"] == code].sort_values("period")
        here = now.loc[code] if code in now.index else None
        entries.append({
            "id": item.id, "title": {"es": item.title_es, "en": item.title_en}, "unit": item.unit,
            "direction": item.direction,
            "value": None if here is None or pd.isna(here["value"]) else float(here["value"]),
            "flag": None if here is None or pd.isna(here["flag"]) else here["flag"],
            "n": None if here is None or pd.isna(here["n"]) else int(here["n"]),
            "input_periods": None if here is None or pd.isna(here["input_periods"])
            else json.loads(here["input_periods"]),
            "rank": int(ranks[code]) if code in ranks.index else None, "ranked": int(ranks.size),
            "series": [{"period": int(p), "value": None if pd.isna(v) else float(v)}
                       for p, v in zip(mine["period"], mine["value"], strict=True)],
        })  # fmt: skip
    name = places.loc[places["municipality_code"] == code, "municipality_name"].dropna()
    return {
        "code": code, "name": name.iloc[0] if not name.empty else code, "theme": theme.value,
        "period": period, "geography": geography, "indicators": entries,
    }  # fmt: skip


def holds_sample(store: Store) -> bool:
    """Whether a layer's latest load came from the sample: a manifest named as one of the sample's
    (``data/sample/*.toml``, which ``observatory sample`` copies) reading the file that manifest names."""
    expected = {
        path.name: Path(tomllib.loads(path.read_text(encoding="utf-8"))["source"]["path"]).name
        for path in SAMPLE_DIR.glob("*.toml")
    }
    latest = {run.layer: run for run in sorted(store.load_runs(), key=lambda run: run.started_at)}
    return any(
        expected.get(Path(run.manifest_file).name) == Path(run.source_file).name for run in latest.values()
    )


@router.get(
    "/map/context",
    summary="What the map shows around the indicators: sources, sample badge, periods, overlays, places",
    openapi_extra=documented(store=True),
)
def context(request: Request) -> dict[str, Any]:
    store = store_of(request)
    loaded = {run.layer for run in store.load_runs()}
    # A layer the public see only aggregated is shown (and credited) through its public form.
    shown = loaded | {
        layer.public_form for layer in catalogue().values() if layer.name in loaded and layer.public_form
    }
    municipalities = store.read_layer(get_layer("municipalities"))
    labels = shapely.point_on_surface(municipalities.geometry.to_numpy())
    periods = public_values(store, geography=MUNICIPALITIES_2007)["period"].unique()
    return {
        "sample": holds_sample(store),
        "attribution": list(dict.fromkeys(SOURCES[name] for name in SOURCES if name in loaded)),
        "periods": sorted(int(p) for p in periods),
        "places": [
            {"code": code, "name": name, "label": [round(point.x, 6), round(point.y, 6)]}
            for code, name, point in zip(municipalities["code"], municipalities["name"], labels, strict=True)
        ],
        "overlays": [
            {"name": layer.name, "title": {"es": layer.title, "en": layer.title_en},
             "geometry": layer.geometry, "color": layer.style.color, "fill_color": layer.style.fill_color,
             "min_zoom": layer.min_zoom, "max_zoom": layer.max_zoom}
            for layer in catalogue().values()
            if layer.name in shown and layer.public and layer.name not in BASE_LAYERS
        ],
        "zoning_classes": [
            {"id": c.id, "title": {"es": c.title_es, "en": c.title_en}, "colour": c.colour}
            for c in LAND_USE_CLASSES.values()
        ],
    }  # fmt: skip
