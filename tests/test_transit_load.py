"""Loading public transport: GTFS feeds (zip or folder) and hand-traced routes, on both stores."""

from __future__ import annotations

import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from etl import LoadResult, load_source, read_manifest
from layers import get_layer
from observatory.errors import LoadError
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import X0, Y0

UTM = fixtures.UTM


def lonlat(x: float, y: float) -> tuple[float, float]:
    """Lon/lat of the point (x, y) metres from the tiny AMSS's corner."""
    point = gpd.GeoSeries([shapely.Point(X0 + x, Y0 + y)], crs=UTM).to_crs("EPSG:4326").iloc[0]
    return round(point.x, 7), round(point.y, 7)


def feed_tables() -> dict[str, str]:
    """A feed of two agencies' routes: R1 on two shapes (its two directions, S1 used by two trips),
    R2 on an unknown shape and on one of a single point; shapes.txt lists points out of order and one
    without coordinates."""
    (a_lon, a_lat), (b_lon, b_lat), (c_lon, c_lat) = lonlat(100, 100), lonlat(1100, 100), lonlat(1100, 600)
    return {
        "agency.txt": "agency_id,agency_name\nA1,Buses Uno\nA2,Buses Dos\n",
        "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A1,101,3\nR2,A2,202,3\n",
        "trips.txt": "route_id,service_id,trip_id,shape_id\nR1,LV,T1,S1\nR1,LV,T2,S2\nR1,LV,T3,S1\n"
        "R2,LV,T4,SX\nR2,LV,T5,S3\n",
        "shapes.txt": "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
        f"S1,{c_lat},{c_lon},3\nS1,{a_lat},{a_lon},1\nS1,{b_lat},{b_lon},2\n"
        f"S2,{b_lat},{b_lon},1\nS2,,{a_lon},2\nS2,{a_lat},{a_lon},3\nS3,{a_lat},{a_lon},1\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon,location_type\n"
        f"P1,Uno,{a_lat},{a_lon},0\nP2,Dos,,{b_lon},0\nP3,Estación,{c_lat},{c_lon},1\nP4,Cuatro,{c_lat},{c_lon},\n",
    }


def write_feed(folder: Path, *, zipped: bool = True) -> Path:
    tables = feed_tables()
    if not zipped:
        feed = folder / "gtfs"
        feed.mkdir()
        for name, text in tables.items():
            (feed / name).write_text(text, encoding="utf-8")
        return feed
    path = folder / "gtfs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in tables.items():
            archive.writestr(name, text)
    return path


def load_manifest(store: Store, settings: Settings, folder: Path, name: str, text: str) -> LoadResult:
    manifest = folder / f"{name}.toml"
    manifest.write_text(text, encoding="utf-8")
    return load_source(store, read_manifest(manifest), settings=settings)


def report_of(result: LoadResult) -> list[tuple[int, str]]:
    report = pd.read_csv(result.run.report_file, dtype={"row": int}, keep_default_na=False)
    rows = report[report["outcome"] == "rejected"]
    return sorted(zip(rows["row"], rows["reason"], strict=True))


STOPS = 'layer = "transit_stops"\n[source]\npath = "{path}"\nformat = "gtfs"\nlayer = "stops"\n' \
        '[fields]\nstop_id = "stop_id"\nname = "stop_name"\n'  # fmt: skip
ROUTES = 'layer = "transit_routes"\n[source]\npath = "{path}"\nformat = "gtfs"\nlayer = "routes"\n' \
         '[fields]\nroute_id = "route_id"\nname = "route_short_name"\nagency = "agency_name"\n' \
         'mode = {{ source = "route_type", values = {{ "3" = "bus" }} }}\n'  # fmt: skip


@pytest.fixture
def amss(store: Store, settings: Settings, tmp_path: Path) -> Store:
    fixtures.load(store, "municipalities", fixtures.write_municipalities(tmp_path), settings=settings)
    return store


@pytest.mark.parametrize("zipped", [True, False])
def test_gtfs_stops(amss: Store, settings: Settings, tmp_path: Path, zipped: bool) -> None:
    feed = write_feed(tmp_path, zipped=zipped)
    result = load_manifest(amss, settings, tmp_path, "stops", STOPS.format(path=feed.name))
    assert report_of(result) == [
        (2, "no usable coordinates in columns 'stop_lon'/'stop_lat'"),
        (3, "stops.txt: location_type 1 is not a boarding stop"),
    ]
    stops = amss.read_layer(get_layer("transit_stops")).set_index("stop_id")
    assert sorted(stops.index) == ["P1", "P4"]
    assert stops.loc["P4", "name"] == "Cuatro" and stops.loc["P4", "municipality_code"] == "0001"
    x, y = gpd.GeoSeries([stops.geometry["P1"]], crs="EPSG:4326").to_crs(UTM).iloc[0].coords[0]
    assert (x - X0, y - Y0) == pytest.approx((100, 100), abs=0.01)


