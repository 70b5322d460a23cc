"""The population surface: a raster's pixels loaded as cells, polygons placed by their centre, the
committed sample against the census, density per urbanised hectare and cells as points.

The hand-made sources lie over the tiny AMSS of ``tests.fixtures`` (west square 0001, 2 km × 2 km,
10,000 people; east square 0002, 3 km × 2 km, 3,000 people; both from (X0, Y0) in UTM 16N), so
every expected number below is worked out by hand.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio import Affine

from etl import load_layer, load_source, read_manifest
from layers import get_layer
from observatory.errors import LoadError, MissingInput
from observatory.indicators import compute_indicators
from observatory.indicators.density import population_density_urbanised
from observatory.indicators.people import population_points
from observatory.sample import DEFAULT_SEED, MANIFESTS_DIR, POPULATION_STREAM, REFERENCE_DIR, amss_boundaries
from observatory.sample.geometry import HISTORIC_CENTRE
from observatory.sample.population import (
    LAKE_ILOPANGO,
    NODATA,
    VOLCANO,
    population_grid,
    write_population_raster,
)
from observatory.settings import METRIC_CRS, Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import UTM, X0, Y0

PIXEL = 1_000
LEFT, TOP = X0 - 10_200, Y0 + 2_700
"""A grid of 3 rows × 16 columns of 1 km pixels. Column c spans x from X0 - 10,200 + 1,000 c, so
column 10 starts 200 m west of the AMSS; row 0's centre is 200 m north of it (y = Y0 + 2,200),
row 1's at Y0 + 1,200, row 2's at Y0 + 200."""


def pixel_values() -> np.ndarray:
    values = np.zeros((3, 16), dtype="float32")  # 0: nobody lives there, not a cell
    values[1, 10] = 120  # centre X0 + 300: west
    values[1, 12] = 75.5  # X0 + 1,800 … X0 + 2,800: 200 m in the west, its centre (X0 + 2,300) east
    values[1, 13] = -1  # nodata
    values[1, 14] = 40  # centre X0 + 4,300: east
    values[2, 10] = 30
    values[2, 11] = 200  # centre X0 + 1,300: west
    values[2, 12] = 10  # straddling, centre east
    values[2, 13] = 60
    values[2, 14] = -5  # a negative count: rejected by the layer's constraint
    values[0, 11] = 7  # overlaps the west square by 300 m, centre 200 m north of it: outside
    values[1, 15] = 9  # centre X0 + 5,300: east of the AMSS
    values[1, 8] = 11  # centre X0 - 1,700: in the padded window, outside the AMSS
    values[1, 2] = 500  # 7.7 km west of the AMSS, beyond the window's 3-pixel margin: never read
    return values


LOADED = {  # cell id -> (population, municipality)
    "r1c10": (120.0, "0001"), "r1c12": (75.5, "0002"), "r1c14": (40.0, "0002"), "r2c10": (30.0, "0001"),
    "r2c11": (200.0, "0001"), "r2c12": (10.0, "0002"), "r2c13": (60.0, "0002"),
}  # fmt: skip


def write_tiff(path: Path, values: np.ndarray, *, nodata: float = -1) -> Path:
    height, width = values.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=1, dtype=values.dtype.name,
        crs=UTM, transform=Affine(PIXEL, 0, LEFT, 0, -PIXEL, TOP), nodata=nodata,
    ) as output:  # fmt: skip
        output.write(values, 1)
    return path


def write_cells_manifest(path: Path, source: str = "") -> Path:
    manifest = path.with_suffix(".toml")
    manifest.write_text(
        f'layer = "population"\n[source]\npath = "{path.name}"\n{source}\n'
        '[fields]\ncell_id = "cell"\npopulation = "value"\nperiod = { value = 2007 }\n',
        encoding="utf-8",
    )
    return manifest


@pytest.fixture
def amss(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    return store


def read_population(store: Store) -> gpd.GeoDataFrame:
    return store.read_layer(get_layer("population")).set_index("cell_id").sort_index()


def test_raster_pixels_become_cells_placed_by_their_centre(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    manifest = write_cells_manifest(write_tiff(tmp_path / "worldpop.tif", pixel_values()))
    result = load_source(amss, read_manifest(manifest), settings=settings)

    # 11 non-empty pixels in the window: 7 cells, 3 centres outside the AMSS, 1 negative count.
    assert (result.run.rows_read, result.run.rows_loaded, result.run.rows_rejected) == (11, 7, 4)
    assert dict(result.reasons) == {"outside every AMSS municipality": 3, "population '…' is below 0": 1}
    rejects = pd.read_csv(result.run.report_file)
    assert sorted(rejects["values"].str.extract(r'"cell": "(r\d+c\d+)"')[0]) == [
        "r0c11", "r1c15", "r1c8", "r2c14",
    ]  # fmt: skip
    cells = read_population(amss)
    assert {cell: (row.population, row.municipality_code) for cell, row in cells.iterrows()} == LOADED
    assert (cells["period"] == 2007).all()
    assert cells.groupby("municipality_code")["population"].sum().to_dict() == {"0001": 350.0, "0002": 185.5}
    # Each cell is its pixel's footprint: r2c11 spans X0 + 800 … X0 + 1,800, Y0 - 300 … Y0 + 700.
    footprint = cells.to_crs(UTM).geometry["r2c11"]
    assert footprint.area == pytest.approx(1e6, abs=1e-3)
    assert footprint.bounds == pytest.approx((X0 + 800, Y0 - 300, X0 + 1_800, Y0 + 700), abs=1e-4)


def test_reloading_the_same_raster_changes_nothing(amss: Store, settings: Settings, tmp_path: Path) -> None:
    manifest = read_manifest(write_cells_manifest(write_tiff(tmp_path / "worldpop.tif", pixel_values())))
    first = load_source(amss, manifest, settings=settings)
    again = load_source(amss, manifest, settings=settings)
    assert again.unchanged and again.run.run_id == first.run.run_id
    assert sorted(read_population(amss).index) == sorted(LOADED)


def test_raster_cells_with_the_manifests_nodata(amss: Store, settings: Settings, tmp_path: Path) -> None:
    """A file without nodata takes the manifest's: here 120 marks missing pixels, and -1 is a value."""
    path = write_tiff(tmp_path / "worldpop.tif", pixel_values(), nodata=-9)
    result = load_source(amss, read_manifest(write_cells_manifest(path, "nodata = 120\n")), settings=settings)
    assert result.run.rows_loaded == 6  # r1c10 (120) is missing now
    assert result.reasons["population '…' is below 0"] == 2  # -5 and the -1 that is data now
    assert "r1c10" not in read_population(amss).index


