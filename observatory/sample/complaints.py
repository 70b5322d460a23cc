"""Citizens' complaints of illegal construction as OPAMSS's register exports them, with the
inspector's GPS position in lon/lat and the municipality named, not coded.

The accountability report in ``shared/seed`` counts 64 complaints in its year (REPORT_YEAR of the
permits); every other year is 64 times the permits' YEAR_FACTORS entry. About 40% of a year's
complaints are about works next to a construction permit granted before the complaint and submitted
up to 300 days before it (works beyond what was authorised); the rest fall where no approved
construction permit lies within CLEAR_OF_PERMITS_M. Old complaints are mostly settled, recent ones
still being inspected."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from observatory.sample.geometry import centre_metric, random_points_in
from observatory.sample.permits import APPROVED, CONSTRUCTION, EXPORT_DATE, YEAR_FACTORS
from observatory.settings import METRIC_CRS, PERMITS_SOURCE_CRS, STORAGE_CRS

COMPLAINTS_STREAM = 7007
"""The complaints generator's own random stream (with the seed)."""
REPORT_COMPLAINTS = 64
"""Complaints received in the permits' REPORT_YEAR."""
NEAR_PERMIT_SHARE = 0.4
NEAR_PERMIT_M = (5.0, 25.0)
"""How far from its permit a complaint about permitted works is recorded (GPS and lot size); less
than the permits' inset from the boundaries, so it stays in the same municipality."""
NEAR_PERMIT_DAYS = 300
"""A complaint about permitted works comes at most this many days after the permit's submission."""
CLEAR_OF_PERMITS_M = 100.0
"""A complaint about works with no permit lies at least this far from every approved construction
permit (twice the indicator's default distance)."""
KINDS = {"obra_sin_permiso": 0.55, "ampliacion_no_autorizada": 0.25, "cambio_de_uso": 0.12,
         "invasion_derecho_de_via": 0.08}  # fmt: skip
SETTLED_AFTER_DAYS = 120
"""Complaints older than this at the export are mostly settled."""
STATUSES = {"resuelta": 0.9, "en_inspeccion": 0.1}
RECENT_STATUSES = {"resuelta": 0.3, "en_inspeccion": 0.4, "recibida": 0.3}


def yearly_complaints() -> dict[int, int]:
    """Complaints per year: the report's 64 times the year's factor."""
    return {year: round(REPORT_COMPLAINTS * factor) for year, factor in YEAR_FACTORS.items()}


def near_permit_count() -> int:
    """How many complaints are about works beside a permit, over all years."""
    return sum(round(count * NEAR_PERMIT_SHARE) for count in yearly_complaints().values())


