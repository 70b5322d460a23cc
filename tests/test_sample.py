"""The sample data lies on the real AMSS boundaries and keeps the report's figures.

Expected values are computed here independently of ``observatory.sample``: the reference files are
read with the standard library, shapely and pyproj, and the figures come from the facts file or the
OPAMSS report.
"""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from observatory.sample import REFERENCE_DIR, amss_boundaries, write_sample

REPORT_YEAR = 2016
"""The year the report's figures are taken to be (it names none; see data/sample/permisos.toml)."""
YEAR_FACTORS = {2016: 1.0, 2017: 1.06, 2018: 0.93}
"""Each year as a multiple of the report's, as data/sample/permisos.toml states them."""

UTM, LAMBERT = "EPSG:32616", "EPSG:5460"
CENTRE_LONLAT = (-89.1916, 13.6978)
GEOBOUNDARIES_NAMES = {
    "Antiguo Cuscatlan": "0501", "Santa Tecla": "0511", "Apopa": "0602", "Ayutuxtepeque": "0603",
    "Cuscatancingo": "0604", "Ilopango": "0607", "Mejicanos": "0608", "Nejapa": "0609",
    "San Marcos": "0612", "San Martin": "0613", "San Salvador": "0614", "Soyapango": "0617",
    "Tonacatepeque": "0618", "Delgado": "0619",
}  # fmt: skip


def normalise(name: str) -> str:
    text = unicodedata.normalize("NFD", name.lower())
    return " ".join("".join(c for c in text if unicodedata.category(c) != "Mn").split())


def read_csv(name: str) -> list[dict[str, str]]:
    with (REFERENCE_DIR / name).open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def facts() -> dict[str, dict[str, str]]:
    return {row["code"]: row for row in read_csv("amss_municipalities_2007.csv")}


@pytest.fixture(scope="module")
def polygons() -> dict[str, shapely.Geometry]:
    """The 14 AMSS polygons in UTM 16N by code, read straight from the geoBoundaries file."""
    features = json.loads((REFERENCE_DIR / "geoboundaries_slv_adm2.geojson").read_text(encoding="utf-8"))
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    found: dict[str, shapely.Geometry] = {}
    for feature in features["features"]:
        code = GEOBOUNDARIES_NAMES.get(feature["properties"]["shapeName"])
        if code is not None:
            assert code not in found, feature["properties"]["shapeName"]  # each name once nationally
            lonlat = shapely.geometry.shape(feature["geometry"])
            found[code] = shapely.transform(lonlat, lambda xy: np.column_stack(to_utm.transform(*xy.T)))
    assert len(found) == 14
    return found


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    files = write_sample(tmp_path_factory.mktemp("sample"))
    return {
        "zoning": files.zoning,
        "permits": files.permits,
        "statistics": files.statistics,
        "complaints": files.complaints,
    }


@pytest.fixture(scope="module")
def permit_points(sample: dict[str, Path]) -> tuple[pd.DataFrame, np.ndarray]:
    permits = pd.read_csv(sample["permits"])
    x, y = Transformer.from_crs(LAMBERT, UTM, always_xy=True).transform(permits["x"], permits["y"])
    return permits, shapely.points(np.column_stack([x, y]))


def test_reference_polygons_and_their_known_accuracy(
    polygons: dict[str, shapely.Geometry], facts: dict[str, dict[str, str]]
) -> None:
    areas = {code: polygon.area / 1e6 for code, polygon in polygons.items()}
    assert sum(areas.values()) == pytest.approx(559.9, abs=0.1)
    assert areas["0604"] == pytest.approx(1.94, abs=0.01)  # Cuscatancingo, 6.39 km² official
    assert sum(float(row["official_area_km2"]) for row in facts.values()) == pytest.approx(611.4, abs=0.05)
    boundaries = amss_boundaries()
    assert boundaries.crs == "EPSG:4326"
    assert list(boundaries.columns) == ["code", "name", "population_2007", "official_area_km2", "geometry"]
    assert sorted(boundaries["code"]) == sorted(facts)
    for row in boundaries.itertuples():
        assert row.name == facts[row.code]["name"]
        assert row.population_2007 == int(facts[row.code]["population_2007"])
        assert row.official_area_km2 == float(facts[row.code]["official_area_km2"])
    utm = boundaries.to_crs(UTM).set_index("code").area / 1e6
    assert utm.to_dict() == pytest.approx(areas, abs=1e-6)


