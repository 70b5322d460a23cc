"""Facilities and public spaces: their registers' formats load through the sample's manifests, and
the services indicators match values computed here by hand on squares drawn in UTM 16N.

Three municipalities side by side, 2 km tall: West (0001, 2 km wide, 10,000 inhabitants), Middle
(0002, 3 km, 3,000) and East (0003, 2 km, 5,000). In 2024 West became municipality A on its own,
Middle and East became districts of B.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from etl import LoadResult, load_source, read_manifest
from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.sample import amss_boundaries, write_manifests
from observatory.sample.facilities import (
    METROPOLITAN_HECTARES,
    METROPOLITAN_PARKS,
    SCARCE_PUBLIC_SPACE,
    WITHOUT_HEALTH,
    write_facilities,
    write_health,
    write_public_spaces,
    write_schools,
)
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import UTM, X0, Y0

SAMPLE_DIR = Path(__file__).parents[1] / "data" / "sample"
SCHOOLS, HEALTH, SPACES = "centros_escolares_mined", "establecimientos_minsal", "espacios_publicos"
LAMBERT = "EPSG:5460"
TO_LONLAT = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
WEST, MIDDLE, EAST = "0001", "0002", "0003"
MUNICIPALITIES = [
    # code, name, population 2007, 2024 code, 2024 name, west and east edge (m from X0)
    (WEST, "Oeste", 10_000, "A", "Uno", 0, 2_000),
    (MIDDLE, "Centro", 3_000, "B", "Dos", 2_000, 5_000),
    (EAST, "Este", 5_000, "B", "Dos", 5_000, 7_000),
]
INDICATORS = ["public_space_per_inhabitant", "health_facilities_per_10k", "schools_per_10k"]


def write_municipalities(folder: Path) -> Path:
    path = folder / "municipios.gpkg"
    gpd.GeoDataFrame(
        {
            "COD_MUN": [m[0] for m in MUNICIPALITIES],
            "NOM_MUN": [m[1] for m in MUNICIPALITIES],
            "DEPTO": "San Salvador",
            "POB_2007": [m[2] for m in MUNICIPALITIES],
            "M2024": [m[3] for m in MUNICIPALITIES],
            "N2024": [m[4] for m in MUNICIPALITIES],
        },
        geometry=[shapely.box(X0 + w, Y0, X0 + e, Y0 + 2_000) for *_, w, e in MUNICIPALITIES],
        crs=UTM,
    ).to_file(path)
    return path


def school(code: str, sector: str, x: float, y: float, *, name: str = "CENTRO ESCOLAR") -> dict[str, object]:
    """A row of MINED's register at (X0 + x, Y0 + y) in UTM, written as LATITUD/LONGITUD."""
    lon, lat = TO_LONLAT.transform(X0 + x, Y0 + y)
    return {"CODIGO": code, "NOMBRE": name, "SECTOR": sector, "DEPARTAMENTO": "SAN SALVADOR",
            "MUNICIPIO": "", "LATITUD": lat, "LONGITUD": lon}  # fmt: skip


def health(code: str, kind: str, x: float, y: float) -> dict[str, object]:
    lon, lat = TO_LONLAT.transform(X0 + x, Y0 + y)
    return {"COD_ESTABLECIMIENTO": code, "NOMBRE_ESTABLECIMIENTO": f"{kind} {code}",
            "TIPO_ESTABLECIMIENTO": kind, "MUNICIPIO": "", "geometry": shapely.Point(lon, lat)}  # fmt: skip


def space(code: str, category: str, box: tuple[float, float, float, float]) -> dict[str, object]:
    """A cadastre row whose outline is ``box`` (metres from X0, Y0 in UTM)."""
    west, south, east, north = box
    outline = shapely.box(X0 + west, Y0 + south, X0 + east, Y0 + north)
    return {"COD_EP": code, "CATEGORIA": category, "NOMBRE": f"{category} {code}", "geometry": outline}


