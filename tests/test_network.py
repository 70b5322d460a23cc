"""Street network and access indicators on a hand-drawn street plan, values computed by hand.

Coordinates are metres from the tiny AMSS's corner (tests/fixtures.py: 0001 is the 2 km square
x 0..2000, 0002 the 3 km × 2 km one east of it, y 0..2000), in UTM 16N.

    y=900   B: 100 ─ ... ─ 600 ─ ... ─ 1100        a park above B: x 250..550, y 950..1250
                           │
    y=500   A: 100 ─ ... ─ 600 ─ ... ─ 1100        stop at (100,500), health at (1100,500)
                           │
    y=300                  600

A and B are cut in 100 m segments; the only way between them is the street x=600 (y 300..900).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity

from etl import load_source, read_manifest
from layers import get_layer
from observatory.indicators import compute_indicators
from observatory.indicators.accessibility import public_space_access_400m, public_space_gates
from observatory.indicators.mobility import SAME_STREET_M, transit_route_length_per_10k
from observatory.indicators.network import StreetNetwork, population_share_within
from observatory.settings import Settings
from observatory.store import Store
from tests import fixtures
from tests.fixtures import X0, Y0

UTM = fixtures.UTM


def at(x: float, y: float) -> tuple[float, float]:
    return X0 + x, Y0 + y


def line(*points: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([at(x, y) for x, y in points])


def cut(x0: float, y0: float, x1: float, y1: float, step: float = 100) -> list[shapely.LineString]:
    """The street from (x0, y0) to (x1, y1) as segments of ``step`` metres."""
    n = round(max(abs(x1 - x0), abs(y1 - y0)) / step)
    xs, ys = np.linspace(x0, x1, n + 1), np.linspace(y0, y1, n + 1)
    return [line((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(n)]


PLAN = [
    *cut(100, 500, 1100, 500),  # A
    *cut(100, 900, 1100, 900),  # B
    *cut(600, 300, 600, 900),  # the link: (600,500) has degree 4, (600,900) degree 3
    line((-100, 1700), (400, 1700)),  # 400 of its 500 m inside the AMSS: kept, clipped
    line((1900, 1800), (2100, 1800)),  # crosses into 0002: 100 m west, 100 m east
    line((2100, 1800), (2300, 1800)),
    line((2100, 1800), (2100, 1900)),  # (2100,1800) is a crossing of degree 3 in 0002
    line((2000, 100), (2000, 300)),  # along the shared border: counted once, for 0001
    line((2900, 1000), (3000, 1000)),
    line((3000, 1000), (3100, 1000)),
    line((3000, 1000), (3000, 1100)),  # (3000,1000): degree 3 in 0002
]
OUTSIDE = line((-300, 1500), (200, 1500))  # only 40% inside: rejected
# cell centre, population: C1 300 m along A from the stop; C2 30 m off node (600,500), 500 m along A;
# C3 400 m from the stop in a straight line but 1,400 m along the streets; C4 exactly 500 m along A.
CELLS = {"C1": (400, 500, 100), "C2": (600, 530, 200), "C3": (100, 900, 300), "C4": (600, 500, 50),
         "C5": (3000, 1000, 500)}  # fmt: skip
PERIOD = 2020
ACCESS_PERIOD = 2024
"""People of 2020 walking the streets of 2024: access is dated by its latest input."""


def write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path)
    return path


def load_file(store: Store, settings: Settings, layer: str, path: Path, fields: str) -> None:
    manifest = path.with_suffix(".toml")
    manifest.write_text(f'layer = "{layer}"\n[source]\npath = "{path.name}"\n[fields]\n{fields}')
    load_source(store, read_manifest(manifest), settings=settings)


@pytest.fixture
def plan(store: Store, settings: Settings, tmp_path: Path) -> Store:
    """The tiny AMSS with the plan's streets, a stop, two facilities, a park, cells and routes."""
    fixtures.load(store, "municipalities", fixtures.write_municipalities(tmp_path), settings=settings)
    streets = gpd.GeoDataFrame(
        {"osm_id": range(1, len(PLAN) + 2), "highway": "residential", "oneway": "no"},
        geometry=[*PLAN, OUTSIDE], crs=UTM,
    )  # fmt: skip
    load_file(store, settings, "streets", write(streets, tmp_path / "calles.gpkg"),
              'street_id = "osm_id"\nhighway = "highway"\nperiod = { value = 2024 }\n'
              'oneway = { source = "oneway", values = { "yes" = "1", "no" = "0" } }\n')  # fmt: skip
    stops = gpd.GeoDataFrame({"id": ["S1"]}, geometry=[shapely.Point(at(100, 500))], crs=UTM)
    load_file(store, settings, "transit_stops", write(stops, tmp_path / "paradas.gpkg"), 'stop_id = "id"\n')
    facilities = gpd.GeoDataFrame(
        {"id": ["H1", "E1"], "tipo": ["health", "school"]},
        geometry=[shapely.Point(at(1100, 500)), shapely.Point(at(3000, 1000))], crs=UTM,
    )  # fmt: skip
    load_file(store, settings, "facilities", write(facilities, tmp_path / "equipamientos.gpkg"),
              'facility_id = "id"\ntype = "tipo"\n')  # fmt: skip
    park = gpd.GeoDataFrame(
        {"id": ["P1"], "tipo": ["parque"]}, geometry=[shapely.box(*at(250, 950), *at(550, 1250))], crs=UTM
    )
    load_file(store, settings, "public_spaces", write(park, tmp_path / "parques.gpkg"),
              'space_id = "id"\ntype = "tipo"\n')  # fmt: skip
    cells = gpd.GeoDataFrame(
        {"id": list(CELLS), "pob": [p for _, _, p in CELLS.values()]},
        geometry=[shapely.box(*at(x - 10, y - 10), *at(x + 10, y + 10)) for x, y, _ in CELLS.values()],
        crs=UTM,
    )
    load_file(store, settings, "population", write(cells, tmp_path / "celdas.gpkg"),
              f'cell_id = "id"\npopulation = "pob"\nperiod = {{ value = {PERIOD} }}\n')  # fmt: skip
    routes = gpd.GeoDataFrame(
        {"id": ["R1", "R2", "R3"], "agency": "A"},
        geometry=[
            shapely.GeometryCollection([line((100, 500), (1100, 500)), line((1100, 510), (100, 510))]),
            line((1500, 200), (2500, 200)),
            line((1500, 200), (1900, 200)),  # runs on R2's street: each route counts its own length
        ],
        crs=UTM,
    )
    routes.to_crs("EPSG:4326").to_file(tmp_path / "rutas.geojson")
    load_file(store, settings, "transit_routes", tmp_path / "rutas.geojson",
              'route_id = "id"\nagency = "agency"\nmode = { value = "bus" }\n')  # fmt: skip
    compute_indicators(store, settings=settings)
    return store