def test_gtfs_routes_from_their_shapes(amss: Store, settings: Settings, tmp_path: Path) -> None:
    feed = write_feed(tmp_path)
    result = load_manifest(amss, settings, tmp_path, "routes", ROUTES.format(path=feed.name))
    # shapes.txt row 5 has no latitude (S2 keeps two points), row 7 is S3's only point; trips.txt
    # rows 4 and 5 name SX and S3; routes.txt row 2 (R2) then has no shape at all.
    assert report_of(result) == [
        (2, "routes.txt: no trip of the route has a shape in shapes.txt"),
        (4, "trips.txt: shape_id 'SX' is not a usable shape of shapes.txt"),
        (5, "shapes.txt: no usable shape_pt_lat/shape_pt_lon/shape_pt_sequence"),
        (5, "trips.txt: shape_id 'S3' is not a usable shape of shapes.txt"),
        (7, "shapes.txt: a shape needs at least two usable points"),
    ]
    routes = amss.read_layer(get_layer("transit_routes")).set_index("route_id")
    assert list(routes.index) == ["R1"]
    assert routes.loc["R1", ["name", "mode", "agency"]].tolist() == ["101", "bus", "Buses Uno"]
    # S1 once though two trips run on it, its points in shape_pt_sequence order (1,000 m + 500 m),
    # and S2 back (1,000 m).
    route = gpd.GeoSeries([routes.geometry["R1"]], crs="EPSG:4326").to_crs(UTM).iloc[0]
    assert route.geom_type == "MultiLineString"
    assert route.length == pytest.approx(2_500, abs=0.01)
    drawn = [[(round(x - X0), round(y - Y0)) for x, y in part.coords] for part in route.geoms]
    assert drawn == [[(100, 100), (1100, 100), (1100, 600)], [(1100, 100), (100, 100)]]


def test_gtfs_needs_its_table(amss: Store, settings: Settings, tmp_path: Path) -> None:
    feed = write_feed(tmp_path)
    with pytest.raises(LoadError, match=r"source\.layer = one of stops, routes"):
        load_manifest(
            amss, settings, tmp_path, "stops", STOPS.format(path=feed.name).replace('"stops"\n[', '"x"\n[')
        )


def test_traced_routes_share_the_layer_by_agency(amss: Store, settings: Settings, tmp_path: Path) -> None:
    # Two directions in a GeometryCollection (with a stray point) become one MultiLineString of two
    # lines; a LineString one of one; a collection with no line is rejected.
    west, east = (
        shapely.LineString([(X0 + 100, Y0 + 100), (X0 + 900, Y0 + 100)]),
        shapely.LineString([(X0 + 900, Y0 + 110), (X0 + 100, Y0 + 110)]),
    )
    traced = gpd.GeoDataFrame(
        {"id": ["M1", "M2", "M3"], "agency": "Micro"},
        geometry=[shapely.GeometryCollection([west, east, shapely.Point(X0 + 5, Y0 + 5)]), west,
                  shapely.GeometryCollection([shapely.Point(X0 + 5, Y0 + 5)])],
        crs=UTM,
    ).to_crs("EPSG:4326")  # fmt: skip
    (tmp_path / "micro.geojson").write_text(traced.to_json(), encoding="utf-8")
    feed = write_feed(tmp_path)
    load_manifest(amss, settings, tmp_path, "routes", ROUTES.format(path=feed.name))
    result = load_manifest(
        amss, settings, tmp_path, "micro",
        'layer = "transit_routes"\n[source]\npath = "micro.geojson"\n[fields]\nroute_id = "id"\n'
        'agency = "agency"\nmode = { value = "microbus" }\n',
    )  # fmt: skip
    assert report_of(result) == [(3, "a GeometryCollection with no line part")]
    routes = amss.read_layer(get_layer("transit_routes")).set_index("route_id")
    assert sorted(routes.index) == ["M1", "M2", "R1"]  # the GTFS agency's route is kept
    lines = gpd.GeoSeries(routes.geometry, crs="EPSG:4326").to_crs(UTM)
    assert set(lines.geom_type) == {"MultiLineString"}
    assert [len(lines[r].geoms) for r in ("M1", "M2")] == [2, 1]
    assert lines["M1"].length == pytest.approx(1_600, abs=0.01)
