"""Point layers counted per cell at load (observatory.point_cells): the counts kept, the queries
they answer, and dense tiles drawn from them rather than from the rows.

The permits of test_tile_aggregation (positions as fractions of one z14 tile from its north-west
corner):

    A1 a 2020 (0.10, 0.10)   A2 a 2020 (0.20, 0.30)   A3 b 2021 (0.30, 0.20)   B1 b 2020 (0.75, 0.25)
    C1 b 2020 (0.60, 0.60)   C2 c 2021 (0.90, 0.90)   D1 c 2020 (1.005, 0.50: the next tile east)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from typing import Any

import mapbox_vector_tile
import pandas as pd
import psycopg
import pytest
from psycopg import sql

from layers import Layer, get_layer
from observatory.point_cells import COLUMNS, CellCounter, CellFilter, cell_filter, grid_levels
from observatory.store import FeatureQuery, Store, conform, open_store
from tests.conftest import STORES, database_url, fresh_settings
from tests.fixtures import TMS, permits_at
from tests.test_tile_aggregation import ROWS, TILE

PERMITS = get_layer("permits")


def capped(cap: int) -> Layer:
    return PERMITS.model_copy(update={"max_features_per_tile": cap})


def counted(layer: Layer, rows: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    counter = CellCounter(layer)
    counter.add(conform(layer, permits_at(TILE, rows)))
    return pd.concat([pd.DataFrame(columns=COLUMNS), *counter.cells()], ignore_index=True)


def test_grid_side_is_the_largest_power_of_two_within_the_cap() -> None:
    assert [grid_levels(capped(cap)) for cap in (1, 3, 4, 15, 16, 5000, 4095, 4096)] == [
        0,
        0,
        1,
        1,
        2,
        6,
        5,
        6,
    ]


def rows_at(cells: pd.DataFrame, zoom: int, name: dict[tuple[int, int], str]) -> set[tuple[object, ...]]:
    """The zoom's rows as (cell named by its place in the tile, summary, year or None, n)."""
    at = cells[cells["zoom"] == zoom]
    side = 2 ** (at["level"].iloc[0] - zoom)
    return {
        (name[(cx - side * TILE.x, cy - side * TILE.y)], summary, None if pd.isna(year) else int(year), n)
        for cx, cy, summary, year, n in at[["cx", "cy", "summary", "year", "n"]].itertuples(index=False)
    }


DOUBLED = [*ROWS[:6], *[(f"{name}x", *rest) for name, *rest in ROWS[:6]]]  # each permit twice


def test_cells_are_kept_for_the_tiles_over_the_cap_by_kind_and_year() -> None:
    cells = counted(capped(4), DOUBLED)
    # Twelve permits in the tile, over 4 from zoom 0 to 14; at 15 the north-west quarter still holds
    # six (A1, A2, A3 twice) in three cells; at 16 no tile holds more than two.
    assert sorted(cells["zoom"].unique()) == list(range(16))
    assert set(cells.loc[cells["zoom"] == 14, "level"]) == {15}  # a 2 × 2 grid: one level down
    assert rows_at(cells, 14, {(0, 0): "NW", (1, 0): "NE", (1, 1): "SE"}) == {
        ("NW", "a", None, 4), ("NW", "b", None, 2), ("NE", "b", None, 2), ("SE", "b", None, 2),
        ("SE", "c", None, 2),
        # 2020 has 8 permits in the tile, over 4: rows by year too
        ("NW", "a", 2020, 4), ("NW", "b", 2021, 2), ("NE", "b", 2020, 2), ("SE", "b", 2020, 2),
        ("SE", "c", 2021, 2),
    }  # fmt: skip
    # The quarter at 15: 2020 has 4 permits there, not over 4: all years only.
    at_15 = cells[cells["zoom"] == 15]
    assert sorted(at_15["n"]) == [2, 2, 2] and at_15["year"].isna().all()


def test_cells_stop_where_they_would_not_halve_the_rows() -> None:
    # At 14, six permits in five rows (cells by kind) of the 2 × 2 grid; at 13 the tile is one cell
    # of its parent (x 4132 even: D1's tile, 4133, shares it), seven permits in four rows (a, b, c
    # in the tile's cell, c in D1's): neither halves the rows, so counts stop at 12.
    assert TILE.x % 2 == 0
    assert sorted(counted(capped(4), ROWS)["zoom"].unique()) == list(range(13))


def test_cells_by_year_where_one_year_passes_the_cap() -> None:
    cells = counted(capped(3), ROWS)  # one cell a tile; 2020 has 4 permits in the tile, over 3
    assert rows_at(cells, 14, {(0, 0): "tile"}) == {
        ("tile", "a", None, 2), ("tile", "b", None, 3), ("tile", "c", None, 1),
        ("tile", "a", 2020, 2), ("tile", "b", 2020, 2), ("tile", "b", 2021, 1), ("tile", "c", 2021, 1),
    }  # fmt: skip
    # The mean position is kept as sums of Web Mercator metres, per row.
    at_14 = cells[(cells["zoom"] == 14) & cells["year"].isna()]
    bounds = TMS.xy_bounds(TILE)
    size = bounds.right - bounds.left
    assert at_14["sx"].sum() / 6 == pytest.approx(
        bounds.left + size * sum(r[3] for r in ROWS[:6]) / 6, abs=0.01
    )
    assert at_14["sy"].sum() / 6 == pytest.approx(
        bounds.top - size * sum(r[4] for r in ROWS[:6]) / 6, abs=0.01
    )


def test_an_undated_record_counts_in_all_years_only() -> None:
    rows = [*ROWS[:6], ("E1", "a", "", 0.12, 0.12)]
    cells = counted(capped(3), rows)
    at_14 = cells[cells["zoom"] == 14]
    assert at_14.loc[at_14["year"].isna(), "n"].sum() == 7
    assert at_14.loc[at_14["year"].notna(), "n"].sum() == 6


