"""Pages of a bounding box in id order, asked in any order and again after a reload: the same
slices of the box's ids sorted, whichever way the store finds them (on the GeoPackage: from the
page starts it has served, walking the id index or sorting what the R-tree finds)."""

from __future__ import annotations

import random
from datetime import date

import geopandas as gpd
import pandas as pd
import psycopg
import pytest
import shapely
from psycopg import sql

from layers import get_layer
from observatory.settings import Settings
from observatory.store import FeatureQuery, Store
from tests.conftest import database_url

PERMITS = get_layer("permits")
WEST, SOUTH, STEP = -89.2, 13.7, 0.01


def _permits(numbers: list[int]) -> gpd.GeoDataFrame:
    """Permit ``Qnn`` at column nn % 8 and row nn // 8 of a 0.01° grid, rows in shuffled order
    (so the order they are stored in is not the id order)."""
    numbers = random.Random(7).sample(numbers, len(numbers))
    frame = pd.DataFrame(
        {
            "permit_id": [f"Q{n:02d}" for n in numbers],
            "kind": "permiso_construccion",
            "use_class": "habitacional",
            "floor_area_m2": 100.0,
            "investment_usd": 1000.0,
            "submitted": "2020-01-01",
            "resolved": "2020-02-01",
            "status": "aprobado",
            "municipality_code": "0001",
        }
    )
    points = [shapely.Point(WEST + (n % 8) * STEP, SOUTH + (n // 8) * STEP) for n in numbers]
    return gpd.GeoDataFrame(frame, geometry=points, crs="EPSG:4326")


# Columns 0-6 of every row: 35 of the 40 permits (most of the layer). Column 2 of rows 1-2: Q10, Q18.
MOST = (WEST - STEP / 2, SOUTH - STEP / 2, WEST + 6.5 * STEP, SOUTH + 4.5 * STEP)
FEW = (WEST + 1.5 * STEP, SOUTH + 0.5 * STEP, WEST + 2.5 * STEP, SOUTH + 2.5 * STEP)


def _in(box: tuple[float, float, float, float], numbers: list[int]) -> list[str]:
    west, south, east, north = box
    at = {n: (WEST + (n % 8) * STEP, SOUTH + (n // 8) * STEP) for n in numbers}
    return sorted(f"Q{n:02d}" for n, (x, y) in at.items() if west <= x <= east and south <= y <= north)


def _page(store: Store, box: tuple[float, float, float, float], offset: int, limit: int) -> list[str]:
    # As the API asks: one row past the limit tells whether a next page exists.
    records = store.select(PERMITS, FeatureQuery(bbox=box, offset=offset, limit=limit + 1))
    return [record.properties["permit_id"] for record in records]


def test_the_fixture_boxes_hold_what_the_comments_say() -> None:
    assert len(_in(MOST, list(range(40)))) == 35 and "Q07" not in _in(MOST, list(range(40)))
    assert _in(FEW, list(range(40))) == ["Q10", "Q18"]


@pytest.mark.parametrize("box", [MOST, FEW], ids=["most-of-the-layer", "few-rows"])
def test_pages_in_any_order_are_slices_of_the_sorted_box(store: Store, box: tuple[float, ...]) -> None:
    numbers = list(range(40))
    store.replace_layer(PERMITS, _permits(numbers), run=None)
    expected = _in(box, numbers)
    offsets = list(range(0, len(expected) + 3))
    for limit in (3, 1, 4):  # every page start served is remembered: later passes seek from them
        for offset in random.Random(limit).sample(offsets, len(offsets)):
            assert _page(store, box, offset, limit) == expected[offset : offset + limit + 1], (limit, offset)


def test_pages_after_a_reload_are_the_new_rows(store: Store) -> None:
    store.replace_layer(PERMITS, _permits(list(range(40))), run=None)
    for offset in range(0, 35, 3):
        _page(store, MOST, offset, 3)
    assert store.count(PERMITS, FeatureQuery(bbox=MOST), exact_up_to=100).value == 35
    survivors = [n for n in range(40) if n % 3]  # Q00, Q03, Q06 ... gone: every start moved
    store.replace_layer(PERMITS, _permits(survivors), run=None)
    expected = _in(MOST, survivors)
    assert store.count(PERMITS, FeatureQuery(bbox=MOST), exact_up_to=100).value == len(expected) == 23
    for offset in range(0, len(expected) + 1, 3):
        assert _page(store, MOST, offset, 3) == expected[offset : offset + 4], offset


def test_a_box_of_points_is_counted(store: Store) -> None:
    store.replace_layer(PERMITS, _permits(list(range(40))), run=None)
    assert store.count(PERMITS, FeatureQuery(bbox=MOST), exact_up_to=100).value == 35
    assert store.count(PERMITS, FeatureQuery(bbox=FEW), exact_up_to=100).value == 2
    assert store.count(PERMITS, FeatureQuery(bbox=(-1.0, -1.0, 1.0, 1.0)), exact_up_to=100).value == 0
    # Counts are kept per query: a filter or a time interval is another query.
    other_kind = FeatureQuery(bbox=MOST, filters={"kind": "calificacion_lugar"})
    assert store.count(PERMITS, other_kind, exact_up_to=100).value == 0
    resolved_later = FeatureQuery(bbox=MOST, interval=(date(2021, 1, 1), None))  # all resolved 2020-02-01
    assert store.count(PERMITS, resolved_later, exact_up_to=100).value == 0
    assert (
        store.count(PERMITS, FeatureQuery(bbox=MOST, sortby=(("kind", True),)), exact_up_to=100).value == 35
    )


def test_a_start_from_other_rows_than_those_read_is_not_used(store: Store, settings: Settings) -> None:
    """The rows change before the store hears of it (on PostGIS the notice of a load swapped in by
    another process is still on its way): pages already served must not lead into the new rows."""
    if store.kind != "postgis":
        pytest.skip("a GeoPackage load replaces the file; a connection reads one file and its version")
    store.replace_layer(PERMITS, _permits(list(range(40))), run=None)
    for offset in range(0, 35, 3):
        _page(store, MOST, offset, 3)
    with psycopg.connect(database_url(), autocommit=True) as connection:  # no NOTIFY: memory is stale
        table, versions = (sql.Identifier(settings.db_schema, name) for name in ("permits", "layer_versions"))
        connection.execute(sql.SQL("UPDATE {} SET permit_id = 'A' || permit_id").format(table))
        connection.execute(
            sql.SQL("UPDATE {} SET tag = 'elsewhere' WHERE layer = 'permits'").format(versions)
        )
    renamed = ["A" + permit for permit in _in(MOST, list(range(40)))]
    for offset in (0, 3, 6, 33):
        assert _page(store, MOST, offset, 3) == renamed[offset : offset + 4], offset
