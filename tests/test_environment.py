"""Green cover from the land-cover raster, on the 6 × 3 grid of 1 km pixels over three squares of
``tests.test_hazards`` (0001 Oeste covers c0 ½, c1, c2 ½ of rows 0–1; 0002 Este c2 ½, c3, c4, c5 ½
of rows 0–1; 0003 Sur row 2, c0 ½ … c5 ½)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from etl import load_layer
from observatory.indicators import compute_indicators
from observatory.indicators.environment import green_area_per_inhabitant, green_cover_share
from observatory.rasters import raster_file, zonal_areas
from observatory.sample import DEFAULT_SEED, amss_boundaries
from observatory.sample.land_cover import write_land_cover
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.test_hazards import GRID, by_code, municipalities_frame, write_grid, write_municipalities

LAND_COVER = np.array(  # ESA WorldCover classes; 0 is nodata
    [
        [10, 20, 50, 0, 40, 30],
        [50, 30, 10, 80, 90, 10],
        [40, 40, 40, 10, 0, 50],
    ],
    dtype="uint8",
)


@pytest.fixture
def land_cover(tmp_path: Path) -> Path:
    return write_grid(tmp_path / "cover.tif", LAND_COVER, 0)


def test_green_cover_share_of_the_mapped_area(land_cover: Path) -> None:
    values = by_code(green_cover_share(municipalities=municipalities_frame(), land_cover=land_cover))
    # Oeste: trees ½ r0c0, shrubs r0c1, grass r1c1, trees ½ r1c2 = 3 of its 4 km², all mapped.
    # Este: grass ½ r0c5, trees ½ r1c2, trees ½ r1c5 = 1.5 km²; cropland (40), water (80) and
    # wetland (90) are not green; of its 6 km², r0c3 (1 km²) is nodata and left out: 1.5 / 5.
    # Sur: trees r2c3 = 1 km² of 5, less the nodata r2c4: 1 / 4.
    assert values == pytest.approx({"0001": 75, "0002": 30, "0003": 25})


def test_green_area_per_inhabitant(land_cover: Path) -> None:
    values = by_code(green_area_per_inhabitant(municipalities=municipalities_frame(), land_cover=land_cover))
    # 3 km² / 10,000, 1.5 km² / 3,000 and 1 km² / 4,000 inhabitants (2007 census).
    assert values == pytest.approx({"0001": 300, "0002": 500, "0003": 250})


def test_land_cover_loads_and_computes_on_both_geographies(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Classes are kept pixel for pixel; on 2024's M1 (0001 + 0002) the share is 4.5 km² green of 9
    mapped, not the mean of 75 % and 30 %, and green per inhabitant 4.5 km² / 13,000."""
    fixtures.load_municipalities_2024(
        store, write_municipalities(tmp_path), settings=settings,
        districts_of={"0001": ("M1", "Uno"), "0002": ("M1", "Uno"), "0003": ("M2", "Dos")},
    )  # fmt: skip
    result = load_layer(
        store, "land_cover", write_grid(tmp_path / "lc.tif", LAND_COVER, 0), settings=settings
    )

    assert (result.run.rows_read, result.run.rows_loaded) == (18, 16)
    assert store.load_runs()[-1] == result.run
    with rasterio.open(raster_file("land_cover", settings)) as stored:
        assert (stored.dtypes[0], stored.nodata, stored.transform) == ("uint8", 0, GRID)
        assert stored.read(1).tolist() == LAND_COVER.tolist()

    values = compute_indicators(store, ["green_cover_share", "green_area_per_inhabitant"], settings=settings)
    found = values.values.set_index(["indicator_id", "geography", "municipality_code", "period"])["value"]
    assert found[("green_cover_share", "municipios_2007", "0002", 2021)] == pytest.approx(30)
    assert found[("green_cover_share", "municipios_2024", "M1", 2021)] == pytest.approx(50)
    assert found[("green_area_per_inhabitant", "municipios_2024", "M1", 2021)] == pytest.approx(
        4.5e6 / 13_000
    )
    assert found[("green_area_per_inhabitant", "municipios_2024", "M2", 2021)] == pytest.approx(250)


def test_sample_land_cover(tmp_path: Path) -> None:
    """WorldCover classes in lon/lat: built-up around San Salvador's centre, trees toward the
    volcano, cropland in the north, water in Lake Ilopango; the size follows the resolution."""
    municipalities = amss_boundaries()
    path = write_land_cover(tmp_path, municipalities, DEFAULT_SEED)
    coarse = write_land_cover(tmp_path / "coarse", municipalities, DEFAULT_SEED, resolution_m=60)
    with rasterio.open(path) as dataset, rasterio.open(coarse) as half:
        assert (dataset.crs.to_epsg(), dataset.dtypes[0], dataset.nodata) == (4326, "uint8", 0)
        assert dataset.res[0] == pytest.approx(30 / 111_320)
        assert half.width == pytest.approx(dataset.width / 2, abs=1)
        assert set(np.unique(dataset.read(1))) <= {10, 20, 30, 40, 50, 60, 80, 90}
        assert dataset.profile["tiled"] and dataset.compression.value == "DEFLATE"
    assert path.stat().st_size < 1_000_000

    def share(classes: tuple[int, ...]) -> pd.Series:
        areas = zonal_areas(path, municipalities, id_column="name", where=lambda v: np.isin(v, classes))
        return (areas["where_area_m2"] / areas["valid_area_m2"]).set_axis(areas["name"])

    built, trees, crops = share((50,)), share((10,)), share((40,))
    assert built["San Salvador"] > 0.5 and built["Nejapa"] < 0.1
    assert trees["Santa Tecla"] > 0.2 and trees["Soyapango"] < 0.05
    assert crops["Nejapa"] > 0.5 and crops["San Salvador"] < 0.05
