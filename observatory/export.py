"""``observatory export DIR``: a static snapshot of the store that any web server or object store
can host: every loaded collection as GeoJSON and FlatGeobuf with a PMTiles archive of its vector
tiles, the indicator feed as files, and a STAC catalogue (one Collection per layer, with assets).

The snapshot is reproducible: the same store gives the same bytes (rows in id order, JSON with
sorted keys, gzip without timestamps); the only dates in it are the store's own layer versions.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import morecantile
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from rich.progress import Progress

from layers import Layer, catalogue
from observatory import __version__
from observatory.feed import GEOGRAPHIES, LATEST, FeedQuery, feed_document, feed_schema, feed_table, long_feed
from observatory.files import FORMATS, public_layer, write_frame
from observatory.store import FeatureQuery, Store
from observatory.store.base import Bbox
from observatory.tiles import TMS, TileOverCap

STAC_VERSION = "1.0.0"
MAX_ZOOM = 14
"""Deepest zoom archived: at 14 a tile is ~2.4 km wide here, and clients overzoom beyond it."""
LICENSE = "CC-BY-4.0"


@dataclass(frozen=True)
class Exported:
    """What a snapshot holds: layer name -> its files, relative to the snapshot's folder."""

    folder: Path
    collections: dict[str, list[str]]
    feeds: list[str]


def export_snapshot(
    store: Store, folder: Path, *, max_zoom: int = MAX_ZOOM, progress: Progress | None = None
) -> Exported:
    """Write the snapshot into ``folder`` (emptied first if it holds an earlier snapshot)."""
    if (folder / "catalog.json").exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = [layer for layer in catalogue().values() if layer.public and store.extent(layer) is not None]
    task = progress.add_task("export collections", total=len(layers)) if progress else None
    collections: dict[str, list[str]] = {}
    for layer in layers:
        collections[layer.name] = _export_collection(store, layer, folder, max_zoom=max_zoom)
        if progress is not None and task is not None:
            progress.advance(task)
    feeds = _export_feeds(store, folder)
    _write_json(folder / "catalog.json", _catalog(layers, feeds))
    return Exported(folder, collections, feeds)


def _export_collection(store: Store, layer: Layer, folder: Path, *, max_zoom: int) -> list[str]:
    own = folder / "collections" / layer.name
    own.mkdir(parents=True)
    frame = public_layer(store, layer)
    files = []
    for name in ("geojson", "fgb"):
        path = own / f"{layer.name}{FORMATS[name].suffix}"
        write_frame(frame, path, FORMATS[name], name=layer.name)
        files.append(path.name)
    bounds = store.extent(layer)
    assert bounds is not None  # only layers with rows are exported
    if _write_pmtiles(store, layer, own / f"{layer.name}.pmtiles", bounds, max_zoom=max_zoom):
        files.append(f"{layer.name}.pmtiles")
    _write_json(own / "collection.json", _collection(store, layer, files, bounds, frame))
    return [f"collections/{layer.name}/{name}" for name in files]


def _tiles(layer: Layer, bounds: Bbox, max_zoom: int) -> Iterator[morecantile.Tile]:
    """The tiles covering ``bounds`` from the layer's least to its deepest zoom (at most ``max_zoom``),
    in PMTiles' tile-id order."""
    zooms = range(layer.min_zoom, min(layer.max_zoom, max_zoom) + 1)
    tiles = TMS.tiles(*bounds, zooms=list(zooms))
    yield from sorted(tiles, key=lambda tile: zxy_to_tileid(tile.z, tile.x, tile.y))


def _write_pmtiles(store: Store, layer: Layer, path: Path, bounds: Bbox, *, max_zoom: int) -> bool:
    """The layer's tiles over its extent as one PMTiles archive (gzip MVT); False when none has data.

    Every archived tile holds all its features (see :mod:`observatory.tiles`): a zoom where a line
    or polygon tile passes the layer's cap is left out with every zoom below it, and the archive's
    ``minzoom`` says where it starts (clients draw nothing rather than a map with holes).
    """
    first_zoom = layer.min_zoom  # the least zoom whose every tile holds all its features
    encoded = []
    for tile in _tiles(layer, bounds, max_zoom):  # by zoom, least first
        if tile.z < first_zoom:
            continue
        try:
            data = store.tile(layer, tile, FeatureQuery())
        except TileOverCap:
            first_zoom = tile.z + 1
            continue
        if data:
            encoded.append((tile.z, zxy_to_tileid(tile.z, tile.x, tile.y), gzip.compress(data, mtime=0)))
    encoded = [entry for entry in encoded if entry[0] >= first_zoom]
    if not encoded:
        return False
    west, south, east, north = bounds
    header = {
        "tile_type": TileType.MVT,
        "tile_compression": Compression.GZIP,
        "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
        "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
    }  # fmt: skip
    metadata = {
        "name": layer.name,
        "description": layer.title_en,
        "attribution": "Observatorio Metropolitano del AMSS (OPAMSS)",
        "vector_layers": [
            {
                "id": layer.name,
                "fields": dict(layer.properties),
                "minzoom": first_zoom,
                "maxzoom": min(layer.max_zoom, max_zoom),
            }
        ],
    }
    with path.open("wb") as file:
        writer = Writer(file)
        for _, tile_id, data in encoded:
            writer.write_tile(tile_id, data)
        writer.finalize(header, metadata)
    return True


