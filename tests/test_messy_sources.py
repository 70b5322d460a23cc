"""What an independent review of real-data loading found, each kept as a regression test."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from etl import load_source, read_manifest
from etl.report import Report
from layers import get_layer
from observatory.errors import LoadError
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.test_manifests import manifest

STATISTICS_FIELDS = 'municipality_code = "codigo"\nperiod = "anio"\nvariable = "variable"\nvalue = "valor"\n'


def load(store: Store, settings: Settings, folder: Path, toml: str) -> object:
    path = folder / "manifest.toml"
    path.write_text(toml, encoding="utf-8")
    return load_source(store, read_manifest(path), settings=settings)


@pytest.fixture
def amss(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    return store


def test_a_table_whose_every_row_is_ragged_is_refused_without_a_traceback(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    # Every data row ends with a comma: one field more than the header, so none can be read.
    (tmp_path / "tabla.csv").write_text(
        "codigo,anio,variable,valor\n0001,2007,poblacion,10000,\n0002,2007,poblacion,3000,\n",
        encoding="utf-8",
    )
    with pytest.raises(LoadError, match=r"tabla\.csv: no row could be loaded"):
        load(amss, settings, tmp_path, manifest("statistics", "tabla.csv", STATISTICS_FIELDS))
    assert amss.read_layer(get_layer("statistics")).empty


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        # E1: 1488432600000 ms is 2017-03-02 05:30 UTC, 1 March 23:30 in San Salvador (UTC−6).
        # E2: 1483228800000 ms is 2017-01-01 00:00 UTC, still 31 December 18:00 in San Salvador.
        ("", {"E1": "2017-03-02", "E2": "2017-01-01"}),
        ('timezone = "America/El_Salvador", ', {"E1": "2017-03-01", "E2": "2016-12-31"}),
    ],
)
def test_epoch_instants_are_dated_in_the_zone_the_manifest_names(
    amss: Store, settings: Settings, tmp_path: Path, timezone: str, expected: dict[str, str]
) -> None:
    x, y = fixtures.X0 + 500, fixtures.Y0 + 500
    table = pd.DataFrame(
        {"id": ["E1", "E2"], "tipo": "permiso_construccion", "ingreso": [1488432600000, 1483228800000],
         "x": x, "y": y}
    )  # fmt: skip
    table.to_csv(tmp_path / "eventos.csv", index=False)
    fields = (
        'permit_id = "id"\nkind = "tipo"\n'
        f'submitted = {{ source = "ingreso", {timezone}format = "epoch_ms" }}\n'
    )
    load(amss, settings, tmp_path, manifest("permits", "eventos.csv", fields, source='crs = "EPSG:32616"'))
    permits = amss.read_layer(get_layer("permits")).set_index("permit_id")
    assert permits["submitted"].dt.strftime("%Y-%m-%d").to_dict() == expected


def test_a_timezone_must_be_a_real_one(tmp_path: Path) -> None:
    (tmp_path / "manifest.toml").write_text(
        manifest("permits", "x.csv", 'submitted = { source = "f", format = "epoch_ms", timezone = "CST" }'),
        encoding="utf-8",
    )
    with pytest.raises(LoadError, match=r"unknown time zone 'CST' \(an IANA name"):
        read_manifest(tmp_path / "manifest.toml")


def test_a_shapefile_without_its_dbf_says_so(amss: Store, settings: Settings, tmp_path: Path) -> None:
    zones = gpd.read_file(fixtures.write_zoning(tmp_path))
    zones.to_file(tmp_path / "zonas.shp")
    (tmp_path / "zonas.dbf").unlink()
    fields = 'zone_id = "ZONA_ID"\nsource_code = "COD_USO"\n'
    with pytest.raises(LoadError, match=r"zonas\.shp: the \.dbf beside it is missing"):
        load(amss, settings, tmp_path, manifest("zoning", "zonas.shp", fields))


def test_polygons_read_in_the_wrong_crs_are_refused_saying_where_they_are(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    # The zones are in UTM 16N metres; declared as EPSG:4326 they would sit far off the globe's AMSS.
    zones = gpd.read_file(fixtures.write_zoning(tmp_path))
    zones.to_file(tmp_path / "zonas.geojson", driver="GeoJSON")
    text = (tmp_path / "zonas.geojson").read_text(encoding="utf-8").replace('"crs"', '"_crs"')
    (tmp_path / "zonas.geojson").write_text(text, encoding="utf-8")
    fields = 'zone_id = "ZONA_ID"\nsource_code = "COD_USO"\n'
    with pytest.raises(
        LoadError, match=r"zonas\.geojson: .*its features span 263000…268000 × 1\.515e\+06…1\.517e\+06"
    ):
        load(
            amss, settings, tmp_path, manifest("zoning", "zonas.geojson", fields, source='crs = "EPSG:4326"')
        )


def test_reasons_count_together_whatever_their_values() -> None:
    report = Report(Path("x.csv"))
    frame = pd.DataFrame({"a": [1, 2, 3]}, index=[1, 2, 3])
    report.reject(
        frame,
        pd.Series(
            ["code '0101' not found in hechos.csv (code)", "code '0102' not found in hechos.csv (code)",
             "duplicate permit_id 'P1' (first at row 12)"],
            index=frame.index,
        ),
    )  # fmt: skip
    assert report.reasons() == {
        "code '…' not found in hechos.csv (code)": 2,
        "duplicate permit_id '…' (first at row …)": 1,
    }


def statistics_source(folder: Path, name: str, source: str, rows: list[tuple[str, int, str, float]]) -> Path:
    """A statistics table and its manifest, every row credited to ``source``."""
    pd.DataFrame(rows, columns=["codigo", "anio", "variable", "valor"]).to_csv(
        folder / f"{name}.csv", index=False
    )
    toml = manifest("statistics", f"{name}.csv", STATISTICS_FIELDS + f'source = {{ value = "{source}" }}\n')
    path = folder / f"{name}.toml"
    path.write_text(toml, encoding="utf-8")
    return path


def test_statistics_from_several_sources_live_side_by_side(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    census = statistics_source(
        tmp_path, "censo", "censo", [("0001", 2007, "poblacion", 10_000), ("0002", 2007, "poblacion", 3_000)]
    )
    police = statistics_source(
        tmp_path, "pnc", "pnc", [("0001", 2017, "homicidios", 12), ("0002", 2017, "homicidios", 4)]
    )
    load_source(amss, read_manifest(census), settings=settings)
    load_source(amss, read_manifest(police), settings=settings)

    def values() -> dict[str, float]:
        rows = amss.read_layer(get_layer("statistics"))
        return dict(zip(rows["stat_id"], rows["value"], strict=True))

    assert values() == {
        "poblacion:0001:2007": 10_000, "poblacion:0002:2007": 3_000,
        "homicidios:0001:2017": 12, "homicidios:0002:2017": 4,
    }  # fmt: skip
    # The census again, unchanged, after the police file: nothing to do.
    assert load_source(amss, read_manifest(census), settings=settings).unchanged
    # A corrected police file replaces the police rows only; a row it no longer carries goes.
    police = statistics_source(tmp_path, "pnc", "pnc", [("0001", 2017, "homicidios", 13)])
    load_source(amss, read_manifest(police), settings=settings, allow_shrink=True)
    assert values() == {
        "poblacion:0001:2007": 10_000,
        "poblacion:0002:2007": 3_000,
        "homicidios:0001:2017": 13,
    }