def test_names_table_maps_each_spelling_to_one_code(sample: dict[str, Path]) -> None:
    names = read_csv("nombres_municipios.csv")
    assert all(len(row["code"]) == 4 and row["code"].startswith("0") for row in names)
    codes: dict[str, set[str]] = {}
    for row in names:
        codes.setdefault(normalise(row["name"]), set()).add(row["code"])
    assert all(len(found) == 1 for found in codes.values()), codes
    assert len({row["code"] for row in names}) == 14
    for spelling, code in GEOBOUNDARIES_NAMES.items():
        assert codes[normalise(spelling)] == {code}, spelling
    for alternative, code in [
        ("Nueva San Salvador", "0511"),
        ("Ciudad Delgado", "0619"),
        ("Delgado", "0619"),
    ]:
        assert codes[normalise(alternative)] == {code}
    statistics = pd.read_csv(sample["statistics"])
    used = set(statistics["municipio"]) - {"TOTAL AMSS"}
    assert {"Nueva San Salvador", "Delgado"} <= used and any(name.isupper() for name in used)
    assert len({next(iter(codes[normalise(name)])) for name in used}) == 14


def test_crosswalk_2024(facts: dict[str, dict[str, str]]) -> None:
    rows = read_csv("municipios_2024.csv")
    assert sorted(row["code"] for row in rows) == sorted(facts)
    assert len({row["municipality_2024_code"] for row in rows}) == 6
    for row in rows:
        assert row["municipality_2024_name"] == facts[row["code"]]["municipality_2024"]
        assert row["department_2024"] == facts[row["code"]]["department"]
    assert len({(r["municipality_2024_code"], r["municipality_2024_name"]) for r in rows}) == 6


def test_zones_partition_the_real_outline(
    sample: dict[str, Path], polygons: dict[str, shapely.Geometry]
) -> None:
    zoning = gpd.read_file(sample["zoning"], layer="esquema_director")
    assert zoning.crs == UTM
    assert list(zoning.columns) == ["ZONA_ID", "COD_USO", "VERSION", "geometry"]
    assert zoning["ZONA_ID"].is_unique and (zoning["VERSION"] == "ED-2017").all()
    outline = shapely.union_all(list(polygons.values()))
    assert zoning.is_valid.all()
    assert zoning.within(outline.buffer(0.01)).all()
    parts = shapely.get_parts(zoning.geometry.values)
    assert shapely.area(parts).min() >= 1_000
    assert zoning.area.sum() == pytest.approx(outline.area, rel=1e-3)  # no gaps, no overlaps


def test_permits_follow_the_report(permit_points: tuple[pd.DataFrame, np.ndarray]) -> None:
    """The report's figures are one year's (REPORT_YEAR, 2016, as the manifest says): the files of
    each procedure approved that year, and the floor area and investment of its approved
    construction permits, are the report's exactly."""
    permits, _ = permit_points
    assert list(permits.columns) == [
        "expediente", "tramite", "uso", "area_m2", "inversion_usd",
        "fecha_ingreso", "fecha_resolucion", "estado", "x", "y",
    ]  # fmt: skip
    resolved = pd.to_datetime(permits["fecha_resolucion"])
    granted = permits[(permits["estado"] == "aprobado") & (resolved.dt.year == REPORT_YEAR)]
    construction = granted[granted["tramite"] == "permiso_construccion"]
    rulings = granted[granted["tramite"] == "calificacion_lugar"]
    assert len(construction) == 547 and len(rulings) == 1406
    assert construction["inversion_usd"].sum() == 310_887_074
    assert construction["area_m2"].sum() == 758_967
    every_ruling = permits[permits["tramite"] == "calificacion_lugar"]
    assert every_ruling["inversion_usd"].isna().all() and every_ruling["area_m2"].isna().all()
    shares = (construction["uso"].value_counts(normalize=True) * 100).round().to_dict()
    assert shares == {
        "habitacional": 58,
        "comercio_servicios": 18,
        "equipamientos": 16,
        "otros": 6,
        "industria": 2,
    }
    shares = (rulings["uso"].value_counts(normalize=True) * 100).round().to_dict()
    assert shares == {
        "otros": 31,
        "comercio_servicios": 27,
        "habitacional": 27,
        "equipamientos": 12,
        "industria": 3,
    }
    assert permits["expediente"].is_unique
    days = resolved - pd.to_datetime(permits["fecha_ingreso"])
    assert (days.dropna().dt.days > 0).all()


