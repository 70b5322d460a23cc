"""A point tile whose single features would pass the byte budget (500,000 bytes) is aggregated,
even with far fewer records than its cap (5,000 for permits).

Twenty-five permits in one z14 tile, each with its own ``use_class`` text of 20,000 characters.
In an MVT layer every distinct string is one entry of the values table: the key byte of
``string_value``, its length (3 bytes of varint) and the text make a 20,004-byte value, wrapped with
its own key byte and 3-byte length: 20,008 bytes per record. So 25 records hold at least
25 × 20,008 = 500,200 bytes (over the budget, under 500 KiB = 512,000: a budget read in KiB keeps
them single), while 24 hold 24 × 20,008 = 480,192 bytes of texts plus the shared keys and values
and the features themselves (tags and one point: well under 100 bytes each), under the budget.

Positions on the tile's diagonal (fractions from its north-west corner); the aggregation grid of
permits (70 cells a side for the cap of 5,000, or 64 if made a power of two) puts each cluster in
one cell (NW: cell 7 of 70, 6 of 64; SE: cell 56 of 70, 51 of 64):

    cluster NW: 19 permits at 0.1050 + 0.0002 i (i = 0..18): 11 of kind a, 8 of kind b
    cluster SE: 6 permits at 0.8050 + 0.0002 i (i = 0..5): 4 of kind c, 2 of kind b (one resolved 2021)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import mapbox_vector_tile
import pytest

from layers import get_layer
from observatory.store import FeatureQuery, Store, open_store
from observatory.tiles import BYTE_BUDGET
from tests.conftest import STORES, fresh_settings
from tests.fixtures import TMS, permits_at

TILE = TMS.tile(-89.19, 13.69, 14)
PERMITS = get_layer("permits")
TEXT = 20_000
NORTH_WEST = ["a"] * 11 + ["b"] * 8
SOUTH_EAST = ["c"] * 4 + ["b"] * 2
UNTIL_2020 = FeatureQuery(interval=(None, date(2020, 12, 31)))  # all but the last SE permit


def rows() -> list[tuple[str, str, str, float, float]]:
    north_west = [(kind, 0.105 + 0.0002 * i) for i, kind in enumerate(NORTH_WEST)]
    south_east = [(kind, 0.805 + 0.0002 * i) for i, kind in enumerate(SOUTH_EAST)]
    placed = north_west + south_east
    return [
        (f"P{n:02d}", kind, "2021-06-01" if n == len(placed) - 1 else "2020-06-01", at, at)
        for n, (kind, at) in enumerate(placed)
    ]


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with fresh_settings(request.param, tmp_path_factory.mktemp(request.param)) as settings:
        opened = open_store(settings)
        frame = permits_at(TILE, rows())
        frame["use_class"] = [f"{n:02d}".ljust(TEXT, "u") for n in range(len(frame))]  # each its own
        opened.replace_layer(PERMITS, frame, run=None)
        yield opened
        opened.close()


def decoded(content: bytes) -> list[dict[str, Any]]:
    """The tile's features, geometry in tile units from the north-west corner (y down)."""
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})["permits"]["features"]


def test_records_under_the_cap_over_the_byte_budget_are_aggregated(store: Store) -> None:
    assert BYTE_BUDGET == 500_000 and len(rows()) < PERMITS.max_features_per_tile
    found = decoded(store.tile(PERMITS, TILE, FeatureQuery()))
    # Two cells, not 25 singles: every permit counted, no single record's text carried.
    assert all(set(feature["properties"]) == {"count", "kind"} for feature in found)
    by_count = sorted(
        (f["properties"]["count"], f["properties"]["kind"], f["geometry"]["coordinates"]) for f in found
    )
    assert [(count, kind) for count, kind, _ in by_count] == [(6, "c"), (19, "a")]
    assert sum(count for count, _, _ in by_count) == 25
    # At the mean position of each cluster: 0.8055 and 0.1068 of the tile on both axes.
    assert by_count[0][2] == pytest.approx([0.8055 * 4096] * 2, abs=1)
    assert by_count[1][2] == pytest.approx([0.1068 * 4096] * 2, abs=1)


def test_fewer_records_under_the_byte_budget_stay_single(store: Store) -> None:
    content = store.tile(PERMITS, TILE, UNTIL_2020)
    assert 24 * (TEXT + 8) < len(content) < BYTE_BUDGET  # the hand count above holds
    found = decoded(content)
    assert sorted(f["properties"]["permit_id"] for f in found) == [f"P{n:02d}" for n in range(24)]
    assert all(f["properties"]["count"] == 1 and len(f["properties"]["use_class"]) == TEXT for f in found)
