"""Source manifests: every input format and every manifest option, each proved by a small load
whose outcome (rows loaded, stored values, reasons in the report) is worked out by hand here.

The tiny AMSS of tests/fixtures.py is two squares drawn in UTM 16N: 0001 (X0…X0+2 km) and 0002
(X0+2 km…X0+5 km), both Y0…Y0+2 km. The zones and permits below are placed in them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyproj
import pytest
import shapely

from etl import LoadResult, load_source, read_manifest
from layers import get_layer
from observatory.errors import LoadError
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import UTM, X0, Y0

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"
TO_LONLAT = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
ZONING_FIELDS = 'zone_id = "ZONA_ID"\nsource_code = "COD_USO"\nplan_version = "VERSION"\n'
STATISTICS_FIELDS = 'municipality_code = "codigo"\nperiod = "anio"\nvariable = "variable"\nvalue = "valor"\n'
PLACED = {"P1": "0001", "P2": "0001", "P3": "0002", "P4": "0002", "P5": "0001"}
"""The municipality of each fixture permit."""
OUTSIDE_AMSS = shapely.box(X0, Y0 + 3_000, X0 + 1_000, Y0 + 4_000)
"""1 km north of the squares: in El Salvador, in no AMSS municipality."""


# --- helpers -------------------------------------------------------------------------------------


def manifest(layer: str, path: str, fields: str, *, source: str = "", top: str = "", tail: str = "") -> str:
    """A manifest: ``top`` options, [source] with ``path`` and ``source`` lines, [fields], ``tail``."""
    return f'layer = "{layer}"\n{top}\n[source]\npath = "{path}"\n{source}\n\n[fields]\n{fields}\n{tail}'


def load(store: Store, settings: Settings, folder: Path, toml: str, *, dry_run: bool = False) -> LoadResult:
    """Load through the manifest ``toml``, written as ``manifest.toml`` in ``folder``."""
    path = folder / "manifest.toml"
    path.write_text(toml, encoding="utf-8")
    return load_source(store, read_manifest(path), settings=settings, dry_run=dry_run)


def rejected(result: LoadResult) -> dict[int, str]:
    """Source row -> reason, for every row the run's report lists as rejected."""
    report = pd.read_csv(result.run.report_file, dtype={"row": int}, keep_default_na=False)
    rows = report[report["outcome"] == "rejected"]
    return dict(zip(rows["row"], rows["reason"], strict=True))


def stored(store: Store, layer: str) -> gpd.GeoDataFrame:
    """The layer as stored, indexed by its id."""
    catalogued = get_layer(layer)
    return store.read_layer(catalogued).set_index(catalogued.id)


def lonlat(x: float, y: float) -> tuple[float, float]:
    return TO_LONLAT.transform(x, y)


@pytest.fixture
def amss(store: Store, settings: Settings, sources: dict[str, Path]) -> Store:
    """The two squares loaded: every other layer is checked against them."""
    fixtures.load(store, "municipalities", sources["municipalities"], settings=settings)
    return store


def zones_frame() -> gpd.GeoDataFrame:
    """Z1 (HAB-AD) and Z2 (COM) halve the west square, Z3 (IND) is the east square; UTM 16N."""
    return gpd.GeoDataFrame(
        {"ZONA_ID": ["Z1", "Z2", "Z3"], "COD_USO": ["HAB-AD", "COM", "IND"], "VERSION": "ED-2017"},
        geometry=[
            shapely.box(X0, Y0, X0 + 1_000, Y0 + 2_000),
            shapely.box(X0 + 1_000, Y0, X0 + 2_000, Y0 + 2_000),
            fixtures.EAST_SQUARE,
        ],
        crs=UTM,
    )


def assert_three_zones(store: Store, *, version: str | None = "ED-2017") -> None:
    """The zones of zones_frame() as stored: the right rows, classes, values and places."""
    zones = stored(store, "zoning")
    assert sorted(zones.index) == ["Z1", "Z2", "Z3"]
    assert zones["land_use_class"].to_dict() == {
        "Z1": "habitacional", "Z2": "comercio_servicios", "Z3": "industria",
    }  # fmt: skip
    assert zones["plan_version"].to_list() == [version] * 3
    # Z3's extent in lon/lat, to 1 cm: swapped axes or a wrong CRS cannot pass.
    expected = gpd.GeoSeries([fixtures.EAST_SQUARE], crs=UTM).to_crs(4326)
    assert zones.loc["Z3", "geom"].bounds == pytest.approx(tuple(expected.total_bounds), abs=1e-7)
    areas = zones.geometry.to_crs(UTM).area / 1e6
    assert areas.to_dict() == pytest.approx({"Z1": 2.0, "Z2": 2.0, "Z3": 6.0}, rel=1e-6)
    assert not zones.geometry.has_z.any()


def permits_table() -> pd.DataFrame:
    """The fixture permits with lon/lat columns named Lat and Lon, in that order (a reader taking
    the first coordinate column as x would put every permit in the Pacific)."""
    table = fixtures.permits_table().drop(columns=["x", "y"])
    positions = [lonlat(permit[7], permit[8]) for permit in fixtures.PERMITS]
    table["Lat"] = [f"{lat:.9f}" for _, lat in positions]
    table["Lon"] = [f"{lon:.9f}" for lon, _ in positions]
    return table


def write_permits(folder: Path, **columns: list[str]) -> None:
    """permits_table() as permisos.csv, with some columns replaced."""
    permits_table().assign(**columns).to_csv(folder / "permisos.csv", index=False)


