"""The embedded store: one GeoPackage file, written with pyogrio, queried with sqlite3.

Writes copy the file, change the copy and move it over the original, so a failed load leaves the
store exactly as it was and readers never see half a load. Reads use SQLite with bound parameters
and the GeoPackage R-tree for bounding boxes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import glob
import hashlib
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Hashable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import morecantile
import pandas as pd
import pyogrio
import shapely

from layers import Layer, Withholding
from observatory.point_cells import COLUMNS as CELL_COLUMNS
from observatory.point_cells import CellCounter, CellFilter, cell_filter, cells_table, grid_levels, tally
from observatory.store.base import (
    ACCESS_FIELDS,
    LOAD_RUN_FIELDS,
    AccessEntry,
    Bbox,
    Column,
    Condition,
    Count,
    FeatureQuery,
    LayerVersion,
    LoadRun,
    Record,
    Spatial,
    Value,
    conform,
    empty_frame,
    replace_layer,
    with_catalogue_columns,
)
from observatory.store.built_tiles import BuiltTiles
from observatory.store.page_starts import PageStarts, count_key, page_key
from observatory.store.versions import FileVersions, Versions
from observatory.tiles import (
    BYTE_BUDGET,
    aggregates,
    check_cap,
    encode_cells,
    encode_tile,
    lonlat_bounds,
    most_per_group,
    query_key,
    summary_property,
)

log = logging.getLogger(__name__)
RUNS_TABLE = "load_runs"
UNLIMITED = 2**62
"""A LIMIT SQLite reads as none: a tile capped per group reads all its rows to count them."""
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def geometry_from_gpkg(blob: bytes) -> shapely.Geometry:
    """Decode a GeoPackage geometry blob (header + WKB), per the GeoPackage 1.3 binary format."""
    return shapely.from_wkb(_wkb(blob))


def _wkb(blob: bytes) -> bytes:
    """The WKB of a GeoPackage geometry blob, past its header and envelope."""
    return blob[8 + _ENVELOPE_BYTES[(blob[3] >> 1) & 0b111] :]


def _intersects_bbox(blob: bytes | None, west: float, south: float, east: float, north: float) -> bool:
    if blob is None:
        return False
    return bool(shapely.intersects(geometry_from_gpkg(blob), shapely.box(west, south, east, north)))


@functools.lru_cache(maxsize=64)
def _literal_geometry(wkb: bytes) -> shapely.Geometry:
    geometry = shapely.from_wkb(wkb)
    shapely.prepare(geometry)
    return geometry


def _spatial(operation: str, blob: bytes | None, wkb: bytes) -> bool | None:
    """A CQL2 spatial predicate (a shapely function name) of a row's geometry and a literal."""
    if blob is None:
        return None
    return bool(getattr(shapely, operation)(geometry_from_gpkg(blob), _literal_geometry(wkb)))


def _lower(text: str | None) -> str | None:
    return None if text is None else str(text).lower()


def _condition(condition: Condition, params: list[Any], rtree: str) -> str:
    """A CQL2 condition in SQLite: catalogue names quoted, values and geometries bound. A spatial
    test that needs the envelopes to meet (all but disjoint) first asks the layer's R-tree."""
    text = []
    for part in condition.parts:
        if isinstance(part, str):
            text.append(part)
        elif isinstance(part, Column):
            text.append(f"t.{_quote(part.name)}")
        elif isinstance(part, Value):
            text.append("?")
            params.append(_sqlite_value(part.value))
        elif isinstance(part, Spatial):
            test = "cql2_spatial(?, t.geom, ?)"
            if part.operation != "disjoint":
                west, south, east, north = shapely.bounds(_literal_geometry(part.wkb)).tolist()
                params += [east, west, north, south]
                test = (
                    f"(t.fid IN (SELECT id FROM {_quote(rtree)} "  # noqa: S608 - the catalogue's table
                    f"WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?) AND {test})"
                )
            text.append(test)
            params += [part.operation, part.wkb]
    return "".join(text)


ENVELOPE = "r.minx <= ? AND r.maxx >= ? AND r.miny <= ? AND r.maxy >= ?"
"""An R-tree ``r``'s entries meeting a box; bound east, west, north, south."""


def _rtree(layer: Layer) -> str:
    return _quote(f"rtree_{layer.table}_geom")


