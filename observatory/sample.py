"""Deterministic sample data for the AMSS, laid on the real municipal boundaries.

The municipalities are not generated: they are the 14 AMSS polygons of geoBoundaries (gbOpen ADM2) in
``data/reference``, joined to the DIGESTYC codes and 2007 census facts through the names table. The
sample writes the other sources, in the formats they really come in, inside those polygons:

- the land-use plan (Esquema Director): a Voronoi partition of the metropolitan outline (the union of
  the 14 polygons), denser in codes of commerce and high-density housing near San Salvador's centre;
- the permits, a CSV with x/y in the El Salvador Lambert grid, following the figures of the OPAMSS
  accountability report in ``shared/seed``: 547 construction permits with $310,887,074 declared
  investment and 758,967 m² authorised, uses habitacional 58% / comercio y servicios 18% /
  equipamientos 16% / industria 2% / otros 6%; 1,406 site-suitability rulings (calificación de lugar)
  with comercio y servicios 27% / habitacional 27% / equipamientos 12% / industria 3% / otros 31%.
  Each municipality gets a multinomial share of the permits proportional to its 2007 population, and
  within it they thin out away from San Salvador's historic centre (rejection sampling). Every point is
  at least 30 m inside its polygon, so reprojection can never move it out;
- a statistics table without geometry, with the 2007 census and poverty figures written the way real
  tables write names ("Nueva San Salvador", "Delgado", upper case), plus a subtotal row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from etl.lookups import names_table, normalise_name
from observatory.settings import METRIC_CRS, PERMITS_SOURCE_CRS, REFERENCE_DIR, STORAGE_CRS

MANIFESTS_DIR = REFERENCE_DIR.parent / "sample"
"""The sample's source manifests (``*.toml``), kept beside the committed sample files."""
"""Real boundaries, facts and the names table (see its README for sources and licences)."""
BOUNDARIES_FILE = "geoboundaries_slv_adm2.geojson"
FACTS_FILE = "amss_municipalities_2007.csv"
NAMES_FILE = "nombres_municipios.csv"

HISTORIC_CENTRE = (-89.1916, 13.6978)
"""Lon/lat of San Salvador's historic centre, toward which zoning and permits concentrate."""
PERMIT_DECAY_M = 4_000.0
"""Within a municipality, permit density falls by a factor e every this many metres from the centre."""
PERMIT_INSET_M = 30.0
"""Minimum distance of a permit from its municipality's boundary."""
MIN_ZONE_AREA_M2 = 1_000.0
"""Zone parts smaller than this (slivers of the clipping) are dropped."""

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

ZONING_CODES = ["HAB-AD", "HAB-MD", "HAB-BD", "COM", "IND", "EQ", "MX", "EP", "PE", "AG"]
PLAN_VERSION = "ED-2017"

STATISTICS_YEAR = 2007
STATISTICS_VARIABLES = {
    # variable: (column of the facts file, unit)
    "poblacion_total": ("population_2007", "personas"),
    "poblacion_hombres": ("men_2007", "personas"),
    "poblacion_mujeres": ("women_2007", "personas"),
    "pobreza_hogares": ("poverty_rate_2007_pct", "% de hogares"),
}
STATISTICS_NAMES = {
    "0511": "Nueva San Salvador",
    "0619": "Delgado",
    "0617": "SOYAPANGO",
    "0613": "SAN MARTÍN",
}
"""Names the statistics table writes instead of the official ones, as real tables do."""
STATISTICS_TOTAL_NAME = "TOTAL AMSS"

DEFAULT_SEED = 20171
"""The seed of the committed sample under data/sample."""


@dataclass(frozen=True)
class SampleFiles:
    zoning: Path
    permits: Path
    statistics: Path


def amss_facts(reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """The facts table of the 14 municipalities, with ``code`` as 4-digit text."""
    return pd.read_csv(reference_dir / FACTS_FILE, dtype={"code": str})


def amss_boundaries(reference_dir: Path = REFERENCE_DIR) -> gpd.GeoDataFrame:
    """The 14 real AMSS polygons with their code, official name, 2007 population and official area.

    The geoBoundaries features are those whose normalised ``shapeName`` is in the names table; each
    must match exactly one of the 14 codes. Returns columns code, name, population_2007,
    official_area_km2 and geometry, in EPSG:4326, sorted by code.
    """
    code_of = names_table(reference_dir / NAMES_FILE)
    national = gpd.read_file(reference_dir / BOUNDARIES_FILE).to_crs(STORAGE_CRS)
    national["code"] = national["shapeName"].map(lambda name: code_of.get(normalise_name(str(name))))
    found = national.dropna(subset=["code"])
    facts = amss_facts(reference_dir)
    if sorted(found["code"]) != sorted(facts["code"]):
        raise ValueError(f"expected one polygon per AMSS code, found codes {sorted(found['code'])}")
    joined = found[["code", "geometry"]].merge(
        facts[["code", "name", "population_2007", "official_area_km2"]], on="code"
    )
    columns = ["code", "name", "population_2007", "official_area_km2", "geometry"]
    return gpd.GeoDataFrame(joined[columns], crs=STORAGE_CRS).sort_values("code", ignore_index=True)


def _centre_metric() -> shapely.Point:
    x, y = Transformer.from_crs(STORAGE_CRS, METRIC_CRS, always_xy=True).transform(*HISTORIC_CENTRE)
    return shapely.Point(x, y)


def zoning_frame(
    outline: shapely.Geometry, rng: np.random.Generator, *, zones: int = 320
) -> gpd.GeoDataFrame:
    """Zones of the land-use plan: Voronoi cells clipped to the outline (metric CRS), more commercial
    and denser toward San Salvador's centre."""
    seeds = _random_points_in(outline, zones, rng)
    voronoi = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=outline))
    cells = []
    for clipped in shapely.intersection(voronoi, outline):
        parts = [part for part in shapely.get_parts(clipped) if part.geom_type == "Polygon"]
        parts = [part for part in parts if part.area >= MIN_ZONE_AREA_M2]
        if parts:
            cells.append(shapely.MultiPolygon(parts))
    centre = _centre_metric()
    codes = []
    for cell in cells:
        weights = _zoning_weights(shapely.distance(cell.centroid, centre) / 1000)
        codes.append(rng.choice(ZONING_CODES, p=weights / weights.sum()))
    return gpd.GeoDataFrame(
        {
            "ZONA_ID": [f"Z{index:04d}" for index in range(1, len(cells) + 1)],
            "COD_USO": codes,
            "VERSION": PLAN_VERSION,
        },
        geometry=cells,
        crs=METRIC_CRS,
    )


