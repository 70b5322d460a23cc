"""Hazard rasters and the risk indicators, on a hand-made grid over three square municipalities.

The grid has 6 × 3 pixels of 1 km (1,000,000 m²) in UTM 16N, its left edge 500 m west of the
squares, so that each square covers half of its first and last pixel columns::

    x from X0:  -500     500     1500     2500     3500     4500     5500
    row 0       |  c0   |  c1   |  c2   |  c3   |  c4   |  c5   |   y Y0+1000 … Y0+2000
    row 1       |       |       |       |       |       |       |   y Y0      … Y0+1000
    row 2       |       |       |       |       |       |       |   y Y0-1000 … Y0
    0001 Oeste  x 0 … 2000, rows 0–1: c0 ½, c1, c2 ½
    0002 Este   x 2000 … 5000, rows 0–1: c2 ½, c3, c4, c5 ½
    0003 Sur    x 0 … 5000, row 2: c0 ½, c1, c2, c3, c4, c5 ½

Every expected value below is worked out from these pictures.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from etl import load_layer
from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.indicators.risk import (
    flood_exposed_area_100y,
    flood_exposed_population_100y,
    flood_exposed_population_share_100y,
    flooded,
    floor_area_in_hazard_zones,
    high_landslide,
    landslide_high_population,
    landslide_high_population_share,
    permits_in_hazard_zones,
)
from observatory.rasters import raster_file, zonal_areas
from observatory.sample import DEFAULT_SEED, amss_boundaries
from observatory.sample.hazards import write_hazards
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import UTM, X0, Y0
from tests.test_rasters import north_up, write_tiff

PIXEL_M2 = 1e6
GRID = north_up(X0 - 500, Y0 + 2_000, 1_000, 1_000)
SOUTH_SQUARE = shapely.box(X0, Y0 - 1_000, X0 + 5_000, Y0)
ND = -9999.0
FLOOD = np.array(
    [
        [0.6, 0.5, 2.0, ND, 0.0, 1.0],
        [ND, 0.7, 0.4, 3.0, 0.0, 0.51],
        [0.0, 0.0, ND, 0.0, 0.2, 0.5],
    ],
    dtype="float32",
)
LANDSLIDE = np.array(  # the source marks missing pixels with 0; the layer stores them as 255
    [
        [3, 4, 5, 0, 1, 2],
        [2, 3, 4, 5, 1, 1],
        [1, 1, 2, 3, 3, 0],
    ],
    dtype="uint8",
)
# (cell, population, municipality, box): A is pixel r0c1 (0.5 m deep, class 4), B half r1c1 (0.7 m,
# class 3) and half r1c2 (0.4 m, class 4), C pixel r1c3 (3 m, class 5), D pixel r0c3 (nodata in
# both), E four fifths of pixel r2c1 (dry, class 1).
CELLS = [
    ("A", 100, "0001", shapely.box(X0 + 500, Y0 + 1_000, X0 + 1_500, Y0 + 2_000)),
    ("B", 80, "0001", shapely.box(X0 + 1_000, Y0, X0 + 2_000, Y0 + 1_000)),
    ("C", 50, "0002", shapely.box(X0 + 2_500, Y0, X0 + 3_500, Y0 + 1_000)),
    ("D", 30, "0002", shapely.box(X0 + 2_500, Y0 + 1_000, X0 + 3_500, Y0 + 2_000)),
    ("E", 20, "0003", shapely.box(X0 + 1_000, Y0 - 900, X0 + 2_000, Y0 - 100)),
]


def municipalities_frame() -> gpd.GeoDataFrame:
    """The three squares as the store gives them (lon/lat), with their 2007 population."""
    return gpd.GeoDataFrame(
        {"code": ["0001", "0002", "0003"], "name": ["Oeste", "Este", "Sur"],
         "population_2007": [10_000, 3_000, 4_000]},
        geometry=[fixtures.WEST_SQUARE, fixtures.EAST_SQUARE, SOUTH_SQUARE], crs=UTM,
    ).to_crs("EPSG:4326")  # fmt: skip


def population_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"cell_id": [c[0] for c in CELLS], "population": [c[1] for c in CELLS], "period": 2020,
         "municipality_code": [c[2] for c in CELLS]},
        geometry=[c[3] for c in CELLS], crs=UTM,
    ).to_crs("EPSG:4326")  # fmt: skip


def write_municipalities(folder: Path) -> Path:
    path = folder / "municipios3.gpkg"
    rows = [*fixtures.MUNICIPALITIES, {"COD_MUN": "0003", "NOM_MUN": "Sur", "DEPTO": "San Salvador",
                                        "POB_2007": 4_000}]  # fmt: skip
    geometry = [fixtures.WEST_SQUARE, fixtures.EAST_SQUARE, SOUTH_SQUARE]
    gpd.GeoDataFrame(rows, geometry=geometry, crs=UTM).to_file(path)
    return path


def write_grid(path: Path, values: np.ndarray, nodata: float) -> Path:
    return write_tiff(path, values, transform=GRID, nodata=nodata)


def by_code(frame: pd.DataFrame) -> dict[str, float]:
    return dict(zip(frame["municipality_code"], frame["value"], strict=True))


@pytest.fixture
def flood(tmp_path: Path) -> Path:
    return write_grid(tmp_path / "flood.tif", FLOOD, ND)


@pytest.fixture
def landslide(tmp_path: Path) -> Path:
    """As the layer stores it: missing pixels are 255, which is ≥ 4 and must not count as high."""
    return write_grid(
        tmp_path / "landslide.tif", np.where(LANDSLIDE == 0, 255, LANDSLIDE).astype("uint8"), 255
    )


def test_flooded_area_is_strictly_deeper_than_half_a_metre(flood: Path) -> None:
    values = by_code(flood_exposed_area_100y(municipalities=municipalities_frame(), flood_depth_100y=flood))
    # Oeste: ½ of r0c0 (0.6 m) + ½ of r0c2 (2 m) + r1c1 (0.7 m); r0c1 is exactly 0.5 m, not counted.
    assert values["0001"] == pytest.approx(2.0 * PIXEL_M2 / 1e6)
    # Este: ½ r0c2 (2 m) + ½ r0c5 (1 m) + r1c3 (3 m) + ½ r1c5 (0.51 m); nodata r0c3 is dry.
    assert values["0002"] == pytest.approx(2.5 * PIXEL_M2 / 1e6)
    # Sur: depths 0, 0.2, 0.5 and nodata: the flood misses it.
    assert values["0003"] == 0


def test_flood_exposed_population_is_weighted_by_flooded_area(flood: Path) -> None:
    population = population_frame()
    people = by_code(flood_exposed_population_100y(population=population, flood_depth_100y=flood))
    shares = by_code(flood_exposed_population_share_100y(population=population, flood_depth_100y=flood))
    # A sits on the 0.5 m pixel (0), B is half under 0.7 m (40 of 80), C all under 3 m (50),
    # D on nodata (0), E dry (0).
    assert people == pytest.approx({"0001": 40, "0002": 50, "0003": 0})
    assert shares == pytest.approx({"0001": 100 * 40 / 180, "0002": 100 * 50 / 80, "0003": 0})


def test_landslide_high_is_classes_four_and_five(landslide: Path) -> None:
    population = population_frame()
    people = by_code(landslide_high_population(population=population, landslide_susceptibility=landslide))
    shares = by_code(
        landslide_high_population_share(population=population, landslide_susceptibility=landslide)
    )
    # A on class 4 (100), B half on class 3 and half on 4 (40), C on 5 (50), D on nodata (0), E on 1.
    assert people == pytest.approx({"0001": 140, "0002": 50, "0003": 0})
    assert shares == pytest.approx({"0001": 100 * 140 / 180, "0002": 100 * 50 / 80, "0003": 0})


# (id, kind, status, floor area, submitted, pixel centre x, y from X0, Y0) and why it counts or not.
PERMITS = [
    ("P1", "permiso_construccion", "aprobado", 100, "2017-03-01", 1_000, 500),  # r1c1 0.7 m: yes
    ("P2", "permiso_construccion", "aprobado", 200, "2017-12-20", 1_000, 1_500),  # 0.5 m but class 4: yes
    ("P3", "calificacion_lugar", "aprobado", None, "2017-05-01", 1_200, 500),  # a ruling: no
    ("P4", "permiso_construccion", "aprobado", 50, "2018-02-01", 200, 500),  # nodata, class 2: no
    ("P5", "permiso_construccion", "denegado", 900, "2017-06-01", 3_000, 500),  # 3 m, refused: no
    ("P6", "permiso_construccion", "aprobado", 70, "2018-03-01", 3_000, 1_500),  # nodata in both: no
    ("P7", "permiso_construccion", "aprobado", 60, "2017-07-01", 4_000, 1_500),  # 0 m, class 1: no
    ("P8", "permiso_construccion", "aprobado", 250, "2018-04-01", 4_700, 500),  # 0.51 m: yes
]


def permits_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "permit_id": [p[0] for p in PERMITS],
            "kind": [p[1] for p in PERMITS],
            "status": [p[2] for p in PERMITS],
            "floor_area_m2": [p[3] for p in PERMITS],
            "submitted": pd.to_datetime([p[4] for p in PERMITS]),
            # P2, submitted in December 2017, was resolved in 2018: it counts in 2018.
            "resolved": pd.to_datetime([p[4] for p in PERMITS]) + pd.Timedelta(days=20),
            "municipality_code": ["0001"] * 4 + ["0002"] * 4,
        },
        geometry=gpd.points_from_xy([X0 + p[5] for p in PERMITS], [Y0 + p[6] for p in PERMITS]),
        crs=UTM,
    ).to_crs("EPSG:4326")


def test_permits_in_hazard_zones_by_year_of_resolution(flood: Path, landslide: Path) -> None:
    arguments = {
        "permits": permits_frame(), "municipalities": municipalities_frame(),
        "flood_depth_100y": flood, "landslide_susceptibility": landslide,
    }  # fmt: skip
    counts = permits_in_hazard_zones(**arguments).set_index(["municipality_code", "period"])["value"]
    areas = floor_area_in_hazard_zones(**arguments).set_index(["municipality_code", "period"])["value"]
    assert counts.to_dict() == {
        ("0001", 2017): 1, ("0001", 2018): 1, ("0002", 2017): 0, ("0002", 2018): 1,
        ("0003", 2017): 0, ("0003", 2018): 0,
    }  # fmt: skip
    assert areas.to_dict() == {
        ("0001", 2017): 100, ("0001", 2018): 200, ("0002", 2017): 0, ("0002", 2018): 250,
        ("0003", 2017): 0, ("0003", 2018): 0,
    }  # fmt: skip


def test_hazard_rasters_load_and_compute_on_both_geographies(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Loaded through the store: runs recorded, classes kept pixel for pixel (no resampling), and
    on the 2024 geography (0001 and 0002 in M1, 0003 in M2) shares from summed people."""
    fixtures.load_municipalities_2024(
        store, write_municipalities(tmp_path), settings=settings,
        districts_of={"0001": ("M1", "Uno"), "0002": ("M1", "Uno"), "0003": ("M2", "Dos")},
    )  # fmt: skip
    cells = population_frame().drop(columns="municipality_code")  # the load places each cell
    cells.to_file(tmp_path / "celdas.gpkg")
    load_layer(store, "population", tmp_path / "celdas.gpkg", settings=settings)
    flood_run = load_layer(
        store, "flood_depth_100y", write_grid(tmp_path / "f.tif", FLOOD, ND), settings=settings
    )
    slide_run = load_layer(
        store, "landslide_susceptibility", write_grid(tmp_path / "l.tif", LANDSLIDE, 0), settings=settings
    )

    assert (flood_run.run.rows_read, flood_run.run.rows_loaded) == (18, 15)
    assert (slide_run.run.rows_read, slide_run.run.rows_loaded) == (18, 16)
    assert [run.layer for run in store.load_runs()][-2:] == ["flood_depth_100y", "landslide_susceptibility"]
    with rasterio.open(raster_file("landslide_susceptibility", settings)) as stored:
        assert (stored.dtypes[0], stored.nodata, stored.transform) == ("uint8", 255, GRID)
        assert stored.read(1).tolist() == np.where(LANDSLIDE == 0, 255, LANDSLIDE).tolist()

    outcome = compute_indicators(store, settings=settings)
    values = outcome.values.set_index(["indicator_id", "geography", "municipality_code", "period"])["value"]
    assert values[("flood_exposed_area_100y", "municipios_2007", "0002", 2021)] == pytest.approx(2.5)
    # People of 2020 on the flood study of 2021: dated 2021, the latest of its inputs, like the
    # flooded area from the same grid, and each value says which input is of which year.
    assert values[("flood_exposed_population_100y", "municipios_2007", "0001", 2021)] == pytest.approx(40)
    assert values[("landslide_high_population", "municipios_2007", "0001", 2021)] == pytest.approx(140)
    # (40 + 50) / (180 + 80), not the mean of 22.2 % and 62.5 %.
    assert values[("flood_exposed_population_share_100y", "municipios_2024", "M1", 2021)] == pytest.approx(
        100 * 90 / 260
    )
    assert values[("flood_exposed_area_100y", "municipios_2024", "M1", 2021)] == pytest.approx(4.5)
    assert values[("landslide_high_population_share", "municipios_2024", "M2", 2021)] == 0
    vintages = outcome.values.set_index(["indicator_id", "geography", "municipality_code"])["input_periods"]
    assert json.loads(vintages[("flood_exposed_population_100y", "municipios_2007", "0001")]) == {
        "flood_depth_100y": 2021, "population": 2020,
    }  # fmt: skip
    assert set(outcome.values.loc[outcome.values["theme"] == "risk", "period"]) == {2021}
    assert "permits_in_hazard_zones" in outcome.skipped
    read_back = store.read_layer(get_layer("population"))
    assert dict(zip(read_back["cell_id"], read_back["municipality_code"], strict=True)) == {
        c[0]: c[2] for c in CELLS
    }