def test_raster_cells_refused(amss: Store, settings: Settings, tmp_path: Path) -> None:
    empty = write_tiff(tmp_path / "empty.tif", np.zeros((3, 16), dtype="float32"))
    with pytest.raises(LoadError, match="the file has no rows"):
        load_source(amss, read_manifest(write_cells_manifest(empty)), settings=settings)
    assert [run.layer for run in amss.load_runs()] == ["municipalities"]


def test_raster_cells_need_the_municipalities(store: Store, settings: Settings, tmp_path: Path) -> None:
    manifest = write_cells_manifest(write_tiff(tmp_path / "worldpop.tif", pixel_values()))
    with pytest.raises(MissingInput, match="load municipalities before population"):
        load_source(store, read_manifest(manifest), settings=settings)


def test_census_segments_from_polygons(amss: Store, settings: Settings, tmp_path: Path) -> None:
    """Polygons load through a plain manifest, each placed where its representative point lies."""
    segments = [
        ("S1", 100, shapely.box(X0 + 100, Y0 + 100, X0 + 900, Y0 + 900)),
        ("S2", 50, shapely.box(X0 + 1_500, Y0, X0 + 3_500, Y0 + 1_000)),  # centre X0 + 2,500: east
        ("S3", 25, shapely.box(X0 + 1_000, Y0 + 1_000, X0 + 2_400, Y0 + 2_000)),  # centre X0 + 1,700: west
        ("S4", 80, shapely.box(X0 + 6_000, Y0, X0 + 6_500, Y0 + 500)),  # outside the AMSS
    ]
    path = tmp_path / "segmentos.gpkg"
    gpd.GeoDataFrame(
        {"SEGMENTO": [s[0] for s in segments], "POB": [s[1] for s in segments]},
        geometry=[s[2] for s in segments],
        crs=UTM,
    ).to_file(path)
    path.with_suffix(".toml").write_text(
        f'layer = "population"\n[source]\npath = "{path.name}"\n'
        '[fields]\ncell_id = "SEGMENTO"\npopulation = "POB"\nperiod = { value = 2007 }\n',
        encoding="utf-8",
    )
    result = load_source(amss, read_manifest(path.with_suffix(".toml")), settings=settings)
    assert (result.run.rows_loaded, dict(result.reasons)) == (3, {"outside every AMSS municipality": 1})
    cells = read_population(amss)
    assert cells["municipality_code"].to_dict() == {"S1": "0001", "S2": "0002", "S3": "0001"}
    assert cells["population"].to_dict() == {"S1": 100.0, "S2": 50.0, "S3": 25.0}


