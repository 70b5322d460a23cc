"""Schools, health facilities and public spaces as their registers export them.

- Schools: the Ministry of Education's (MINED) register of school centres, a CSV from a Spanish
  Windows spreadsheet (cp1252, ``;`` between fields, decimal comma), with LATITUD/LONGITUD, the
  centre's code, name and sector (PÚBLICO/PRIVADO); about one school per 2,500 inhabitants.
- Health facilities: the Ministry of Health's (MINSAL) establishments, a GeoJSON with its own
  column names and a raw type code (hospital, community family-health units, clinics) that the
  manifest maps; about one per 10,000 inhabitants, none at all in ``WITHOUT_HEALTH``.
- Public spaces: a cadastre of parks, plazas, sports fields and green areas, a GeoPackage in the
  El Salvador Lambert grid; 0.1–5 ha each, some sports fields inside parks (the polygons overlap, as
  real cadastres do), a few metropolitan parks of 10–40 ha, unevenly spread, and a single small plaza
  in ``SCARCE_PUBLIC_SPACE``.

Facilities are a multinomial share per municipality proportional to its 2007 population, thinning
out away from San Salvador's historic centre, at least ``INSET_M`` inside their municipality.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely import affinity

from observatory.sample.geometry import centre_metric, random_points_in
from observatory.settings import METRIC_CRS, STORAGE_CRS

CADASTRE_CRS = "EPSG:5460"
"""The public-space cadastre's El Salvador Lambert grid (Ocotepeque 1935)."""
STREAM = 604
"""This generator's own random stream: ``default_rng([seed, STREAM])``."""
INSET_M = 30.0
"""Minimum distance of a facility (or a public space's centre) from its municipality's boundary."""
INHABITANTS_PER_SCHOOL = 2_500
INHABITANTS_PER_HEALTH_FACILITY = 10_000
INHABITANTS_PER_PUBLIC_SPACE = 7_500
WITHOUT_HEALTH = "0603"
"""Ayutuxtepeque gets no health facility, so the health indicators show a 0."""
SCARCE_PUBLIC_SPACE = "0604"
"""Cuscatancingo gets a single small plaza."""

SCHOOL_SECTORS = {"PÚBLICO": 0.8, "PRIVADO": 0.2}
SCHOOL_NAMES = ["JOSÉ MATÍAS DELGADO", "REPÚBLICA DE PANAMÁ", "FRANCISCO MORAZÁN", "ALBERTO MASFERRER",
                "SANTA LUCÍA", "JOSÉ SIMEÓN CAÑAS", "GABRIELA MISTRAL", "SAN JOSÉ"]  # fmt: skip
HEALTH_TYPES = {"HN": 0.06, "UCSFB": 0.3, "UCSFI": 0.25, "UCSFE": 0.07, "CLIN": 0.32}
"""MINSAL's raw type codes: national hospital, community family-health unit (basic, intermediate,
specialised) and clinic, with their shares."""
HEALTH_NAMES = {"HN": "Hospital Nacional", "UCSFB": "UCSF Básica", "UCSFI": "UCSF Intermedia",
                "UCSFE": "UCSF Especializada", "CLIN": "Clínica Comunal"}  # fmt: skip
SPACE_KINDS = {"PARQUE": (0.4, (0.3, 5.0)), "PLAZA": (0.2, (0.1, 0.5)), "CANCHA": (0.2, (0.1, 0.8)),
               "ZONA VERDE": (0.2, (0.1, 3.0))}  # fmt: skip
"""The cadastre's categories: (share, area range in hectares, drawn log-uniformly)."""
METROPOLITAN_PARKS = {"0501": "Parque del Bicentenario", "0511": "Parque Cafetalón",
                      "0614": "Parque Cuscatlán", "0607": "Parque Ecológico Ilopango"}  # fmt: skip
"""Municipality -> a metropolitan park of 10–40 ha (sizes are the sample's, not the real parks')."""
METROPOLITAN_HECTARES = (10.0, 40.0)
FIELDS_IN_PARKS = 0.3
"""Share of parks with a sports field drawn inside them (overlapping polygons)."""