def _export_feeds(store: Store, folder: Path) -> list[str]:
    """The feed's latest values on each geography, long and wide, as GeoJSON and CSV, and its schema."""
    own = folder / "feeds" / "v1"
    own.mkdir(parents=True)
    _write_json(own / "schema.json", feed_schema("schema.json"))
    values = public_layer(store, catalogue()["indicators"])
    files = ["feeds/v1/schema.json"]
    for geography in GEOGRAPHIES:
        query = FeedQuery(period=LATEST, geography=geography)
        long = long_feed(values, query)
        if long.empty:
            continue
        for shape in ("long", "wide"):
            stem = f"indicators-{geography}-{LATEST}-{shape}"
            _write_json(own / f"{stem}.geojson", feed_document(long, query, wide=shape == "wide"))
            (own / f"{stem}.csv").write_text(feed_table(long, query, wide=shape == "wide"), encoding="utf-8")
            files += [f"feeds/v1/{stem}.geojson", f"feeds/v1/{stem}.csv"]
    return files


def _collection(store: Store, layer: Layer, files: list[str], bounds: Bbox, frame: Any) -> dict[str, Any]:
    version = store.layer_version(layer)
    interval: list[str | None] = [None, None]
    if layer.datetime is not None and frame[layer.datetime].notna().any():
        dates = frame[layer.datetime].dropna()
        interval = [f"{dates.min().date()}T00:00:00Z", f"{dates.max().date()}T00:00:00Z"]
    roles = {".geojson": ["data"], ".fgb": ["data"], ".pmtiles": ["tiles"]}
    media = {".geojson": "application/geo+json", ".fgb": FORMATS["fgb"].media_type,
             ".pmtiles": "application/vnd.pmtiles"}  # fmt: skip
    assets = {
        Path(name).suffix.lstrip("."): {"href": f"./{name}", "type": media[Path(name).suffix],
                                         "roles": roles[Path(name).suffix], "title": layer.title_en}
        for name in files
    }  # fmt: skip
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": layer.name,
        "title": layer.title,
        "description": layer.title_en,
        "license": LICENSE,
        "extent": {"spatial": {"bbox": [list(bounds)]}, "temporal": {"interval": [interval]}},
        "updated": version.changed_at.isoformat() if version else None,
        "summaries": {"geometry": [layer.geometry], "properties": [dict(layer.properties)]},
        "assets": assets,
        "links": [
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../../catalog.json", "type": "application/json"},
            {"rel": "self", "href": "./collection.json", "type": "application/json"},
        ],
    }


def _catalog(layers: list[Layer], feeds: list[str]) -> dict[str, Any]:
    links = [
        {"rel": "root", "href": "./catalog.json", "type": "application/json"},
        {"rel": "self", "href": "./catalog.json", "type": "application/json"},
    ]
    links += [
        {"rel": "child", "href": f"./collections/{layer.name}/collection.json", "type": "application/json",
         "title": layer.title_en}
        for layer in layers
    ]  # fmt: skip
    kinds = {".geojson": "application/geo+json", ".csv": "text/csv", ".json": "application/schema+json"}
    links += [{"rel": "alternate" if not name.endswith("schema.json") else "describedby",
               "href": f"./{name}", "type": kinds[Path(name).suffix]} for name in feeds]  # fmt: skip
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "observatorio-amss",
        "title": "Observatorio Metropolitano del AMSS",
        "description": f"Static snapshot of the AMSS urban observatory (observatory {__version__}).",
        "links": links,
    }


def _write_json(path: Path, body: dict[str, Any]) -> None:
    path.write_text(json.dumps(body, ensure_ascii=False, sort_keys=True, indent=1) + "\n", encoding="utf-8")