def load_register(
    store: Store, settings: Settings, folder: Path, source: str, rows: list[dict[str, object]]
) -> LoadResult:
    """``rows`` written in the format of the sample's ``source`` register and loaded through the
    sample's own manifest (copied beside the file)."""
    manifest = shutil.copy(SAMPLE_DIR / f"{source}.toml", folder / f"{source}.toml")
    if source == SCHOOLS:
        write_schools(pd.DataFrame(rows), folder / f"{source}.csv")
    elif source == HEALTH:
        write_health(gpd.GeoDataFrame(rows, crs="EPSG:4326"), folder / f"{source}.geojson")
    else:
        write_public_spaces(gpd.GeoDataFrame(rows, crs=UTM).to_crs(LAMBERT), folder / f"{source}.gpkg")
    return load_source(store, read_manifest(Path(manifest)), settings=settings)


def rejects(result: LoadResult) -> dict[int, str]:
    """Source row -> reason, from the run's report."""
    report = pd.read_csv(result.run.report_file)
    return dict(zip(report["row"], report["reason"], strict=True))


@pytest.fixture
def folder(tmp_path: Path, store: Store, settings: Settings) -> Path:
    """A folder of sources, with the three municipalities loaded from it."""
    path = tmp_path / "sources"
    path.mkdir()
    fixtures.load(store, "municipalities", write_municipalities(path), settings=settings,
                  fields='municipality_2024_code = "M2024"\nmunicipality_2024_name = "N2024"\n')  # fmt: skip
    return path


def test_schools_register_cp1252_with_decimal_commas(store: Store, settings: Settings, folder: Path) -> None:
    rows = [
        school("10001", "PÚBLICO", 500, 500, name="CENTRO ESCOLAR JOSÉ SIMEÓN CAÑAS"),
        school("10002", "PRIVADO", 3_000, 500),
        {**school("10003", "PÚBLICO", 600, 600), "LATITUD": None},
        {**school("10004", "PÚBLICO", 700, 700), "LATITUD": -89.2, "LONGITUD": 13.7},  # swapped
        school("10005", "SUBVENCIONADO", 800, 800),
    ]

    result = load_register(store, settings, folder, SCHOOLS, rows)

    text = (folder / f"{SCHOOLS}.csv").read_bytes()
    assert "CAÑAS".encode("cp1252") in text and b";13,7" in text  # the file is as MINED writes it
    assert (result.run.rows_read, result.run.rows_loaded) == (5, 2)
    assert rejects(result) == {
        3: "no usable coordinates in columns 'LONGITUD'/'LATITUD'",
        4: "outside El Salvador when read as EPSG:4326",
        5: "subtype 'SUBVENCIONADO' is not in the manifest's value mapping",
    }
    stored = store.read_layer(get_layer("facilities")).set_index("facility_id").sort_index()
    assert list(stored.index) == ["school:10001", "school:10002"]
    assert list(stored["type"]) == ["school", "school"]
    assert list(stored["subtype"]) == ["publico", "privado"]
    assert list(stored["municipality_code"]) == [WEST, MIDDLE]
    assert stored.loc["school:10001", "name"] == "CENTRO ESCOLAR JOSÉ SIMEÓN CAÑAS"


def test_health_register_maps_raw_codes_and_keeps_the_schools(
    store: Store, settings: Settings, folder: Path
) -> None:
    load_register(store, settings, folder, SCHOOLS, [school("10001", "PÚBLICO", 500, 500)])
    rows = [
        health("10001", "HN", 500, 1_500),  # the same code as the school: both are kept
        health("0614002", "UCSFB", 1_500, 1_500),
        health("0614003", "CLIN", 6_000, 1_000),
        health("0614004", "FARM", 6_500, 1_000),
    ]

    result = load_register(store, settings, folder, HEALTH, rows)

    assert (result.run.rows_read, result.run.rows_loaded) == (4, 3)
    assert rejects(result) == {4: "type 'FARM' is not in the manifest's value mapping"}
    stored = store.read_layer(get_layer("facilities")).set_index("facility_id").sort_index()
    assert stored["type"].to_dict() == {
        "health:0614002": "health", "health:0614003": "health", "health:10001": "health",
        "school:10001": "school",
    }  # fmt: skip
    assert stored["subtype"].to_dict() == {
        "health:0614002": "unidad_salud", "health:0614003": "clinica", "health:10001": "hospital",
        "school:10001": "publico",
    }  # fmt: skip
    assert stored.loc["health:0614003", "municipality_code"] == EAST

    # A new schools register replaces the schools only.
    again = [school("10001", "PÚBLICO", 500, 500), school("10009", "PRIVADO", 6_000, 500)]
    load_register(store, settings, folder, SCHOOLS, again)
    types = store.read_layer(get_layer("facilities")).groupby("type")["facility_id"].apply(sorted)
    assert types.to_dict() == {
        "health": ["health:0614002", "health:0614003", "health:10001"],
        "school": ["school:10001", "school:10009"],
    }