def _days_of(year: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` days of ``year`` up to the export, uniformly."""
    first = np.datetime64(f"{year}-01-01")
    last = min(np.datetime64(f"{year}-12-31"), EXPORT_DATE)
    return first + rng.integers(0, int((last - first).astype(int)) + 1, count).astype("timedelta64[D]")


def _beside_permits(
    granted: pd.DataFrame, year: int, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Dates in ``year`` and the positions (rows of ``granted``) of the permits ``count``
    complaints are about: granted before the complaint, submitted at most NEAR_PERMIT_DAYS before;
    a permit is complained about once while others are left."""
    submitted = granted["fecha_ingreso"].to_numpy(dtype="datetime64[D]")
    resolved = granted["fecha_resolucion"].to_numpy(dtype="datetime64[D]")
    used: set[int] = set()
    dates: list[np.datetime64] = []
    chosen: list[int] = []
    while len(dates) < count:
        day = _days_of(year, 1, rng)[0]
        lag = (day - submitted).astype(int)
        fits = np.flatnonzero((resolved < day) & (lag >= 0) & (lag <= NEAR_PERMIT_DAYS))
        if len(fits) == 0:
            continue
        fresh = fits[~np.isin(fits, list(used))]
        pick = int(rng.choice(fresh if len(fresh) else fits))
        used.add(pick)
        dates.append(day)
        chosen.append(pick)
    return np.array(dates, dtype="datetime64[D]"), np.array(chosen, dtype=int)


def _clear_of_permits(
    area: shapely.Geometry, permits: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` metric points in ``area`` (denser toward the centre), none within
    CLEAR_OF_PERMITS_M of the ``permits`` points."""
    tree = shapely.STRtree(permits)
    found = np.empty((0, 2))
    while len(found) < count:
        xy = random_points_in(area, 2 * count, rng, toward=centre_metric())
        near = tree.query(shapely.points(xy), predicate="dwithin", distance=CLEAR_OF_PERMITS_M)[0]
        found = np.concatenate([found, np.delete(xy, near, axis=0)])
    return found[:count]


def _statuses(dates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    recent = (EXPORT_DATE - dates).astype(int) <= SETTLED_AFTER_DAYS
    old = rng.choice(list(STATUSES), len(dates), p=list(STATUSES.values()))
    new = rng.choice(list(RECENT_STATUSES), len(dates), p=list(RECENT_STATUSES.values()))
    return np.where(recent, new, old)


def complaints_frame(
    permits: pd.DataFrame, municipalities: gpd.GeoDataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """The complaints table; ``permits`` is :func:`permits_frame`'s table (or its CSV read back),
    ``municipalities`` :func:`amss_boundaries`."""
    granted = permits[(permits["tramite"] == CONSTRUCTION) & (permits["estado"] == APPROVED)].assign(
        fecha_ingreso=lambda frame: pd.to_datetime(frame["fecha_ingreso"]),
        fecha_resolucion=lambda frame: pd.to_datetime(frame["fecha_resolucion"]),
    )
    to_metric = Transformer.from_crs(PERMITS_SOURCE_CRS, METRIC_CRS, always_xy=True)
    px, py = to_metric.transform(granted["x"].to_numpy(), granted["y"].to_numpy())
    metric = municipalities.to_crs(METRIC_CRS)
    area = shapely.union_all(metric.geometry.values)
    xs, ys, all_dates = [], [], []
    for year, count in yearly_complaints().items():
        near = round(count * NEAR_PERMIT_SHARE)
        dates, chosen = _beside_permits(granted, year, near, rng)
        angle = rng.uniform(0, 2 * np.pi, near)
        offset = rng.uniform(*NEAR_PERMIT_M, near)
        far_xy = _clear_of_permits(area, shapely.points(px, py), count - near, rng)
        xs += [px[chosen] + offset * np.cos(angle), far_xy[:, 0]]
        ys += [py[chosen] + offset * np.sin(angle), far_xy[:, 1]]
        all_dates += [dates, _days_of(year, count - near, rng)]
    x, y, days = np.concatenate(xs), np.concatenate(ys), np.concatenate(all_dates)
    points = gpd.GeoSeries.from_xy(x, y, crs=METRIC_CRS)
    named = gpd.sjoin(
        gpd.GeoDataFrame(geometry=points), metric[["name", metric.geometry.name]], predicate="within"
    )
    frame = pd.DataFrame(
        {
            "fecha_denuncia": pd.to_datetime(days),
            "tipo_denuncia": rng.choice(list(KINDS), len(days), p=list(KINDS.values())),
            "estado": _statuses(days, rng),
            "municipio": named["name"].groupby(level=0).first().reindex(range(len(days))).to_numpy(),
        }
    )
    lon, lat = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True).transform(x, y)
    frame["longitud"], frame["latitud"] = np.round(lon, 6), np.round(lat, 6)
    frame = frame.sort_values("fecha_denuncia", kind="stable").reset_index(drop=True)
    year = frame["fecha_denuncia"].dt.year.astype(str)
    frame.insert(
        0, "correlativo", "DEN-" + year + "-" + pd.Series(range(1, len(frame) + 1)).astype(str).str.zfill(3)
    )
    frame["fecha_denuncia"] = frame["fecha_denuncia"].dt.strftime("%Y-%m-%d")
    return frame
