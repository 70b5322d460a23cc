"""Permits as OPAMSS's register exports them, calibrated on the accountability report in
``shared/seed``.

The report's figures are one year's: 547 construction permits granted ("otorgados") with
$310,887,074 declared investment and 758,967 m² authorised, uses habitacional 58% / comercio y
servicios 18% / equipamientos 16% / industria 2% / otros 6%; 1,406 site-suitability rulings
(calificación de lugar) approved, comercio y servicios 27% / habitacional 27% / equipamientos 12% /
industria 3% / otros 31%. The report names no period; its projects closing in 2016 ("2013-2016",
"2011-2016") with amounts spent "en el período" and its strategic plan 2016-2020 place it in 2016,
so REPORT_YEAR is 2016 (a choice, not a fact the report states).

The register holds the files submitted from REGISTER_START as exported on EXPORT_DATE. Each year of
resolution is the report's year scaled by its YEAR_FACTORS entry (invented, to give the series some
movement): its approved files of each procedure, and the floor area and investment of its approved
construction permits, are the report's times the factor (exactly the report's in REPORT_YEAR), with
the report's use shares. Beside them the office denies some files and applicants withdraw
(``desistido``) or abandon (``archivado``) others (OUTCOMES); files submitted in the last weeks
before the export are still in process (``en_tramite``, no resolution date). Processing times are
business days on the office's calendar (weekends, El Salvador's holidays and San Salvador's August
feasts closed), so the indicators' count of days gives back the drawn ones.

A construction permit's floor area is drawn log-normally around a median per use and its
investment is that area times a cost per m² drawn log-normally around a cost per use
(COST_PER_M2); one factor per year and procedure brings the approved permits' totals to the
targets, so USD/m² stays within roughly 150-1,500 and investment follows floor area.

Each municipality gets a multinomial share of the files proportional to its 2007 population, and
within it they thin out away from San Salvador's historic centre (rejection sampling). Every point
is at least 30 m inside its polygon, so reprojection can never move it out."""

from __future__ import annotations

import geopandas as gpd
import holidays
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from observatory.sample.geometry import centre_metric, random_points_in
from observatory.settings import METRIC_CRS, PERMITS_SOURCE_CRS

PERMIT_INSET_M = 30.0
"""Minimum distance of a permit from its municipality's boundary."""
CONSTRUCTION, SUITABILITY = "permiso_construccion", "calificacion_lugar"
REPORT_YEAR = 2016
"""The year the report's figures are taken to be (the report does not name it; see above)."""
REPORT_COUNTS = {CONSTRUCTION: 547, SUITABILITY: 1406}
"""Files approved in REPORT_YEAR, by procedure."""
REPORT_INVESTMENT_USD = 310_887_074
REPORT_FLOOR_AREA_M2 = 758_967
USE_SHARES = {
    CONSTRUCTION: {"habitacional": 58, "comercio_servicios": 18, "equipamientos": 16,
                   "industria": 2, "otros": 6},
    SUITABILITY: {"comercio_servicios": 27, "habitacional": 27, "equipamientos": 12,
                  "industria": 3, "otros": 31},
}  # fmt: skip
YEAR_FACTORS = {2016: 1.0, 2017: 1.06, 2018: 0.93}
"""Each year of resolution as a multiple of REPORT_YEAR (counts of approved files, totals of floor
area and investment, complaints). Invented: the report gives one year only."""
REGISTER_START = np.datetime64("2016-01-01")
"""The export holds the files submitted from this day."""
EXPORT_DATE = np.datetime64("2018-12-31")
"""The day the register was exported: files not resolved by then are in process."""

APPROVED, DENIED, WITHDRAWN, ARCHIVED, IN_PROCESS = (
    "aprobado", "denegado", "desistido", "archivado", "en_tramite",
)  # fmt: skip
OUTCOMES = {
    CONSTRUCTION: {DENIED: 0.09, WITHDRAWN: 0.03, ARCHIVED: 0.015},
    SUITABILITY: {DENIED: 0.11, WITHDRAWN: 0.025, ARCHIVED: 0.01},
}
"""Share of a year's closed files of each procedure per outcome other than approval (the rest are
approved); at least one of each in every year."""
MEDIAN_DAYS = {APPROVED: 18, DENIED: 24, WITHDRAWN: 35, ARCHIVED: 60}
"""Median business days from submission to closing, per outcome (log-normal, sigma DAYS_SIGMA)."""
DAYS_SIGMA = 0.45
DAYS_RANGE = (2, 120)
IN_PROCESS_DAYS = 25
"""Files in process at the export: the last year's closing rate times this many business days,
submitted in the 2 × IN_PROCESS_DAYS business days before the export."""
MEDIAN_FLOOR_AREA_M2 = {"habitacional": 420, "comercio_servicios": 700, "equipamientos": 800,
                        "industria": 1500, "otros": 250}  # fmt: skip