def test_public_space_cadastre_in_lambert(store: Store, settings: Settings, folder: Path) -> None:
    rows = [
        space("EP1", "PARQUE", (100, 100, 400, 400)),
        space("EP2", "PLAZA", (2_100, 100, 2_200, 200)),
        space("EP3", "CANCHA", (5_100, 100, 5_200, 220)),
        space("EP4", "ZONA VERDE", (6_000, 1_000, 6_300, 1_300)),
        space("EP5", "JARDIN", (1_000, 1_000, 1_100, 1_100)),
        space("EP6", "PARQUE", (9_000, 0, 9_300, 300)),  # 2 km east of the AMSS
        space("EP7", "PARQUE", (6_800, 0, 7_400, 100)),  # a third inside: 200 of its 600 m
    ]

    result = load_register(store, settings, folder, SPACES, rows)

    assert (result.run.rows_read, result.run.rows_loaded) == (7, 4)
    assert rejects(result) == {
        5: "type 'JARDIN' is not in the manifest's value mapping",
        6: "only 0% of its area lies inside the AMSS (at least 50% needed)",
        7: "only 33% of its area lies inside the AMSS (at least 50% needed)",
    }
    stored = store.read_layer(get_layer("public_spaces")).set_index("space_id").sort_index()
    assert stored["type"].to_dict() == {"EP1": "park", "EP2": "plaza", "EP3": "sports_field",
                                        "EP4": "green_area"}  # fmt: skip
    assert stored.to_crs(UTM).area.to_numpy() == pytest.approx([90_000, 10_000, 12_000, 90_000], rel=1e-6)


def values(store: Store) -> dict[tuple[str, str], float]:
    """(indicator, municipality) -> value, for both geographies."""
    frame = store.read_layer(get_layer("indicators"))
    return {(row.indicator_id, row.municipality_code): row.value for row in frame.itertuples()}


def test_public_space_per_inhabitant_clips_and_dissolves(
    store: Store, settings: Settings, folder: Path
) -> None:
    load_register(store, settings, folder, SPACES, [
        # 200 m × 500 m across the West/Middle border: 50,000 m² on each side.
        space("EP1", "PARQUE", (1_900, 0, 2_100, 500)),
        # Two 400 m × 400 m parks in Middle overlapping by 200 m × 400 m: 240,000 m², not 320,000;
        # and a sports field inside the first, adding nothing.
        space("EP2", "PARQUE", (3_000, 1_000, 3_400, 1_400)),
        space("EP3", "PARQUE", (3_200, 1_000, 3_600, 1_400)),
        space("EP4", "CANCHA", (3_050, 1_050, 3_150, 1_150)),
    ])  # fmt: skip

    compute_indicators(store, INDICATORS, settings=settings)

    # (The cadastre is in the Lambert grid, whose datum shift moves a vertex by millimetres.)
    found = values(store)
    assert found["public_space_per_inhabitant", WEST] == pytest.approx(50_000 / 10_000, rel=1e-4)
    assert found["public_space_per_inhabitant", MIDDLE] == pytest.approx(290_000 / 3_000, rel=1e-4)
    assert found["public_space_per_inhabitant", EAST] == 0  # none: 0, not missing
    # 2024: Middle and East summed, 290,000 m² over 8,000 inhabitants (not the mean of 96.7 and 0).
    assert found["public_space_per_inhabitant", "A"] == pytest.approx(5.0, rel=1e-4)
    assert found["public_space_per_inhabitant", "B"] == pytest.approx(290_000 / 8_000, rel=1e-4)