def permits_manifest(fields: str = "", *, source: str = "", tail: str = "") -> str:
    """The fixture mapping for permisos.csv, with the properties in ``fields`` declared anew."""
    redefined = {line.split(" =")[0] for line in fields.splitlines()}
    mapping = "".join(f'{p} = "{c}"\n' for p, c in fixtures.FIELDS["permits"].items() if p not in redefined)
    return manifest("permits", "permisos.csv", mapping + fields, source=source, tail=tail)


def assert_permits_placed(store: Store, placed: dict[str, str] = PLACED) -> None:
    permits = stored(store, "permits")
    assert permits["municipality_code"].to_dict() == placed
    p1 = permits.loc["P1", "geom"]
    assert (p1.x, p1.y) == pytest.approx(lonlat(X0 + 500, Y0 + 500), abs=1e-7)


def write_statistics(folder: Path, *rows: tuple[str, str, str, str]) -> None:
    """datos.csv with the columns of STATISTICS_FIELDS."""
    pd.DataFrame(rows, columns=["codigo", "anio", "variable", "valor"]).to_csv(
        folder / "datos.csv", index=False
    )


# --- formats -------------------------------------------------------------------------------------


def test_geojson(amss: Store, settings: Settings, tmp_path: Path) -> None:
    zones_frame().to_crs(4326).to_file(tmp_path / "zonas.geojson", driver="GeoJSON")

    result = load(amss, settings, tmp_path, manifest("zoning", "zonas.geojson", ZONING_FIELDS))

    assert (result.run.rows_read, result.run.rows_loaded, result.run.rows_rejected) == (3, 3, 0)
    assert_three_zones(amss)


def test_shapefile_with_prj_and_cpg(amss: Store, settings: Settings, tmp_path: Path) -> None:
    zones_frame().assign(VERSION="Versión Cuscatlán").to_file(tmp_path / "zonas.shp", encoding="UTF-8")
    assert (tmp_path / "zonas.prj").exists() and (tmp_path / "zonas.cpg").read_text() == "UTF-8"

    result = load(amss, settings, tmp_path, manifest("zoning", "zonas.shp", ZONING_FIELDS))

    assert result.run.rows_loaded == 3
    assert_three_zones(amss, version="Versión Cuscatlán")


def test_shapefile_without_prj_needs_source_crs(amss: Store, settings: Settings, tmp_path: Path) -> None:
    zones_frame().to_file(tmp_path / "zonas.shp")
    (tmp_path / "zonas.prj").unlink()

    with pytest.raises(LoadError) as error:
        load(amss, settings, tmp_path, manifest("zoning", "zonas.shp", ZONING_FIELDS))
    assert (
        str(error.value) == f"{tmp_path / 'zonas.shp'}: the file declares no CRS (no .prj?); set source.crs"
    )
    assert stored(amss, "zoning").empty

    toml = manifest("zoning", "zonas.shp", ZONING_FIELDS, source='crs = "EPSG:32616"')
    assert load(amss, settings, tmp_path, toml).run.rows_loaded == 3
    assert_three_zones(amss)


MUNICIPALITY_NAMES = {"0001": "Antiguo Cuscatlán", "0002": "Ñuñoa de San Martín"}


def write_municipalities_shapefile(folder: Path, encoding: str) -> Path:
    """The two squares, named with accents, as a Shapefile in ``encoding`` without its .cpg."""
    path = folder / "municipios.shp"
    gpd.GeoDataFrame(
        {"COD_MUN": list(MUNICIPALITY_NAMES), "NOM_MUN": list(MUNICIPALITY_NAMES.values())},
        geometry=[fixtures.WEST_SQUARE, fixtures.EAST_SQUARE],
        crs=UTM,
    ).to_file(path, encoding=encoding)
    path.with_suffix(".cpg").unlink()
    return path


def test_shapefile_without_cpg_in_utf8(store: Store, settings: Settings, tmp_path: Path) -> None:
    # GDAL reads a DBF without .cpg as Latin-1: UTF-8 text would come out as "CuscatlÃ¡n".
    write_municipalities_shapefile(tmp_path, "UTF-8")
    toml = manifest("municipalities", "municipios.shp", 'code = "COD_MUN"\nname = "NOM_MUN"\n')

    assert load(store, settings, tmp_path, toml).run.rows_loaded == 2
    assert stored(store, "municipalities")["name"].to_dict() == MUNICIPALITY_NAMES


@pytest.mark.parametrize(
    "encoding",
    [
        "latin-1",
        "ISO-8859-1",
        "cp1252",
    ],
)
def test_shapefile_without_cpg_in_latin1(
    store: Store, settings: Settings, tmp_path: Path, encoding: str
) -> None:
    # A Latin-1 DBF whose header (language driver byte 29) claims DOS code page 850, as old exporters
    # wrote it: read by that claim "á" is "ß". Only source.encoding reads it right.
    dbf = write_municipalities_shapefile(tmp_path, "ISO-8859-1").with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    assert b"Cuscatl\xe1n" in data
    data[29] = 0x02
    dbf.write_bytes(bytes(data))
    fields = 'code = "COD_MUN"\nname = "NOM_MUN"\n'
    toml = manifest("municipalities", "municipios.shp", fields, source=f'encoding = "{encoding}"')

    assert load(store, settings, tmp_path, toml).run.rows_loaded == 2
    assert stored(store, "municipalities")["name"].to_dict() == MUNICIPALITY_NAMES