@pytest.fixture(scope="module")
def sample_hazards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_hazards(tmp_path_factory.mktemp("hazards"), amss_boundaries(), DEFAULT_SEED)


def test_sample_flood_touches_only_the_valley_and_the_lake_shore(sample_hazards: tuple[Path, Path]) -> None:
    flood, _ = sample_hazards
    with rasterio.open(flood) as dataset:
        assert (dataset.crs.to_epsg(), dataset.dtypes[0], dataset.nodata) == (32616, "float32", ND)
        assert dataset.profile["tiled"] and dataset.compression.value == "DEFLATE"
        depth = dataset.read(1, masked=True)
    assert depth.min() >= 0 and depth.max() <= 3
    assert depth.count() < 0.05 * depth.size  # most of the AMSS is outside the floodplain
    assert flood.stat().st_size < 1_000_000
    areas = zonal_areas(flood, amss_boundaries(), id_column="name", where=flooded).set_index("name")
    flooded_km2 = areas["where_area_m2"] / 1e6
    for name in ("San Salvador", "Ciudad Delgado", "Ilopango"):  # the Acelhuate and the lake shore
        assert flooded_km2[name] > 0.3, name
    for name in ("Santa Tecla", "Antiguo Cuscatlán", "Nejapa", "Mejicanos", "Soyapango"):
        assert flooded_km2[name] == 0, name


