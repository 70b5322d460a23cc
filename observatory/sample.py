"""Deterministic sample data for the AMSS, in the formats the real sources come in.

The municipalities are a weighted Voronoi tessellation of their real centroids, clipped to an
irregular metropolitan outline; populations are those of the 2007 census (rounded). The permits follow the
figures of the OPAMSS accountability report in ``shared/seed``: 547 construction permits with
$310,887,074 declared investment and 758,967 m² authorised, uses habitacional 58% / comercio y
servicios 18% / equipamientos 16% / industria 2% / otros 6%; 1,406 site-suitability rulings
(calificación de lugar) with comercio y servicios 27% / habitacional 27% / equipamientos 12% /
industria 3% / otros 31%.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from observatory.settings import METRIC_CRS, PERMITS_SOURCE_CRS

MUNICIPALITIES = [
    # code, name, department, lon, lat, population 2007, area km² (official, to size the cells)
    ("0614", "San Salvador", "San Salvador", -89.191, 13.698, 316_090, 72.25),
    ("0617", "Soyapango", "San Salvador", -89.140, 13.710, 241_403, 29.72),
    ("0608", "Mejicanos", "San Salvador", -89.213, 13.740, 140_751, 22.12),
    ("0602", "Apopa", "San Salvador", -89.179, 13.807, 131_286, 51.84),
    ("0511", "Santa Tecla", "La Libertad", -89.290, 13.675, 121_908, 112.20),
    ("0619", "Ciudad Delgado", "San Salvador", -89.170, 13.725, 120_200, 33.42),
    ("0607", "Ilopango", "San Salvador", -89.109, 13.700, 103_862, 34.63),
    ("0618", "Tonacatepeque", "San Salvador", -89.115, 13.780, 90_896, 67.55),
    ("0613", "San Martín", "San Salvador", -89.055, 13.737, 72_758, 55.84),
    ("0604", "Cuscatancingo", "San Salvador", -89.183, 13.735, 66_400, 5.40),
    ("0612", "San Marcos", "San Salvador", -89.183, 13.660, 63_209, 14.71),
    ("0603", "Ayutuxtepeque", "San Salvador", -89.200, 13.745, 34_710, 8.41),
    ("0501", "Antiguo Cuscatlán", "La Libertad", -89.245, 13.673, 33_767, 19.41),
    ("0609", "Nejapa", "San Salvador", -89.232, 13.815, 29_458, 83.36),
]

MUNICIPALITIES_VALID_TO = "2024-04-30"
"""On 1 May 2024 the municipal reorganisation (Decreto Legislativo 762, 2023) made the 14
municipalities districts of larger municipalities; their boundaries stay the statistical units."""

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
DEFAULT_SEED = 20171
"""The seed of the committed sample under data/sample."""


@dataclass(frozen=True)
class SampleFiles:
    municipalities: Path
    zoning: Path
    permits: Path


def metropolitan_outline(rng: np.random.Generator) -> shapely.Polygon:
    """An irregular outline around the 14 centroids, in the metric CRS."""
    centroids = _centroids_metric()
    centre = shapely.MultiPoint(centroids).centroid
    hull = shapely.MultiPoint(centroids).convex_hull.buffer(4_500)
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    wobble = 1 + 0.06 * np.sin(5 * angles + rng.uniform(0, 6)) + 0.03 * np.sin(13 * angles)
    ring = []
    for angle, factor in zip(angles, wobble, strict=True):
        ray = shapely.LineString(
            [
                (centre.x, centre.y),
                (centre.x + 60_000 * np.cos(angle), centre.y + 60_000 * np.sin(angle)),
            ]
        )
        reach = shapely.intersection(ray, hull.exterior)
        edge = shapely.get_coordinates(reach)[-1]
        ring.append((centre.x + (edge[0] - centre.x) * factor, centre.y + (edge[1] - centre.y) * factor))
    return shapely.Polygon(ring)


def _centroids_metric() -> np.ndarray:
    lonlat = gpd.GeoSeries(
        gpd.points_from_xy([m[3] for m in MUNICIPALITIES], [m[4] for m in MUNICIPALITIES]),
        crs="EPSG:4326",
    )
    return shapely.get_coordinates(lonlat.to_crs(METRIC_CRS).values)


def municipalities_frame(outline: shapely.Polygon, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """A weighted Voronoi tessellation of the real centroids, clipped to the outline.

    Thousands of small Voronoi cells each join the municipality whose centroid is nearest once
    distances are divided by the square root of its official area; dissolving them gives
    gap-free, non-overlapping, irregular outlines of roughly the right sizes.
    """
    centroids = _centroids_metric()
    weights = np.sqrt([m[6] for m in MUNICIPALITIES])
    seeds = _random_points_in(outline, 6_000, rng)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=outline))
    cells = shapely.intersection(cells, outline)
    centres = shapely.get_coordinates(shapely.centroid(cells))
    distance = np.linalg.norm(centres[:, None, :] - centroids[None, :, :], axis=2) / weights
    owner = distance.argmin(axis=1)
    geometries = [
        shapely.MultiPolygon(shapely.get_parts(shapely.union_all(cells[owner == index])))
        for index in range(len(MUNICIPALITIES))
    ]
    return gpd.GeoDataFrame(
        {
            "COD_MUN": [m[0] for m in MUNICIPALITIES],
            "NOM_MUN": [m[1] for m in MUNICIPALITIES],
            "DEPTO": [m[2] for m in MUNICIPALITIES],
            "POB_2007": [m[5] for m in MUNICIPALITIES],
            "VIGENTE_HASTA": MUNICIPALITIES_VALID_TO,
        },
        geometry=geometries,
        crs=METRIC_CRS,
    )


def zoning_frame(outline: shapely.Polygon, rng: np.random.Generator, *, zones: int = 320) -> gpd.GeoDataFrame:
    """Zones of the land-use plan: denser, more commercial toward San Salvador's centre."""
    seeds = _random_points_in(outline, zones, rng)
    voronoi = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=outline))
    clipped = shapely.intersection(voronoi, outline)
    cells = list(clipped[~shapely.is_empty(clipped)])
    centre = shapely.Point(_centroids_metric()[0])
    codes = []
    for cell in cells:
        distance = shapely.distance(cell.centroid, centre) / 1000
        weights = _zoning_weights(distance)
        codes.append(rng.choice(ZONING_CODES, p=weights / weights.sum()))
    return gpd.GeoDataFrame(
        {
            "ZONA_ID": [f"Z{index:04d}" for index in range(1, len(cells) + 1)],
            "COD_USO": codes,
            "VERSION": PLAN_VERSION,
        },
        geometry=[shapely.MultiPolygon([cell]) if cell.geom_type == "Polygon" else cell for cell in cells],
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
    area: shapely.Polygon | shapely.MultiPolygon, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` uniform random points inside ``area``, by vectorised rejection sampling."""
    minx, miny, maxx, maxy = area.bounds
    shapely.prepare(area)
    found: list[np.ndarray] = []
    total = 0
    while total < count:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(max(2 * (count - total), 16), 2))
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
    """Permits as OPAMSS exports them: a CSV table with x/y in the El Salvador Lambert grid."""
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
    prefix = {CONSTRUCTION: "PC", SUITABILITY: "CL"}
    permits.insert(
        0, "expediente",
        [f"{prefix[k]}-{d.year}-{n:07d}" for n, (k, d) in
         enumerate(zip(permits["tramite"], pd.to_datetime(permits["fecha_ingreso"]), strict=True), 1)],
    )  # fmt: skip
    xy = _points_by_population(municipalities, len(permits), rng)
    grid = gpd.GeoSeries(shapely.points(xy), crs=METRIC_CRS).to_crs(PERMITS_SOURCE_CRS)
    permits["x"] = np.round(grid.x.to_numpy(), 2)
    permits["y"] = np.round(grid.y.to_numpy(), 2)
    return permits


def _points_by_population(
    municipalities: gpd.GeoDataFrame, count: int, rng: np.random.Generator
) -> np.ndarray:
    population = municipalities["POB_2007"].to_numpy(dtype=float)
    per_municipality = rng.multinomial(count, population / population.sum())
    xy = np.concatenate(
        [_random_points_in(geometry, n, rng) for geometry, n in
         zip(municipalities.geometry, per_municipality, strict=True)]
    )  # fmt: skip
    return xy[rng.permutation(len(xy))]


def write_sample(out_dir: Path, *, seed: int = DEFAULT_SEED, permits_scale: float = 1.0) -> SampleFiles:
    """Write the three source files; the same seed and scale always give the same data."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    outline = metropolitan_outline(rng)
    municipalities = municipalities_frame(outline, rng)
    files = SampleFiles(
        municipalities=out_dir / "municipios_amss.geojson",
        zoning=out_dir / "esquema_director.gpkg",
        permits=out_dir / "permisos_opamss.csv",
    )
    boundaries = municipalities.to_crs("EPSG:4326")
    boundaries.geometry = shapely.set_precision(boundaries.geometry.values, 1e-6)
    files.municipalities.write_text(
        boundaries.to_json(drop_id=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    files.zoning.unlink(missing_ok=True)
    zoning_frame(outline, rng).to_file(files.zoning, layer="esquema_director", driver="GPKG")
    permits_frame(municipalities, rng, scale=permits_scale).to_csv(files.permits, index=False)
    return files
