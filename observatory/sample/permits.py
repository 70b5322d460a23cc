"""Permits as OPAMSS's register exports them, following the figures of the accountability report in
``shared/seed``: 547 construction permits with $310,887,074 declared investment and 758,967 m²
authorised, uses habitacional 58% / comercio y servicios 18% / equipamientos 16% / industria 2% /
otros 6%; 1,406 site-suitability rulings (calificación de lugar) with comercio y servicios 27% /
habitacional 27% / equipamientos 12% / industria 3% / otros 31%. Each municipality gets a multinomial
share of the permits proportional to its 2007 population, and within it they thin out away from San
Salvador's historic centre (rejection sampling). Every point is at least 30 m inside its polygon, so
reprojection can never move it out."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from observatory.sample.geometry import centre_metric, random_points_in
from observatory.settings import METRIC_CRS, PERMITS_SOURCE_CRS

PERMIT_INSET_M = 30.0
"""Minimum distance of a permit from its municipality's boundary."""
CONSTRUCTION, SUITABILITY = "permiso_construccion", "calificacion_lugar"
REPORT_COUNTS = {CONSTRUCTION: 547, SUITABILITY: 1406}
REPORT_INVESTMENT_USD = 310_887_074
REPORT_FLOOR_AREA_M2 = 758_967
USE_SHARES = {
    CONSTRUCTION: {"habitacional": 58, "comercio_servicios": 18, "equipamientos": 16,
                   "industria": 2, "otros": 6},
    SUITABILITY: {"comercio_servicios": 27, "habitacional": 27, "equipamientos": 12,
                  "industria": 3, "otros": 31},
}  # fmt: skip
PERIOD_START, PERIOD_END = np.datetime64("2016-01-01"), np.datetime64("2018-10-31")


def _exact_shares(total: int, shares: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """A shuffled array of ``total`` labels whose counts follow the percentage shares (largest
    remainder method, so each count is the share rounded as closely as the total allows)."""
    exact = np.array(list(shares.values())) * total / 100
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: total - counts.sum()]] += 1
    labels = np.repeat(list(shares), counts)
    rng.shuffle(labels)
    return labels


def _amounts_summing_to(total: int, count: int, rng: np.random.Generator, *, sigma: float) -> np.ndarray:
    """``count`` positive whole amounts, log-normally spread, that add up to exactly ``total``."""
    raw = rng.lognormal(0.0, sigma, count)
    amounts = np.floor(raw / raw.sum() * total).astype(np.int64)
    amounts[np.argmax(amounts)] += total - amounts.sum()
    return amounts


def permits_frame(
    municipalities: gpd.GeoDataFrame, rng: np.random.Generator, *, scale: float = 1.0
) -> pd.DataFrame:
    """Permits as OPAMSS exports them: a CSV table with x/y in the El Salvador Lambert grid.

    ``municipalities`` is :func:`amss_boundaries` (any CRS).
    """
    parts = []
    for kind, report_count in REPORT_COUNTS.items():
        count = round(report_count * scale)
        uses = _exact_shares(count, USE_SHARES[kind], rng)
        # Processing time in business days: most files close within the legal limit, a tail does not.
        days = np.clip(np.round(rng.lognormal(np.log(18), 0.45, count)), 2, 120).astype(int)
        submitted = PERIOD_START + rng.integers(0, (PERIOD_END - PERIOD_START).astype(int), count)
        submitted = np.busday_offset(submitted.astype("datetime64[D]"), 0, roll="forward")
        resolved = np.busday_offset(submitted, days, roll="forward")
        if kind == CONSTRUCTION:
            investment = _amounts_summing_to(round(REPORT_INVESTMENT_USD * scale), count, rng, sigma=1.2)
            floor_area = _amounts_summing_to(round(REPORT_FLOOR_AREA_M2 * scale), count, rng, sigma=1.0)
        else:
            investment = floor_area = np.full(count, np.nan)
        parts.append(
            pd.DataFrame(
                {
                    "tramite": kind,
                    "uso": uses,
                    "area_m2": floor_area,
                    "inversion_usd": investment,
                    "fecha_ingreso": submitted,
                    "fecha_resolucion": resolved,
                    "estado": "aprobado",
                }
            )
        )
    permits = pd.concat(parts, ignore_index=True)
    permits = permits.sort_values("fecha_ingreso", kind="stable").reset_index(drop=True)
    prefix = permits["tramite"].map({CONSTRUCTION: "PC", SUITABILITY: "CL"})
    year = permits["fecha_ingreso"].dt.year.astype(str)
    number = pd.Series(np.arange(1, len(permits) + 1)).astype(str).str.zfill(7)
    permits.insert(0, "expediente", prefix + "-" + year + "-" + number)
    x, y = _permit_points(municipalities, len(permits), rng).T
    x, y = Transformer.from_crs(METRIC_CRS, PERMITS_SOURCE_CRS, always_xy=True).transform(x, y)
    permits["x"] = np.round(x, 2)
    permits["y"] = np.round(y, 2)
    return permits


def _permit_points(municipalities: gpd.GeoDataFrame, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` metric points: a multinomial share per municipality proportional to its 2007
    population, thinning out away from the historic centre, at least PERMIT_INSET_M inside."""
    population = municipalities["population_2007"].to_numpy(dtype=float)
    per_municipality = rng.multinomial(count, population / population.sum())
    centre = centre_metric()
    inset = shapely.buffer(municipalities.to_crs(METRIC_CRS).geometry.values, -PERMIT_INSET_M)
    xy = np.concatenate(
        [random_points_in(area, n, rng, toward=centre) for area, n in
         zip(inset, per_municipality, strict=True)]
    )  # fmt: skip
    return xy[rng.permutation(len(xy))]
