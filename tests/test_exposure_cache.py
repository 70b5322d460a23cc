"""The risk indicators' exposure measured once per compute run, and zonal areas summed in runs of
pixels, on the hand-made grid and cells of tests/test_hazards.py (its docstring draws them)::

    cell  population  municipality  pixels (flood depth m / landslide class)
    A     100         0001          r0c1 (0.5 / 4)
    B      80         0001          ½ r1c1 (0.7 / 3), ½ r1c2 (0.4 / 4)
    C      50         0002          r1c3 (3.0 / 5)
    D      30         0002          r0c3 (nodata / nodata)
    E      20         0003          0.4 of r2c1 (0.0 / 1), 0.4 of r2c2 (nodata / 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from etl import load_layer
from observatory import rasters
from observatory.indicators import compute_indicators, risk
from observatory.indicators.memo import BoundedMemo
from observatory.indicators.risk import exposed_shares, flooded
from observatory.rasters import zonal_areas
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import UTM, X0, Y0
from tests.test_hazards import FLOOD, LANDSLIDE, ND, population_frame, write_grid, write_municipalities

EXPOSURE = [
    "flood_exposed_population_100y",
    "flood_exposed_population_share_100y",
    "landslide_high_population",
    "landslide_high_population_share",
]
AREAS = ("area_m2", "valid_area_m2", "where_area_m2")
FLOODED_SHARES = [0.0, 0.5, 1.0, 0.0, 0.0]
"""A's pixel is exactly 0.5 m (not deeper), half of B is 0.7 m, C is 3 m, D nodata, E dry."""


