"""What each layer's load needs: source columns, required values and a layer-specific step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from etl.rejects import Rejects
from layers import get_layer
from observatory.errors import MissingInput
from observatory.settings import METRIC_CRS, PERMITS_SOURCE_CRS
from observatory.store import Store
from zoning import classify

Enrich = Callable[[gpd.GeoDataFrame, Store, Rejects], gpd.GeoDataFrame]


@dataclass(frozen=True)
class Job:
    layer: str
    columns: dict[str, tuple[str, ...]]
    """Catalogue column -> the source column names it may come under (first one is canonical)."""
    required: tuple[str, ...]
    """Catalogue columns every row must have a value for."""
    enrich: Enrich
    optional: tuple[str, ...] = ()
    """Catalogue columns the source file may lack altogether (they are loaded empty)."""
    depends_on: tuple[str, ...] = ()
    """Layers the enrich step reads: reloading one of them makes the same file load again."""
    table_crs: str | None = None
    """CRS of x/y columns when the source is a table (CSV)."""


def _municipality_area(frame: gpd.GeoDataFrame, store: Store, rejects: Rejects) -> gpd.GeoDataFrame:
    frame = frame.copy()
    frame["area_km2"] = frame.to_crs(METRIC_CRS).area / 1e6
    return frame


def _classify_zones(frame: gpd.GeoDataFrame, store: Store, rejects: Rejects) -> gpd.GeoDataFrame:
    frame = frame.copy()
    classes, subclasses, unknown = [], [], []
    for code in frame["source_code"]:
        try:
            land_use, subclass = classify(code)
        except KeyError as error:
            land_use, subclass = None, None
            unknown.append(str(error.args[0]))
        else:
            unknown.append("")
        classes.append(land_use)
        subclasses.append(subclass)
    frame["land_use_class"] = classes
    frame["subclass"] = subclasses
    bad = pd.Series(unknown, index=frame.index) != ""
    rejects.add(frame[bad], pd.Series(unknown, index=frame.index)[bad])
    return frame[~bad]


def _assign_municipality(frame: gpd.GeoDataFrame, store: Store, rejects: Rejects) -> gpd.GeoDataFrame:
    """Each permit takes the code of the municipality it falls in (the first, on a shared edge)."""
    municipalities = store.read_layer(get_layer("municipalities"))
    if municipalities.empty:
        raise MissingInput("load municipalities before permits: each permit is placed in one")
    joined = gpd.sjoin(frame, municipalities[["code", "geom"]], how="left", predicate="intersects")
    joined = joined[~joined.index.duplicated(keep="first")]
    outside = joined["code"].isna()
    rejects.add(joined[outside], "outside every AMSS municipality")
    placed = joined[~outside].drop(columns=["index_right"])
    placed["municipality_code"] = placed.pop("code")
    return placed


JOBS: dict[str, Job] = {
    job.layer: job
    for job in (
        Job(
            layer="municipalities",
            columns={
                "code": ("COD_MUN",),
                "name": ("NOM_MUN",),
                "department": ("DEPTO",),
                "population_2007": ("POB_2007",),
                "valid_from": ("VIGENTE_DESDE",),
                "valid_to": ("VIGENTE_HASTA",),
            },
            required=("code", "name"),
            enrich=_municipality_area,
            optional=("valid_from", "valid_to"),
        ),
        Job(
            layer="zoning",
            columns={
                "zone_id": ("ZONA_ID",),
                "source_code": ("COD_USO",),
                "plan_version": ("VERSION",),
            },
            required=("zone_id", "source_code"),
            enrich=_classify_zones,
        ),
        Job(
            layer="permits",
            columns={
                "permit_id": ("expediente",),
                "kind": ("tramite",),
                "use_class": ("uso",),
                "floor_area_m2": ("area_m2",),
                "investment_usd": ("inversion_usd",),
                "submitted": ("fecha_ingreso",),
                "resolved": ("fecha_resolucion",),
                "status": ("estado",),
            },
            required=("permit_id", "kind", "submitted"),
            enrich=_assign_municipality,
            depends_on=("municipalities",),
            table_crs=PERMITS_SOURCE_CRS,
        ),
    )
}