COST_PER_M2 = {"habitacional": 370, "comercio_servicios": 520, "equipamientos": 460,
               "industria": 340, "otros": 320}  # fmt: skip
"""Typical declared cost per m² of floor area by use (USD), before the year's calibration factor."""
FLOOR_AREA_SIGMA, COST_SIGMA, CLIP_SIGMAS = 1.2, 0.2, 2.5
"""Log-normal spreads of floor area and of cost per m², both cut at CLIP_SIGMAS."""
OFFICE_SUBDIVISION = "SS"
"""OPAMSS sits in San Salvador: its calendar also closes for the city's August feasts."""


def office_closed_days(years: range) -> np.ndarray:
    """The days the office is closed besides weekends (holidays package, SV/SS)."""
    closed = holidays.country_holidays("SV", subdiv=OFFICE_SUBDIVISION, years=years)
    return np.array(sorted(closed), dtype="datetime64[D]")


def _exact_shares(total: int, shares: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """A shuffled array of ``total`` labels whose counts follow the percentage shares (largest
    remainder method, so each count is the share rounded as closely as the total allows)."""
    exact = np.array(list(shares.values())) * total / 100
    counts = np.floor(exact).astype(int)
    counts[np.argsort(counts - exact)[: total - counts.sum()]] += 1
    labels = np.repeat(list(shares), counts)
    rng.shuffle(labels)
    return labels


def _whole_summing_to(values: np.ndarray, total: int) -> np.ndarray:
    """``values`` scaled to add up to ``total`` and made whole numbers (largest remainders)."""
    exact = values / values.sum() * total
    whole = np.floor(exact).astype(np.int64)
    whole[np.argsort(whole - exact)[: total - int(whole.sum())]] += 1
    return whole


def _clipped_lognormal(median: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    z = np.clip(rng.standard_normal(len(median)), -CLIP_SIGMAS, CLIP_SIGMAS)
    return median * np.exp(sigma * z)


def year_counts(kind: str, year: int, *, scale: float = 1.0) -> dict[str, int]:
    """Files of one procedure closed in ``year``, per outcome."""
    approved = round(REPORT_COUNTS[kind] * YEAR_FACTORS[year] * scale)
    closed = approved / (1 - sum(OUTCOMES[kind].values()))
    return {APPROVED: approved} | {
        outcome: max(1, round(closed * share)) for outcome, share in OUTCOMES[kind].items()
    }


def _closing_dates(
    year: int, days: np.ndarray, closed: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Submission and closing dates: closing on an open day of ``year`` drawn uniformly among those
    leaving ``days`` open days after REGISTER_START, submission ``days`` open days before."""
    year_end = min(np.datetime64(f"{year}-12-31"), EXPORT_DATE)
    open_days = _open_days(np.datetime64(f"{year}-01-01"), year_end, closed)
    earliest = np.busday_offset(REGISTER_START, days, roll="forward", holidays=closed)
    low = np.searchsorted(open_days, earliest)
    resolved = open_days[low + np.floor(rng.random(len(days)) * (len(open_days) - low)).astype(int)]
    submitted = np.busday_offset(resolved, -days, holidays=closed)
    return submitted, resolved


def _open_days(start: np.datetime64, end: np.datetime64, closed: np.ndarray) -> np.ndarray:
    """The office's open days from ``start`` to ``end``, both included."""
    days = np.arange(start, end + 1)
    return days[np.is_busday(days, holidays=closed)]


def _files(
    kind: str, status: str, count: int, uses: np.ndarray | None, rng: np.random.Generator
) -> pd.DataFrame:
    """``count`` files of one outcome, their uses drawn from the shares unless given."""
    shares = USE_SHARES[kind]
    if uses is None:
        uses = rng.choice(list(shares), count, p=np.array(list(shares.values())) / 100)
    return pd.DataFrame({"tramite": kind, "uso": uses, "estado": status}, index=range(count))


def _amounts(files: pd.DataFrame, year: int, scale: float, rng: np.random.Generator) -> pd.DataFrame:
    """Floor area and investment of one year's construction files: log-normal by use, the approved
    files' totals brought to the report's times the year's factor, the others by the same factors."""
    uses = files["uso"]
    raw_area = _clipped_lognormal(uses.map(MEDIAN_FLOOR_AREA_M2).to_numpy(float), FLOOR_AREA_SIGMA, rng)
    cost = _clipped_lognormal(uses.map(COST_PER_M2).to_numpy(float), COST_SIGMA, rng)
    approved = (files["estado"] == APPROVED).to_numpy()
    if not approved.any():  # a scale so small that the year has no approved permit
        return files.assign(area_m2=np.round(raw_area), inversion_usd=np.round(raw_area * cost))
    factor = YEAR_FACTORS[year] * scale
    area = np.empty(len(files))
    area[approved] = _whole_summing_to(raw_area[approved], round(REPORT_FLOOR_AREA_M2 * factor))
    area_factor = area[approved].sum() / raw_area[approved].sum()
    area[~approved] = np.maximum(np.round(raw_area[~approved] * area_factor), 1)
    raw_investment = area * cost
    investment = np.round(raw_investment * REPORT_INVESTMENT_USD * factor / raw_investment[approved].sum())
    investment[approved] = _whole_summing_to(raw_investment[approved], round(REPORT_INVESTMENT_USD * factor))
    return files.assign(area_m2=area, inversion_usd=investment)


def _in_process(kind: str, closed_in_year: int, closed: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Files submitted in the weeks before the export and not resolved by then."""
    year = EXPORT_DATE.astype(object).year
    rate = closed_in_year / len(_open_days(np.datetime64(f"{year}-01-01"), EXPORT_DATE, closed))
    pending = _files(kind, IN_PROCESS, round(rate * IN_PROCESS_DAYS), None, rng)
    back = rng.integers(0, 2 * IN_PROCESS_DAYS, len(pending))
    submitted = np.busday_offset(EXPORT_DATE, -back, roll="backward", holidays=closed)
    return pending.assign(fecha_ingreso=submitted, fecha_resolucion=np.datetime64("NaT"))


def _year_files(kind: str, year: int, scale: float, rng: np.random.Generator) -> pd.DataFrame:
    """One procedure's files closed in ``year`` (and, in the export's year, those in process)."""
    closed = office_closed_days(range(REGISTER_START.astype(object).year, year + 2))
    counts = year_counts(kind, year, scale=scale)
    parts = []
    for status, count in counts.items():
        uses = _exact_shares(count, USE_SHARES[kind], rng) if status == APPROVED else None
        parts.append(_files(kind, status, count, uses, rng))
    files = pd.concat(parts, ignore_index=True)
    median_days = files["estado"].map(MEDIAN_DAYS).to_numpy(float)
    days = np.clip(np.round(_clipped_lognormal(median_days, DAYS_SIGMA, rng)), *DAYS_RANGE).astype(int)
    submitted, resolved = _closing_dates(year, days, closed, rng)
    files = files.assign(fecha_ingreso=submitted, fecha_resolucion=resolved)
    if year == EXPORT_DATE.astype(object).year:
        files = pd.concat([files, _in_process(kind, sum(counts.values()), closed, rng)], ignore_index=True)
    if kind == CONSTRUCTION:
        return _amounts(files, year, scale, rng)
    return files.assign(area_m2=np.nan, inversion_usd=np.nan)


COLUMNS = ["tramite", "uso", "area_m2", "inversion_usd", "fecha_ingreso", "fecha_resolucion", "estado"]


def permits_frame(
    municipalities: gpd.GeoDataFrame, rng: np.random.Generator, *, scale: float = 1.0
) -> pd.DataFrame:
    """Permits as OPAMSS exports them: a CSV table with x/y in the El Salvador Lambert grid.

    ``municipalities`` is :func:`amss_boundaries` (any CRS); ``scale`` multiplies every year's
    counts and totals (1: REPORT_YEAR is the report's).
    """
    parts = [_year_files(kind, year, scale, rng) for kind in REPORT_COUNTS for year in YEAR_FACTORS]
    permits = pd.concat(parts, ignore_index=True)[COLUMNS]
    for column in ("fecha_ingreso", "fecha_resolucion"):
        permits[column] = pd.to_datetime(permits[column])
    permits = permits.sort_values(["fecha_ingreso", "fecha_resolucion"], kind="stable").reset_index(drop=True)
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
