"""Store behaviour both backends share: atomic replacement, typed round trips, the schema."""

from __future__ import annotations

import threading
import time

import geopandas as gpd
import mapbox_vector_tile
import morecantile
import pandas as pd
import psycopg
import pytest

from layers import catalogue, get_layer
from observatory.settings import Settings
from observatory.store import FeatureQuery, Store
from tests.conftest import database_url


def test_a_failed_replacement_leaves_the_layer_as_it_was(loaded: Store) -> None:
    layer = get_layer("permits")
    before = loaded.read_layer(layer)
    runs = loaded.load_runs()
    clashing = pd.concat([before, before.iloc[[0]]], ignore_index=True)  # a duplicate id

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        loaded.replace_layer(layer, gpd.GeoDataFrame(clashing, geometry="geom"), run=None)

    pd.testing.assert_frame_equal(loaded.read_layer(layer), before)
    assert loaded.load_runs() == runs


def test_round_trip_keeps_types_and_nulls(loaded: Store) -> None:
    permits = loaded.read_layer(get_layer("permits")).set_index("permit_id")
    assert str(permits["submitted"].dtype).startswith("datetime64")
    assert permits.loc["P1", "submitted"] == pd.Timestamp("2017-01-02")
    assert pd.isna(permits.loc["P4", "floor_area_m2"])
    (record,) = loaded.select(get_layer("permits"), FeatureQuery(filters={"permit_id": "P4"}))
    assert record.properties["investment_usd"] is None
    assert str(record.properties["resolved"]) == "2017-05-15"


def test_tiles_over_the_cap_aggregate_and_repeat_exactly(loaded: Store) -> None:
    capped = get_layer("permits").model_copy(update={"max_features_per_tile": 2})
    tile = morecantile.tms.get("WebMercatorQuad").tile(-89.18, 13.71, 11)
    first = loaded.tile(capped, tile, FeatureQuery())
    # 5 permits > 2: one cell (a 1 × 1 grid) counts them all; 4 of the 5 are building permits.
    aggregated = mapbox_vector_tile.decode(first)["permits"]["features"]
    assert [f["properties"] for f in aggregated] == [{"count": 5, "kind": "permiso_construccion"}]
    assert loaded.tile(capped, tile, FeatureQuery()) == first
    every = mapbox_vector_tile.decode(loaded.tile(get_layer("permits"), tile, FeatureQuery()))
    assert len(every["permits"]["features"]) == 5
    assert all(f["properties"]["count"] == 1 for f in every["permits"]["features"])


def test_an_unloaded_layer_reads_empty(store: Store) -> None:
    assert store.read_layer(get_layer("zoning")).empty
    assert store.select(get_layer("zoning"), FeatureQuery()) == []
    assert store.load_runs() == []


@pytest.mark.parametrize("settings", ["postgis"], indirect=True)
def test_migrated_tables_match_the_catalogue(store: Store, settings: Settings) -> None:
    with psycopg.connect(database_url()) as connection:
        for layer in catalogue().values():
            rows = connection.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                [settings.db_schema, layer.table],
            ).fetchall()
            columns = [r[0] for r in rows]
            assert [c for c in columns if c != "geom"] == list(layer.properties), layer.name
            assert "geom" in columns, layer.name
            indexes = connection.execute(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
                [settings.db_schema, layer.table],
            ).fetchall()
            assert any("USING gist (geom)" in r[0] for r in indexes), layer.name


def _tables_and_indexes(schema: str) -> tuple[list[str], list[tuple[str, str]]]:
    with psycopg.connect(database_url()) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [schema]
        ).fetchall()
        indexes = connection.execute(
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = %s ORDER BY 1, 2", [schema]
        ).fetchall()
    return [t for (t,) in tables], [(t, i) for t, i in indexes]


@pytest.mark.parametrize("settings", ["postgis"], indirect=True)
def test_a_reload_rebuilds_the_same_indexes_and_key_and_a_failed_one_leaves_no_staged_table(
    loaded: Store, settings: Settings
) -> None:
    """Indexes are built on two connections and the key laid on its index afterwards: a reload
    must end with exactly the tables, indexes and primary key the migrations made, and a load
    refused by the key (a duplicate id found while building it) must not leave its staged table."""
    schema = settings.db_schema
    layer = get_layer("permits")
    before = _tables_and_indexes(schema)
    permits = loaded.read_layer(layer)
    loaded.replace_layer(layer, permits, run=None)
    assert _tables_and_indexes(schema) == before
    with psycopg.connect(database_url()) as connection:
        (key,) = connection.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
            "AND contype = 'p'",
            [f'"{schema}"."permits"'],
        ).fetchone() or (None,)
    assert key == "PRIMARY KEY (permit_id)"

    clashing = gpd.GeoDataFrame(pd.concat([permits, permits.iloc[[0]]], ignore_index=True), geometry="geom")
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        loaded.replace_layer(layer, clashing, run=None)
    assert _tables_and_indexes(schema) == before


@pytest.mark.parametrize("settings", ["postgis"], indirect=True)
def test_write_sessions_take_turns(store: Store) -> None:
    """Staged tables are committed before the swap, so two sessions on one schema would share
    them: the second session waits until the first has swapped its tables in."""
    order: list[str] = []
    first_open = threading.Event()

    def first() -> None:
        with store.writing():
            first_open.set()
            time.sleep(0.5)
            order.append("first ends")

    thread = threading.Thread(target=first)
    thread.start()
    first_open.wait(10)
    with store.writing():
        order.append("second begins")
    thread.join()
    assert order == ["first ends", "second begins"]