def test_a_layer_under_its_cap_keeps_no_cells() -> None:
    assert counted(capped(10), ROWS).empty


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (FeatureQuery(), CellFilter(None, None)),
        (FeatureQuery(filters={"kind": "b"}), CellFilter("b", None)),
        (FeatureQuery(interval=(date(2020, 1, 1), date(2021, 12, 31))), CellFilter(None, (2020, 2021))),
        (FeatureQuery(interval=(None, date(2020, 12, 31))), CellFilter(None, (None, 2020))),
        (FeatureQuery(interval=(date(2020, 1, 1), None)), CellFilter(None, (2020, None))),
        (FeatureQuery(interval=(None, None)), CellFilter(None, (None, None))),
        # what the cells cannot answer: part of a year, another property
        (FeatureQuery(interval=(date(2020, 1, 2), None)), None),
        (FeatureQuery(interval=(date(2020, 1, 1), date(2020, 12, 30))), None),
        (FeatureQuery(filters={"status": "aprobado"}), None),
        (FeatureQuery(filters={"kind": "b", "status": "aprobado"}), None),
    ],
)
def test_queries_the_cells_answer(query: FeatureQuery, expected: CellFilter | None) -> None:
    assert cell_filter(PERMITS, query) == expected


def test_year_bounds() -> None:
    assert CellFilter(None, (2020, 2021)).year_bounds() == [(">=", 2020), ("<=", 2021)]
    assert CellFilter(None, (None, 2020)).year_bounds() == [("<=", 2020)]
    assert CellFilter(None, None).year_bounds() == []


# -- stores: dense tiles are drawn from the cells ------------------------------------------------

CAP_TWO = capped(2)  # one cell per tile (grid side 1)


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Permits loaded with a cap of 2, then their rows deleted behind the store's back: what a tile
    still shows can only come from the cells counted at load."""
    with fresh_settings(request.param, tmp_path_factory.mktemp(request.param)) as settings:
        opened = open_store(settings)
        opened.replace_layer(CAP_TWO, permits_at(TILE, ROWS), run=None)
        if settings.database_url:
            with psycopg.connect(database_url(), autocommit=True) as db:
                db.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(settings.db_schema, "permits")))
        else:
            with sqlite3.connect(settings.geopackage_path) as db:
                db.execute("DELETE FROM permits")
        yield opened
        opened.close()


def tile_features(store: Store, query: FeatureQuery) -> list[dict[str, Any]]:
    content = store.tile(CAP_TWO, TILE, query)
    decoded = mapbox_vector_tile.decode(content, default_options={"y_coord_down": True})
    return decoded["permits"]["features"] if decoded else []


def test_a_dense_tile_is_drawn_from_the_cells(store: Store) -> None:
    [cell] = tile_features(store, FeatureQuery())
    # b 3, a 2, c 1: the six permits inside the tile, at their mean position
    assert cell["properties"] == {"count": 6, "kind": "b"}
    mean = (sum(row[3] for row in ROWS[:6]) / 6, sum(row[4] for row in ROWS[:6]) / 6)
    assert cell["geometry"]["coordinates"] == pytest.approx([mean[0] * 4096, mean[1] * 4096], abs=1)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (FeatureQuery(filters={"kind": "b"}), {"count": 3, "kind": "b"}),
        # 2020: a 2 (A1, A2), b 2 (B1, C1): a tie goes to the smaller value
        (FeatureQuery(interval=(date(2020, 1, 1), date(2020, 12, 31))), {"count": 4, "kind": "a"}),
        (FeatureQuery(interval=(None, date(2021, 12, 31))), {"count": 6, "kind": "b"}),
        (FeatureQuery(interval=(date(2021, 1, 1), None), filters={"kind": "b"}), None),  # A3 only
    ],
)
def test_filters_on_kind_and_whole_years_read_the_cells(
    store: Store, query: FeatureQuery, expected: dict[str, Any] | None
) -> None:
    found = tile_features(store, query)
    if expected is None:  # one permit, under the cap: single records, and the rows are gone
        assert found == []
    else:
        assert [f["properties"] for f in found] == [expected]


def test_a_filter_the_cells_cannot_answer_reads_the_rows(store: Store) -> None:
    assert tile_features(store, FeatureQuery(filters={"status": "aprobado"})) == []
    assert tile_features(store, FeatureQuery(interval=(date(2020, 6, 1), None))) == []


def test_a_cap_changed_since_the_load_reads_the_rows(store: Store) -> None:
    assert tile_features(store, FeatureQuery(filters={"kind": "a"})) == []  # 2 ≤ 2: singles, gone
    changed = capped(16)  # another grid (4 × 4): the cells of a 1 × 1 grid do not answer it
    assert store.tile(changed, TILE, FeatureQuery()) == b""


@pytest.mark.parametrize("kind", STORES)
def test_a_new_load_replaces_the_cells(kind: str, tmp_path: Any) -> None:
    with fresh_settings(kind, tmp_path) as settings:
        opened = open_store(settings)
        opened.replace_layer(CAP_TWO, permits_at(TILE, ROWS), run=None)
        opened.replace_layer(CAP_TWO, permits_at(TILE, ROWS[:3]), run=None)
        # A1 a, A2 a, A3 b now: three permits (not the six the first load counted)
        found = tile_features(opened, FeatureQuery())
        assert [f["properties"] for f in found] == [{"count": 3, "kind": "a"}]
        only_b = tile_features(opened, FeatureQuery(filters={"kind": "b"}))
        assert [f["properties"]["permit_id"] for f in only_b] == ["A3"]
        opened.close()