def values_of(store: Store, indicator_id: str) -> dict[tuple[str, int], float]:
    frame = store.read_layer(get_layer("indicators"))
    frame = frame[frame["indicator_id"] == indicator_id]
    return {(row.municipality_code, int(row.period)): float(row.value) for row in frame.itertuples()}


def test_streets_are_kept_by_their_length_inside(plan: Store) -> None:
    streets = plan.read_layer(get_layer("streets"))
    assert len(streets) == len(PLAN)  # the street 60% outside is rejected
    assert set(streets.geom_type) == {"MultiLineString"}
    assert set(streets["oneway"]) == {0}


def test_transit_stop_access_counts_people_along_the_streets(plan: Store) -> None:
    # West: C1 (300 m) and C4 (exactly 500 m) are covered: 150 of 650 people. C2 is 500 m along A
    # plus 30 m to its node; C3 is 400 m away in a straight line but 1,400 m along the streets.
    # (Cells counted instead of people would give 2/4; straight lines 450/650; no snap 350/650.)
    # East: people, no stop: 0 %.
    assert values_of(plan, "transit_stop_access_500m") == pytest.approx(
        {("0001", ACCESS_PERIOD): 100 * 150 / 650, ("0002", ACCESS_PERIOD): 0.0}
    )


def test_facility_access_by_type(plan: Store) -> None:
    # Health at (1100,500): C4 500 m, C2 530 m, C1 700 m; C3 1,400 m. The school is in 0002, on
    # C5's node, and cannot be reached from 0001 (no street crosses): a missing type filter would
    # give 0001 the health facility's 350/650.
    assert values_of(plan, "health_access_1km") == pytest.approx(
        {("0001", ACCESS_PERIOD): 100 * 350 / 650, ("0002", ACCESS_PERIOD): 0.0}
    )
    assert values_of(plan, "school_access_1km") == pytest.approx(
        {("0001", ACCESS_PERIOD): 0.0, ("0002", ACCESS_PERIOD): 100.0}
    )