def schools_frame(
    municipalities: gpd.GeoDataFrame, rng: np.random.Generator, *, scale: float = 1.0
) -> pd.DataFrame:
    """MINED's register: CODIGO, NOMBRE, SECTOR, DEPARTAMENTO, MUNICIPIO, LATITUD, LONGITUD.

    ``municipalities`` is :func:`~observatory.sample.boundaries.amss_boundaries`."""
    population = municipalities["population_2007"].to_numpy(dtype=float)
    count = round(population.sum() / INHABITANTS_PER_SCHOOL * scale)
    xy, codes = _facility_points(municipalities, count, population, rng)
    sector = rng.choice(list(SCHOOL_SECTORS), len(codes), p=list(SCHOOL_SECTORS.values()))
    prefix = np.where(sector == "PÚBLICO", "CENTRO ESCOLAR", "COLEGIO")
    names = municipalities.set_index("code")["name"]
    lon, lat = _lonlat(xy)
    return pd.DataFrame(
        {
            "CODIGO": [f"{10_001 + i}" for i in range(len(codes))],
            "NOMBRE": [f"{p} {n}" for p, n in zip(prefix, rng.choice(SCHOOL_NAMES, len(codes)), strict=True)],
            "SECTOR": sector,
            "DEPARTAMENTO": ["LA LIBERTAD" if c.startswith("05") else "SAN SALVADOR" for c in codes],
            "MUNICIPIO": names[codes].str.upper().to_numpy(),
            "LATITUD": np.round(lat, 6),
            "LONGITUD": np.round(lon, 6),
        }
    )


def health_frame(
    municipalities: gpd.GeoDataFrame, rng: np.random.Generator, *, scale: float = 1.0
) -> gpd.GeoDataFrame:
    """MINSAL's establishments: COD_ESTABLECIMIENTO, NOMBRE_ESTABLECIMIENTO, TIPO_ESTABLECIMIENTO
    (raw code) and MUNICIPIO, as lon/lat points; none in ``WITHOUT_HEALTH``."""
    population = municipalities["population_2007"].to_numpy(dtype=float)
    served = np.where(municipalities["code"] == WITHOUT_HEALTH, 0.0, population)
    count = round(population.sum() / INHABITANTS_PER_HEALTH_FACILITY * scale)
    xy, codes = _facility_points(municipalities, count, served, rng)
    kinds = rng.choice(list(HEALTH_TYPES), len(codes), p=list(HEALTH_TYPES.values()))
    names = municipalities.set_index("code")["name"]
    return gpd.GeoDataFrame(
        {
            "COD_ESTABLECIMIENTO": [f"{c}{i:04d}" for i, c in enumerate(codes, start=1)],
            "NOMBRE_ESTABLECIMIENTO": [
                f"{HEALTH_NAMES[kind]} {names[code]}" for kind, code in zip(kinds, codes, strict=True)
            ],
            "TIPO_ESTABLECIMIENTO": kinds,
            "MUNICIPIO": names[codes].to_numpy(),
        },
        geometry=gpd.GeoSeries(shapely.points(xy), crs=METRIC_CRS).to_crs(STORAGE_CRS).values,
        crs=STORAGE_CRS,
    )


def public_spaces_frame(
    municipalities: gpd.GeoDataFrame, rng: np.random.Generator, *, scale: float = 1.0
) -> gpd.GeoDataFrame:
    """The public-space cadastre: COD_EP, CATEGORIA (raw), NOMBRE, polygons in the Lambert grid,
    cut to the AMSS outline (the cadastre covers the AMSS only)."""
    metric = municipalities.to_crs(METRIC_CRS)
    codes = metric["code"].to_numpy()
    population = metric["population_2007"].to_numpy(dtype=float)
    # How much public space a municipality has per inhabitant varies (some 5-fold); one has a plaza.
    weights = np.where(codes == SCARCE_PUBLIC_SPACE, 0.0, population * rng.lognormal(0.0, 0.8, len(codes)))
    total = round(population.sum() / INHABITANTS_PER_PUBLIC_SPACE * scale)
    counts = rng.multinomial(total, weights / weights.sum())
    counts[codes == SCARCE_PUBLIC_SPACE] = 1
    inset = dict(zip(codes, shapely.buffer(metric.geometry.values, -INSET_M), strict=True))
    municipality_names = dict(zip(codes, metric["name"], strict=True))
    kinds: list[str] = []
    names: list[str] = []
    shapes: list[shapely.Geometry] = []
    centre = centre_metric()
    for code, count in zip(codes, counts, strict=True):
        centres = random_points_in(inset[code], count, rng, toward=centre) if count else np.empty((0, 2))
        drawn = ["PLAZA"] if code == SCARCE_PUBLIC_SPACE else _categories(len(centres), rng)
        for number, (kind, (x, y)) in enumerate(zip(drawn, centres, strict=True), start=1):
            low, high = SPACE_KINDS[kind][1]
            park = _rectangle(x, y, _log_uniform(low, high, rng), rng)
            kinds.append(kind)
            names.append(f"{kind.capitalize()} {number}, {municipality_names[code]}")
            shapes.append(park)
            if kind == "PARQUE" and rng.random() < FIELDS_IN_PARKS:
                kinds.append("CANCHA")
                names.append(f"Cancha del parque {number}, {municipality_names[code]}")
                shapes.append(affinity.scale(park, 0.5, 0.5))  # a quarter of the park
        if code in METROPOLITAN_PARKS:
            x, y = random_points_in(inset[code], 1, rng)[0]
            kinds.append("PARQUE")
            names.append(METROPOLITAN_PARKS[code])
            shapes.append(_rectangle(x, y, rng.uniform(*METROPOLITAN_HECTARES), rng))
    outline = shapely.union_all(metric.geometry.values)
    clipped = shapely.intersection(np.array(shapes), outline)
    frame = gpd.GeoDataFrame(
        {"COD_EP": [f"EP-{i:05d}" for i in range(1, len(kinds) + 1)], "CATEGORIA": kinds, "NOMBRE": names},
        geometry=clipped,
        crs=METRIC_CRS,
    )
    polygonal = frame.geom_type.isin(["Polygon", "MultiPolygon"]) & (frame.area > 0)
    return frame[polygonal].to_crs(CADASTRE_CRS).reset_index(drop=True)