def test_other_years_are_the_report_year_scaled(permit_points: tuple[pd.DataFrame, np.ndarray]) -> None:
    permits, _ = permit_points
    resolved = pd.to_datetime(permits["fecha_resolucion"])
    assert set(resolved.dt.year.dropna().astype(int)) == set(YEAR_FACTORS)
    for year, factor in YEAR_FACTORS.items():
        granted = permits[(permits["estado"] == "aprobado") & (resolved.dt.year == year)]
        construction = granted[granted["tramite"] == "permiso_construccion"]
        assert len(construction) == round(547 * factor), year
        assert (granted["tramite"] == "calificacion_lugar").sum() == round(1406 * factor), year
        assert construction["inversion_usd"].sum() == round(310_887_074 * factor), year
        assert construction["area_m2"].sum() == round(758_967 * factor), year


def test_files_are_denied_withdrawn_and_in_process(permit_points: tuple[pd.DataFrame, np.ndarray]) -> None:
    """Every year with files has denied and withdrawn ones of each procedure, in plausible shares,
    so that "resolved = approved or denied, not withdrawn" matters; files submitted in the last
    weeks before the export are still in process, without a resolution date."""
    permits, _ = permit_points
    assert set(permits["estado"]) == {"aprobado", "denegado", "desistido", "archivado", "en_tramite"}
    resolved = pd.to_datetime(permits["fecha_resolucion"])
    pending = permits["estado"] == "en_tramite"
    assert (pending == resolved.isna()).all()
    submitted = pd.to_datetime(permits["fecha_ingreso"])
    assert submitted[pending].min() >= pd.Timestamp("2018-09-01")
    assert submitted[pending].max() <= resolved.max() == pd.Timestamp("2018-12-31")
    for (kind, year), files in permits[~pending].groupby(["tramite", resolved.dt.year]):
        status = files["estado"].value_counts()
        withdrawn = status.get("desistido", 0) + status.get("archivado", 0)
        denied = status.get("denegado", 0)
        assert 0.06 <= denied / (denied + status["aprobado"]) <= 0.14, (kind, year, status)
        assert 0.02 <= withdrawn / len(files) <= 0.07, (kind, year, status)


def test_investment_follows_floor_area_at_a_plausible_cost(
    permit_points: tuple[pd.DataFrame, np.ndarray],
) -> None:
    permits, _ = permit_points
    construction = permits[permits["tramite"] == "permiso_construccion"]
    assert construction["area_m2"].gt(0).all() and construction["inversion_usd"].gt(0).all()
    granted = construction[construction["estado"] == "aprobado"]
    per_m2 = granted["inversion_usd"] / granted["area_m2"]
    assert per_m2.between(150, 1_500).all(), per_m2.describe()
    assert granted["area_m2"].rank().corr(granted["inversion_usd"].rank()) > 0.8  # Spearman
    by_use = per_m2.groupby(granted["uso"]).median()
    assert by_use["comercio_servicios"] > by_use["habitacional"] > by_use["industria"]


def test_complaints_follow_the_report(sample: dict[str, Path]) -> None:
    complaints = pd.read_csv(sample["complaints"])
    years = pd.to_datetime(complaints["fecha_denuncia"]).dt.year.value_counts().to_dict()
    assert years == {year: round(64 * factor) for year, factor in YEAR_FACTORS.items()}
    assert years[REPORT_YEAR] == 64
    assert complaints["correlativo"].is_unique and complaints["municipio"].notna().all()


