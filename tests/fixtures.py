"""A tiny hand-made AMSS: two square municipalities, three zones and five permits.

Municipality 0001 is a 2 km × 2 km square (4 km²) and 0002 a 3 km × 2 km one (6 km²), both drawn
in UTM 16N so that their areas are exact; the loads reproject them like real sources. Each file
is loaded through a manifest written beside it, as real sources are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import morecantile
import pandas as pd
import pyproj
import shapely

from etl import LoadResult, load_source, read_manifest
from observatory.settings import Settings
from observatory.store import Store

UTM = "EPSG:32616"
TMS = morecantile.tms.get("WebMercatorQuad")
X0, Y0 = 263_000, 1_515_000
WEST_SQUARE = shapely.box(X0, Y0, X0 + 2_000, Y0 + 2_000)
EAST_SQUARE = shapely.box(X0 + 2_000, Y0, X0 + 5_000, Y0 + 2_000)

MUNICIPALITIES = [
    {"COD_MUN": "0001", "NOM_MUN": "Oeste", "DEPTO": "San Salvador", "POB_2007": 10_000},
    {"COD_MUN": "0002", "NOM_MUN": "Este", "DEPTO": "San Salvador", "POB_2007": 3_000},
]

# (id, kind, use, area m², investment USD, submitted, resolved, x, y in UTM)
PERMITS = [
    ("P1", "permiso_construccion", "habitacional", 100, 1000, "2017-01-02", "2017-01-16", X0 + 500, Y0 + 500),
    ("P2", "permiso_construccion", "comercio", 300, 5000, "2017-03-01", "2017-04-26", X0 + 1500, Y0 + 1500),
    ("P3", "permiso_construccion", "industria", 50, 200, "2017-02-06", "2017-02-10", X0 + 3000, Y0 + 1000),
    ("P4", "calificacion_lugar", "otros", None, None, "2017-05-01", "2017-05-15", X0 + 4500, Y0 + 500),
    ("P5", "permiso_construccion", "habitacional", 70, 700, "2018-01-08", "2018-01-22", X0 + 1000, Y0 + 1800),
]  # fmt: skip
PERMITS_IN_WEST = {"P1", "P2", "P5"}


def write_municipalities(folder: Path) -> Path:
    path = folder / "municipios.gpkg"
    gpd.GeoDataFrame(MUNICIPALITIES, geometry=[WEST_SQUARE, EAST_SQUARE], crs=UTM).to_file(path)
    return path


def write_zoning(folder: Path, *, extra: tuple[tuple[str, str, shapely.Geometry], ...] = ()) -> Path:
    """West square half residential, half commercial; east square all industry."""
    zones = [
        ("Z1", "HAB-AD", shapely.box(X0, Y0, X0 + 1_000, Y0 + 2_000)),
        ("Z2", "COM", shapely.box(X0 + 1_000, Y0, X0 + 2_000, Y0 + 2_000)),
        ("Z3", "IND", EAST_SQUARE),
        *extra,
    ]
    path = folder / "zonas.gpkg"
    gpd.GeoDataFrame(
        {"ZONA_ID": [z[0] for z in zones], "COD_USO": [z[1] for z in zones], "VERSION": "ED-2017"},
        geometry=[z[2] for z in zones],
        crs=UTM,
    ).to_file(path)
    return path


def permits_table(rows: list[tuple[Any, ...]] = PERMITS) -> pd.DataFrame:
    """Permits as OPAMSS exports them: x/y in the El Salvador Lambert grid (EPSG:5460). A row may
    end with a status (default ``aprobado``)."""
    to_lambert = pyproj.Transformer.from_crs(UTM, "EPSG:5460", always_xy=True)
    records = []
    for pid, kind, use, area, investment, submitted, resolved, x, y, *status in rows:
        if x is None:
            lx = ly = None
        else:
            lx, ly = to_lambert.transform(x, y)
        records.append(
            {"expediente": pid, "tramite": kind, "uso": use, "area_m2": area, "inversion_usd": investment,
             "fecha_ingreso": submitted, "fecha_resolucion": resolved,
             "estado": status[0] if status else "aprobado", "x": lx, "y": ly}
        )  # fmt: skip
    return pd.DataFrame(records)


def write_permits(folder: Path, rows: list[tuple[Any, ...]] = PERMITS, name: str = "permisos.csv") -> Path:
    path = folder / name
    permits_table(rows).to_csv(path, index=False)
    return path


FIELDS = {
    "municipalities": {"code": "COD_MUN", "name": "NOM_MUN", "department": "DEPTO",
                       "population_2007": "POB_2007"},
    "zoning": {"zone_id": "ZONA_ID", "source_code": "COD_USO", "plan_version": "VERSION"},
    "permits": {"permit_id": "expediente", "kind": "tramite", "use_class": "uso", "floor_area_m2": "area_m2",
                "investment_usd": "inversion_usd", "submitted": "fecha_ingreso",
                "resolved": "fecha_resolucion", "status": "estado"},
    "complaints": {"complaint_id": "correlativo", "date": "fecha", "kind": "tipo", "status": "estado"},
}  # fmt: skip
"""The fixtures' column mappings, as their manifests declare them."""