def test_points_keep_their_place_and_the_lowest_code_on_a_shared_edge(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    """Points are their own representative point: the rule for permits and facilities is unchanged."""
    municipalities = amss.read_layer(get_layer("municipalities")).set_index("code").geometry
    shared_edge = municipalities["0001"].intersection(municipalities["0002"])
    corner = shapely.Point(shared_edge.coords[0])  # a vertex of both squares, exactly
    east = shapely.Point(shared_edge.centroid.x + 1e-5, shared_edge.centroid.y)  # 1 m east of the edge
    path = tmp_path / "equipamientos.gpkg"
    gpd.GeoDataFrame(
        {"facility_id": ["F1", "F2"], "type": "school"}, geometry=[corner, east], crs="EPSG:4326"
    ).to_file(path)
    load_layer(amss, "facilities", path, settings=settings)
    facilities = amss.read_layer(get_layer("facilities")).set_index("facility_id")
    assert facilities["municipality_code"].to_dict() == {"school:F1": "0001", "school:F2": "0002"}


# The committed sample ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def census() -> dict[str, int]:
    with (REFERENCE_DIR / "amss_municipalities_2007.csv").open(encoding="utf-8", newline="") as file:
        return {row["code"]: int(row["population_2007"]) for row in csv.DictReader(file)}


def test_committed_sample_loads_to_the_census(
    store: Store, settings: Settings, census: dict[str, int]
) -> None:
    for name in ("municipios", "poblacion"):
        load_source(store, read_manifest(MANIFESTS_DIR / f"{name}.toml"), settings=settings)
    cells = read_population(store)
    assert cells.groupby("municipality_code")["population"].sum().to_dict() == {
        code: float(people) for code, people in census.items()
    }
    with rasterio.open(MANIFESTS_DIR / "poblacion_worldpop.tif") as dataset:
        assert dataset.crs.to_epsg() == 4326 and dataset.nodata == NODATA and dataset.dtypes == ("float32",)
        values = dataset.read(1)
    assert len(cells) == int((values > 0).sum())  # every populated pixel is a cell, none rejected
    assert (MANIFESTS_DIR / "poblacion_worldpop.tif").stat().st_size < 200_000


def test_committed_sample_has_realistic_gradients(store: Store, settings: Settings) -> None:
    for name in ("municipios", "poblacion"):
        load_source(store, read_manifest(MANIFESTS_DIR / f"{name}.toml"), settings=settings)
    cells = read_population(store).to_crs(METRIC_CRS)
    density = cells["population"] / (cells.area / 1e6)  # people per km²
    centres = cells.geometry.centroid
    to_utm = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    from_centre = centres.distance(shapely.Point(*to_utm.transform(*HISTORIC_CENTRE)))
    assert density[from_centre < 3_000].mean() > 3 * density[from_centre > 10_000].mean()
    volcano = shapely.Point(*to_utm.transform(*VOLCANO[:2]))
    slopes = centres.distance(volcano) < 3_000
    assert slopes.sum() > 20 and density[slopes].mean() < 0.25 * density.mean()
    north = centres.y > to_utm.transform(-89.2, 13.85)[1]
    assert north.sum() > 20 and density[north].mean() < 0.25 * density.mean()


def test_committed_sample_is_the_generators_output(tmp_path: Path) -> None:
    """The committed raster is what the sample's seed makes, and the same seed makes it again."""
    path = tmp_path / "poblacion.tif"
    rng = np.random.default_rng([DEFAULT_SEED, POPULATION_STREAM])
    write_population_raster(path, amss_boundaries(), rng)
    committed = MANIFESTS_DIR / "poblacion_worldpop.tif"
    with rasterio.open(path) as made, rasterio.open(committed) as kept:
        assert made.transform == kept.transform
        assert np.array_equal(made.read(1), kept.read(1))


def test_sample_grid_sums_exactly_at_any_size(census: dict[str, int]) -> None:
    """Pixels assigned by centre sum to the census, whatever the pixel size; the lake holds 0."""
    boundaries = gpd.read_file(REFERENCE_DIR / "geoboundaries_slv_adm2.geojson")
    codes = {"Soyapango": "0617", "Ilopango": "0607", "Cuscatancingo": "0604"}
    chosen = boundaries[boundaries["shapeName"].isin(list(codes))].copy()
    chosen["code"] = chosen["shapeName"].map(codes)
    chosen["population_2007"] = chosen["code"].map(census)
    counts = {}
    for pixel_deg in (0.0045, 0.0015):
        people, transform = population_grid(chosen, np.random.default_rng(1), pixel_deg=pixel_deg)
        rows, cols = np.indices(people.shape)
        lon, lat = transform.c + (cols + 0.5) * pixel_deg, transform.f - (rows + 0.5) * pixel_deg
        for code, polygon in zip(chosen["code"], chosen.geometry, strict=True):
            inside = shapely.contains_xy(polygon, lon, lat)
            assert people[inside].sum(dtype="float64") == census[code], (code, pixel_deg)
        assert (people[~np.isin(people, [NODATA])] % 1 == 0).all()  # whole people
        counts[pixel_deg] = int((people > 0).sum())
        lake_lon, lake_lat, half_width, half_height = LAKE_ILOPANGO
        lake = ((lon - lake_lon) / half_width) ** 2 + ((lat - lake_lat) / half_height) ** 2 <= 1
        assert lake.sum() >= 4 and (people[lake] == 0).all()  # Ilopango's extent reaches the lake
    assert counts[0.0015] > 6 * counts[0.0045]  # 9 times the pixels


# Density per urbanised hectare ---------------------------------------------------------------


def write_urban_zones(folder: Path) -> Path:
    zones = [
        ("Z1", "HAB-AD", shapely.box(X0, Y0, X0 + 1_000, Y0 + 2_000)),  # west: 200 ha
        ("Z2", "COM", shapely.box(X0 + 1_500, Y0, X0 + 2_500, Y0 + 1_000)),  # 50 ha west, 50 ha east
        ("Z3", "PE", shapely.box(X0 + 2_500, Y0, X0 + 5_000, Y0 + 2_000)),  # protection: not urbanised
        ("Z4", "EP", shapely.box(X0 + 1_000, Y0 + 1_000, X0 + 2_000, Y0 + 2_000)),  # green: not urbanised
        ("Z5", "HAB-MD", shapely.box(X0 + 500, Y0 + 1_500, X0 + 1_000, Y0 + 2_000)),  # inside Z1: once
    ]
    path = folder / "zonas_urbanas.gpkg"
    gpd.GeoDataFrame(
        {"ZONA_ID": [z[0] for z in zones], "COD_USO": [z[1] for z in zones], "VERSION": "ED-2017"},
        geometry=[z[2] for z in zones],
        crs=UTM,
    ).to_file(path)
    return path


def test_population_density_urbanised(amss: Store, settings: Settings, tmp_path: Path) -> None:
    fixtures.load(amss, "zoning", write_urban_zones(tmp_path), settings=settings)
    outcome = compute_indicators(amss, ["population_density_urbanised"], settings=settings)
    values = outcome.values.set_index("municipality_code")
    # West: 10,000 people / (200 ha of Z1 + 50 ha of Z2); east: 3,000 / 50 ha of Z2.
    assert values["value"].to_dict() == pytest.approx({"0001": 10_000 / 250, "0002": 3_000 / 50}, rel=1e-9)
    # the 2007 census over the plan of 2017 (the zones' version): dated by the later of the two
    assert (values["period"] == 2017).all() and (values["unit"] == "hab/ha").all()
    assert set(values["input_periods"]) == {'{"census":2007,"zoning":2017}'}


def test_population_density_urbanised_regrouped_and_without_urban_land(tmp_path: Path) -> None:
    zones = gpd.read_file(write_urban_zones(tmp_path)).to_crs("EPSG:4326").rename_geometry("geom")
    zones["land_use_class"] = ["habitacional", "comercio_servicios", "proteccion", "espacio_publico",
                               "habitacional"]  # fmt: skip
    merged = gpd.GeoDataFrame(
        {"code": ["M"], "population_2007": [13_000]},
        geometry=[shapely.box(X0, Y0, X0 + 5_000, Y0 + 2_000)],
        crs=UTM,
    ).rename_geometry("geom")
    value = population_density_urbanised(zoning=zones, municipalities=merged.to_crs("EPSG:4326"))
    assert value["value"].tolist() == pytest.approx([13_000 / 300])  # summed people over summed land
    open_land = zones[zones["land_use_class"].isin(["proteccion", "espacio_publico"])]
    empty = population_density_urbanised(zoning=open_land, municipalities=merged.to_crs("EPSG:4326"))
    assert empty.empty and list(empty.columns) == ["municipality_code", "period", "value"]


# Cells as points -----------------------------------------------------------------------------


def test_population_points() -> None:
    square = shapely.box(X0, Y0, X0 + 250, Y0 + 250)
    crescent = shapely.box(X0 + 1_000, Y0, X0 + 2_000, Y0 + 1_000).difference(
        shapely.box(X0 + 1_100, Y0 + 100, X0 + 2_000, Y0 + 900)
    )  # a C open to the east: its centroid lies in the opening, outside it
    assert not crescent.contains(crescent.centroid)
    cells = gpd.GeoDataFrame(
        {
            "cell_id": ["a", "b"],
            "population": [12, 3.5],
            "municipality_code": ["0001", "0001"],
            "period": 2007,
        },
        geometry=[square, crescent],
        crs=UTM,
        index=[7, 9],
    ).to_crs("EPSG:4326")
    points = population_points(cells)
    assert points.crs == METRIC_CRS and list(points.index) == [7, 9]
    assert list(points.columns) == ["cell_id", "population", "period", "municipality_code", "geometry"]
    assert points["population"].tolist() == [12.0, 3.5] and points["population"].dtype == float
    assert (points.geometry[7].x, points.geometry[7].y) == pytest.approx((X0 + 125, Y0 + 125), abs=1e-3)
    assert crescent.contains(points.geometry[9])
    assert math.isclose(points["population"].sum(), 15.5)
