"""Loads: bad input gets a rejects entry or a clear error, and nothing already loaded is lost."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from layers import get_layer
from observatory.errors import LoadError, MissingInput
from observatory.indicators import compute_indicators
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import X0, Y0


def rejects_of(result_file: str) -> pd.DataFrame:
    return pd.read_csv(result_file, dtype={"row": int})


def permit_ids(store: Store) -> set[str]:
    return set(store.read_layer(get_layer("permits"))["permit_id"])


def test_loads_reproject_and_place_permits(loaded: Store) -> None:
    permits = loaded.read_layer(get_layer("permits"))
    assert dict(zip(permits["permit_id"], permits["municipality_code"], strict=True)) == {
        "P1": "0001", "P2": "0001", "P3": "0002", "P4": "0002", "P5": "0001",
    }  # fmt: skip
    # P1 was placed at UTM (X0 + 500, Y0 + 500) and written in EPSG:5460; stored in lon/lat.
    expected = gpd.GeoSeries([shapely.Point(X0 + 500, Y0 + 500)], crs=fixtures.UTM).to_crs(4326)[0]
    p1 = permits.set_index("permit_id").loc["P1", "geom"]
    assert p1.distance(expected) < 1e-7
    assert -90 < p1.x < -89 and 13 < p1.y < 14
    municipalities = loaded.read_layer(get_layer("municipalities")).set_index("code")
    assert municipalities.loc["0001", "area_km2"] == pytest.approx(4.0, rel=1e-6)
    assert municipalities.loc["0002", "geom"].geom_type == "MultiPolygon"
    assert municipalities["valid_to"].isna().all()  # optional columns the source lacks stay empty


def test_bad_rows_are_rejected_with_file_row_and_reason(
    store: Store, settings: Settings, sources: dict[str, Path], tmp_path: Path
) -> None:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    rows = [
        *fixtures.PERMITS[:2],
        ("P6", "permiso_construccion", "otros", 1, 1, "2017-01-02", "2017-01-03", None, None),
        (
            "P1",
            "permiso_construccion",
            "otros",
            1,
            1,
            "2017-01-02",
            "2017-01-03",
            X0 + 100,
            Y0 + 100,
        ),
        (
            "P7",
            "permiso_construccion",
            "otros",
            "mucho",
            1,
            "2017-01-02",
            "2017-01-03",
            X0 + 100,
            Y0 + 100,
        ),
        ("P8", "permiso_construccion", "otros", 1, 1, "ayer", "2017-01-03", X0 + 100, Y0 + 100),
        (
            "P9",
            "permiso_construccion",
            "otros",
            1,
            1,
            "2017-01-02",
            "2017-01-03",
            X0 + 9_000,
            Y0 + 100,
        ),
    ]
    path = fixtures.write_permits(tmp_path, rows)

    result = fixtures.load(store, "permits", path, settings=settings)

    assert permit_ids(store) == {"P1", "P2"}
    assert (result.run.rows_read, result.run.rows_loaded, result.run.rows_rejected) == (7, 2, 5)
    rejects = rejects_of(result.run.report_file).set_index("row")
    assert set(rejects["file"]) == {str(path)}
    assert rejects.loc[3, "reason"] == "no usable coordinates in columns 'x'/'y'"
    assert rejects.loc[4, "reason"] == "duplicate permit_id 'P1' (first at row 1)"
    assert rejects.loc[5, "reason"] == "floor_area_m2 'mucho' is not a number"
    assert rejects.loc[6, "reason"] == "submitted 'ayer' is not a date (YYYY-MM-DD)"
    assert rejects.loc[7, "reason"] == "outside every AMSS municipality"
    assert '"expediente": "P9"' in rejects.loc[7, "values"]


@pytest.mark.parametrize("driver", ["ESRI Shapefile", "GeoJSON"])
def test_zoning_loads_from_other_formats(
    store: Store, settings: Settings, sources: dict[str, Path], tmp_path: Path, driver: str
) -> None:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    suffix = {"ESRI Shapefile": ".shp", "GeoJSON": ".geojson"}[driver]
    path = tmp_path / f"zonas{suffix}"
    gpd.read_file(fixtures.write_zoning(tmp_path)).to_file(path, driver=driver)

    result = fixtures.load(store, "zoning", path, settings=settings)

    assert result.run.rows_loaded == 3
    zones = store.read_layer(get_layer("zoning")).set_index("zone_id")
    assert zones.loc["Z2", "land_use_class"] == "comercio_servicios"
    assert zones.loc["Z3", "geom"].bounds[0] == pytest.approx(-89.1728, abs=1e-3)  # UTM 265 000 m E


def test_invalid_polygons_are_repaired_or_rejected(
    store: Store, settings: Settings, sources: dict[str, Path], tmp_path: Path
) -> None:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 500, Y0 + 500), (X0 + 500, Y0), (X0, Y0 + 500)])
    flat = shapely.Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 200, Y0)])
    path = fixtures.write_zoning(
        tmp_path, extra=(("Z4", "EP", bowtie), ("Z5", "EP", flat), ("Z6", "XX", bowtie))
    )
    assert not bowtie.is_valid

    result = fixtures.load(store, "zoning", path, settings=settings)

    zones = store.read_layer(get_layer("zoning")).set_index("zone_id")
    assert list(zones.index) == ["Z1", "Z2", "Z3", "Z4"]
    assert zones.loc["Z4", "geom"].is_valid
    assert zones.loc["Z4", "land_use_class"] == "espacio_publico"
    assert zones.loc["Z1", "subclass"] == "alta densidad"
    report = rejects_of(result.run.report_file)
    rejected = report[report["outcome"] == "rejected"].set_index("row")["reason"]
    assert rejected.to_dict() == {
        5: "invalid polygon that cannot be repaired",
        6: "unknown land-use code 'XX'",
    }
    # The bow-tie's signed area is 0; made valid it is two 250 m × 250 m triangles (0.125 km²).
    repaired = report[report["outcome"] == "repaired"].set_index("row")["reason"]
    assert list(repaired.index) == [4, 6]
    assert (
        repaired[4]
        == "invalid polygon made valid (Self-intersection[263250 1515250]): area 0.0000 → 0.1250 km²"
    )
    assert (result.run.rows_read, result.run.rows_loaded, result.run.rows_repaired) == (6, 4, 2)
    assert result.run.rows_rejected == 2


def test_wrong_crs_fails_the_file_and_keeps_what_was_loaded(
    loaded: Store, settings: Settings, sources: dict[str, Path]
) -> None:
    before = loaded.read_layer(get_layer("permits"))
    runs_before = loaded.load_runs()
    other = sources["permits"].with_name("otros.csv")
    other.write_bytes(sources["permits"].read_bytes().replace(b"P1,", b"Q1,"))

    with pytest.raises(
        LoadError,
        match=r"otros\.csv: no feature lies in the AMSS; read as EPSG:4326, its features span "
        r"479597…483596 × 286663…287967, while the AMSS spans lon -89\.191…-89\.145, "
        r"lat 13\.694…13\.713; is that the right CRS",
    ):
        fixtures.load(loaded, "permits", other, settings=settings, source='crs = "EPSG:4326"')

    pd.testing.assert_frame_equal(loaded.read_layer(get_layer("permits")), before)
    assert loaded.load_runs() == runs_before


def test_missing_column_and_missing_file_are_clear_errors(
    store: Store, settings: Settings, sources: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "sin_columna.csv"
    fixtures.permits_table().drop(columns=["fecha_ingreso"]).to_csv(broken, index=False)
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    with pytest.raises(
        LoadError,
        match=r"sin_columna\.csv: missing column\(s\) 'fecha_ingreso'; the file has: expediente, "
        "tramite, uso, area_m2, inversion_usd, fecha_resolucion, estado, x, y",
    ):
        fixtures.load(store, "permits", broken, settings=settings)
    with pytest.raises(LoadError, match=r"nada\.csv: file not found"):
        fixtures.load(store, "permits", tmp_path / "nada.csv", settings=settings)
    assert store.read_layer(get_layer("permits")).empty


def test_permits_need_municipalities_first(
    store: Store, settings: Settings, sources: dict[str, Path]
) -> None:
    with pytest.raises(MissingInput, match="load municipalities before permits"):
        fixtures.load(store, "permits", sources["permits"], settings=settings)


def test_same_input_twice_changes_nothing(
    loaded: Store, settings: Settings, sources: dict[str, Path]
) -> None:
    before = {name: loaded.read_layer(get_layer(name)) for name in sources}
    runs_before = loaded.load_runs()

    results = [fixtures.load(loaded, name, path, settings=settings) for name, path in sources.items()]

    assert all(result.unchanged for result in results)
    assert loaded.load_runs() == runs_before
    for name, frame in before.items():
        pd.testing.assert_frame_equal(loaded.read_layer(get_layer(name)), frame)


def test_reloaded_municipalities_place_the_permits_again_in_the_same_session(
    loaded: Store, settings: Settings, sources: dict[str, Path], tmp_path: Path
) -> None:
    before = loaded.read_layer(get_layer("indicators"))
    renamed = gpd.read_file(sources["municipalities"])
    renamed["COD_MUN"] = ["0101", "0102"]
    path = tmp_path / "municipios_2.gpkg"
    renamed.to_file(path)

    result = fixtures.load(loaded, "municipalities", path, settings=settings)

    assert [run.layer for run in result.rederived] == ["permits", "zoning"]
    codes = loaded.read_layer(get_layer("permits")).set_index("permit_id")["municipality_code"]
    assert codes.to_dict() == {"P1": "0101", "P2": "0101", "P3": "0102", "P4": "0102", "P5": "0101"}
    # Values computed on the old boundaries are withdrawn, not served beside the new ones.
    assert set(result.withdrawn_indicators) == set(before["indicator_id"])
    assert loaded.read_layer(get_layer("indicators")).empty
    # The same permits file is already placed on the new boundaries: loading it again is a no-op.
    assert fixtures.load(loaded, "permits", sources["permits"], settings=settings).unchanged

    compute_indicators(loaded, settings=settings)
    after = loaded.read_layer(get_layer("indicators"))
    renamed_codes = {"0001": "0101", "0002": "0102"}
    expected = before.assign(municipality_code=before["municipality_code"].map(renamed_codes))
    key = ["indicator_id", "municipality_code", "period"]
    pd.testing.assert_series_equal(
        after.set_index(key).sort_index()["value"],
        expected.set_index(key).sort_index()["value"],
        check_index_type=False,
    )


def test_a_new_file_replaces_the_layer_and_is_recorded(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    path = fixtures.write_permits(tmp_path, fixtures.PERMITS[:3], name="permisos_2.csv")
    result = fixtures.load(loaded, "permits", path, settings=settings)
    assert not result.unchanged
    assert permit_ids(loaded) == {"P1", "P2", "P3"}
    runs = [run for run in loaded.load_runs() if run.layer == "permits"]
    assert len(runs) == 2 and runs[-1].source_file == str(path)
    assert runs[-1].rows_loaded == 3