def _zoning_weights(km_from_centre: float) -> np.ndarray:
    """Relative odds of each of ZONING_CODES for a zone this far from San Salvador's centre."""
    d = km_from_centre
    odds = {
        "HAB-AD": max(0.5, 4 - d / 3), "HAB-MD": 3.0, "HAB-BD": max(0.5, 1 + d / 5),
        "COM": max(0.3, 3 - d / 3), "IND": 1.0, "EQ": 1.2, "MX": max(0.3, 2.5 - d / 4),
        "EP": 0.8, "PE": max(0.2, d / 4), "AG": max(0.1, d / 5 - 1),
    }  # fmt: skip
    return np.array([odds[code] for code in ZONING_CODES])


def _random_points_in(
    area: shapely.Geometry,
    count: int,
    rng: np.random.Generator,
    *,
    toward: shapely.Point | None = None,
    decay_m: float = PERMIT_DECAY_M,
) -> np.ndarray:
    """``count`` random points inside ``area``, by vectorised rejection sampling.

    Uniform when ``toward`` is None; otherwise a candidate is kept with probability
    ``exp(-(d - d_min) / decay_m)``, d being its distance to ``toward`` and d_min the area's.
    """
    minx, miny, maxx, maxy = shapely.bounds(area)
    shapely.prepare(area)
    nearest = 0.0 if toward is None else shapely.distance(area, toward)
    found: list[np.ndarray] = []
    total = 0
    while total < count:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(max(4 * (count - total), 64), 2))
        if toward is not None:
            distance = np.hypot(xy[:, 0] - toward.x, xy[:, 1] - toward.y)
            xy = xy[rng.random(len(xy)) < np.exp(-(distance - nearest) / decay_m)]
        inside = xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])]
        found.append(inside)
        total += len(inside)
    return np.concatenate(found)[:count]


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
    centre = _centre_metric()
    inset = shapely.buffer(municipalities.to_crs(METRIC_CRS).geometry.values, -PERMIT_INSET_M)
    xy = np.concatenate(
        [_random_points_in(area, n, rng, toward=centre) for area, n in
         zip(inset, per_municipality, strict=True)]
    )  # fmt: skip
    return xy[rng.permutation(len(xy))]


def statistics_frame(reference_dir: Path = REFERENCE_DIR) -> pd.DataFrame:
    """The 2007 census and poverty figures per municipality, in long format, as a statistics office
    publishes them: names as written in real tables and a metropolitan subtotal row at the end.
    Values are text as written in the facts file (whole numbers without a decimal point)."""
    facts = amss_facts(reference_dir)
    rows = [
        (STATISTICS_NAMES.get(fact["code"], fact["name"]), STATISTICS_YEAR, variable, str(fact[column]), unit)
        for fact in facts.to_dict("records")
        for variable, (column, unit) in STATISTICS_VARIABLES.items()
    ]
    total = int(facts["population_2007"].sum())
    rows.append((STATISTICS_TOTAL_NAME, STATISTICS_YEAR, "poblacion_total", str(total), "personas"))
    return pd.DataFrame(rows, columns=["municipio", "anio", "variable", "valor", "unidad"])


def write_sample(out_dir: Path, *, seed: int = DEFAULT_SEED, permits_scale: float = 1.0) -> SampleFiles:
    """Write the zoning, permits and statistics source files; the same seed and scale always give
    the same data. The municipalities source is the reference geoBoundaries file itself."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    municipalities = amss_boundaries()
    outline = shapely.union_all(municipalities.to_crs(METRIC_CRS).geometry.values)
    files = SampleFiles(
        zoning=out_dir / "esquema_director.gpkg",
        permits=out_dir / "permisos_opamss.csv",
        statistics=out_dir / "estadisticas_municipales.csv",
    )
    files.zoning.unlink(missing_ok=True)
    zoning_frame(outline, rng).to_file(files.zoning, layer="esquema_director", driver="GPKG")
    permits_frame(municipalities, rng, scale=permits_scale).to_csv(files.permits, index=False)
    statistics_frame().to_csv(files.statistics, index=False)
    write_manifests(out_dir)
    return files


def write_manifests(out_dir: Path) -> None:
    """Copy the sample's manifests to ``out_dir``, pointing them at the reference data wherever
    ``out_dir`` lies."""
    if out_dir.resolve() == MANIFESTS_DIR.resolve():
        return
    for manifest in sorted(MANIFESTS_DIR.glob("*.toml")):
        text = manifest.read_text(encoding="utf-8").replace('"../reference/', f'"{REFERENCE_DIR}/')
        (out_dir / manifest.name).write_text(text, encoding="utf-8")