@pytest.fixture(autouse=True)
def measured(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The rasters the exposure measures (calls of zonal_areas), in order; the cache starts empty."""
    monkeypatch.setattr(risk, "_shares", BoundedMemo(risk.CACHED_SHARES))
    calls: list[Path] = []

    def counting(raster_path: Path, zones: gpd.GeoDataFrame, **options: Any) -> Any:
        calls.append(raster_path)
        return zonal_areas(raster_path, zones, **options)

    monkeypatch.setattr(risk, "zonal_areas", counting)
    return calls


@pytest.fixture
def flood(tmp_path: Path) -> Path:
    return write_grid(tmp_path / "flood.tif", FLOOD, ND)


def test_a_compute_run_measures_each_raster_once(
    store: Store, settings: Settings, tmp_path: Path, measured: list[Path]
) -> None:
    """Four indicators on two geographies ask for the shares eight times: two measurements, one per
    raster; a reloaded raster is measured again, the other one is not."""
    fixtures.load_municipalities_2024(
        store, write_municipalities(tmp_path), settings=settings,
        districts_of={"0001": ("M1", "Uno"), "0002": ("M1", "Uno"), "0003": ("M2", "Dos")},
    )  # fmt: skip
    population_frame().drop(columns="municipality_code").to_file(tmp_path / "celdas.gpkg")
    load_layer(store, "population", tmp_path / "celdas.gpkg", settings=settings)
    load_layer(store, "flood_depth_100y", write_grid(tmp_path / "f.tif", FLOOD, ND), settings=settings)
    load_layer(
        store, "landslide_susceptibility", write_grid(tmp_path / "l.tif", LANDSLIDE, 0), settings=settings
    )

    def values() -> dict[tuple[str, str, str], float]:
        frame = compute_indicators(store, EXPOSURE, settings=settings).values
        keys = zip(frame["indicator_id"], frame["geography"], frame["municipality_code"], strict=True)
        return dict(zip(keys, frame["value"], strict=True))

    first = values()
    assert [path.stem for path in measured] == ["flood_depth_100y", "landslide_susceptibility"]
    # the shares served from the cache to the 2024 geography are regrouped by its codes:
    # M1 = 0001 + 0002, (40 + 50) exposed of (180 + 80) people, not the 14 values averaged
    assert first[("flood_exposed_population_100y", "municipios_2007", "0001")] == pytest.approx(40)
    assert first[("flood_exposed_population_100y", "municipios_2024", "M1")] == pytest.approx(90)
    assert first[("flood_exposed_population_share_100y", "municipios_2024", "M1")] == pytest.approx(
        100 * 90 / 260
    )
    # landslides: A (class 4) 100 + half of B 40 + C (class 5) 50
    assert first[("landslide_high_population", "municipios_2024", "M1")] == pytest.approx(190)
    assert first[("landslide_high_population_share", "municipios_2024", "M2")] == 0

    dry = np.where(FLOOD == ND, ND, 0.0).astype("float32")
    load_layer(store, "flood_depth_100y", write_grid(tmp_path / "dry.tif", dry, ND), settings=settings)
    second = values()
    assert [path.stem for path in measured] == [
        "flood_depth_100y",
        "landslide_susceptibility",
        "flood_depth_100y",
    ]
    assert second[("flood_exposed_population_100y", "municipios_2007", "0001")] == 0
    assert second[("flood_exposed_population_100y", "municipios_2024", "M1")] == 0
    assert second[("landslide_high_population", "municipios_2024", "M1")] == pytest.approx(190)


def test_other_cells_are_measured_not_served_from_the_cache(flood: Path, measured: list[Path]) -> None:
    cells = population_frame()
    assert exposed_shares(cells, flood, flooded).tolist() == pytest.approx(FLOODED_SHARES)
    assert exposed_shares(cells.copy(), flood, flooded).tolist() == pytest.approx(FLOODED_SHARES)
    assert len(measured) == 1  # an equal frame, by content
    # C and A swapped in place: same rows, other geometries
    moved = cells.set_geometry(gpd.GeoSeries(cells.geometry.to_numpy()[[2, 1, 0, 3, 4]], crs=cells.crs))
    assert exposed_shares(moved, flood, flooded).tolist() == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.0])
    assert exposed_shares(cells.iloc[[2]], flood, flooded).tolist() == pytest.approx([1.0])
    assert len(measured) == 3


def test_another_condition_or_raster_is_measured_again(
    tmp_path: Path, flood: Path, measured: list[Path]
) -> None:
    cells = population_frame()
    exposed_shares(cells, flood, flooded)
    # 0.5 m or more: A's pixel (exactly 0.5 m) now counts; B's 0.4 m half still does not
    at_least_half = exposed_shares(cells, flood, lambda depth: depth >= 0.5)
    assert at_least_half.tolist() == pytest.approx([1.0, 0.5, 1.0, 0.0, 0.0])
    deeper = FLOOD.copy()
    deeper[2, 1:3] = 1.0  # E's two pixels (r2c2 was nodata)
    other = write_grid(tmp_path / "deeper.tif", deeper, ND)
    assert exposed_shares(cells, other, flooded).tolist() == pytest.approx([0.0, 0.5, 1.0, 0.0, 1.0])
    assert len(measured) == 3


def test_shares_are_read_only_and_the_cache_is_bounded(flood: Path, measured: list[Path]) -> None:
    cells = population_frame()
    shares = exposed_shares(cells, flood, flooded)
    with pytest.raises(ValueError, match="read-only"):
        shares[0] = 1.0
    for threshold in range(risk.CACHED_SHARES):
        exposed_shares(cells, flood, lambda depth, limit=threshold: depth > limit)
    assert len(risk._shares) == risk.CACHED_SHARES
    exposed_shares(cells, flood, flooded)  # the oldest, dropped: measured again
    assert len(measured) == risk.CACHED_SHARES + 2


@pytest.mark.parametrize("pixels_per_run", [1, 3, rasters.PIXELS_PER_RUN])
def test_zonal_areas_in_runs_of_pixels(
    flood: Path, pixels_per_run: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each zone gets its own areas however the zones are grouped into runs, zones without a
    geometry or off the raster included."""
    monkeypatch.setattr(rasters, "PIXELS_PER_RUN", pixels_per_run)
    cells = population_frame().to_crs(UTM)
    far = shapely.box(X0 + 50_000, Y0, X0 + 51_000, Y0 + 1_000)
    zones = gpd.GeoDataFrame(
        {"cell_id": [*cells["cell_id"][:2], "none", *cells["cell_id"][2:], "far"]},
        geometry=[*cells.geometry[:2], None, *cells.geometry[2:], far],
        crs=UTM,
    )
    areas = zonal_areas(flood, zones, id_column="cell_id", where=flooded)
    expected = pd.DataFrame(
        {
            "cell_id": ["A", "B", "none", "C", "D", "E", "far"],
            "area_m2": [1.0, 1.0, 0.0, 1.0, 1.0, 0.8, 0.0],
            "valid_area_m2": [1.0, 1.0, 0.0, 1.0, 0.0, 0.4, 0.0],
            "where_area_m2": [0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(areas, expected.assign(**{c: expected[c] * 1e6 for c in AREAS}), atol=1e-3)
