"""Line and polygon tiles hold every feature or none: the indicators' cap counts per indicator and
period, so an unfiltered tile (and the exported PMTiles) carries every value; past the cap a tile is
refused with a 400 problem, never cut short (the audit of 2026-12-07 found 5,000 of 5,540 values in
every unfiltered indicator tile, silently).

The store holds 3 indicators x 2 periods x 2 municipalities = 12 values, 2 per indicator and
period; the catalogue's cap is made 4 (so the whole tile, 12, is over it) or 1 (each group, 2,
is over it).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import geopandas as gpd
import httpx
import mapbox_vector_tile
import pytest
import shapely
import shapely.affinity
from pmtiles.reader import Reader, all_tiles

from layers import Layer, catalogue, get_layer
from observatory.export import export_snapshot
from observatory.indicators import REGISTRY
from observatory.settings import Settings
from observatory.store import FeatureQuery, Store, conform
from observatory.tiles import TMS, TileOverCap
from tests import fixtures
from tests.conftest import serving

INDICATORS = get_layer("indicators")
CODES = {"0001": fixtures.WEST_SQUARE, "0002": shapely.affinity.translate(fixtures.WEST_SQUARE, 30_000)}
"""Two 2 km squares 30 km apart: one z8 tile holds both, deeper tiles one or the other."""
VALUES = [
    (indicator, period, code)
    for indicator in ("street_density", "intersection_density", "permits_count")
    for period in (2020, 2021)
    for code in CODES
]
EVERY = {f"{indicator}:{code}:{period}" for indicator, period, code in VALUES}
TILE = TMS.tile(
    *gpd.GeoSeries([fixtures.WEST_SQUARE.centroid], crs=fixtures.UTM).to_crs(4326).iloc[0].coords[0], 8
)


def capped(cap: int, *, per: list[str] | None = None) -> Layer:
    update: dict[str, object] = {"max_features_per_tile": cap}
    if per is not None:
        update["tile_cap_per"] = per
    return INDICATORS.model_copy(update=update)


@pytest.fixture
def values(store: Store) -> Store:
    frame = gpd.GeoDataFrame(
        {
            "value_id": [f"{i}:{c}:{p}" for i, p, c in VALUES],
            "indicator_id": [i for i, _, _ in VALUES],
            "theme": [REGISTRY[i].theme for i, _, _ in VALUES],
            "municipality_code": [c for _, _, c in VALUES],
            "municipality_name": [c for _, _, c in VALUES],
            "period": [p for _, p, _ in VALUES],
            "value": [float(n) for n in range(len(VALUES))],
            "unit": [REGISTRY[i].unit for i, _, _ in VALUES],
            "geography": "municipios_2007",
            "inputs": "test",
            "input_runs": "",
            "input_periods": "{}",
            "computed_at": "2026-12-07T00:00:00+00:00",
            "code_version": "test",
            "n": 10,
            "flag": None,
        },
        geometry=[CODES[c] for _, _, c in VALUES],
        crs=fixtures.UTM,
    ).to_crs("EPSG:4326")
    store.replace_layer(INDICATORS, conform(INDICATORS, frame.rename_geometry("geom")), run=None)
    return store


def value_ids(content: bytes) -> set[str]:
    layer = mapbox_vector_tile.decode(content).get("indicators", {"features": []})
    return {feature["properties"]["value_id"] for feature in layer["features"]}


def test_the_catalogue_caps_indicator_tiles_per_indicator_and_period() -> None:
    assert INDICATORS.tile_cap_per == ["indicator_id", "period"]


def test_an_unfiltered_tile_holds_every_value_past_the_cap(values: Store) -> None:
    # 12 values over a cap of 4, but at most 2 of one indicator and period: all 12 (was 4).
    assert value_ids(values.tile(capped(4), TILE, FeatureQuery())) == EVERY


def test_a_tile_over_the_cap_is_refused_never_cut(values: Store) -> None:
    with pytest.raises(TileOverCap, match="2 features of one indicator_id, period, over its cap of 1"):
        values.tile(capped(1), TILE, FeatureQuery())
    one = FeatureQuery(filters={"municipality_code": "0001"})  # one value per indicator and period
    assert len(value_ids(values.tile(capped(1), TILE, one))) == 6
    with pytest.raises(TileOverCap, match="more than 11 features"):  # a cap per tile: 12 > 11
        values.tile(capped(11, per=[]), TILE, FeatureQuery())
    assert value_ids(values.tile(capped(12, per=[]), TILE, FeatureQuery())) == EVERY


def test_the_tile_endpoint_serves_all_or_a_problem(
    values: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"/collections/indicators/tiles/{TMS.id}/{TILE.z}/{TILE.y}/{TILE.x}"
    monkeypatch.setitem(catalogue(), "indicators", capped(4))
    with serving(values, settings) as url:
        whole = httpx.get(url + path, timeout=30)
        assert whole.status_code == 200 and value_ids(whole.content) == EVERY
    monkeypatch.setitem(catalogue(), "indicators", capped(1))
    with serving(values, settings) as url:
        refused = httpx.get(url + path, timeout=30)
        assert refused.status_code == 400
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "filter by indicator_id and period" in refused.json()["detail"]
        wanted = {"indicator_id": "street_density", "period": 2020, "municipality_code": "0002"}
        one = httpx.get(url + path, params=wanted, timeout=30)
        assert one.status_code == 200 and value_ids(one.content) == {"street_density:0002:2020"}


def test_the_exported_pmtiles_hold_every_value_at_every_zoom(
    values: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(catalogue(), "indicators", capped(4))
    export_snapshot(values, tmp_path / "site", max_zoom=8)
    archive = (tmp_path / "site" / "collections" / "indicators" / "indicators.pmtiles").read_bytes()
    found: dict[int, set[str]] = {}
    for (z, _x, _y), data in all_tiles(lambda offset, length: archive[offset : offset + length]):
        found.setdefault(z, set()).update(value_ids(gzip.decompress(data)))
    # Below z4 a 2 km square is under a pixel and its polygon vanishes (as ST_AsMVTGeom drops it).
    assert {zoom: found[zoom] for zoom in range(4, 9)} == {zoom: EVERY for zoom in range(4, 9)}
    metadata = Reader(lambda offset, length: archive[offset : offset + length]).metadata()
    assert metadata["vector_layers"][0]["minzoom"] == 0


def test_an_export_starts_at_the_first_zoom_whose_tiles_are_whole(
    values: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cap of 6 per tile: a tile holding both squares (12 values) is over it, so the zooms where
    # one tile holds both are left out, not cut short; from the first zoom that parts them, all.
    monkeypatch.setitem(catalogue(), "indicators", capped(6, per=[]))
    export_snapshot(values, tmp_path / "site", max_zoom=12)
    archive = (tmp_path / "site" / "collections" / "indicators" / "indicators.pmtiles").read_bytes()
    found: dict[int, list[set[str]]] = {}
    for (z, _x, _y), data in all_tiles(lambda offset, length: archive[offset : offset + length]):
        found.setdefault(z, []).append(value_ids(gzip.decompress(data)))
    first = Reader(lambda offset, length: archive[offset : offset + length]).metadata()["vector_layers"][0]
    # The squares lie near lon -89.19 and -88.91: one z9 tile (0.70° wide, from -89.30) holds
    # both; at z10 (0.35°) the edge at -88.95 parts them.
    assert first["minzoom"] == min(found) == 10
    for zoom in range(10, 13):
        assert set().union(*found[zoom]) == EVERY and all(len(ids) == 6 for ids in found[zoom])