def test_sample_landslides_are_high_on_the_volcano_side(sample_hazards: tuple[Path, Path]) -> None:
    _, landslide = sample_hazards
    with rasterio.open(landslide) as dataset:
        assert (dataset.dtypes[0], dataset.nodata) == ("uint8", 255)
        assert set(np.unique(dataset.read(1))) == {1, 2, 3, 4, 5}
    areas = zonal_areas(landslide, amss_boundaries(), id_column="name", where=high_landslide).set_index(
        "name"
    )
    high = areas["where_area_m2"] / areas["area_m2"]
    for west in ("Santa Tecla", "Antiguo Cuscatlán", "Mejicanos"):
        for east in ("Soyapango", "Ilopango", "San Martín", "Tonacatepeque"):
            assert high[west] > 0.15 and high[east] < 0.01, (west, east)
    assert high["Nejapa"] > 0.05  # the volcano's northern flank


def test_sample_hazards_are_reproducible(sample_hazards: tuple[Path, Path], tmp_path: Path) -> None:
    again = write_hazards(tmp_path / "again", amss_boundaries(), DEFAULT_SEED)
    other = write_hazards(tmp_path / "other", amss_boundaries(), 7)
    for first, second, third in zip(sample_hazards, again, other, strict=True):
        with rasterio.open(first) as a, rasterio.open(second) as b, rasterio.open(third) as c:
            assert np.array_equal(a.read(1), b.read(1)) and not np.array_equal(a.read(1), c.read(1))