def write_manifest(layer: str, path: Path, *, extra: str = "", source: str = "", fields: str = "") -> Path:
    """A manifest for ``path`` (written beside it): the fixture's mapping plus any extra TOML."""
    lambert = path.suffix == ".csv" and layer == "permits" and "crs" not in source
    crs = 'crs = "EPSG:5460"\n' if lambert else ""
    mapping = "".join(f'{target} = "{column}"\n' for target, column in FIELDS[layer].items())
    manifest = path.with_suffix(".toml")
    manifest.write_text(
        f'layer = "{layer}"\n{extra}\n[source]\npath = "{path.name}"\n{crs}{source}\n'
        f"[fields]\n{mapping}{fields}",
        encoding="utf-8",
    )
    return manifest


def load(store: Store, layer: str, path: Path, *, settings: Settings, **manifest: str) -> LoadResult:
    """Load a fixture file through its manifest (``manifest`` adds TOML to it)."""
    return load_source(store, read_manifest(write_manifest(layer, path, **manifest)), settings=settings)


BOTH_IN_M1 = {"0001": ("M1", "Uno"), "0002": ("M1", "Uno")}
"""The tiny AMSS's two squares, both districts of one 2024 municipality."""


def load_municipalities_2024(
    store: Store,
    path: Path,
    *,
    settings: Settings,
    districts_of: dict[str, tuple[str, str]],
    official_areas: dict[str, float] | None = None,
) -> LoadResult:
    """Load the municipalities of ``path`` joined to the 2024 municipality each became a district of
    (code -> (2024 code, 2024 name)) and, optionally, to their official areas in km²."""
    areas = official_areas or {}
    rows = [
        f"{code},{areas.get(code, '')},{code_2024},{name_2024}"
        for code, (code_2024, name_2024) in districts_of.items()
    ]
    (path.parent / "hechos.csv").write_text(
        "code,area,m2024,n2024\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    area = 'official_area_km2 = "area", ' if areas else ""
    joins = (
        '[[joins]]\npath = "hechos.csv"\non = "code"\nkey = "code"\n'
        f'fields = {{ {area}municipality_2024_code = "m2024", municipality_2024_name = "n2024" }}\n'
    )
    return load(store, "municipalities", path, settings=settings, extra=joins)


WITHHELD_VALUES = [("0001", 20.0, 2, "suppressed"), ("0002", 40.0, 12, None)]
"""Homicide rates added for 2017 to the published store: (municipality, value, n, flag); the
first rests on fewer records than the small-n threshold, so public outputs withhold it."""


def publish(store: Store, folder: Path, *, settings: Settings) -> Store:
    """The tiny AMSS on both geographies (both squares are districts of M1 since 2024), its
    indicators computed, and the two homicide rates of ``WITHHELD_VALUES`` stored beside them."""
    from layers import get_layer
    from observatory.indicators import REGISTRY, compute_indicators
    from observatory.store import conform

    load_municipalities_2024(store, write_municipalities(folder), settings=settings, districts_of=BOTH_IN_M1)
    load(store, "zoning", write_zoning(folder), settings=settings)
    load(store, "permits", write_permits(folder), settings=settings)
    compute_indicators(store, settings=settings)
    layer = get_layer("indicators")
    values = store.read_layer(layer)
    outlines = values[values["geography"] == "municipios_2007"].drop_duplicates("municipality_code")
    outlines = outlines.set_index("municipality_code")
    rate = REGISTRY["homicide_rate"]
    added = gpd.GeoDataFrame(
        [
            {**outlines.loc[code].drop("geom").to_dict(), "value_id": f"{rate.id}:{code}:2017",
             "indicator_id": rate.id, "theme": rate.theme, "municipality_code": code, "period": 2017,
             "value": value, "unit": rate.unit, "n": n, "flag": flag,
             "input_periods": '{"incidents":2017,"population":2007}'}
            for code, value, n, flag in WITHHELD_VALUES
        ],
        geometry=[outlines.loc[code, "geom"] for code, *_ in WITHHELD_VALUES],
        crs=values.crs,
    )  # fmt: skip
    frame = pd.concat([values, added.rename_geometry("geom")], ignore_index=True)
    store.replace_layer(layer, conform(layer, gpd.GeoDataFrame(frame, geometry="geom")), run=None)
    return store


def permits_at(tile: morecantile.Tile, rows: list[tuple[str, str, str, float, float]]) -> gpd.GeoDataFrame:
    """Permits (id, kind, resolved date, column, row) placed at fractions of ``tile`` (0..1 from
    its west and north edges), as a store frame: positions in tiles are then known by hand."""
    bounds = TMS.xy_bounds(tile)
    width, height = bounds.right - bounds.left, bounds.top - bounds.bottom
    points = [
        shapely.Point(TMS.lnglat(bounds.left + column * width, bounds.top - row * height))
        for *_, column, row in rows
    ]
    frame = pd.DataFrame(
        {
            "permit_id": [row[0] for row in rows],
            "kind": [row[1] for row in rows],
            "use_class": "habitacional",
            "floor_area_m2": 100.0,
            "investment_usd": 1000.0,
            "submitted": "2020-01-01",
            "resolved": [row[2] for row in rows],
            "status": "aprobado",
            "municipality_code": "0001",
        }
    )
    return gpd.GeoDataFrame(frame, geometry=points, crs="EPSG:4326")
