"""Broken and implausible files: each case the load issue lists, on both stores. A refused file
raises LoadError with a message naming the problem and leaves the store exactly as it was; a
loaded one keeps only the rows within the catalogue's constraints, each other row reported.

The tiny AMSS (tests/fixtures.py): municipality 0001 is the 2 km × 2 km square at UTM (X0, Y0),
0002 the 3 km × 2 km square east of it; the fixture permits P1…P5 lie in them.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from etl import LoadResult, load_source, read_manifest
from layers import get_layer
from observatory.errors import LoadError
from observatory.settings import Settings
from observatory.store import LoadRun, Store
from observatory.store.geopackage import GeoPackageStore
from tests import fixtures
from tests.fixtures import PERMITS, UTM, X0, Y0


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused load must leave as it was."""

    layers: dict[str, pd.DataFrame]
    runs: list[LoadRun]
    reports: list[str]


def snapshot(store: Store, settings: Settings) -> Snapshot:
    layers = {name: store.read_layer(get_layer(name)) for name in ("municipalities", "zoning", "permits")}
    reports = sorted(p.name for p in (settings.data_dir / "reports").glob("*.csv"))
    return Snapshot(layers, store.load_runs(), reports)


def assert_unchanged(store: Store, settings: Settings, before: Snapshot, *, new_reports: int = 0) -> None:
    after = snapshot(store, settings)
    for name, frame in before.layers.items():
        pd.testing.assert_frame_equal(after.layers[name], frame)
    assert after.runs == before.runs
    assert len(after.reports) == len(before.reports) + new_reports


def rejected(result: LoadResult) -> dict[int, str]:
    report = pd.read_csv(result.run.report_file, dtype={"row": int}, keep_default_na=False)
    rows = report[report["outcome"] == "rejected"]
    return dict(zip(rows["row"], rows["reason"], strict=True))


def permit_ids(store: Store) -> list[str]:
    return sorted(store.read_layer(get_layer("permits"))["permit_id"])


def permit(pid: str, **changes: Any) -> tuple[Any, ...]:
    """A fixture permit row with some of its values changed (by column name)."""
    names = ["id", "kind", "use", "area", "investment", "submitted", "resolved", "x", "y"]
    row = dict(zip(names, next(p for p in PERMITS if p[0] == pid), strict=True))
    return tuple({**row, **changes}.values())


@pytest.fixture
def amss(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    """The two squares loaded, no permits yet."""
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    return store


@pytest.fixture
def with_permits(amss: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    """The two squares and the five fixture permits loaded."""
    fixtures.load(amss, "permits", sources["permits"], settings=settings)
    return amss


# --- files that cannot be read ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("permisos.csv", r"permisos\.csv: the file is empty \(no header row\)"),
        ("permisos.geojson", r"permisos\.geojson: cannot be read as geojson"),
    ],
)
def test_an_empty_file_is_refused(
    with_permits: Store, settings: Settings, tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / name).write_bytes(b"")
    before = snapshot(with_permits, settings)

    with pytest.raises(LoadError, match=message):
        fixtures.load(with_permits, "permits", tmp_path / name, settings=settings)

    assert_unchanged(with_permits, settings, before)


