"""Raster sources: the AMSS window of a GeoTIFF, its run record, and zonal statistics over it.

The sources are small GeoTIFFs over the tiny AMSS of ``tests.fixtures`` (two squares in UTM 16N,
west 2 km × 2 km and east 3 km × 2 km) whose pixel value is the column index, so every expected
number below is worked out by hand.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import shapely
from rasterio import Affine

from etl import LoadResult, load_layer, load_source, read_manifest
from etl.plan import load_order
from layers import get_layer
from observatory.errors import LoadError, MissingInput
from observatory.rasters import STATISTICS, raster_file, values_at, zonal_areas, zonal_statistics
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import X0, Y0

PIXEL = 100
LEFT, TOP = X0 - 20_000, Y0 + 10_000
"""A 50 km × 20 km source (500 × 200 pixels) around the 5 km × 2 km AMSS, ten times as wide."""
AMSS_COL, AMSS_ROW = 200, 80
"""The AMSS's first column and row in the source: (X0 - LEFT) / 100 and (TOP - (Y0 + 2000)) / 100."""
PAD = 3


def north_up(left: float, top: float, width: float, height: float) -> Affine:
    """``rasterio.transform.from_origin`` without its deprecated ``*`` (a warning under pytest)."""
    return Affine(width, 0, left, 0, -height, top)


def write_tiff(
    path: Path,
    values: np.ndarray,
    *,
    crs: str | None = fixtures.UTM,
    transform: Affine | None = None,
    nodata: float | None = -1,
) -> Path:
    height, width = values.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=1, dtype=values.dtype.name,
        crs=crs, transform=transform or north_up(LEFT, TOP, PIXEL, PIXEL), nodata=nodata,
    ) as output:  # fmt: skip
        output.write(values, 1)
    return path


def columns(height: int = 200, width: int = 500) -> np.ndarray:
    """Each pixel's value is its column index."""
    return np.tile(np.arange(width, dtype="float32"), (height, 1))


def load_tiff(store: Store, path: Path, settings: Settings, source: str = "") -> LoadResult:
    manifest = path.with_suffix(".toml")
    manifest.write_text(f'layer = "elevation"\n[source]\npath = "{path.name}"\n{source}', encoding="utf-8")
    return load_source(store, read_manifest(manifest), settings=settings)