def _scratch(path: Path, pid: int) -> Path:
    """The private copy a write session of process ``pid`` works on, beside the store."""
    return path.with_name(f".{path.stem}.{pid}.tmp.gpkg")


def remove_dead_scratch(path: Path) -> list[Path]:
    """Delete the scratch copies (and their SQLite journals) of write sessions whose process is
    gone: a load killed with -9 or by a power cut leaves a copy as large as the store behind."""
    removed = []
    for scratch in path.parent.glob(f".{glob.escape(path.stem)}.*.tmp.gpkg*"):
        pid = scratch.name.removeprefix(f".{path.stem}.").split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            scratch.unlink(missing_ok=True)
            log.warning("removed %s, left by a write session that never finished", scratch)
            removed.append(scratch)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _quote(identifier: str) -> str:
    """Quote a catalogue identifier (already checked to be alphanumeric with underscores)."""
    return '"' + identifier.replace('"', '""') + '"'


class GeoPackageStore:
    kind = "geopackage"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.versions = FileVersions(self.path, self._read_versions)
        self.built = BuiltTiles(self.path.with_suffix(".tiles.sqlite"))
        self.page_starts = PageStarts()
        remove_dead_scratch(self.path)

    # -- writing -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[_GeoPackageWriter]:
        """Changes go to a private copy of the store, which replaces it only if no error occurs."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            scratch = _scratch(self.path, os.getpid())
            try:
                if self.path.exists():
                    shutil.copyfile(self.path, scratch)
                writer = _GeoPackageWriter(scratch)
                yield writer
                writer.close()
                os.replace(scratch, self.path)
            finally:
                scratch.unlink(missing_ok=True)

    def replace_layer(self, layer: Layer, frame: gpd.GeoDataFrame, *, run: LoadRun | None) -> None:
        replace_layer(self, layer, frame, run=run)

    # -- reading -----------------------------------------------------------------------------

    def _has_table(self, table: str) -> bool:
        return self.path.exists() and table in pyogrio.list_layers(self.path)[:, 0]

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        db.create_function("intersects_bbox", 5, _intersects_bbox, deterministic=True)
        db.create_function("cql2_spatial", 3, _spatial, deterministic=True)
        db.execute("PRAGMA case_sensitive_like = ON")  # CQL2 LIKE is case-sensitive, as in PostGIS
        db.create_function("lower", 1, _lower, deterministic=True)  # Unicode, as PostgreSQL's
        try:
            yield db
        finally:
            db.close()

    def read_layer(self, layer: Layer) -> gpd.GeoDataFrame:
        if not self._has_table(layer.table):
            return empty_frame(layer)
        stored = set(pyogrio.read_info(self.path, layer=layer.table)["fields"])
        columns = [column for column in layer.properties if column in stored]
        frame = pyogrio.read_dataframe(self.path, layer=layer.table, columns=columns)
        frame = with_catalogue_columns(layer, frame)
        frame = frame.sort_values(layer.id, kind="stable").reset_index(drop=True)
        return conform(layer, frame)

    def select(self, layer: Layer, query: FeatureQuery) -> list[Record]:
        return self._select(layer, query, for_tile=False)

    def _where(self, layer: Layer, query: FeatureQuery, *, exact_bbox: bool) -> tuple[str, list[Any]]:
        """The FROM clause's joins and WHERE clause of a query, with their bound values."""
        joins, conditions, params = "", [], []  # type: tuple[str, list[str], list[Any]]
        if query.bbox is not None:
            joins = f"JOIN {_rtree(layer)} r ON r.id = t.fid"
            west, south, east, north = query.bbox
            conditions.append(ENVELOPE)
            params += [east, west, north, south]
            if exact_bbox:
                conditions.append("intersects_bbox(t.geom, ?, ?, ?, ?)")
                params += [west, south, east, north]
        for column, value in query.filters.items():
            conditions.append(f"t.{_quote(column)} = ?")
            params.append(_sqlite_value(value))
        if query.condition is not None:
            conditions.append(_condition(query.condition, params, f"rtree_{layer.table}_geom"))
        rule = layer.withheld
        if rule is not None and query.filtered_columns() & set(rule.columns):
            # A withheld value must not be found by filtering on it either.
            conditions.append(f"NOT COALESCE({_withheld_when(rule)}, 0)")
            params += [value for values in rule.when.values() for value in values]
        if query.interval is not None and layer.datetime is not None:
            start, end = query.interval
            if start is not None:
                conditions.append(f"t.{_quote(layer.datetime)} >= ?")
                params.append(start.isoformat())
            if end is not None:
                conditions.append(f"t.{_quote(layer.datetime)} <= ?")
                params.append(end.isoformat())
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        return f"{joins} {where}", params

    def _select(self, layer: Layer, query: FeatureQuery, *, for_tile: bool) -> list[Record]:
        """Features pages are exact and ordered by id; a tile needs neither (it clips, and caps
        features in index order), which spares a sort and a Python test per row."""
        if not self.path.exists():
            return []
        columns = ", ".join(f"t.{_quote(column)}" for column in layer.properties)
        with self._reading() as db:
            if not _registered(db, layer):
                return []
            # The version of the rows this connection reads (the file a load replaces is not the
            # one it has open), not the one in memory: a start is only used on the rows it came from.
            version = None if for_tile else _stored_version(db, layer)
            key = page_key(layer, version, query)
            if key is not None:
                rows = self._page_by_id(db, layer, query, columns, key, version)
            else:
                rows = self._page(db, layer, query, columns, ordered=not for_tile)
        names = list(layer.properties)
        geometries = shapely.from_wkb([_wkb(row[-1]) for row in rows])  # at once: a sixth of a page
        records = [
            Record(dict(zip(names, row[:-1], strict=True)), geometry)
            for row, geometry in zip(rows, geometries, strict=True)
        ]
        rule = layer.withheld
        if rule is None:
            return records
        return [Record(rule.public(record.properties), record.geometry) for record in records]

    def _page(
        self, db: sqlite3.Connection, layer: Layer, query: FeatureQuery, columns: str, *, ordered: bool
    ) -> list[tuple[Any, ...]]:
        """Rows of the query from OFFSET on; ``ordered`` by its keys, then id."""
        # A point's R-tree envelope is the point itself; other shapes need the exact test.
        clauses, params = self._where(layer, query, exact_bbox=ordered and layer.geometry != "Point")
        keys, key_params = [], []
        rule = layer.withheld
        for column, down in query.sortby:
            key = f"t.{_quote(column)}"
            if rule is not None and column in rule.columns:
                # A withheld value must not order the rows either: they sort as the null they are served as.
                key = f"CASE WHEN {_withheld_when(rule)} THEN NULL ELSE {key} END"
                key_params += [value for values in rule.when.values() for value in values]
            keys.append(f"{key} {'DESC' if down else 'ASC'} NULLS LAST")
        order = "ORDER BY " + ", ".join([*keys, f"t.{_quote(layer.id)}"]) if ordered else ""
        statement = (
            f"SELECT {columns}, t.geom FROM {_quote(layer.table)} t {clauses} "  # noqa: S608 - catalogue names
            f"{order} LIMIT ? OFFSET ?"
        )
        order_params = key_params if ordered else []
        return db.execute(statement, [*params, *order_params, query.limit, query.offset]).fetchall()

    def _page_by_id(
        self,
        db: sqlite3.Connection,
        layer: Layer,
        query: FeatureQuery,
        columns: str,
        key: Hashable,
        version: LayerVersion | None,
    ) -> list[tuple[Any, ...]]:
        """A page of the layer, or of a bounding box of it, in id order: from the nearest page start
        already served (``page_starts``). While the rows to step over are fewer than the box
        holds, it walks the id index asking the R-tree about each row; a box holding few rows is
        read from the R-tree and sorted."""
        table, identifier = _quote(layer.table), _quote(layer.id)
        rtree = _rtree(layer)
        start_offset, start_id = self.page_starts.nearest(key, query.offset)
        joins, conditions, params = "", [], []  # type: tuple[str, list[str], list[Any]]
        if start_id is not None:
            conditions.append(f"t.{identifier} >= ?")
            params.append(start_id)
        if query.bbox is not None:
            west, south, east, north = query.bbox
            box = [east, west, north, south]
            in_box = self._in_box(db, layer, key, query.bbox)
            in_layer = self.page_starts.remembered(  # the whole layer's key
                page_key(layer, version, FeatureQuery()),
                lambda: db.execute(f"SELECT count(*) FROM {rtree}").fetchone()[0],  # noqa: S608
            )
            stepped_over = (query.offset - start_offset + query.limit) * in_layer / max(in_box, 1)
            if stepped_over <= in_box:
                conditions.append(f"EXISTS (SELECT 1 FROM {rtree} r WHERE r.id = t.fid AND {ENVELOPE})")  # noqa: S608
            else:
                joins = f"JOIN {rtree} r ON r.id = t.fid"
                conditions.append(ENVELOPE)
            params += box
            if layer.geometry != "Point":
                conditions.append("intersects_bbox(t.geom, ?, ?, ?, ?)")
                params += [west, south, east, north]
        where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
        statement = (
            f"SELECT {columns}, t.geom FROM {table} t {joins} {where} "  # noqa: S608 - catalogue names
            f"ORDER BY t.{identifier} LIMIT ? OFFSET ?"
        )
        rows = db.execute(statement, [*params, query.limit, query.offset - start_offset]).fetchall()
        if rows:
            at = list(layer.properties).index(layer.id)
            self.page_starts.remember(key, query.offset, rows[0][at])
            self.page_starts.remember(key, query.offset + len(rows) - 1, rows[-1][at])
        return rows

    def _in_box(self, db: sqlite3.Connection, layer: Layer, key: Hashable, bbox: Bbox) -> int:
        """How many R-tree entries meet ``bbox``: once per page key (the layer version's box)."""
        west, south, east, north = bbox
        statement = f"SELECT count(*) FROM {_rtree(layer)} r WHERE {ENVELOPE}"  # noqa: S608 - catalogue name
        return self.page_starts.remembered(
            key, lambda: int(db.execute(statement, [east, west, north, south]).fetchone()[0])
        )

    def _rows(self, layer: Layer, query: FeatureQuery, columns: str) -> list[tuple[Any, ...]]:
        """Unordered rows of the layer (``columns``: catalogue names only) matching the query: the
        points a tile aggregates, envelope test only (a point's envelope is the point)."""
        if not self.path.exists():
            return []
        clauses, params = self._where(layer, query, exact_bbox=False)
        statement = f"SELECT {columns} FROM {_quote(layer.table)} t {clauses}"  # noqa: S608 - catalogue names
        with self._reading() as db:
            if (
                db.execute("SELECT 1 FROM gpkg_contents WHERE table_name = ?", [layer.table]).fetchone()
                is None
            ):
                return []
            return db.execute(statement, params).fetchall()

    def count(self, layer: Layer, query: FeatureQuery, *, exact_up_to: int) -> Count | None:
        """Exact; a filtered count stops past ``exact_up_to`` (SQLite has no estimate: None).
        Once per query and layer version."""
        key = count_key(layer, self.layer_version(layer), query, exact_up_to)
        return self.page_starts.remembered(key, lambda: self._count(layer, query, exact_up_to))

    def _count(self, layer: Layer, query: FeatureQuery, exact_up_to: int) -> Count | None:
        if not self.path.exists():
            return Count(0, exact=True)
        clauses, params = self._where(layer, query, exact_bbox=layer.geometry != "Point")
        table = _quote(layer.table)
        with self._reading() as db:
            if (
                db.execute("SELECT 1 FROM gpkg_contents WHERE table_name = ?", [layer.table]).fetchone()
                is None
            ):
                return Count(0, exact=True)
            if not clauses.strip():  # the whole table: SQLite counts the smallest index
                return Count(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0], exact=True)  # noqa: S608
            key = page_key(layer, _stored_version(db, layer), dataclasses.replace(query, sortby=()))
            if layer.geometry == "Point" and query.bbox is not None and key is not None:
                # A point's envelope is the point: the R-tree alone answers, once per version.
                return Count(self._in_box(db, layer, key, query.bbox), exact=True)
            statement = f"SELECT count(*) FROM (SELECT 1 FROM {table} t {clauses} LIMIT ?)"  # noqa: S608
            found = db.execute(statement, [*params, exact_up_to + 1]).fetchone()[0]
        return Count(found, exact=True) if found <= exact_up_to else None

    def tile(self, layer: Layer, tile: morecantile.Tile, query: FeatureQuery) -> bytes:
        """Built once per layer version and catalogue entry (see ``built_tiles``), then read back."""
        version = self.layer_version(layer)
        if version is None:
            return self._build_tile(layer, tile, query)
        # The catalogue entry too: a cap or a property changed in its TOML changes the tiles.
        entry = hashlib.sha256(layer.model_dump_json().encode()).hexdigest()[:16]
        key = (layer.name, f"{version.tag}:{entry}", tile.z, tile.x, tile.y, repr(query_key(query)))
        content = self.built.get(*key)
        if content is None:
            content = self._build_tile(layer, tile, query)
            self.built.put(*key, content)
        return content

    def _build_tile(self, layer: Layer, tile: morecantile.Tile, query: FeatureQuery) -> bytes:
        cap = layer.max_features_per_tile
        wanted = cell_filter(layer, query) if aggregates(layer) else None
        counted = None if wanted is None else self._counted(layer, tile, wanted)
        if counted is not None and (counted.empty or counted["n"].sum() > cap):
            return encode_cells(layer, tile, counted)
        search = FeatureQuery(
            bbox=lonlat_bounds(tile),
            limit=cap + 1 if aggregates(layer) or not layer.tile_cap_per else UNLIMITED,
            filters=query.filters,
            interval=query.interval,
        )
        records = self._select(layer, search, for_tile=True)
        if not aggregates(layer):
            check_cap(layer, tile, most_per_group(layer, records))  # all of them, or none
        if len(records) <= cap or not aggregates(layer):
            content = encode_tile(layer, records, tile)
            if not aggregates(layer) or len(content) <= BYTE_BUDGET:
                return content
        return self._aggregate(layer, tile, query)

    def _counted(self, layer: Layer, tile: morecantile.Tile, wanted: CellFilter) -> pd.DataFrame | None:
        """The tile's rows of the cells counted at load that match, or None when the load did not
        count this tile (it was under the cap)."""
        extra = grid_levels(layer)
        cells = (tile.z, tile.z + extra, tile.x << extra, ((tile.x + 1) << extra) - 1,
                 tile.y << extra, ((tile.y + 1) << extra) - 1)  # fmt: skip
        inside = "zoom = ? AND level = ? AND cx BETWEEN ? AND ? AND cy BETWEEN ? AND ?"
        table = _quote(cells_table(layer))
        rows = "year IS NULL" if wanted.years is None else "year IS NOT NULL"
        conditions = [rows]
        params: list[object] = [*cells]
        for operator, year in wanted.year_bounds():
            conditions.append(f"year {operator} ?")
            params.append(year)
        if wanted.summary is not None:
            conditions.append("summary = ?")
            params.append(wanted.summary)
        with self._reading() as db:
            if not _has_sqlite_table(db, cells_table(layer)):
                return None
            counted = f"SELECT 1 FROM {table} WHERE {inside} AND {rows} LIMIT 1"  # noqa: S608
            if db.execute(counted, cells).fetchone() is None:
                return None
            where = " AND ".join([inside, *conditions])
            statement = f"SELECT cx, cy, summary, n, sx, sy FROM {table} WHERE {where}"  # noqa: S608
            found = db.execute(statement, params).fetchall()
        return pd.DataFrame(found, columns=["cx", "cy", "summary", "n", "sx", "sy"])

    def _aggregate(self, layer: Layer, tile: morecantile.Tile, query: FeatureQuery) -> bytes:
        """The tile's grid of aggregates, from every matching point inside it."""
        summary = summary_property(layer)
        inside = FeatureQuery(
            bbox=lonlat_bounds(tile, buffer=1), limit=-1, filters=query.filters, interval=query.interval
        )
        columns = f"t.geom, t.{_quote(summary)}" if summary else "t.geom"
        rows = self._rows(layer, inside, columns)
        if not rows:
            return b""
        points = shapely.get_coordinates(shapely.from_wkb([_wkb(row[0]) for row in rows]))
        tallies = tally(layer, tile, points, [row[1] for row in rows] if summary else None)
        return encode_cells(layer, tile, tallies)

    def layer_version(self, layer: Layer) -> LayerVersion | None:
        """From memory, re-read only when a write replaced the file."""
        return self.versions.current().get(layer.name)

    def _read_versions(self) -> Versions:
        with self._reading() as db:
            if not _has_sqlite_table(db, "layer_versions"):
                return {}
            rows = db.execute("SELECT layer, tag, changed_at FROM layer_versions").fetchall()
        return {layer: LayerVersion(tag, datetime.fromisoformat(changed)) for layer, tag, changed in rows}

    def load_runs(self) -> list[LoadRun]:
        if not self.path.exists():
            return []
        with self._reading() as db:
            if not _has_sqlite_table(db, RUNS_TABLE):
                return []
            present = {row[1] for row in db.execute(f"PRAGMA table_info({RUNS_TABLE})")}
            columns = ", ".join(f if f in present else "NULL" for f in LOAD_RUN_FIELDS)
            rows = db.execute(f"SELECT {columns} FROM {RUNS_TABLE} ORDER BY started_at").fetchall()  # noqa: S608
        return [LoadRun(*row) for row in rows]

    def extent(self, layer: Layer) -> Bbox | None:
        if not self.path.exists():
            return None
        rtree = _rtree(layer)
        with self._reading() as db:
            if not _has_sqlite_table(db, f"rtree_{layer.table}_geom"):
                return None
            row = db.execute(f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {rtree}").fetchone()  # noqa: S608
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])

    def close(self) -> None:
        """Nothing to close: every read opens and closes its own connection."""

    # -- audit log (issue 19) ----------------------------------------------------------------

    @property
    def audit_path(self) -> Path:
        """The audit log: a SQLite file beside the GeoPackage, not a table inside it. A load
        replaces the GeoPackage whole (copy, change, move over): an entry appended to it while a
        load runs would vanish when the copy moves over it, and waiting for the load's lock would
        hold the read that is being logged for the load's whole length. Beside it, in WAL mode,
        entries are appended at any time and readers never wait; and the data file, which is
        copied and shared, carries nobody's identity."""
        return self.path.with_suffix(".audit.sqlite")

    @contextlib.contextmanager
    def _audit(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.audit_path, timeout=10)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(ACCESS_SCHEMA)
            yield db
        finally:
            db.close()

    def record_access(self, entry: AccessEntry) -> None:
        values = {**entry.as_dict(), "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds")}
        marks = ", ".join("?" * len(ACCESS_FIELDS))
        insert = f"INSERT INTO access_log ({', '.join(ACCESS_FIELDS)}) VALUES ({marks})"  # noqa: S608
        with self._audit() as db, db:
            db.execute(insert, [values[name] for name in ACCESS_FIELDS])

    def access_log(self, limit: int = 1000) -> list[AccessEntry]:
        if not self.audit_path.exists():
            return []
        statement = f"SELECT {', '.join(ACCESS_FIELDS)} FROM access_log ORDER BY at DESC, id DESC LIMIT ?"  # noqa: S608
        with self._audit() as db:
            rows = db.execute(statement, [max(limit, 0)]).fetchall()
        return [AccessEntry(datetime.fromisoformat(at), *rest) for at, *rest in rows]