def test_permits_lie_inside_the_municipalities_by_population(
    permit_points: tuple[pd.DataFrame, np.ndarray],
    polygons: dict[str, shapely.Geometry],
    facts: dict[str, dict[str, str]],
) -> None:
    _, points = permit_points
    counts = {}
    owner = np.full(len(points), "", dtype=object)
    for code, polygon in polygons.items():
        inside = shapely.contains(polygon, points)
        owner[inside] = code
        counts[code] = int(inside.sum())
        assert shapely.distance(polygon.boundary, points[inside]).min() >= 29.9, code
    assert (owner != "").all() and sum(counts.values()) == len(points)  # every permit in one polygon
    population = {code: int(row["population_2007"]) for code, row in facts.items()}
    total = sum(population.values())
    for code, count in counts.items():
        p = population[code] / total
        expected, sd = len(points) * p, np.sqrt(len(points) * p * (1 - p))
        assert abs(count - expected) < 5 * sd, (code, count, expected)
    ranked = sorted(counts, key=counts.__getitem__)
    assert ranked[-1] == "0614"  # San Salvador
    # Nejapa and Antiguo Cuscatlán are the least populated (Ayutuxtepeque is within sampling noise).
    assert {"0609", "0501"} <= set(ranked[:3])
    # Within San Salvador, permits crowd toward the historic centre.
    cx, cy = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(*CENTRE_LONLAT)
    near = shapely.Point(cx, cy).buffer(3_000)
    san_salvador = polygons["0614"]
    area_share = san_salvador.intersection(near).area / san_salvador.area
    permit_share = shapely.contains(near, points[owner == "0614"]).mean()
    assert permit_share > 1.3 * area_share


def test_statistics_table(sample: dict[str, Path], facts: dict[str, dict[str, str]]) -> None:
    table = pd.read_csv(sample["statistics"], dtype={"valor": str})
    assert list(table.columns) == ["municipio", "anio", "variable", "valor", "unidad"]
    assert len(table) == 14 * 4 + 1 and (table["anio"] == 2007).all()
    assert table.iloc[-1].tolist() == ["TOTAL AMSS", 2007, "poblacion_total", "1566629", "personas"]
    names = {normalise(row["name"]): row["code"] for row in read_csv("nombres_municipios.csv")}
    columns = {
        "poblacion_total": ("population_2007", "personas"),
        "poblacion_hombres": ("men_2007", "personas"),
        "poblacion_mujeres": ("women_2007", "personas"),
        "pobreza_hogares": ("poverty_rate_2007_pct", "% de hogares"),
    }
    seen = set()
    for row in table.iloc[:-1].itertuples():
        code = names[normalise(row.municipio)]
        column, unit = columns[row.variable]
        assert (row.valor, row.unidad) == (facts[code][column], unit), row
        seen.add((code, row.variable))
    assert len(seen) == 56
    assert sum(int(row["population_2007"]) for row in facts.values()) == 1_566_629


def test_same_seed_same_data_and_scaling(tmp_path: Path, sample: dict[str, Path]) -> None:
    again = write_sample(tmp_path / "again")
    assert again.permits.read_bytes() == sample["permits"].read_bytes()
    assert again.statistics.read_bytes() == sample["statistics"].read_bytes()
    zones, zones_again = gpd.read_file(sample["zoning"]), gpd.read_file(again.zoning)
    assert zones.drop(columns="geometry").equals(zones_again.drop(columns="geometry"))
    assert zones.geometry.geom_equals_exact(zones_again.geometry, tolerance=0).all()
    other = write_sample(tmp_path / "other", seed=7)
    assert other.permits.read_bytes() != sample["permits"].read_bytes()
    bigger = pd.read_csv(write_sample(tmp_path / "bigger", permits_scale=4.0).permits)
    granted = bigger[
        (bigger["estado"] == "aprobado") & (pd.to_datetime(bigger["fecha_resolucion"]).dt.year == REPORT_YEAR)
    ]
    assert granted["tramite"].value_counts().to_dict() == {
        "calificacion_lugar": 4 * 1406,
        "permiso_construccion": 4 * 547,
    }