@pytest.fixture
def amss(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    return store


def test_reads_only_the_amss_window(amss: Store, settings: Settings, tmp_path: Path) -> None:
    values = columns()
    values[AMSS_ROW : AMSS_ROW + 10, AMSS_COL : AMSS_COL + 10] = -1  # 100 missing pixels in the west
    result = load_tiff(amss, write_tiff(tmp_path / "dem.tif", values), settings)

    with rasterio.open(raster_file("elevation", settings)) as stored:
        assert (stored.width, stored.height) == (50 + 2 * PAD, 20 + 2 * PAD)  # not 500 × 200
        assert stored.transform == north_up(X0 - PAD * PIXEL, Y0 + 2_000 + PAD * PIXEL, PIXEL, PIXEL)
        assert stored.crs.to_epsg() == 32616
        assert (stored.dtypes[0], stored.nodata, stored.compression.value) == ("float32", -9999, "DEFLATE")
        assert stored.profile["tiled"]
        window = stored.read(1)
    assert window[PAD, PAD:-PAD].tolist() == [-9999] * 10 + list(range(AMSS_COL + 10, AMSS_COL + 50))
    assert window[0, 0] == AMSS_COL - PAD

    run = result.run
    assert not result.unchanged
    assert (run.rows_read, run.rows_loaded, run.rows_rejected) == (56 * 26, 56 * 26 - 100, 0)
    assert run.source_sha256 and run.manifest_sha256 and run.report_file == ""
    assert amss.load_runs()[-1] == run


def test_zonal_statistics_per_municipality(amss: Store, settings: Settings, tmp_path: Path) -> None:
    values = columns()
    values[AMSS_ROW : AMSS_ROW + 10, AMSS_COL : AMSS_COL + 10] = -1
    load_tiff(amss, write_tiff(tmp_path / "dem.tif", values), settings)
    zones = amss.read_layer(get_layer("municipalities"))  # in lon/lat, as stored

    stats = zonal_statistics(raster_file("elevation", settings), zones, id_column="code").set_index("code")

    # West: columns 200..219, 20 rows, less the 10 × 10 block of columns 200..209 that is missing.
    west_sum = 20 * sum(range(200, 220)) - 10 * sum(range(200, 210))
    # Whole pixels (the squares follow pixel edges), up to the lon/lat round trip of the zones.
    assert stats.loc["0001", "count"] == pytest.approx(400 - 100)
    assert stats.loc["0001", "sum"] == pytest.approx(west_sum)
    assert stats.loc["0001", "mean"] == pytest.approx(west_sum / 300)
    # East: columns 220..249, 20 rows, all valid.
    assert stats.loc["0002", "count"] == pytest.approx(600)
    assert stats.loc["0002", "sum"] == pytest.approx(20 * sum(range(220, 250)))
    assert stats.loc["0002", "mean"] == pytest.approx(234.5)
    # Zones the raster does not cover have no data, not zeros.
    far = zones.iloc[:1].assign(code="far", geom=zones.iloc[:1].translate(xoff=5).values)
    nothing = zonal_statistics(raster_file("elevation", settings), far, id_column="code")
    assert nothing.loc[0, "count"] == 0 and np.isnan(nothing.loc[0, "sum"])


def test_exact_coverage_splits_a_pixel_between_two_zones(tmp_path: Path) -> None:
    """A 3 × 3 raster of 1 m pixels valued 1…9 (row by row), pixel (1, 1) missing; zone L is
    x 0…1.5 and zone R x 1.5…3, so each covers half of the middle column."""
    values = np.arange(1, 10, dtype="float32").reshape(3, 3)
    values[1, 1] = -1
    path = write_tiff(tmp_path / "nine.tif", values, transform=north_up(0, 3, 1, 1))
    zones = gpd.GeoDataFrame(
        {"zone": ["L", "R", "off"]},
        geometry=[shapely.box(0, 0, 1.5, 3), shapely.box(1.5, 0, 3, 3), shapely.box(10, 10, 11, 11)],
        crs=fixtures.UTM,
    )

    stats = zonal_statistics(path, zones, id_column="zone", stats=STATISTICS).set_index("zone")

    # L: column 0 whole (1, 4, 7) and half of column 1 (2, 8; 5 is missing).
    assert stats.loc["L", "count"] == pytest.approx(3 + 0.5 * 2)
    assert stats.loc["L", "sum"] == pytest.approx(1 + 4 + 7 + 0.5 * (2 + 8))
    assert stats.loc["L", "mean"] == pytest.approx(17 / 4)
    # R: half of column 1 and column 2 whole (3, 6, 9).
    assert stats.loc["R", "sum"] == pytest.approx(0.5 * (2 + 8) + 3 + 6 + 9)
    assert (stats.loc["R", "min"], stats.loc["R", "max"]) == (2, 9)
    # A zone off the raster: no data, not zero.
    assert stats.loc["off", "count"] == 0 and stats.loc[["off"], ["mean", "sum", "min", "max"]].isna().all(
        axis=None
    )

    areas = zonal_areas(path, zones, id_column="zone", where=lambda v: v >= 8).set_index("zone")
    # L covers 4.5 m² of the raster, 4 of them valid; 8 is met on half of pixel (2, 1).
    assert areas.loc["L"].tolist() == pytest.approx([4.5, 4.0, 0.5])
    # R: ½ of 8 and all of 9.
    assert areas.loc["R"].tolist() == pytest.approx([4.5, 4.0, 1.5])
    assert areas.loc["off"].tolist() == [0, 0, 0]


def test_pixel_areas_of_a_lon_lat_raster_are_ellipsoidal(tmp_path: Path) -> None:
    """0.001° pixels at lat 13.698…13.7: each row's area from the closed form of an ellipsoidal
    quadrangle (WGS84), not from a flat 0.001² × a constant."""
    degree = 0.001
    path = write_tiff(
        tmp_path / "lonlat.tif", np.ones((3, 3), dtype="float32"), crs="EPSG:4326",
        transform=north_up(-89.2, 13.7, degree, degree),
    )  # fmt: skip
    zone = gpd.GeoDataFrame(
        {"zone": ["z"]}, geometry=[shapely.box(-89.2, 13.698, -89.2 + 1.5 * degree, 13.7)], crs="EPSG:4326"
    )
    a, f = 6_378_137.0, 1 / 298.257223563
    e = np.sqrt(f * (2 - f))
    b = a * (1 - f)

    def q(latitude: float) -> float:
        s = np.sin(np.radians(latitude))
        return s / (1 - e**2 * s**2) + np.log((1 + e * s) / (1 - e * s)) / (2 * e)

    two_rows = b**2 * np.radians(degree) / 2 * (q(13.7) - q(13.698))  # one column, both rows
    area = zonal_areas(path, zone, id_column="zone", where=lambda v: v == 1).loc[0, "where_area_m2"]
    assert area == pytest.approx(1.5 * two_rows, rel=1e-6)
    assert two_rows / 2 == pytest.approx(108.1 * 110.6, rel=0.002)  # about 108 m × 111 m a pixel


def test_values_at_points(tmp_path: Path) -> None:
    values = np.arange(1, 10, dtype="float32").reshape(3, 3)
    values[1, 1] = -1
    path = write_tiff(tmp_path / "nine.tif", values, transform=north_up(0, 3, 1, 1))
    points = gpd.GeoSeries(
        [
            shapely.Point(0.5, 2.5),
            shapely.Point(1.5, 1.5),
            shapely.Point(2.9, 0.1),
            shapely.Point(5, 5),
            None,
        ],
        crs=fixtures.UTM,
    )
    found = values_at(path, points.to_crs("EPSG:4326"))
    assert found[[0, 2]].tolist() == [1, 9]
    assert np.isnan(found[[1, 3, 4]]).all()  # nodata, off the raster, no geometry


def test_lon_lat_raster(amss: Store, settings: Settings, tmp_path: Path) -> None:
    """0.001° pixels; at lat 13.7° one covers 108.2 m × 110.6 m = 11,968 m² (geodesic area)."""
    degree = 0.001
    west, south, east, north = -89.19146, 13.69438, -89.14508, 13.71286  # the AMSS (fixtures)
    path = write_tiff(
        tmp_path / "dem_lonlat.tif", columns(600, 600), crs="EPSG:4326",
        transform=north_up(-89.5, 14.0, degree, degree),
    )  # fmt: skip
    result = load_tiff(amss, path, settings)

    with rasterio.open(raster_file("elevation", settings)) as stored:
        assert stored.crs.to_epsg() == 4326
        left, bottom, right, top = stored.bounds
        pixels = stored.width * stored.height
    margins = (west - left, south - bottom, right - east, top - north)  # in pixels, each side
    assert all(PAD - 1 <= margin / degree <= PAD + 1 for margin in margins), margins
    assert result.run.rows_read == pixels < 60 * 30  # the AMSS is 46.4 × 18.5 pixels
    zones = amss.read_layer(get_layer("municipalities"))
    stats = zonal_statistics(raster_file("elevation", settings), zones, id_column="code").set_index("code")
    assert stats.loc["0001", "count"] == pytest.approx(4e6 / 11_968, rel=0.01)
    assert stats.loc["0002", "count"] == pytest.approx(6e6 / 11_968, rel=0.01)
    areas = zonal_areas(raster_file("elevation", settings), zones, id_column="code", where=lambda v: v > 0)
    assert areas["where_area_m2"].tolist() == pytest.approx([4e6, 6e6], rel=0.002)  # ground, not UTM
    # The mean column is the column of the square's centre (pixel c spans c…c+1 from lon -89.5).
    lon, _ = pyproj.Transformer.from_crs(fixtures.UTM, "EPSG:4326", always_xy=True).transform(
        X0 + 1_000, Y0 + 1_000
    )
    assert stats.loc["0001", "mean"] == pytest.approx((lon + 89.5) / degree - 0.5, abs=0.5)


def test_crs_from_the_manifest_when_the_file_has_none(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    path = write_tiff(tmp_path / "no_crs.tif", columns(), crs=None)
    with pytest.raises(LoadError, match=r"no_crs\.tif: the file declares no CRS; set source\.crs"):
        load_tiff(amss, path, settings)
    assert load_tiff(amss, path, settings, 'crs = "EPSG:32616"\n').run.rows_loaded == 56 * 26


def test_nodata_from_the_manifest_when_the_file_has_none(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    values = columns()
    values[AMSS_ROW, AMSS_COL : AMSS_COL + 5] = -5
    path = write_tiff(tmp_path / "no_nodata.tif", values, nodata=None)
    with pytest.raises(LoadError, match=r"no_nodata\.tif: .*declare source\.nodata"):
        load_tiff(amss, path, settings)
    assert load_tiff(amss, path, settings, "nodata = -5\n").run.rows_loaded == 56 * 26 - 5


def test_a_raster_elsewhere_is_refused_with_its_bounds(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    """A raster over France (lon 2…3, lat 48…49)."""
    path = write_tiff(
        tmp_path / "paris.tif", columns(100, 100), crs="EPSG:4326", transform=north_up(2, 49, 0.01, 0.01)
    )
    with pytest.raises(LoadError) as error:
        load_tiff(amss, path, settings)
    message = str(error.value)
    assert "paris.tif: the raster does not overlap the AMSS" in message
    assert "x 2…3, y 48…49 in EPSG:4326" in message
    assert "the AMSS spans x -89.19" in message
    assert not raster_file("elevation", settings).exists()
    assert [run.layer for run in amss.load_runs()] == ["municipalities"]


def test_loading_twice_changes_nothing(
    amss: Store, settings: Settings, sources: dict[str, Path], tmp_path: Path
) -> None:
    path = write_tiff(tmp_path / "dem.tif", columns())
    first = load_tiff(amss, path, settings)
    second = load_tiff(amss, path, settings)
    assert second.unchanged and second.run == first.run
    assert [run.layer for run in amss.load_runs()] == ["municipalities", "elevation"]

    # New boundaries move the window: the same raster is cut again.
    fixtures.load(amss, "municipalities", sources["municipalities"], settings=settings, extra="#")
    third = load_tiff(amss, path, settings)
    assert not third.unchanged
    assert [run.layer for run in amss.load_runs()][-1] == "elevation"


def test_boundaries_first(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = write_tiff(tmp_path / "dem.tif", columns())
    with pytest.raises(MissingInput, match="load municipalities before elevation"):
        load_layer(store, "elevation", path, settings=settings)


def test_dry_run_writes_nothing(amss: Store, settings: Settings, tmp_path: Path) -> None:
    path = write_tiff(tmp_path / "dem.tif", columns())
    result = load_layer(amss, "elevation", path, settings=settings, dry_run=True)
    assert result.dry_run and result.run.rows_loaded == 56 * 26
    assert not raster_file("elevation", settings).parent.exists()
    assert [run.layer for run in amss.load_runs()] == ["municipalities"]


def test_sources_refused(amss: Store, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no band 2; the file has 1"):
        load_tiff(amss, write_tiff(tmp_path / "dem.tif", columns()), settings, "band = 2\n")
    values = columns()
    values[AMSS_ROW, AMSS_COL] = -9999  # elevation keeps -9999 for missing pixels
    with pytest.raises(LoadError, match="valid pixels equal -9999"):
        load_tiff(amss, write_tiff(tmp_path / "dem.tif", values), settings)
    south_up = Affine(PIXEL, 0, LEFT, 0, PIXEL, TOP - 20_000)
    with pytest.raises(LoadError, match="not a north-up grid"):
        load_tiff(amss, write_tiff(tmp_path / "dem.tif", columns(), transform=south_up), settings)
    assert [run.layer for run in amss.load_runs()] == ["municipalities"]


def test_manifests_of_raster_layers(tmp_path: Path) -> None:
    municipalities = read_manifest(fixtures.write_manifest("municipalities", tmp_path / "m.gpkg"))
    elevation = tmp_path / "elevation.toml"
    elevation.write_text('layer = "elevation"\n[source]\npath = "dem.tif"\nband = 2\n', encoding="utf-8")
    assert [m.layer for m in load_order([read_manifest(elevation), municipalities])] == [
        "municipalities",
        "elevation",
    ]
    for text, problem in (
        ('layer = "elevation"\n[source]\npath = "dem.gpkg"\n', "its source must be a GeoTIFF"),
        ('layer = "elevation"\n[source]\npath = "dem.tif"\n[fields]\nz = "Z"\n', "takes no fields"),
        ('layer = "permits"\n[source]\npath = "p.tif"\n', "a GeoTIFF feeds a raster layer, or"),
        ('layer = "zoning"\n[source]\npath = "zones.gpkg"\nnodata = 0\n', "are for GeoTIFF sources"),
    ):
        elevation.write_text(text, encoding="utf-8")
        with pytest.raises(LoadError, match=problem):
            read_manifest(elevation)
