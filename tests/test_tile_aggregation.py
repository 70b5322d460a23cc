"""Point tiles over their cap aggregate instead of dropping records (the contract with the map):
every feature has ``count``, filters apply first, and the counts add up to the records in the tile.

Seven permits placed by hand in one z14 tile (positions as fractions from its north-west corner);
a cap of 4 gives a 2 × 2 grid of quadrants:

    NW: A1 a (0.10, 0.10), A2 a (0.20, 0.30), A3 b (0.30, 0.20; resolved 2021)
    NE: B1 b (0.75, 0.25)
    SE: C1 b (0.60, 0.60), C2 c (0.90, 0.90; resolved 2021)
    east buffer, outside the tile: D1 c (1.005, 0.50)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import mapbox_vector_tile
import pytest

from layers import Layer, get_layer
from observatory.store import FeatureQuery, Store, open_store
from tests.conftest import STORES, fresh_settings
from tests.fixtures import TMS, permits_at

TILE = TMS.tile(-89.19, 13.69, 14)
ROWS = [
    ("A1", "a", "2020-06-01", 0.10, 0.10),
    ("A2", "a", "2020-06-01", 0.20, 0.30),
    ("A3", "b", "2021-06-01", 0.30, 0.20),
    ("B1", "b", "2020-06-01", 0.75, 0.25),
    ("C1", "b", "2020-06-01", 0.60, 0.60),
    ("C2", "c", "2021-06-01", 0.90, 0.90),
    ("D1", "c", "2020-06-01", 1.005, 0.50),
]
PERMITS = get_layer("permits")


def capped(cap: int) -> Layer:
    return PERMITS.model_copy(update={"max_features_per_tile": cap})


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Loaded with the catalogue's cap of 5,000, so no cells are counted at load: tiles asked with a
    smaller cap aggregate live (tests/test_point_cells.py has the counted ones)."""
    with fresh_settings(request.param, tmp_path_factory.mktemp(request.param)) as settings:
        opened = open_store(settings)
        opened.replace_layer(PERMITS, permits_at(TILE, ROWS), run=None)
        yield opened
        opened.close()


def features(store: Store, layer: Layer, query: FeatureQuery | None = None) -> list[dict[str, Any]]:
    """The tile's features, geometry in tile units from the north-west corner (y down)."""
    content = store.tile(layer, TILE, query or FeatureQuery())
    decoded = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return decoded["permits"]["features"]


def cells(found: list[dict[str, Any]]) -> dict[tuple[int, int], tuple[int, str, list[float]]]:
    """Aggregates by quadrant: (count, kind, position in tile units)."""
    return {
        (int(f["geometry"]["coordinates"][0] // 2048), int(f["geometry"]["coordinates"][1] // 2048)): (
            f["properties"]["count"],
            f["properties"]["kind"],
            f["geometry"]["coordinates"],
        )
        for f in found
    }


def assert_cells(
    found: list[dict[str, Any]], expected: dict[tuple[int, int], tuple[int, str, tuple[float, float]]]
) -> None:
    got = cells(found)
    assert len(found) == len(expected)
    assert {key: value[:2] for key, value in got.items()} == {
        key: value[:2] for key, value in expected.items()
    }
    for key, (_, _, (column, row)) in expected.items():
        assert got[key][2] == pytest.approx([column * 4096, row * 4096], abs=1)
    # Aggregates carry count and the summary only: no single record's values.
    assert all(set(f["properties"]) == {"count", "kind"} for f in found)


def test_a_tile_over_its_cap_holds_every_record_of_the_tile_in_grid_cells(store: Store) -> None:
    found = features(store, capped(4))
    # 7 records in the buffered tile > 4: aggregated; D1 (in the buffer) belongs to the next tile.
    assert sum(f["properties"]["count"] for f in found) == 6
    assert_cells(
        found,
        {
            (0, 0): (3, "a", ((0.10 + 0.20 + 0.30) / 3, (0.10 + 0.30 + 0.20) / 3)),
            (1, 0): (1, "b", (0.75, 0.25)),
            (1, 1): (2, "b", (0.75, 0.75)),  # b and c tie: the smaller value
        },
    )


def test_filters_apply_before_aggregation(store: Store) -> None:
    until_2020 = FeatureQuery(interval=(None, date(2020, 12, 31)))
    found = features(store, capped(4), until_2020)
    # A3 and C2 are out: 5 records in the buffered tile, still over 4; 4 inside the tile.
    assert sum(f["properties"]["count"] for f in found) == 4
    assert_cells(
        found,
        {
            (0, 0): (2, "a", (0.15, 0.20)),
            (1, 0): (1, "b", (0.75, 0.25)),
            (1, 1): (1, "b", (0.60, 0.60)),
        },
    )


def test_records_under_the_cap_are_single_features_with_count_one(store: Store) -> None:
    only_b = features(store, capped(4), FeatureQuery(filters={"kind": "b"}))
    assert sorted(f["properties"]["permit_id"] for f in only_b) == ["A3", "B1", "C1"]
    assert all(f["properties"]["count"] == 1 and f["properties"]["kind"] == "b" for f in only_b)
    everything = features(store, capped(10))
    assert sorted(f["properties"]["permit_id"] for f in everything) == [row[0] for row in ROWS]
    b1 = next(f for f in everything if f["properties"]["permit_id"] == "B1")
    assert b1["properties"] == {
        "permit_id": "B1", "kind": "b", "use_class": "habitacional", "floor_area_m2": 100.0,
        "investment_usd": 1000.0, "submitted": "2020-01-01", "resolved": "2020-06-01",
        "status": "aprobado", "municipality_code": "0001", "count": 1,
    }  # fmt: skip
    assert b1["geometry"]["coordinates"] == pytest.approx([0.75 * 4096, 0.25 * 4096], abs=1)


def test_a_cap_of_one_cell_gathers_the_whole_tile(store: Store) -> None:
    found = features(store, capped(3))  # isqrt(3) = 1: one cell
    assert [(f["properties"]["count"], f["properties"]["kind"]) for f in found] == [(6, "b")]