def write_facilities(
    out_dir: Path, municipalities: gpd.GeoDataFrame, *, seed: int, scale: float = 1.0
) -> tuple[Path, Path, Path]:
    """Write the schools CSV, the health GeoJSON and the public-space GeoPackage to ``out_dir``
    (``scale`` multiplies their counts); returns their paths in that order."""
    rng = np.random.default_rng([seed, STREAM])
    schools = out_dir / "centros_escolares_mined.csv"
    health = out_dir / "establecimientos_minsal.geojson"
    spaces = out_dir / "espacios_publicos.gpkg"
    write_schools(schools_frame(municipalities, rng, scale=scale), schools)
    write_health(health_frame(municipalities, rng, scale=scale), health)
    write_public_spaces(public_spaces_frame(municipalities, rng, scale=scale), spaces)
    return schools, health, spaces


def write_schools(frame: pd.DataFrame, path: Path) -> None:
    """As MINED's spreadsheet saves it: cp1252, ``;`` between fields, decimal comma."""
    frame.to_csv(path, sep=";", decimal=",", encoding="cp1252", index=False)


def write_health(frame: gpd.GeoDataFrame, path: Path) -> None:
    path.unlink(missing_ok=True)
    frame.to_file(path, driver="GeoJSON")


def write_public_spaces(frame: gpd.GeoDataFrame, path: Path) -> None:
    path.unlink(missing_ok=True)
    frame.to_file(path, layer="espacios_publicos", driver="GPKG")


def _facility_points(
    municipalities: gpd.GeoDataFrame, count: int, weights: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` metric x/y shared among municipalities by ``weights`` (multinomial), thinning out
    away from the centre; returns them and their municipality codes."""
    counts = rng.multinomial(count, weights / weights.sum())
    inset = shapely.buffer(municipalities.to_crs(METRIC_CRS).geometry.values, -INSET_M)
    centre = centre_metric()
    xy = np.concatenate([random_points_in(area, n, rng, toward=centre) for area, n in
                         zip(inset, counts, strict=True) if n])  # fmt: skip
    codes = np.repeat(municipalities["code"].to_numpy(), counts)
    return xy, codes


def _lonlat(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    to_lonlat = Transformer.from_crs(METRIC_CRS, STORAGE_CRS, always_xy=True)
    lon, lat = to_lonlat.transform(xy[:, 0], xy[:, 1])
    return np.asarray(lon), np.asarray(lat)


def _categories(count: int, rng: np.random.Generator) -> list[str]:
    shares = np.array([share for share, _ in SPACE_KINDS.values()])
    return [str(kind) for kind in rng.choice(list(SPACE_KINDS), count, p=shares / shares.sum())]


def _log_uniform(low: float, high: float, rng: np.random.Generator) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _rectangle(x: float, y: float, hectares: float, rng: np.random.Generator) -> shapely.Geometry:
    """A rectangle of ``hectares`` centred on (x, y), 1 to 2.5 times as long as wide, turned at random."""
    aspect = rng.uniform(1.0, 2.5)
    width = np.sqrt(hectares * 10_000 / aspect)
    box = shapely.box(x - width * aspect / 2, y - width / 2, x + width * aspect / 2, y + width / 2)
    return affinity.rotate(box, rng.uniform(0, 180), origin=(x, y))