class _GeoPackageWriter:
    """Writes layers into the session's scratch copy of the store, chunk by chunk."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.fresh: set[str] = set()
        self.finished: list[tuple[Layer, LoadRun | None]] = []
        self.counters: dict[str, CellCounter] = {}

    def begin(self, layer: Layer) -> None:
        self.fresh.add(layer.name)
        if aggregates(layer):
            self.counters[layer.name] = CellCounter(layer)

    def append(self, layer: Layer, frame: gpd.GeoDataFrame) -> None:
        rows = conform(layer, frame)
        if rows.empty and layer.name not in self.fresh:
            return
        if layer.name in self.counters:
            self.counters[layer.name].add(rows)
        for column, kind in layer.properties.items():
            if kind == "date":
                text = rows[column].dt.strftime("%Y-%m-%d").astype(object)
                rows[column] = text.where(text.notna(), None)
        pyogrio.write_dataframe(
            rows,
            self.scratch,
            layer=layer.table,
            driver="GPKG",
            promote_to_multi=layer.geometry.startswith("Multi"),
            geometry_type=layer.geometry,
            append=layer.name not in self.fresh,
        )
        self.fresh.discard(layer.name)

    def finish(self, layer: Layer, run: LoadRun | None) -> None:
        if layer.name in self.fresh:
            self.append(layer, empty_frame(layer))
        with contextlib.closing(sqlite3.connect(self.scratch)) as db, db:
            db.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {_quote(f'idx_{layer.table}_{layer.id}')} "
                f"ON {_quote(layer.table)} ({_quote(layer.id)})"
            )
            if layer.name in self.counters:
                _write_cells(db, layer, self.counters.pop(layer.name).cells())
            db.execute(
                "CREATE TABLE IF NOT EXISTS layer_versions "
                "(layer TEXT PRIMARY KEY, tag TEXT NOT NULL, changed_at TEXT NOT NULL)"
            )
            db.execute(
                "INSERT INTO layer_versions VALUES (?, ?, ?) ON CONFLICT (layer) "
                "DO UPDATE SET tag = excluded.tag, changed_at = excluded.changed_at",
                [layer.name, uuid.uuid4().hex, datetime.now(UTC).isoformat()],
            )
            if run is not None:
                _record_run(db, run)

    def record(self, run: LoadRun) -> None:
        with contextlib.closing(sqlite3.connect(self.scratch)) as db, db:
            _record_run(db, run)

    def close(self) -> None:
        """Reclaim the space of replaced rows, so the file does not grow with every load."""
        with contextlib.closing(sqlite3.connect(self.scratch)) as db:
            db.execute("VACUUM")


def _write_cells(db: sqlite3.Connection, layer: Layer, counted: Iterator[pd.DataFrame]) -> None:
    """Replace the layer's cells table (see ``observatory.point_cells``) with the ``counted`` rows."""
    table = _quote(cells_table(layer))
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(
        f"CREATE TABLE {table} (zoom INTEGER NOT NULL, level INTEGER NOT NULL, cx INTEGER NOT NULL, "
        "cy INTEGER NOT NULL, year INTEGER, summary TEXT, n INTEGER NOT NULL, sx REAL NOT NULL, "
        "sy REAL NOT NULL)"
    )
    insert = f"INSERT INTO {table} VALUES ({', '.join('?' for _ in CELL_COLUMNS)})"  # noqa: S608
    for cells in counted:
        db.executemany(insert, cells.astype(object).where(cells.notna(), None).itertuples(index=False))
    db.execute(f"CREATE INDEX {_quote(f'{cells_table(layer)}_cell_idx')} ON {table} (zoom, cx, cy)")