def test_public_space_access_from_its_edge(plan: Store) -> None:
    # The park's edge at (300,950) is 50 m from node (300,900), 200 m along B from C3: 250 m.
    # Its centre (400,1100) would be 200 m from (400,900), 500 m from C3: not covered.
    # C1 walks 200 + 400 + 100 m to reach B at (500,900), then 50 m: 750 m.
    assert values_of(plan, "public_space_access_400m") == pytest.approx(
        {("0001", ACCESS_PERIOD): 100 * 300 / 650, ("0002", ACCESS_PERIOD): 0.0}
    )


def test_street_density_clips_at_borders_and_counts_shared_edges_once(plan: Store) -> None:
    # West: A 1000 + B 1000 + link 600 + 400 inside of the street at y=1700 + 100 of the crossing
    # street = 3,100 m on 4 km². East: 100 + 200 + 100 + 300 = 700 m on 6 km². The 200 m along the
    # shared border count once, on whichever side the reprojection puts them (a double count would
    # give 4.2 km in all; unclipped streets 3.2 km in the west or 0.8 in the east).
    values = values_of(plan, "street_density")
    west_km, east_km = values[("0001", 2024)] * 4, values[("0002", 2024)] * 6
    assert west_km + east_km == pytest.approx(4.0)
    assert (west_km, east_km) in [pytest.approx((3.3, 0.7)), pytest.approx((3.1, 0.9))]


def test_intersection_density_counts_degree_three_and_more(plan: Store) -> None:
    # West: (600,500) of degree 4 and (600,900) of degree 3; A's and B's other nodes have degree 2
    # or 1. East: (2100,1800) and (3000,1000), degree 3.
    assert values_of(plan, "intersection_density") == pytest.approx(
        {("0001", 2024): 2 / 4, ("0002", 2024): 2 / 6}
    )


def test_route_length_per_10k_inhabitants(plan: Store) -> None:
    # R1: both directions along A, 10 m apart: its 1,000 m once, in the west; R2: 500 m west, 500 m
    # east; R3 400 m west, on R2's street: each route counts. West 1.9 km for 650 people, east 0.5
    # km for 500 (the directions counted twice would give the west 2.9 km).
    assert values_of(plan, "transit_route_length_per_10k") == pytest.approx(
        {("0001", PERIOD): 1.9e4 / 650, ("0002", PERIOD): 0.5e4 / 500}
    )


def route_km(routes: dict[str, shapely.Geometry]) -> float:
    """transit_route_length_per_10k of one 3 km square of 10,000 people: its route kilometres."""
    square = gpd.GeoDataFrame(
        {"code": ["M"]}, geometry=[shapely.box(*at(-500, -500), *at(2500, 2500))], crs=UTM
    )
    people = gpd.GeoDataFrame(
        {"cell_id": ["c"], "population": [10_000.0], "period": [PERIOD], "municipality_code": ["M"]},
        geometry=[shapely.box(*at(0, 0), *at(10, 10))], crs=UTM,
    )  # fmt: skip
    lines = gpd.GeoDataFrame(
        {"route_id": list(routes), "agency": "A"}, geometry=list(routes.values()), crs=UTM
    )
    values = transit_route_length_per_10k(
        transit_routes=lines.to_crs("EPSG:4326"), population=people, municipalities=square.to_crs("EPSG:4326")
    )
    return float(values["value"].iloc[0])


STREET = line((0, 0), (1000, 0))
OTHER_LANE = line((1000, 4), (700, 4), (250, 4), (0, 4))
"""STREET's return as a feed or a hand may draw it: 4 m beside, its own vertices."""


