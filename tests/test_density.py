"""The density theme's built-up density and housing permit density, computed by hand."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from observatory.indicators.density import built_up_density, housing_permit_density
from observatory.indicators.registry import REGISTRY
from tests.test_environment import LAND_COVER
from tests.test_hazards import by_code, municipalities_frame, write_grid


def test_built_up_density_divides_the_census_by_the_built_up_pixels(tmp_path: Path) -> None:
    land_cover = write_grid(tmp_path / "cover.tif", LAND_COVER, 0)
    values = built_up_density(municipalities=municipalities_frame(), land_cover=land_cover)
    # Class 50: Oeste ½ r0c2 + ½ r1c0 = 1 km², Este ½ r0c2 = 0.5 km², Sur ½ r2c5 = 0.5 km².
    assert by_code(values) == pytest.approx({"0001": 10_000, "0002": 6_000, "0003": 8_000})
    assert set(values["period"]) == {2021}  # the land cover's year


def test_built_up_density_is_missing_without_built_up_land(tmp_path: Path) -> None:
    land_cover = write_grid(tmp_path / "cover.tif", np.where(LAND_COVER == 50, 10, LAND_COVER), 0)
    assert built_up_density(municipalities=municipalities_frame(), land_cover=land_cover).empty


def test_housing_permit_density_counts_approved_housing_permits_per_km2_by_year_of_resolution() -> None:
    municipalities = municipalities_frame().assign(official_area_km2=[8.0, np.nan, np.nan])
    permits = gpd.GeoDataFrame(
        [
            ("0001", "permiso_construccion", "aprobado", "habitacional", "2017-02-01", "2017-03-01"),
            ("0001", "permiso_construccion", "aprobado", "habitacional", "2017-12-20", "2018-01-05"),
            ("0001", "permiso_construccion", "denegado", "habitacional", "2017-02-01", "2017-03-01"),
            ("0001", "permiso_construccion", "aprobado", "comercio", "2017-02-01", "2017-03-01"),
            ("0002", "calificacion_lugar", "aprobado", "habitacional", "2017-02-01", "2017-03-01"),
            ("0002", "permiso_construccion", "aprobado", "habitacional", "2017-02-01", "2017-04-01"),
            ("0002", "permiso_construccion", "aprobado", "habitacional", "2018-02-01", None),
            # 2019: the office resolved a site ruling and denied a permit, granted none: no value.
            ("0001", "calificacion_lugar", "aprobado", "habitacional", "2019-01-07", "2019-02-01"),
            ("0002", "permiso_construccion", "denegado", "habitacional", "2019-01-07", "2019-02-01"),
        ],
        columns=["municipality_code", "kind", "status", "use_class", "submitted", "resolved"],
    ).astype({"submitted": "datetime64[ns]", "resolved": "datetime64[ns]"})
    values = housing_permit_density(permits=permits, municipalities=municipalities)
    got = {(r.municipality_code, r.period): r.value for r in values.itertuples()}
    # 0001: 8 km² official (not its 4 km² polygon); 0002: 6 km² measured; 0003 has no permit (a true 0).
    # The rejected, commercial, site-ruling and unresolved files do not count; the permit submitted
    # in 2017 and resolved in 2018 counts in 2018.
    assert got == pytest.approx(
        {("0001", 2017): 1 / 8, ("0001", 2018): 1 / 8, ("0002", 2017): 1 / 6,
         ("0002", 2018): 0, ("0003", 2017): 0, ("0003", 2018): 0}
    )  # fmt: skip
    assert values["n"].tolist() == [1, 1, 1, 0, 0, 0]


def test_the_density_theme_has_four_indicators() -> None:
    assert len([i for i in REGISTRY.values() if i.theme == "density"]) >= 4


PARTNER_SDG = {
    "transit_stop_access_500m": "11.2.1",
    "public_space_access_400m": "11.7.1",
    "population_density_urbanised": "11.3.1",
    "built_up_density": "11.3.1",
    "flood_exposed_population_100y": "11.5.1",
    "green_cover_share": "11.7",
}


@pytest.mark.parametrize(("indicator_id", "target"), PARTNER_SDG.items())
def test_sheets_the_partner_matches_carry_their_sdg_target(indicator_id: str, target: str) -> None:
    assert REGISTRY[indicator_id].sheet()["sdg_target"] == target


def test_a_sheet_iso_code_where_one_fits() -> None:
    assert REGISTRY["green_area_per_inhabitant"].sheet()["iso37120"] == "19.1"
    assert REGISTRY["permits_count"].sheet()["iso37120"] is None