def _record_run(db: sqlite3.Connection, run: LoadRun) -> None:
    db.execute(f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (run_id TEXT NOT NULL PRIMARY KEY)")
    present = {row[1] for row in db.execute(f"PRAGMA table_info({RUNS_TABLE})")}
    for field in LOAD_RUN_FIELDS:
        if field not in present:
            kind = "INTEGER" if field.startswith("rows_") else "TEXT"
            db.execute(f"ALTER TABLE {RUNS_TABLE} ADD COLUMN {field} {kind}")
    values = run.as_dict()
    db.execute(
        f"INSERT INTO {RUNS_TABLE} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",  # noqa: S608
        list(values.values()),
    )


def _registered(db: sqlite3.Connection, layer: Layer) -> bool:
    """Whether the layer's table is in the GeoPackage (a plain SQLite look-up: opening the file
    with GDAL on every request costs more)."""
    return (
        db.execute("SELECT 1 FROM gpkg_contents WHERE table_name = ?", [layer.table]).fetchone() is not None
    )


def _stored_version(db: sqlite3.Connection, layer: Layer) -> LayerVersion | None:
    if not _has_sqlite_table(db, "layer_versions"):
        return None
    row = db.execute("SELECT tag, changed_at FROM layer_versions WHERE layer = ?", [layer.name]).fetchone()
    return None if row is None else LayerVersion(row[0], datetime.fromisoformat(row[1]))


def _has_sqlite_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [name]).fetchone() is not None


def _sqlite_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _withheld_when(rule: Withholding) -> str:
    """SQL true for the rows whose values ``rule`` withholds; its values are bound in ``when``'s order."""
    return " AND ".join(f"t.{_quote(c)} IN ({', '.join('?' * len(v))})" for c, v in rule.when.items())


ACCESS_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, subject TEXT NOT NULL, role TEXT NOT NULL,
    via TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, layer TEXT, status INTEGER NOT NULL
)
"""
"""The audit log's one table (``GeoPackageStore.audit_path``); ``at`` in UTC ISO 8601, so that text
order is time order."""