def test_geopackage_layer(amss: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "plan.gpkg"
    zones_frame().assign(ZONA_ID=["L1", "L2", "L3"], COD_USO="EP").to_file(path, layer="leyenda")
    zones_frame().to_file(path, layer="zonas")
    assert gpd.list_layers(path)["name"].to_list() == ["leyenda", "zonas"]  # the decoy comes first

    toml = manifest("zoning", "plan.gpkg", ZONING_FIELDS, source='layer = "zonas"')

    assert load(amss, settings, tmp_path, toml).run.rows_loaded == 3
    assert_three_zones(amss)


def test_kml_3d_coordinates_come_out_2d(amss: Store, settings: Settings, tmp_path: Path) -> None:
    placemarks = []
    for zone, code, _, polygon in zones_frame().to_crs(4326).itertuples(index=False):
        ring = " ".join(f"{lon:.10f},{lat:.10f},650" for lon, lat in polygon.exterior.coords)
        placemarks.append(
            f"<Placemark><name>{zone}</name><description>{code}</description><Polygon><outerBoundaryIs>"
            f"<LinearRing><coordinates>{ring}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
        )
    (tmp_path / "zonas.kml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document><name>zonas</name>{''.join(placemarks)}</Document></kml>",
        encoding="utf-8",
    )
    fields = 'zone_id = "name"\nsource_code = "description"\nplan_version = { value = "ED-2017" }\n'

    assert load(amss, settings, tmp_path, manifest("zoning", "zonas.kml", fields)).run.rows_loaded == 3
    assert_three_zones(amss)  # which checks that no stored geometry has a z


def test_flatgeobuf(amss: Store, settings: Settings, tmp_path: Path) -> None:
    zones_frame().to_file(tmp_path / "zonas.fgb", driver="FlatGeobuf")

    assert load(amss, settings, tmp_path, manifest("zoning", "zonas.fgb", ZONING_FIELDS)).run.rows_loaded == 3
    assert_three_zones(amss)


def test_geoparquet(amss: Store, settings: Settings, tmp_path: Path) -> None:
    zones_frame().to_parquet(tmp_path / "zonas.parquet")

    assert (
        load(amss, settings, tmp_path, manifest("zoning", "zonas.parquet", ZONING_FIELDS)).run.rows_loaded
        == 3
    )
    assert_three_zones(amss)


def test_csv_lon_lat_found_by_name(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_permits(tmp_path)  # Lat before Lon, no source.x/y, no source.crs: EPSG:4326 assumed

    result = load(amss, settings, tmp_path, permits_manifest())

    assert (result.run.rows_read, result.run.rows_loaded) == (5, 5)
    assert_permits_placed(amss)


def test_csv_projected_coordinates_need_a_crs(amss: Store, settings: Settings, tmp_path: Path) -> None:
    # x/y could be in any projection: no CRS is assumed for them (EPSG:4326 is, for lon/lat only).
    fixtures.permits_table().to_csv(tmp_path / "permisos.csv", index=False)

    with pytest.raises(LoadError) as error:
        load(amss, settings, tmp_path, permits_manifest())

    assert (
        str(error.value)
        == f"{tmp_path / 'permisos.csv'}: set source.crs, the CRS of the coordinates in 'x'/'y'"
    )


def test_csv_semicolons_and_decimal_commas(amss: Store, settings: Settings, tmp_path: Path) -> None:
    table = fixtures.permits_table().drop(columns=["x", "y"])
    table["este"] = [f"{permit[7]:.2f}".replace(".", ",") for permit in fixtures.PERMITS]
    table["norte"] = [f"{permit[8]:.2f}".replace(".", ",") for permit in fixtures.PERMITS]
    table.loc[2, "norte"] = "n/d"
    table.to_csv(tmp_path / "permisos.csv", index=False, sep=";")
    assert "263500,00;1515500,00" in (tmp_path / "permisos.csv").read_text()

    result = load(amss, settings, tmp_path, permits_manifest(source='delimiter = ";"\ncrs = "EPSG:32616"'))

    assert (result.run.rows_read, result.run.rows_loaded) == (5, 4)
    assert rejected(result) == {3: "no usable coordinates in columns 'este'/'norte'"}
    assert_permits_placed(amss, {k: v for k, v in PLACED.items() if k != "P3"})


def test_rows_read_counts_a_last_row_without_coordinates(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    write_permits(tmp_path, Lat=[*permits_table()["Lat"][:4], ""])

    result = load(amss, settings, tmp_path, permits_manifest())

    assert rejected(result) == {5: "no usable coordinates in columns 'Lon'/'Lat'"}
    assert (result.run.rows_read, result.run.rows_loaded, result.run.rows_rejected) == (5, 4, 1)


def test_excel_sheet_header_row_and_skip_rule(amss: Store, settings: Settings, tmp_path: Path) -> None:
    data = pd.DataFrame(
        [["Oeste", "0001", 2007, "poblacion_total", 10_000],
         ["Este", "0002", 2007, "poblacion_total", 3_000],
         ["TOTAL AMSS", "", 2007, "poblacion_total", 13_000],
         ["Este", "0002", 2008, "poblacion_total", 3_100]],
        columns=["Municipio", "Código", "Año", "Variable", "Valor"],
    )  # fmt: skip
    with pd.ExcelWriter(tmp_path / "estadisticas.xlsx", engine="openpyxl") as workbook:
        pd.DataFrame({"nota": ["Fuente: DIGESTYC"]}).to_excel(workbook, sheet_name="Notas", index=False)
        data.to_excel(workbook, sheet_name="Datos", index=False, startrow=2)  # the header on row 3
        workbook.sheets["Datos"]["A1"] = "Estadísticas municipales"
        workbook.sheets["Datos"]["A2"] = "Censo 2007"
    source = 'sheet = "Datos"\nheader_row = 3\nskip = [{ column = "municipio", pattern = "^TOTAL" }]'
    fields = 'municipality_code = "código"\nperiod = "año"\nvariable = "variable"\nvalue = "valor"\n'

    result = load(
        amss, settings, tmp_path, manifest("statistics", "estadisticas.xlsx", fields, source=source)
    )

    assert (result.run.rows_read, result.run.rows_loaded, result.run.rows_rejected) == (4, 3, 1)
    assert rejected(result) == {3: "skipped by rule: municipio matches '^TOTAL'"}
    statistics = stored(amss, "statistics")
    assert statistics["value"].to_dict() == {
        "poblacion_total:0001:2007": 10_000.0,
        "poblacion_total:0002:2007": 3_000.0,
        "poblacion_total:0002:2008": 3_100.0,
    }
    assert statistics["period"].to_list() == [2007, 2007, 2008]
    # A table without geometry: each row carries its municipality's outline (0002: 6 km²).
    areas = statistics.geometry.to_crs(UTM).area / 1e6
    assert areas.to_list() == pytest.approx([4.0, 6.0, 6.0], rel=1e-6)


# --- column mapping ------------------------------------------------------------------------------


def test_columns_are_matched_whatever_their_case(amss: Store, settings: Settings, tmp_path: Path) -> None:
    zones_frame().rename(columns={"COD_USO": "Cod_Uso"}).to_file(tmp_path / "zonas.gpkg")
    fields = 'zone_id = "zona_id"\nsource_code = "COD_USO"\nplan_version = "Version"\n'

    assert load(amss, settings, tmp_path, manifest("zoning", "zonas.gpkg", fields)).run.rows_loaded == 3
    assert_three_zones(amss)


def test_constants(amss: Store, settings: Settings, tmp_path: Path) -> None:
    # The file has no year, unit or source: the manifest gives them, a number and texts.
    pd.DataFrame(
        {"codigo": ["0001", "0002"], "variable": "poblacion_total", "valor": ["10000", "3000"]}
    ).to_csv(tmp_path / "datos.csv", index=False)
    fields = (
        'municipality_code = "codigo"\nvariable = "variable"\nvalue = "valor"\n'
        'period = { value = 2007 }\nunit = { value = "personas" }\nsource = { value = "DIGESTYC" }\n'
    )

    assert load(amss, settings, tmp_path, manifest("statistics", "datos.csv", fields)).run.rows_loaded == 2
    statistics = stored(amss, "statistics")
    assert list(statistics.index) == ["poblacion_total:0001:2007", "poblacion_total:0002:2007"]
    assert statistics[["period", "unit", "source"]].values.tolist() == [[2007, "personas", "DIGESTYC"]] * 2


@pytest.mark.parametrize("has_column", [False, True])
def test_optional_column(amss: Store, settings: Settings, tmp_path: Path, has_column: bool) -> None:
    (zones_frame() if has_column else zones_frame().drop(columns=["VERSION"])).to_file(
        tmp_path / "zonas.gpkg"
    )
    fields = 'zone_id = "ZONA_ID"\nsource_code = "COD_USO"\n'
    fields += 'plan_version = { source = "VERSION", optional = true }\n'

    assert load(amss, settings, tmp_path, manifest("zoning", "zonas.gpkg", fields)).run.rows_loaded == 3
    assert_three_zones(amss, version="ED-2017" if has_column else None)


def test_missing_columns_are_all_named_at_once(amss: Store, settings: Settings, tmp_path: Path) -> None:
    pd.DataFrame({"nombre": ["Oeste"], "anio": ["2007"], "valor": ["1"]}).to_csv(
        tmp_path / "datos.csv", index=False
    )
    toml = manifest(
        "statistics",
        "datos.csv",
        'period = "ANIO"\nvariable = "variable"\nvalue = "valor"\n'
        'unit = { source = "unidad", optional = true }\n',
        source='skip = [{ column = "nota", pattern = "^TOTAL" }]',
        tail='[names]\ncolumn = "municipio"\nfield = "municipality_code"\n',
    )
    runs = amss.load_runs()

    with pytest.raises(LoadError) as error:
        load(amss, settings, tmp_path, toml)

    # Every missing column (a field, a skip rule's, the names'), none that is optional, and what the
    # file has.
    assert str(error.value) == (
        f"{tmp_path / 'datos.csv'}: missing column(s) 'variable', 'nota', 'municipio'; "
        "the file has: nombre, anio, valor"
    )
    assert amss.load_runs() == runs and stored(amss, "statistics").empty


def test_a_field_that_is_not_a_property_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text(manifest("zoning", "zonas.gpkg", ZONING_FIELDS + 'colour = "COLOR"\n'))

    with pytest.raises(LoadError, match=r"manifest\.toml: field 'colour' is not a property of layer zoning"):
        read_manifest(path)


@pytest.mark.parametrize(
    ("coverage", "reason"),
    [
        ("years = [2023, 2015]", "2023 comes after 2015"),
        ('years = [2015, 2023]\ntypes = ["plan"]', "coverage.types: layer zoning has no type"),
        ("years = [2015]", "coverage.years"),
    ],
)
def test_a_coverage_that_cannot_hold_is_refused(tmp_path: Path, coverage: str, reason: str) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text(manifest("zoning", "zonas.gpkg", ZONING_FIELDS) + f"\n[coverage]\n{coverage}\n")

    with pytest.raises(LoadError, match=r"manifest\.toml") as refused:
        read_manifest(path)
    assert reason in str(refused.value)


# --- values --------------------------------------------------------------------------------------


def test_date_formats(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_permits(
        tmp_path,
        fecha_ingreso=["03/01/2017", "3/1/2017", "2017-01-03", "31/02/2017", "28/01/2017"],
        # 1484006400000 ms is 2017-01-10 00:00 UTC, 1484092799999 its last millisecond.
        fecha_resolucion=["1484006400000", "1484092799999", "1484006400000", "1484006400000", "ayer"],
    )
    toml = permits_manifest(
        'submitted = { source = "fecha_ingreso", format = "%d/%m/%Y" }\n'
        'resolved = { source = "fecha_resolucion", format = "epoch_ms" }\n'
    )

    result = load(amss, settings, tmp_path, toml)

    assert rejected(result) == {
        3: "submitted '2017-01-03' is not a date (%d/%m/%Y)",
        4: "submitted '31/02/2017' is not a date (%d/%m/%Y)",
        5: "resolved 'ayer' is not a date (milliseconds since 1970)",
    }
    permits = stored(amss, "permits")
    # 3 January (day first), not 1 March; 10 January, not rounded to the 11th.
    assert permits["submitted"].dt.date.to_dict() == {"P1": dt.date(2017, 1, 3), "P2": dt.date(2017, 1, 3)}
    assert permits["resolved"].dt.date.to_dict() == {"P1": dt.date(2017, 1, 10), "P2": dt.date(2017, 1, 10)}


def test_iso_dates_with_and_without_utc_offsets(amss: Store, settings: Settings, tmp_path: Path) -> None:
    # A date-time keeps its local date, whatever its offset, even in a column mixing offsets.
    dates = ["2017-01-10", "2017-01-10T23:30:00-06:00", "2017-01-11T01:00:00Z", "20170110", "10-01-2017"]
    write_permits(tmp_path, fecha_ingreso=dates)

    result = load(amss, settings, tmp_path, permits_manifest())

    assert rejected(result) == {5: "submitted '10-01-2017' is not a date (YYYY-MM-DD)"}
    assert stored(amss, "permits")["submitted"].dt.date.to_dict() == {
        "P1": dt.date(2017, 1, 10), "P2": dt.date(2017, 1, 10), "P3": dt.date(2017, 1, 11),
        "P4": dt.date(2017, 1, 10),
    }  # fmt: skip


def test_implausible_dates_are_rejected(amss: Store, settings: Settings, tmp_path: Path) -> None:
    # Any date outside 1900–2100 is no date at all; permits narrow it to 1990 on (layers/permits.toml).
    write_permits(
        tmp_path, fecha_ingreso=["1899-12-31", "1990-01-01", "2017-01-01", "2101-01-01", "1989-12-31"]
    )

    result = load(amss, settings, tmp_path, permits_manifest())

    assert rejected(result) == {
        1: "submitted '1899-12-31' is outside 1900–2100",
        4: "submitted '2101-01-01' is outside 1900–2100",
        5: "submitted '1989-12-31' is before 1990-01-01",
    }
    submitted = stored(amss, "permits")["submitted"].dt.date.to_dict()
    assert submitted == {"P2": dt.date(1990, 1, 1), "P3": dt.date(2017, 1, 1)}


NUMBER_CASES = {
    # Nothing declared: a thousands comma is neither dropped nor taken for a decimal point.
    # Floor areas must be above 0 (layers/permits.toml): a negative one parses, and is then rejected.
    "plain": ("", ["1250.50", "1,250.50", "$ 100", "", "-3"], [1250.5, None],
              {2: "'1,250.50' is not a number", 3: "'$ 100' is not a number", 5: "'-3' is not above 0"}),
    # Group characters only between groups of three digits: the other convention is a reject, not 1.2505.
    "group_comma": ('group_char = ","', ["1,250.50", "1,234,567", "12", "3.5", "1.250,50"],
                    [1250.5, 1234567.0, 12.0, 3.5], {5: "'1.250,50' is not a number"}),
    "decimal_comma": ('decimal_char = ",", group_char = "."',
                      ["1.250,50", "3,5", "1.234.567", "12", "1,250.50"],
                      [1250.5, 3.5, 1234567.0, 12.0], {5: "'1,250.50' is not a number"}),
    # A decimal-comma column without a group character has no "." at all: "1.500" is not 1.5.
    "decimal_comma_alone": ('decimal_char = ","', ["3,5", "1.500", "-0,25", "7", ""],
                            [3.5, 7.0, None], {2: "'1.500' is not a number", 3: "'-0.25' is not above 0"}),
    "not_bare": ('bare_number = false, group_char = ","',
                 ["$ 1,250.50", "12 %", "USD 300", "-4 m²", "12,5 %"],
                 [1250.5, 12.0, 300.0], {4: "'-4' is not above 0", 5: "'12,5 %' is not a number"}),
    # What surrounds the number goes, whatever its letters; a comma inside it stays, and fails.
    "not_bare_alone": ("bare_number = false", ["12.5 %", "12,5 %", "pesos 300", "USD -4", ""],
                       [12.5, 300.0, None], {2: "'12,5 %' is not a number", 4: "'-4' is not above 0"}),
    "not_finite": ("", ["1e400", "-1e400", "inf", "1e3", "nan"], [1000.0],
                   {1: "'1e400' is not a finite number", 2: "'-1e400' is not a finite number",
                    3: "'inf' is not a finite number", 5: "'nan' is not a number"}),
}  # fmt: skip
"""floor_area_m2 options -> the five permits' texts, the values stored (P1…P5 but the rejected),
and the rejected rows' reasons."""


@pytest.mark.parametrize("case", list(NUMBER_CASES))
def test_number_formats(amss: Store, settings: Settings, tmp_path: Path, case: str) -> None:
    options, texts, expected, reasons = NUMBER_CASES[case]
    write_permits(tmp_path, area_m2=texts)
    spec = ", ".join(['source = "area_m2"', *([options] if options else [])])

    result = load(amss, settings, tmp_path, permits_manifest(f"floor_area_m2 = {{ {spec} }}\n"))

    assert rejected(result) == {row: f"floor_area_m2 {reason}" for row, reason in reasons.items()}
    areas = stored(amss, "permits")["floor_area_m2"]
    assert [None if pd.isna(area) else area for area in areas] == expected


def test_whole_numbers(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_statistics(
        tmp_path,
        ("0001", "2007", "a", "1"),
        ("0001", "2007.5", "b", "1"),
        ("0001", "2008.0", "c", "1"),
        ("0001", "9223372036854775808", "d", "1"),  # 2**63: one past the largest int64
        ("0001", "1e19", "e", "1"),
    )

    result = load(amss, settings, tmp_path, manifest("statistics", "datos.csv", STATISTICS_FIELDS))

    assert rejected(result) == {
        2: "period '2007.5' is not a whole number",
        4: "period '9223372036854775808' is out of range for a whole number",
        5: "period '1e19' is out of range for a whole number",
    }
    # Ids are built from the whole numbers, not from a float spelling ("a:0001:2007.0").
    assert stored(amss, "statistics")["period"].to_dict() == {"a:0001:2007": 2007, "c:0001:2008": 2008}


def test_value_mapping(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_permits(
        tmp_path, tramite=["Permiso", " Permiso ", "Calificación", "Licencia", "permiso_construccion"]
    )
    toml = permits_manifest(
        'kind = { source = "tramite", values = { "Permiso" = "permiso_construccion", '
        '"Calificación" = "calificacion_lugar" } }\n'
    )

    result = load(amss, settings, tmp_path, toml)

    # An unlisted value is a reject, even one that is already a value of ours: never a guess.
    assert rejected(result) == {
        4: "kind 'Licencia' is not in the manifest's value mapping",
        5: "kind 'permiso_construccion' is not in the manifest's value mapping",
    }
    assert stored(amss, "permits")["kind"].to_dict() == {
        "P1": "permiso_construccion", "P2": "permiso_construccion", "P3": "calificacion_lugar",
    }  # fmt: skip


def test_extract(store: Store, settings: Settings, tmp_path: Path) -> None:
    gpd.GeoDataFrame(
        {"COD": ["SV0001", "0003", "SV0002"], "NOM": ["Oeste", "Sin prefijo", "Este"]},
        geometry=[fixtures.WEST_SQUARE, OUTSIDE_AMSS, fixtures.EAST_SQUARE],
        crs=UTM,
    ).to_file(tmp_path / "municipios.gpkg")
    fields = 'code = { source = "COD", extract = \'SV(\\d{4})\' }\nname = "NOM"\n'

    result = load(store, settings, tmp_path, manifest("municipalities", "municipios.gpkg", fields))

    assert rejected(result) == {2: "code '0003' does not match 'SV(\\\\d{4})'"}
    municipalities = stored(store, "municipalities")
    assert municipalities["name"].to_dict() == {"0001": "Oeste", "0002": "Este"}
    assert municipalities["area_km2"].to_dict() == pytest.approx({"0001": 4.0, "0002": 6.0}, rel=1e-6)


def test_filter(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_permits(tmp_path)  # P4 is the one calificacion_lugar
    toml = permits_manifest(tail='[filter]\nfield = "kind"\nvalues = ["permiso_construccion"]\n')

    result = load(amss, settings, tmp_path, toml)

    assert rejected(result) == {4: "kind 'calificacion_lugar' not in the filter"}
    assert sorted(stored(amss, "permits").index) == ["P1", "P2", "P3", "P5"]


def test_nul_byte_in_text(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_permits(tmp_path, estado=["aprobado", "apro\x00bado", "aprobado", "aprobado", "aprobado"])
    assert b"apro\x00bado" in (tmp_path / "permisos.csv").read_bytes()

    result = load(amss, settings, tmp_path, permits_manifest())

    assert rejected(result) == {2: "status 'apro\\x00bado' contains a NUL character"}
    assert sorted(stored(amss, "permits").index) == ["P1", "P3", "P4", "P5"]


# --- names table and joins -----------------------------------------------------------------------

NAMES = '[names]\ncolumn = "municipio"\nfield = "municipality_code"\n'
NAMED_FIELDS = 'period = "anio"\nvariable = "variable"\nvalue = "valor"\n'


def test_names_table(store: Store, settings: Settings, sources: dict[str, Path], tmp_path: Path) -> None:
    # The two squares coded as Soyapango (0617) and Santa Tecla (0511), named in the default table.
    gpd.read_file(sources["municipalities"]).assign(COD_MUN=["0617", "0511"]).to_file(
        tmp_path / "municipios.gpkg"
    )
    fixtures.load(store, "municipalities", tmp_path / "municipios.gpkg", settings=settings)
    names = ["SOYAPANGO", "  soyapango ", "Nueva San Salvador", "santa  TECLA", "Soya pango", "San Salvador"]
    years = ["2007", "2008", "2007", "2008", "2007", "2007"]
    pd.DataFrame({"municipio": names, "anio": years, "variable": "v", "valor": "1"}).to_csv(
        tmp_path / "datos.csv", index=False
    )

    result = load(store, settings, tmp_path, manifest("statistics", "datos.csv", NAMED_FIELDS, tail=NAMES))

    assert rejected(result) == {
        5: "name 'Soya pango' matches no municipality in nombres_municipios.csv",
        6: "municipality code '0614' is not loaded",  # San Salvador: named, not loaded here
    }
    assert sorted(stored(store, "statistics").index) == [
        "v:0511:2007",
        "v:0511:2008",
        "v:0617:2007",
        "v:0617:2008",
    ]


def test_names_table_of_our_own(amss: Store, settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "nombres.csv").write_text(
        "code,name\n0001,Poniente\n0002,Oriente\n0002,Levante\n", encoding="utf-8"
    )
    pd.DataFrame(
        {"municipio": ["oriente", "PONIENTE", "Levante", "Oeste"], "anio": ["2007", "2007", "2008", "2007"]}
    ).assign(variable="v", valor="1").to_csv(tmp_path / "datos.csv", index=False)
    toml = manifest("statistics", "datos.csv", NAMED_FIELDS, tail=NAMES + 'table = "nombres.csv"\n')

    result = load(amss, settings, tmp_path, toml)

    assert rejected(result) == {4: "name 'Oeste' matches no municipality in nombres.csv"}
    assert sorted(stored(amss, "statistics").index) == ["v:0001:2007", "v:0002:2007", "v:0002:2008"]


def test_join(store: Store, settings: Settings, tmp_path: Path) -> None:
    gpd.GeoDataFrame(
        {"COD": ["0001", "0002", "0003"]},
        geometry=[fixtures.WEST_SQUARE, fixtures.EAST_SQUARE, OUTSIDE_AMSS],
        crs=UTM,
    ).to_file(tmp_path / "municipios.gpkg")
    # In another order than the file, with a code the file lacks: joined by key, not by position.
    (tmp_path / "oficial.csv").write_text(
        "codigo,nombre,area,poblacion\n0002,Este,6.5,3000\n0009,Otro,1.0,1\n0001,Oeste,4.5,10000\n",
        encoding="utf-8",
    )
    join = (
        '[[joins]]\npath = "oficial.csv"\non = "code"\nkey = "codigo"\n'
        'fields = { name = "nombre", official_area_km2 = "area", population_2007 = "poblacion" }\n'
    )

    result = load(
        store, settings, tmp_path, manifest("municipalities", "municipios.gpkg", 'code = "COD"\n', tail=join)
    )

    assert rejected(result) == {3: "code '0003' not found in oficial.csv (codigo)"}
    municipalities = stored(store, "municipalities")
    assert municipalities["name"].to_dict() == {"0001": "Oeste", "0002": "Este"}
    assert municipalities["official_area_km2"].to_dict() == {"0001": 4.5, "0002": 6.5}
    assert municipalities["population_2007"].to_dict() == {"0001": 10_000, "0002": 3_000}


# --- polygons inside the AMSS --------------------------------------------------------------------


def write_zones_with(folder: Path, extra: shapely.Geometry) -> None:
    """zones_frame() and Z4 (EP) = ``extra``, as zonas.gpkg."""
    zones = zones_frame()
    zones.loc[3] = ["Z4", "EP", "ED-2017", extra]
    zones.to_file(folder / "zonas.gpkg")


@pytest.mark.parametrize("share", [None, 0.5, 0.6])
def test_min_share_inside(amss: Store, settings: Settings, tmp_path: Path, share: float | None) -> None:
    write_zones_with(
        tmp_path, shapely.box(X0 - 1_000, Y0, X0 + 1_000, Y0 + 2_000)
    )  # half over 0001's west edge
    top = "" if share is None else f"min_share_inside = {share}"

    result = load(amss, settings, tmp_path, manifest("zoning", "zonas.gpkg", ZONING_FIELDS, top=top))

    zones = stored(amss, "zoning")
    if share == 0.6:
        assert rejected(result) == {4: "only 50% of its area lies inside the AMSS (at least 60% needed)"}
        assert sorted(zones.index) == ["Z1", "Z2", "Z3"]
    else:  # 0.5, the default too
        assert rejected(result) == {}
        assert sorted(zones.index) == ["Z1", "Z2", "Z3", "Z4"]
        assert zones.geometry.to_crs(UTM)["Z4"].area / 1e6 == pytest.approx(4.0, rel=1e-6)  # kept whole


def test_a_share_exactly_at_the_minimum_is_kept(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_zones_with(
        tmp_path, shapely.box(X0 - 1_000, Y0 + 1_000, X0 + 1_000, Y0 + 3_000)
    )  # a quarter inside
    toml = manifest("zoning", "zonas.gpkg", ZONING_FIELDS, top="min_share_inside = 0.25")

    assert rejected(load(amss, settings, tmp_path, toml)) == {}


@pytest.mark.parametrize("share", ["0", "1.5"])
def test_min_share_inside_must_be_a_share(tmp_path: Path, share: str) -> None:
    path = tmp_path / "manifest.toml"
    path.write_text(manifest("zoning", "zonas.gpkg", ZONING_FIELDS, top=f"min_share_inside = {share}"))

    with pytest.raises(LoadError, match=r"manifest\.toml: min_share_inside: Input should be"):
        read_manifest(path)


# --- runs ----------------------------------------------------------------------------------------


def test_dry_run_writes_nothing(amss: Store, settings: Settings, tmp_path: Path) -> None:
    write_permits(tmp_path, area_m2=["100", "mucho", "50", "", "70"])
    runs = amss.load_runs()
    reports = sorted((settings.data_dir / "reports").iterdir())

    result = load(amss, settings, tmp_path, permits_manifest(), dry_run=True)

    # Every row checked and counted as a load would...
    assert result.dry_run and not result.unchanged
    assert (result.run.rows_read, result.run.rows_loaded, result.run.rows_rejected) == (5, 4, 1)
    assert result.reasons == {"floor_area_m2 '…' is not a number": 1}
    # ...and nothing written: no rows, no run, no report.
    assert stored(amss, "permits").empty
    assert amss.load_runs() == runs
    assert sorted((settings.data_dir / "reports").iterdir()) == reports
    # The real load that follows is not taken for a repeat.
    assert not load(amss, settings, tmp_path, permits_manifest()).unchanged
    assert len(stored(amss, "permits")) == 4


def test_same_file_and_manifest_is_unchanged_a_new_manifest_loads_again(
    amss: Store, settings: Settings, tmp_path: Path
) -> None:
    zones_frame().to_file(tmp_path / "zonas.gpkg")
    fields = 'zone_id = "ZONA_ID"\nsource_code = "COD_USO"\nplan_version = {{ value = "{}" }}\n'
    first = load(amss, settings, tmp_path, manifest("zoning", "zonas.gpkg", fields.format("ED-2017")))

    again = load(amss, settings, tmp_path, manifest("zoning", "zonas.gpkg", fields.format("ED-2017")))

    assert again.unchanged and again.run == first.run
    assert amss.load_runs()[-1].run_id == first.run.run_id

    changed = load(amss, settings, tmp_path, manifest("zoning", "zonas.gpkg", fields.format("ED-2024")))

    assert not changed.unchanged
    assert changed.run.source_sha256 == first.run.source_sha256
    assert changed.run.manifest_sha256 != first.run.manifest_sha256
    assert set(stored(amss, "zoning")["plan_version"]) == {"ED-2024"}
    zoning_runs = [run.run_id for run in amss.load_runs() if run.layer == "zoning"]
    assert zoning_runs == [first.run.run_id, changed.run.run_id]


# --- the real sample: boundaries by name, statistics without geometry ----------------------------


def test_sample_municipalities_and_statistics(store: Store, settings: Settings) -> None:
    boundaries = load_source(store, read_manifest(SAMPLE / "municipios.toml"), settings=settings)

    run = boundaries.run
    assert (run.rows_read, run.rows_loaded, run.rows_rejected) == (272, 14, 258)
    reasons = rejected(boundaries).values()
    assert len(reasons) == 258
    assert all(reason.endswith("matches no municipality in nombres_municipios.csv") for reason in reasons)
    municipalities = stored(store, "municipalities")
    measured = municipalities.geometry.to_crs(32616).area / 1e6
    assert measured.sum() == pytest.approx(559.9, abs=0.1)
    assert municipalities["area_km2"].to_dict() == pytest.approx(measured.to_dict(), rel=1e-9)
    assert measured["0604"] == pytest.approx(1.94, abs=0.005)
    assert municipalities.loc["0604", ["name", "official_area_km2"]].to_list() == ["Cuscatancingo", 6.39]
    assert municipalities["official_area_km2"].sum() == pytest.approx(611.4, abs=0.05)
    assert municipalities["population_2007"].sum() == 1_566_629
    assert municipalities.loc["0614", "municipality_2024_name"] == "San Salvador Centro"
    assert municipalities.loc["0613", "name"] == "San Martín"  # the official name, not "San Martin"
    assert municipalities["valid_to"].dt.date.unique().tolist() == [dt.date(2024, 4, 30)]

    statistics = load_source(store, read_manifest(SAMPLE / "estadisticas.toml"), settings=settings)

    assert (statistics.run.rows_read, statistics.run.rows_loaded) == (57, 56)
    assert rejected(statistics) == {57: "skipped by rule: municipio matches '^TOTAL'"}
    rows = stored(store, "statistics")
    # Santa Tecla is "Nueva San Salvador" in the file, Ciudad Delgado is "Delgado".
    assert rows.loc["poblacion_total:0511:2007", "value"] == 121_908
    assert rows.loc["poblacion_total:0619:2007", "value"] == 120_200
    assert rows.loc["poblacion_total:0511:2007", "source"].startswith("DIGESTYC")
    assert rows.loc["poblacion_total:0511:2007", "geom"].equals(municipalities.loc["0511", "geom"])
    assert rows.loc[rows["variable"] == "poblacion_total", "value"].sum() == 1_566_629