def test_a_column_named_row_is_an_ordinary_column(amss: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "permisos.csv"
    fixtures.permits_table().assign(_row=["9", "8", "7", "6", "5"]).to_csv(path, index=False)

    result = fixtures.load(amss, "permits", path, settings=settings)

    assert (result.run.rows_read, result.run.rows_loaded) == (5, 5)
    assert permit_ids(amss) == ["P1", "P2", "P3", "P4", "P5"]


# --- ragged and truncated CSV ----------------------------------------------------------------


def test_extra_and_missing_fields_are_rejected_not_shifted(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    path = fixtures.write_permits(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] += ",sobra"  # P1: 11 fields (pandas took the first for an index and shifted all columns)
    lines[3] = ",".join(lines[3].split(",")[:6])  # P3: 6 fields, the dates and coordinates missing
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = fixtures.load(amss, "permits", path, settings=settings)

    assert rejected(result) == {
        1: "row has 11 fields, the header has 10",
        3: "row has 6 fields, the header has 10",
    }
    permits = amss.read_layer(get_layer("permits")).set_index("permit_id")
    assert list(permits.index) == ["P2", "P4", "P5"]
    assert permits.loc["P2", "use_class"] == "comercio"
    assert permits.loc["P2", "investment_usd"] == 5000
    assert permits.loc["P2", "resolved"] == pd.Timestamp("2017-04-26")


def test_a_file_cut_in_the_middle_of_a_row_is_refused(
    with_permits: Store, settings: Settings, tmp_path: Path
) -> None:
    text = fixtures.write_permits(tmp_path, name="cortado.csv").read_text(encoding="utf-8")
    cut = text.index("P4") + 30  # inside P4's dates: 4 of its 10 fields written
    (tmp_path / "cortado.csv").write_text(text[:cut], encoding="utf-8")
    before = snapshot(with_permits, settings)

    with pytest.raises(
        LoadError,
        match=r"cortado\.csv: the last row \(row 4\) has 6 of 10 fields and the file does not end "
        r"with a line break: it was cut short; nothing was loaded",
    ):
        fixtures.load(with_permits, "permits", tmp_path / "cortado.csv", settings=settings)

    assert_unchanged(with_permits, settings, before)


def test_a_load_that_would_shrink_a_layer_needs_allow_shrink(
    with_permits: Store, settings: Settings, tmp_path: Path
) -> None:
    # Cut at a row boundary, the file looks whole: 2 of the 5 permits would remain (-60 %).
    path = fixtures.write_permits(tmp_path, PERMITS[:2], name="corto.csv")
    before = snapshot(with_permits, settings)

    with pytest.raises(
        LoadError,
        match=r"corto\.csv: loading it would shrink permits from 5 to 2 rows \(-60\.0%\), more than the "
        r"50% allowed \(OBSERVATORY_MAX_SHRINK\); if the file is complete, load it again with "
        r"--allow-shrink; no row was rejected",
    ):
        fixtures.load(with_permits, "permits", path, settings=settings)
    assert_unchanged(with_permits, settings, before, new_reports=1)  # the refusal's report

    lenient = settings.model_copy(update={"max_shrink": 0.6})
    assert fixtures.load(with_permits, "permits", path, settings=lenient).run.rows_loaded == 2
    assert permit_ids(with_permits) == ["P1", "P2"]

    path = fixtures.write_permits(tmp_path, PERMITS[:1], name="uno.csv")
    with pytest.raises(LoadError, match=r"from 2 to 1 rows \(-50\.0%\), more than the 0% allowed"):
        fixtures.load(with_permits, "permits", path, settings=settings.model_copy(update={"max_shrink": 0}))
    manifest = read_manifest(fixtures.write_manifest("permits", path))
    result = load_source(with_permits, manifest, settings=settings, allow_shrink=True)
    assert result.run.rows_loaded == 1 and permit_ids(with_permits) == ["P1"]


# --- values outside the catalogue's constraints ----------------------------------------------


def test_implausible_dates_and_permits_resolved_before_submitted(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    ahead = date.today().replace(year=date.today().year + 1)  # the permits' last plausible day
    rows = [
        permit("P1", submitted="0001-01-01"),
        permit("P2", submitted="1900-01-01"),
        permit("P3", resolved="2099-12-31"),
        permit("P4", resolved="9999-12-31"),
        permit("P5", resolved="2018-01-07"),  # submitted 2018-01-08
        permit("P1", id="P6", resolved="2017-01-02"),  # resolved the day it was submitted: fine
    ]
    path = fixtures.write_permits(tmp_path, rows)

    result = fixtures.load(amss, "permits", path, settings=settings)

    assert rejected(result) == {
        1: "submitted '0001-01-01' is outside 1900–2100",
        2: "submitted '1900-01-01' is before 1990-01-01",
        3: f"resolved '2099-12-31' is after {ahead.isoformat()}",
        4: "resolved '9999-12-31' is outside 1900–2100",
        5: "resolved '2018-01-07' is before submitted (2018-01-08)",
    }
    assert permit_ids(amss) == ["P6"]


def test_numbers_outside_their_declared_range(store: Store, settings: Settings, tmp_path: Path) -> None:
    # Municipalities: 1e30 people do not fit a whole number (it was stored as -2**63), nor -5 the
    # population's minimum of 0; with no row left the file is refused, listing both.
    path = tmp_path / "municipios.gpkg"
    gpd.GeoDataFrame(
        {"COD_MUN": ["0001", "0002"], "NOM_MUN": ["Oeste", "Este"], "DEPTO": "San Salvador",
         "POB_2007": ["1e30", "-5"]},
        geometry=[fixtures.WEST_SQUARE, fixtures.EAST_SQUARE], crs=UTM,
    ).to_file(path)  # fmt: skip
    with pytest.raises(LoadError, match=r"municipios\.gpkg: no row could be loaded: population_2007"):
        fixtures.load(store, "municipalities", path, settings=settings)
    reports = list((settings.data_dir / "reports").glob("*.csv"))
    reasons = pd.read_csv(reports[0]).set_index("row")["reason"].to_dict()
    assert reasons == {
        1: "population_2007 '1e30' is out of range for a whole number",
        2: "population_2007 '-5' is below 0",
    }
    assert store.read_layer(get_layer("municipalities")).empty and store.load_runs() == []

    # Permits: money may be 0 but not negative, a floor area must be above 0.
    fixtures.load(store, "municipalities", fixtures.write_municipalities(tmp_path), settings=settings)
    rows = [
        permit("P1", investment="-1e308"),
        permit("P2", investment=0),
        permit("P3", area=0),
        permit("P4", area="1e-9"),
        permit("P5", investment="-0.01"),
    ]
    result = fixtures.load(store, "permits", fixtures.write_permits(tmp_path, rows), settings=settings)

    assert rejected(result) == {
        1: "investment_usd '-1e+308' is below 0",
        3: "floor_area_m2 '0' is not above 0",
        5: "investment_usd '-0.01' is below 0",
    }
    permits = store.read_layer(get_layer("permits")).set_index("permit_id")
    assert permits["investment_usd"].fillna(-1).to_dict() == {"P2": 0.0, "P4": -1.0}
    assert permits.loc["P4", "floor_area_m2"] == 1e-9


def test_an_overlong_text_is_rejected_and_reported_in_short(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    # The 200 MB field, scaled to 2 MB: it was loaded and served as a 2 MB tile.
    table = fixtures.permits_table()
    table.loc[1, "estado"] = "a" * 2_000_000
    table.loc[2, "estado"] = "b" * 1_000  # exactly the default cap of 1,000 characters
    table.to_csv(tmp_path / "permisos.csv", index=False)

    result = fixtures.load(amss, "permits", tmp_path / "permisos.csv", settings=settings)

    assert rejected(result) == {2: "status 'aaaaaaaaaaaaaaaaaaaa…' has 2,000,000 characters (at most 1,000)"}
    assert permit_ids(amss) == ["P1", "P3", "P4", "P5"]
    assert Path(result.run.report_file).stat().st_size < 5_000  # the value is cut in the report too
    assert "… (2,000,000 characters)" in Path(result.run.report_file).read_text(encoding="utf-8")


# --- geometries ------------------------------------------------------------------------------


def test_xyz_and_xyzm_geometries_are_stored_2d(amss: Store, settings: Settings, tmp_path: Path) -> None:
    square = shapely.box(X0, Y0, X0 + 1_000, Y0 + 1_000)
    xyz = shapely.force_3d(square, 120.0)
    xyzm = shapely.from_wkt(
        "POLYGON ZM ((" + ", ".join(f"{x} {y} 5 7" for x, y in square.exterior.coords) + "))"
    )
    geoparquet = tmp_path / "zonas.parquet"
    gpd.GeoDataFrame(
        {"ZONA_ID": ["Z1", "Z2"], "COD_USO": ["COM", "IND"], "VERSION": "ED-2017"},
        geometry=[xyz, xyzm], crs=UTM,
    ).to_parquet(geoparquet)  # fmt: skip
    lon, lat = gpd.GeoSeries([shapely.Point(X0 + 500, Y0 + 500)], crs=UTM).to_crs(4326)[0].coords[0]
    geojson = tmp_path / "puntos.geojson"
    properties = dict(zip(fixtures.permits_table().columns[:8], (*PERMITS[0][:7], "aprobado"), strict=True))
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat, 9, 9]},
               "properties": properties}  # fmt: skip
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")

    zoning = fixtures.load(amss, "zoning", geoparquet, settings=settings)
    permits = fixtures.load(amss, "permits", geojson, settings=settings)

    assert zoning.run.rows_loaded == 2 and permits.run.rows_loaded == 1
    zones = amss.read_layer(get_layer("zoning")).set_index("zone_id")
    assert not shapely.has_z(zones.geometry.values).any() and not shapely.has_m(zones.geometry.values).any()
    areas = zones.geometry.to_crs(UTM).area / 1e6
    assert areas.to_dict() == pytest.approx({"Z1": 1.0, "Z2": 1.0}, rel=1e-6)
    stored = amss.read_layer(get_layer("permits")).geometry.values
    assert not shapely.has_z(stored).any() and not shapely.has_m(stored).any()


def test_a_hole_outside_its_shell_is_repaired_with_the_land_it_adds(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    # A 1 km² shell whose 0.04 km² "hole" lies beside it: read as is, 0.96 km²; made valid, the
    # hole becomes land of its own, 1.04 km² (+8.3 %). The report says so.
    shell = shapely.box(X0, Y0, X0 + 1_000, Y0 + 1_000)
    hole = shapely.box(X0 + 1_200, Y0, X0 + 1_400, Y0 + 200)
    broken = shapely.Polygon(shell.exterior.coords, [hole.exterior.coords])
    path = tmp_path / "zonas.gpkg"
    gpd.GeoDataFrame(
        {"ZONA_ID": ["Z1"], "COD_USO": ["COM"], "VERSION": "ED-2017"}, geometry=[broken], crs=UTM
    ).to_file(path)

    result = fixtures.load(amss, "zoning", path, settings=settings)

    report = pd.read_csv(result.run.report_file).set_index("row")
    assert report.loc[1, "outcome"] == "repaired"
    assert report.loc[1, "reason"] == (
        "invalid polygon made valid (Hole lies outside shell[264400 1515000]): area 0.9600 → 1.0400 km²"
    )
    assert result.run.rows_repaired == 1
    zone = amss.read_layer(get_layer("zoning")).geometry.to_crs(UTM)
    assert zone.area.sum() / 1e6 == pytest.approx(1.04, rel=1e-6)


# --- run records and housekeeping ------------------------------------------------------------


def test_a_run_that_fails_before_its_commit_leaves_no_report(
    with_permits: Store, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> list[str]:
        raise LoadError("the session failed before its commit")

    monkeypatch.setattr("etl.load.withdraw_indicators", crash)
    path = fixtures.write_permits(tmp_path, [permit("P1", id="Q1"), *PERMITS[1:]], name="otros.csv")
    before = snapshot(with_permits, settings)

    with pytest.raises(LoadError, match="failed before its commit"):
        fixtures.load(with_permits, "permits", path, settings=settings)

    assert_unchanged(with_permits, settings, before)  # no report for a run that never committed


def test_scratch_copies_of_dead_runs_are_removed_at_open(tmp_path: Path) -> None:
    finished = subprocess.Popen(["true"])  # its pid names no running process once it has ended
    finished.wait()
    path = tmp_path / "observatory.gpkg"
    left = [
        tmp_path / f".observatory.{finished.pid}.tmp.gpkg",
        tmp_path / f".observatory.{finished.pid}.tmp.gpkg-journal",
    ]
    alive = tmp_path / f".observatory.{os.getpid()}.tmp.gpkg"  # a session of this very process
    other = tmp_path / f".other.{finished.pid}.tmp.gpkg"  # another store's
    for file in [*left, alive, other]:
        file.write_bytes(b"x" * 10)

    GeoPackageStore(path)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])