def test_a_routes_two_directions_along_one_street_count_once() -> None:
    # A GTFS route whose return shape is the outward one reversed, and one whose return is drawn on
    # the other lane, 500 m north: 1 km each (the second was counted 2 km, the first 1 km only
    # because clipping dissolved its exact overlap).
    far = shapely.affinity.translate(shapely.MultiLineString([STREET, OTHER_LANE]), yoff=500)
    reversed_shape = shapely.MultiLineString([STREET, STREET.reverse()])
    assert route_km({"R1": reversed_shape, "R2": far}) == pytest.approx(2.0)


def test_a_routes_directions_on_two_streets_count_both() -> None:
    # Out along y=0 (1,000 m), back by (1000,100) and y=100 to (0,0): 1,200 m. The longer return
    # counts whole; of the outward street, the 15 m at each end beside the return's ends are the
    # same street (SAME_STREET_M): 1,200 + 1,000 - 2 x 15 m (was 2,200 m).
    back = line((1000, 0), (1000, 100), (0, 100), (0, 0))
    assert SAME_STREET_M == 15.0
    assert route_km({"R": shapely.MultiLineString([STREET, back])}) == pytest.approx(2.17)


def test_two_routes_on_one_street_each_count() -> None:
    # Two routes, both directions each, on the same 1,000 m: 2 km of service (was 4).
    both = shapely.MultiLineString([STREET, OTHER_LANE])
    assert route_km({"R1": both, "R2": both}) == pytest.approx(2.0)


def test_a_hand_traced_return_beside_the_outward_line_is_the_same_street() -> None:
    # A microbus traced as its two directions, the return on the other lane 8 m beside the outward
    # line (as the sample draws it), 8 m inside the corner: 600 + 400 m once (was 1,000 + 984 m).
    out = line((0, 0), (600, 0), (600, 400))
    back = out.offset_curve(8.0).reverse()
    assert back.length == pytest.approx(984.0)
    assert route_km({"MB": shapely.MultiLineString([out, back])}) == pytest.approx(1.0)


def grid_network(size: int = 3, step: float = 100) -> StreetNetwork:
    """A size × size grid of nodes ``step`` metres apart, as street segments."""
    segments = []
    for i in range(size):
        segments += cut(0, i * step, (size - 1) * step, i * step, step)
        segments += cut(i * step, 0, i * step, (size - 1) * step, step)
    return StreetNetwork.from_streets(gpd.GeoDataFrame(geometry=segments, crs=UTM))


def test_grid_degrees_and_distances() -> None:
    network = grid_network()
    degrees = dict(zip(map(tuple, np.round(network.xy - (X0, Y0))), network.degrees(), strict=True))
    assert degrees[(0, 0)] == 2 and degrees[(100, 0)] == 3 and degrees[(100, 100)] == 4
    # From two targets, each node takes the nearer: the corner (0,0) and 20 m off (200,200).
    targets = np.array([at(0, 0), at(200, 220)])
    nodes = map(tuple, np.round(network.xy - (X0, Y0)))
    reach = dict(zip(nodes, network.distances_from(targets, cutoff_m=1e9), strict=True))
    assert reach[(0, 0)] == pytest.approx(0)
    assert reach[(200, 200)] == pytest.approx(20)
    assert reach[(100, 100)] == pytest.approx(200)  # 200 from either
    assert reach[(200, 0)] == pytest.approx(200)  # not 220 from the other


def test_share_is_per_period_and_needs_people() -> None:
    # A cell centred at (195,0) is 5 m from node (200,0), 200 m from the stop: 205 m. In 2021 a
    # second cell, at (100,300), is 300 m from its node (100,0): 400 m. B has nobody: no row.
    streets = gpd.GeoDataFrame(geometry=cut(0, 0, 200, 0), crs=UTM)
    near, far, empty = (
        shapely.box(*at(x - 5, y - 5), *at(x + 5, y + 5)) for x, y in [(195, 0), (100, 300), (0, 0)]
    )
    cells = gpd.GeoDataFrame(
        {"cell_id": ["c1", "c2", "c3", "c4"], "population": [10.0, 30.0, 10.0, 0.0],
         "period": [2020, 2021, 2021, 2020], "municipality_code": ["A", "A", "A", "B"]},
        geometry=[near, near, far, empty], crs=UTM,
    )  # fmt: skip
    stop = gpd.GeoSeries([shapely.Point(at(0, 0))], crs=UTM)
    shares = population_share_within(cells, stop, streets, distance_m=210)
    assert shares.to_dict("records") == [
        {"municipality_code": "A", "period": 2020, "value": pytest.approx(100.0)},
        {"municipality_code": "A", "period": 2021, "value": pytest.approx(75.0)},
    ]
    assert list(population_share_within(cells, stop, streets, distance_m=204)["value"]) == [0.0, 0.0]
    nothing = population_share_within(cells, gpd.GeoSeries([], crs=UTM), streets, distance_m=210)
    assert list(nothing["value"]) == [0.0, 0.0]


