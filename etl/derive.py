"""Load steps that depend on the layer rather than on the source: measured areas, land-use
classes, and checks against the municipalities (placement, membership, outlines).

A layer's catalogue entry names its steps (``derive = [...]``). Steps that read another layer
declare it in ``needs``: reloading that layer derives this one again from its stored rows, in the
same write session, so no placement ever refers to boundaries that are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from etl.report import Report
from layers import Layer, get_layer
from observatory.errors import LoadError, MissingInput
from observatory.settings import METRIC_CRS
from observatory.store import Store
from zoning import CROSSWALK


class Context:
    """The other layers a derivation reads: as stored, or as this write session makes them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.frames: dict[str, gpd.GeoDataFrame] = {}
        self.min_share_inside = 0.5

    def layer(self, name: str) -> gpd.GeoDataFrame:
        if name not in self.frames:
            self.frames[name] = self.store.read_layer(get_layer(name))
        return self.frames[name]

    def outline(self) -> shapely.Geometry:
        """The AMSS: the union of the municipalities, in the metric CRS."""
        key = "_outline"
        if key not in self.frames:
            metric = self.layer("municipalities").to_crs(METRIC_CRS)
            self.frames[key] = gpd.GeoDataFrame(
                geometry=[shapely.union_all(metric.geometry.values)], crs=METRIC_CRS
            )
        return self.frames[key].geometry.iloc[0]


Step = Callable[[gpd.GeoDataFrame, Context, Report], gpd.GeoDataFrame]


@dataclass(frozen=True)
class Derivation:
    apply: Step
    needs: tuple[str, ...] = ()
    provides_geometry: bool = False
    """The source needs no geometry: this step gives each row its outline."""


def _measured_area(frame: gpd.GeoDataFrame, context: Context, report: Report) -> gpd.GeoDataFrame:
    return frame.assign(area_km2=frame.to_crs(METRIC_CRS).area / 1e6)


def _land_use_class(frame: gpd.GeoDataFrame, context: Context, report: Report) -> gpd.GeoDataFrame:
    """Class and subclass from the raw plan code through the zoning crosswalk (zoning/)."""
    codes = frame["source_code"].astype(str).str.strip().str.upper()
    known = codes.isin(list(CROSSWALK))
    report.reject(
        frame[~known], frame.loc[~known, "source_code"].map(lambda c: f"unknown land-use code {c!r}")
    )
    frame = frame[known].copy()
    frame["land_use_class"] = codes[known].map(lambda c: CROSSWALK[c][0])
    frame["subclass"] = codes[known].map(lambda c: CROSSWALK[c][1])
    return frame


def _inside_amss(frame: gpd.GeoDataFrame, context: Context, report: Report) -> gpd.GeoDataFrame:
    """Features with at least ``min_share_inside`` of their size inside the AMSS municipalities:
    polygons by area, lines (streets) by length."""
    outline = context.outline()
    metric = frame.to_crs(METRIC_CRS).geometry.values
    shapely.prepare(outline)
    lines = shapely.get_dimensions(metric) == 1
    size = np.where(lines, shapely.length(metric), shapely.area(metric))
    inside = shapely.intersection(metric, outline)
    size_inside = np.where(lines, shapely.length(inside), shapely.area(inside))
    share = np.divide(size_inside, size, where=size > 0, out=np.zeros(len(metric)))
    outside = share < context.min_share_inside - 1e-9  # a share exactly at the limit, give or take rounding
    reasons = pd.Series(
        [f"only {s:.0%} of its {'length' if line else 'area'} lies inside the AMSS "
         f"(at least {context.min_share_inside:.0%} needed)"
         for s, line in zip(share[outside], lines[outside], strict=True)],
        index=frame.index[outside],
    )  # fmt: skip
    report.reject(frame[outside], reasons)
    return frame[~outside]


def _municipality(frame: gpd.GeoDataFrame, context: Context, report: Report) -> gpd.GeoDataFrame:
    """Each row takes the code of the municipality holding its representative point: a point is its
    own, a polygon's is a point inside it (a pixel's centre), so that a cell straddling two
    municipalities is counted once, where its centre is. On a shared edge, the lowest code."""
    geometries = frame.geometry.values
    points = shapely.get_type_id(geometries) == shapely.GeometryType.POINT
    anchors = gpd.GeoSeries(geometries, index=frame.index, crs=frame.crs)
    if not points.all():  # a point is its own anchor; point_on_surface would copy a million of them
        anchors[~points] = shapely.point_on_surface(geometries[~points])
    joined = gpd.sjoin(
        gpd.GeoDataFrame(geometry=anchors),
        context.layer("municipalities")[["code", "geom"]],
        how="left",
        predicate="intersects",
    )
    # The lowest code per row, vectorised: a groupby min on Arrow strings runs in Python, row by row.
    lowest = joined["code"].dropna().sort_values(kind="stable")
    code = lowest[~lowest.index.duplicated(keep="first")].reindex(frame.index)
    outside = code.isna()
    report.reject(frame[outside], "outside every AMSS municipality")
    placed = frame[~outside].drop(columns=["municipality_code"], errors="ignore")
    return placed.assign(municipality_code=code[~outside])


def _municipality_outline(frame: gpd.GeoDataFrame, context: Context, report: Report) -> gpd.GeoDataFrame:
    """Rows of a table take the outline of their municipality (found by code)."""
    outlines = context.layer("municipalities").set_index("code").geometry
    known = frame["municipality_code"].isin(outlines.index)
    report.reject(
        frame[~known],
        frame.loc[~known, "municipality_code"].map(lambda c: f"municipality code {c!r} is not loaded"),
    )
    kept = pd.DataFrame(frame[known]).drop(columns=["geometry", "geom"], errors="ignore")
    return gpd.GeoDataFrame(kept, geometry=kept["municipality_code"].map(outlines).values, crs=outlines.crs)


DERIVATIONS: dict[str, Derivation] = {
    "measured_area": Derivation(_measured_area),
    "land_use_class": Derivation(_land_use_class),
    "inside_amss": Derivation(_inside_amss, needs=("municipalities",)),
    "municipality": Derivation(_municipality, needs=("municipalities",)),
    "municipality_outline": Derivation(
        _municipality_outline, needs=("municipalities",), provides_geometry=True
    ),
}


def derivations(layer: Layer) -> list[Derivation]:
    unknown = [name for name in layer.derive if name not in DERIVATIONS]
    if unknown:
        raise LoadError(f"layer {layer.name}: unknown load step(s) {', '.join(unknown)}")
    return [DERIVATIONS[name] for name in layer.derive]


def needs(layer: Layer) -> set[str]:
    """The layers this layer's load reads."""
    return {need for step in derivations(layer) for need in step.needs}


def provides_geometry(layer: Layer) -> bool:
    return any(step.provides_geometry for step in derivations(layer))


def derive(frame: gpd.GeoDataFrame, layer: Layer, context: Context, report: Report) -> gpd.GeoDataFrame:
    for step in derivations(layer):
        frame = step.apply(frame, context, report)
    return frame


def require_inputs(layer: Layer, context: Context) -> None:
    empty = sorted(name for name in needs(layer) if context.layer(name).empty)
    if empty:
        raise MissingInput(f"load {', '.join(empty)} before {layer.name}: its rows are checked against them")