def test_facilities_per_10k_by_type_with_zero_and_2024_sums(
    store: Store, settings: Settings, folder: Path
) -> None:
    load_register(store, settings, folder, SCHOOLS, [
        school("10001", "PÚBLICO", 500, 500), school("10002", "PRIVADO", 1_000, 1_000),
        school("10003", "PÚBLICO", 1_500, 1_500),  # West: 3
        school("10004", "PÚBLICO", 3_000, 1_000),  # Middle: 1
        school("10005", "PÚBLICO", 5_500, 500), school("10006", "PRIVADO", 6_500, 1_500),  # East: 2
    ])  # fmt: skip

    outcome = compute_indicators(store, INDICATORS, settings=settings)

    # Without MINSAL's register there are no health values at all (zeros would be a false claim).
    assert "health_facilities_per_10k" not in set(outcome.values["indicator_id"])
    load_register(store, settings, folder, HEALTH, [
        health("1", "HN", 500, 1_500), health("2", "UCSFB", 1_500, 500),  # West: 2
        health("3", "CLIN", 6_000, 1_000),  # East: 1; Middle: none
    ])  # fmt: skip
    compute_indicators(store, INDICATORS, settings=settings)

    found = values(store)
    assert found["schools_per_10k", WEST] == pytest.approx(3 * 10_000 / 10_000)
    assert found["schools_per_10k", MIDDLE] == pytest.approx(1 * 10_000 / 3_000)
    assert found["schools_per_10k", EAST] == pytest.approx(2 * 10_000 / 5_000)
    assert found["health_facilities_per_10k", WEST] == pytest.approx(2 * 10_000 / 10_000)
    assert found["health_facilities_per_10k", MIDDLE] == 0  # none: 0, not missing
    assert found["health_facilities_per_10k", EAST] == pytest.approx(1 * 10_000 / 5_000)
    # 2024: B's counts summed over its summed population (1 + 2 schools, 0 + 1 health facility, 8,000
    # inhabitants), not the mean of the districts' rates (3.67 and 1.0).
    assert found["schools_per_10k", "B"] == pytest.approx(3 * 10_000 / 8_000)
    assert found["health_facilities_per_10k", "B"] == pytest.approx(1 * 10_000 / 8_000)
    assert found["schools_per_10k", "A"] == pytest.approx(3.0)
    assert found["health_facilities_per_10k", "A"] == pytest.approx(2.0)


def test_sample_registers_load_whole_and_make_the_indicators_differ(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    boundaries = amss_boundaries()
    files = write_facilities(tmp_path, boundaries, seed=7)
    write_manifests(tmp_path)
    load_source(store, read_manifest(tmp_path / "municipios.toml"), settings=settings)
    for source in (SCHOOLS, HEALTH, SPACES):
        load_source(store, read_manifest(tmp_path / f"{source}.toml"), settings=settings)

    schools = pd.read_csv(files[0], sep=";", encoding="cp1252", dtype=str)
    minsal = gpd.read_file(files[1])
    cadastre = gpd.read_file(files[2]).to_crs(UTM)
    facilities = store.read_layer(get_layer("facilities"))
    spaces = store.read_layer(get_layer("public_spaces"))
    assert (facilities["type"] == "school").sum() == len(schools)
    assert (facilities["type"] == "health").sum() == len(minsal)
    assert len(spaces) == len(cadastre)
    # About one school per 2,500 inhabitants and one health facility per 10,000.
    population = boundaries["population_2007"].sum()
    assert len(schools) == round(population / 2_500)
    assert len(minsal) == round(population / 10_000)
    # Every municipality has some health facility but WITHOUT_HEALTH; SCARCE_PUBLIC_SPACE has the
    # least public space per inhabitant; no two municipalities score alike.
    compute_indicators(store, INDICATORS, settings=settings)
    found = store.read_layer(get_layer("indicators"))
    found = found[found["geography"] == "municipios_2007"].pivot(
        index="municipality_code", columns="indicator_id", values="value"
    )
    health_rate = found["health_facilities_per_10k"]
    assert list(health_rate[health_rate == 0].index) == [WITHOUT_HEALTH]
    assert found["public_space_per_inhabitant"].idxmin() == SCARCE_PUBLIC_SPACE
    for indicator_id in INDICATORS:
        assert found[indicator_id].round(6).nunique() == len(found), indicator_id
    # Spaces of 0.1–5 ha (a sports field drawn in a park may be a quarter of 0.3 ha; the cut at the
    # AMSS edge only shrinks), and metropolitan parks of 10–40 ha.
    hectares = cadastre.set_index("NOMBRE").area / 10_000
    metropolitan = hectares[list(METROPOLITAN_PARKS.values())]
    assert metropolitan.max() <= METROPOLITAN_HECTARES[1] and metropolitan.max() >= METROPOLITAN_HECTARES[0]
    assert hectares.drop(index=list(METROPOLITAN_PARKS.values())).max() <= 5.0