def test_of_several_targets_on_one_node_the_nearest_counts() -> None:
    # Two targets join node (0,0): (0,-10), 10 m below it, and (0,-40), 40 m below.
    # The node is 10 m from a target, (200,0) 210 m: within 220 m. The farther snap would make
    # them 40 and 240 m, beyond.
    network = grid_network()
    targets = np.array([at(0, -40), at(0, -10)])
    nodes = map(tuple, np.round(network.xy - (X0, Y0)))
    reach = dict(zip(nodes, network.distances_from(targets, cutoff_m=1e9), strict=True))
    assert reach[(0, 0)] == pytest.approx(10)
    assert reach[(200, 0)] == pytest.approx(210)
    assert network.within(np.array([at(200, 0)]), targets, distance_m=220).tolist() == [True]


def test_public_space_gates_every_25_m_of_its_edge() -> None:
    # One street (0,0)-(0,-300), a park x -50..50, y 20..120 north of its end. A gate every 25 m
    # puts one at (0,20), 20 m from node (0,0); gates every 100 m leave only the corners, 53.85 m.
    # The cell at (60,-300) walks 60 + 300 + 20 = 380 m (<= 400: covered; 413.85 m with 100 m
    # gates); the cell at (10,-100) 100.5 + 20 m either way. 30 + 10 of 40 people: 100 %.
    streets = gpd.GeoDataFrame(geometry=[line((0, 0), (0, -300))], crs=UTM)
    park = gpd.GeoDataFrame({"type": ["parque"]}, geometry=[shapely.box(*at(-50, 20), *at(50, 120))], crs=UTM)
    cells = gpd.GeoDataFrame(
        {"cell_id": ["far", "near"], "population": [30.0, 10.0], "period": PERIOD, "municipality_code": "M"},
        geometry=[shapely.box(*at(x - 5, y - 5), *at(x + 5, y + 5)) for x, y in [(60, -300), (10, -100)]],
        crs=UTM,
    )  # fmt: skip
    gates = np.round(shapely.get_coordinates(public_space_gates(park).values) - (X0, Y0), 6)
    assert {(0.0, 20.0), (-25.0, 20.0), (50.0, 95.0)} <= set(map(tuple, gates))
    shares = public_space_access_400m(population=cells, public_spaces=park, streets=streets)
    assert shares["value"].tolist() == [pytest.approx(100.0)]


def test_street_ends_under_a_metre_apart_are_one_node_a_few_metres_apart_are_not() -> None:
    # (100,0) and (100.3,0.2) are one node: the first two segments meet (degree 2). (200,0) and
    # (204,0) are two dead ends, 4 m apart: the third segment is not reached (a 10 m grid would
    # join them, 300 m from (0,0)).
    segments = [line((0, 0), (100, 0)), line((100.3, 0.2), (200, 0)), line((204, 0), (300, 0))]
    network = StreetNetwork.from_streets(gpd.GeoDataFrame(geometry=segments, crs=UTM))
    nodes = [tuple(xy) for xy in np.round(network.xy - (X0, Y0))]
    assert sorted(nodes) == [(0, 0), (100, 0), (200, 0), (204, 0), (300, 0)]
    degrees = dict(zip(nodes, network.degrees(), strict=True))
    assert degrees == {(0, 0): 1, (100, 0): 2, (200, 0): 1, (204, 0): 1, (300, 0): 1}
    reach = dict(zip(nodes, network.distances_from(np.array([at(0, 0)]), cutoff_m=1e9), strict=True))
    assert reach[(200, 0)] == pytest.approx(100 + np.hypot(99.7, 0.2))
    assert reach[(204, 0)] == np.inf and reach[(300, 0)] == np.inf
