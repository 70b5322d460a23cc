"""The production store: PostGIS, schema by migrations, tiles by ``ST_AsMVT``.

Names in SQL come only from the layer catalogue (``psycopg.sql.Identifier``); values are always
bound parameters.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC
from importlib import resources
from typing import Any, TypeVar

import geopandas as gpd
import morecantile
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import shapely
import sqlalchemy
from psycopg import Copy, sql
from psycopg.conninfo import make_conninfo
from psycopg.copy import QueuedLibpqWriter

from layers import Layer
from observatory.errors import InvalidParameter, StoreUnavailable
from observatory.point_cells import (
    COLUMNS,
    HALF_WORLD,
    CellCounter,
    CellFilter,
    cell_filter,
    cells_table,
    grid_levels,
)
from observatory.store._deadline import WATCHDOG
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
)
from observatory.store.page_starts import PageStarts, count_key, page_key
from observatory.store.versions import ListenedVersions, notify, read_versions
from observatory.tiles import (
    BUFFER,
    BYTE_BUDGET,
    EXTENT,
    TMS,
    aggregates,
    check_cap,
    lonlat_bounds,
    summary_property,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
POOL_SIZE = 20
"""Connections per store (and per server process): requests past it wait up to connect_timeout."""
READ_SETTINGS = {
    # Pages deep in a large layer look costly to the planner, which then compiles them with LLVM:
    # 536 of 862 ms for a page at offset 49,000 of a million permits.
    "jit": "off",
    # psycopg prepares a statement run five times; PostgreSQL then may switch to a generic plan,
    # blind to the values: a page of permits in a box from a seek id went from an index walk
    # (13 ms) to sorting the whole box (490 ms). Plan each read for its values.
    "plan_cache_mode": "force_custom_plan",
    # Scans start at the table's first page and run in one process: when the cap cuts a dense
    # tile, every request keeps the same features, so equal ETags mean equal bytes.
    "synchronize_seqscans": "off",
    "max_parallel_workers_per_gather": "0",
    # Aggregating a zoomed-out point tile live groups up to the layer's every row: in memory, not
    # in temporary files (4 MB, the default, spills at about 100,000 rows).
    "work_mem": "64MB",
}
"""Settings of the pooled reading sessions, given when they connect (with the statement timeout):
a read is then one statement in autocommit, one round trip, not BEGIN, SET, the read and COMMIT."""


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _libpq_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _sqlalchemy_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


class PostGISStore:
    kind = "postgis"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "observatory",
        connect_timeout: float = 5.0,
        statement_timeout: float = 15.0,
    ) -> None:
        self.schema = schema
        self.statement_timeout = statement_timeout
        # libpq counts connect_timeout in whole seconds and treats anything under 2 as 2.
        connect_seconds = max(2, math.ceil(connect_timeout))
        reading = {
            "search_path": f"{schema},public",
            "statement_timeout": f"{round(statement_timeout * 1000)}ms",
        }
        self.engine = sqlalchemy.create_engine(
            _sqlalchemy_url(url),
            isolation_level="AUTOCOMMIT",
            # No pre-ping: on a frozen server the ping itself would block. Reads run under a
            # deadline instead, and a connection the server dropped is discarded and retried once.
            pool_pre_ping=False,
            pool_timeout=connect_timeout,
            # Connections past the pool's size are closed when returned: under concurrent requests
            # each one would be a new backend (fork, PostGIS and PROJ loaded again, statements
            # never prepared). Keep as many as the server runs requests at once, none beyond.
            pool_size=POOL_SIZE,
            max_overflow=0,
            connect_args={
                "options": " ".join(
                    f"-c {name}={value}" for name, value in {**reading, **READ_SETTINGS}.items()
                ),
                "connect_timeout": connect_seconds,
            },
        )
        self._where_text = sqlalchemy.make_url(self.engine.url).render_as_string(hide_password=True)
        self._conninfo = make_conninfo(
            _libpq_url(url), connect_timeout=connect_seconds, options=f"-c search_path={schema},public"
        )
        try:
            migrate(make_conninfo(_libpq_url(url), connect_timeout=connect_seconds), schema)
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"cannot reach PostGIS at {self._where_text}: {_reason(error)}") from None
        self.versions = ListenedVersions(self._conninfo, schema)
        self.page_starts = PageStarts()

    def _unavailable(self, error: BaseException, what: str) -> StoreUnavailable:
        """The error a client sees (no host, no driver text); the details go to the log."""
        log.warning("PostGIS at %s: %s: %s", self._where_text, what, _reason(error))
        return StoreUnavailable(f"the database {what}; retry later")

    @contextmanager
    def _cursor(self, *, retry: list[bool] | None = None) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor of a pooled reading session (autocommit, under the statement timeout), under
        a client-side deadline.

        Connection failures become :class:`StoreUnavailable` (503). When ``retry`` is given and
        the server dropped a pooled connection (a restart), ``retry[0]`` is set and the pool is
        emptied, so the caller may try once more on a fresh connection.
        """
        try:
            connection = self.engine.raw_connection()
        except sqlalchemy.exc.TimeoutError as error:
            raise self._unavailable(error, "is busy (no free connection)") from None
        except (sqlalchemy.exc.DBAPIError, psycopg.OperationalError) as error:  # the pool's connect
            raise self._unavailable(error, "is unreachable") from None
        driver: psycopg.Connection[Any] = connection.driver_connection  # type: ignore[assignment]
        deadline = self.statement_timeout + 2  # time for the server to cancel on its own first
        try:
            with WATCHDOG.guard(driver.pgconn.socket, deadline) as guard:
                try:
                    with driver.cursor() as cursor:
                        yield cursor
                except psycopg.OperationalError as error:
                    connection.invalidate()
                    if isinstance(error, psycopg.errors.QueryCanceled) or guard.fired:
                        raise self._unavailable(error, "did not answer in time") from None
                    if retry is not None and not retry[0]:
                        retry[0] = True
                        self.engine.dispose()  # its other idle connections died with this one
                    raise self._unavailable(error, "dropped the connection") from None
                finally:
                    connection.close()
        except psycopg.OperationalError as error:  # closing a connection the server dropped
            raise self._unavailable(error, "dropped the connection") from None

    def _read(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """``work(cursor)``, tried a second time on a fresh connection if the server dropped the
        pooled one (reads are idempotent)."""
        retry = [False]
        try:
            with self._cursor(retry=retry) as cursor:
                return work(cursor)
        except StoreUnavailable:
            if not retry[0]:
                raise
        with self._cursor() as cursor:
            return work(cursor)

    def _table(self, layer: Layer) -> sql.Composable:
        return sql.Identifier(self.schema, layer.table)

    # -- writing -----------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """A connection of its own (not pooled), in autocommit: for a write session."""
        return psycopg.connect(self._conninfo, autocommit=True)

    @contextmanager
    def writing(self) -> Iterator[_PostGISWriter]:
        """Layers are staged with COPY into tables of their own (committed, but no reader queries
        them), their keys and indexes built two at a time on two connections, then all swapped in
        by renaming in one short transaction: readers see the old rows until that commit and never
        wait long. One write session at a time per schema (an advisory lock)."""
        with self._connect() as connection:
            connection.execute("SELECT pg_advisory_lock(hashtext(%s))", [self.schema])
            writer = _PostGISWriter(connection, self.schema, self._connect)
            try:
                try:
                    yield writer
                except BaseException as error:
                    writer.abort(error)
                    raise
                with connection.transaction():
                    writer.swap()
                    notify(writer.cursor, self.schema)
                self.versions.replace(read_versions(writer.cursor, self.schema))
            finally:
                writer.close()

    def replace_layer(self, layer: Layer, frame: gpd.GeoDataFrame, *, run: LoadRun | None) -> None:
        replace_layer(self, layer, frame, run=run)

    # -- reading -----------------------------------------------------------------------------

    def read_layer(self, layer: Layer) -> gpd.GeoDataFrame:
        query = sql.SQL("SELECT {columns}, geom FROM {table} ORDER BY {id}").format(
            columns=sql.SQL(", ").join(map(sql.Identifier, layer.properties)),
            table=self._table(layer),
            id=sql.Identifier(layer.id),
        )
        try:
            with self.engine.connect() as connection:
                raw: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
                # A whole layer may take a while (indicators read every permit): a wide deadline,
                # there only so that a frozen server does not hold the caller forever.
                with WATCHDOG.guard(raw.pgconn.socket, max(60.0, 4 * self.statement_timeout)):
                    raw.execute("SET statement_timeout = 0")
                    try:
                        frame = gpd.read_postgis(query.as_string(raw), connection, geom_col="geom")
                    finally:
                        raw.execute("RESET statement_timeout")  # the session's own, from connect
        except sqlalchemy.exc.TimeoutError as error:
            raise self._unavailable(error, "is busy (no free connection)") from None
        except (sqlalchemy.exc.OperationalError, psycopg.OperationalError) as error:
            raise self._unavailable(error, "is unreachable or dropped the connection") from None
        if frame.empty:
            return empty_frame(layer)
        return conform(layer, frame.set_crs("EPSG:4326", allow_override=True))

    def _where(self, layer: Layer, query: FeatureQuery) -> tuple[sql.Composable, dict[str, Any]]:
        conditions: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if query.bbox is not None:
            conditions.append(
                sql.SQL(
                    "ST_Intersects(geom, ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326))"
                )
            )
            params.update(zip(("west", "south", "east", "north"), query.bbox, strict=True))
        for index, (column, value) in enumerate(query.filters.items()):
            conditions.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(f"f{index}")))
            params[f"f{index}"] = value
        if query.condition is not None:
            conditions.append(_condition(query.condition, params))
        rule = layer.withheld
        if rule is not None and query.filtered_columns() & set(rule.columns):
            # A withheld value must not be found by filtering on it either.
            conditions.append(sql.SQL("NOT COALESCE({}, false)").format(_withheld_condition(layer)))
            params.update(_withheld_params(layer))
        if query.interval is not None and layer.datetime is not None:
            start, end = query.interval
            if start is not None:
                conditions.append(sql.SQL("{} >= %(start)s").format(sql.Identifier(layer.datetime)))
                params["start"] = start
            if end is not None:
                conditions.append(sql.SQL("{} <= %(end)s").format(sql.Identifier(layer.datetime)))
                params["end"] = end
        if not conditions:
            return sql.SQL("TRUE"), params
        return sql.SQL(" AND ").join(conditions), params

    def select(self, layer: Layer, query: FeatureQuery) -> list[Record]:
        """A page; in id order (no ``sortby``), from the nearest page start already served
        (``page_starts``: keyset behind offset URLs). Each row comes with the layer's version
        read in the same statement: a start remembered for other rows than those read (a load
        swapped them in before this process heard of it) is not used, and none is remembered."""
        version = self.layer_version(layer)
        key = page_key(layer, version, query)
        start = (0, None) if key is None else self.page_starts.nearest(key, query.offset)
        rows = self._page(layer, query, *start)
        current = version is not None and bool(rows) and rows[0][-2] == version.tag
        if start[1] is not None and not current:
            rows = self._page(layer, query, 0, None)
        names = list(layer.properties)
        if key is not None and current:
            at = names.index(layer.id)
            self.page_starts.remember(key, query.offset, rows[0][at])
            self.page_starts.remember(key, query.offset + len(rows) - 1, rows[-1][at])
        return [
            Record(dict(zip(names, row[:-2], strict=True)), shapely.from_wkb(bytes(row[-1]))) for row in rows
        ]

    def _page(self, layer: Layer, query: FeatureQuery, start_offset: int, start_id: Any) -> list[Any]:
        """Rows of a page (the layer's version tag and the geometry last), from ``start_id`` on
        at offset ``start_offset`` when given."""
        where, params = self._where(layer, query)
        if start_id is not None:
            where = sql.SQL("{} >= %(start_id)s AND {}").format(sql.Identifier(layer.id), where)
            params["start_id"] = start_id
        order = [
            sql.SQL("{} DESC NULLS LAST" if descending else "{} ASC NULLS LAST").format(
                sql.Identifier(column)
            )
            for column, descending in query.sortby
        ]
        statement = sql.SQL(
            "SELECT {columns}, (SELECT tag FROM {versions} WHERE layer = %(layer_name)s), ST_AsBinary(geom) "
            "FROM {table} WHERE {where} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
        ).format(
            columns=_served_columns(layer),
            versions=sql.Identifier(self.schema, "layer_versions"),
            table=self._table(layer),
            where=where,
            order=sql.SQL(", ").join([*order, sql.Identifier(layer.id)]),
        )
        params.update(_withheld_params(layer), limit=query.limit, offset=query.offset - start_offset)
        params["layer_name"] = layer.name

        def fetch(cursor: psycopg.Cursor[Any]) -> list[Any]:
            cursor.execute(statement, params)
            return cursor.fetchall()

        return self._read(_evaluable(fetch))

    def tile(self, layer: Layer, tile: morecantile.Tile, query: FeatureQuery) -> bytes:
        if not aggregates(layer):
            per = layer.tile_cap_per
            groups = sql.SQL(", ").join(map(sql.Identifier, per)) if per else sql.SQL("()")
            row = self._tile_row(layer, tile, query, _sql("tile"), {"groups": groups}, {})
            check_cap(layer, tile, int(row[1]))  # all of them, or none
            return bytes(row[0]) if row[0] else b""
        wanted = cell_filter(layer, query)
        if wanted is not None:
            counted, total, content = self._counted_tile(layer, tile, wanted)
            if counted and total > layer.max_features_per_tile:
                return content
            if counted and total == 0:
                return b""
        inner = lonlat_bounds(tile, buffer=1)  # a pixel more: the cells decide what is inside
        names = {"cells_from_tallies": _cells_from_tallies(layer), "summary": _summary_column(layer)}
        params = {
            **dict(zip(("inner_west", "inner_south", "inner_east", "inner_north"), inner, strict=True)),
            **_grid_params(layer, tile),
            "aggregate": False,
        }
        statement = _sql("point_tile")
        content = self._tile(layer, tile, query, statement, names, params)
        if len(content) > BYTE_BUDGET:
            content = self._tile(layer, tile, query, statement, names, {**params, "aggregate": True})
        return content

    def _counted_tile(
        self, layer: Layer, tile: morecantile.Tile, wanted: CellFilter
    ) -> tuple[bool, int, bytes]:
        """From the cells counted at load: whether the tile was (it held more records than the
        cap), how many of its records match, and their tile of aggregates."""
        params: dict[str, Any] = {**_grid_params(layer, tile), "extent": EXTENT, "name": layer.name}
        rows = sql.SQL("year IS NULL" if wanted.years is None else "year IS NOT NULL")
        conditions = [rows]
        for index, (operator, year) in enumerate(wanted.year_bounds()):
            conditions.append(sql.SQL(f"year {operator} %(year{index})s"))
            params[f"year{index}"] = year
        if wanted.summary is not None:
            conditions.append(sql.SQL("summary = %(summary)s"))
            params["summary"] = wanted.summary
        statement = _sql("point_tile_cells").format(
            cells=sql.Identifier(self.schema, cells_table(layer)),
            where=sql.SQL(" AND ").join(conditions),
            rows=rows,
            cells_from_tallies=_cells_from_tallies(layer),
        )

        def fetch(cursor: psycopg.Cursor[Any]) -> tuple[bool, int, bytes]:
            cursor.execute(statement, params)
            counted, total, content = _first(cursor)
            return bool(counted), int(total or 0), bytes(content) if content else b""

        return self._read(fetch)

    def _tile(
        self,
        layer: Layer,
        tile: morecantile.Tile,
        query: FeatureQuery,
        template: sql.SQL,
        names: dict[str, sql.Composable],
        extra: dict[str, Any],
    ) -> bytes:
        """``template`` (from ``sql/``) run for the tile, with the layer's columns, table and the
        query's conditions, plus ``names`` and ``extra`` parameters."""
        row = self._tile_row(layer, tile, query, template, names, extra)
        return bytes(row[0]) if row and row[0] else b""

    def _tile_row(
        self,
        layer: Layer,
        tile: morecantile.Tile,
        query: FeatureQuery,
        template: sql.SQL,
        names: dict[str, sql.Composable],
        extra: dict[str, Any],
    ) -> Any:
        """The row ``template`` gives for the tile (see ``_tile``)."""
        where, params = self._where(layer, FeatureQuery(filters=query.filters, interval=query.interval))
        statement = template.format(
            columns=_served_columns(layer), table=self._table(layer), where=where, **names
        )
        # The search box is the buffered tile in lon/lat, clamped to ±180° (a transformed
        # ST_TileEnvelope margin wraps around on the matrix's edges and finds nothing).
        west, south, east, north = lonlat_bounds(tile)
        params.update(
            {"z": tile.z, "x": tile.x, "y": tile.y, "west": west, "south": south, "east": east,
             "north": north, "extent": EXTENT, "buffer": BUFFER, "cap": layer.max_features_per_tile,
             "name": layer.name, **_withheld_params(layer), **extra}
        )  # fmt: skip

        def fetch(cursor: psycopg.Cursor[Any]) -> Any:
            cursor.execute(statement, params)
            return cursor.fetchone()

        return self._read(fetch)

    def count(self, layer: Layer, query: FeatureQuery, *, exact_up_to: int) -> Count | None:
        """Exact when the planner expects at most ``exact_up_to`` rows; else its estimate. Once
        per query and layer version."""
        key = count_key(layer, self.layer_version(layer), query, exact_up_to)
        return self.page_starts.remembered(key, lambda: self._count(layer, query, exact_up_to))

    def _count(self, layer: Layer, query: FeatureQuery, exact_up_to: int) -> Count | None:
        where, params = self._where(layer, query)
        rows = sql.SQL("SELECT 1 FROM {table} WHERE {where}").format(table=self._table(layer), where=where)
        params.update(_withheld_params(layer))

        def fetch(cursor: psycopg.Cursor[Any]) -> Count:
            cursor.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(rows), params)
            estimate = int(_first(cursor)[0][0]["Plan"]["Plan Rows"])
            if estimate > exact_up_to:
                return Count(estimate, exact=False)
            cursor.execute(sql.SQL("SELECT count(*) FROM ({}) AS matching").format(rows), params)
            return Count(int(_first(cursor)[0]), exact=True)

        return self._read(_evaluable(fetch))

    def layer_version(self, layer: Layer) -> LayerVersion | None:
        """From memory while the version listener is connected; from the table otherwise."""
        versions = self.versions.current()
        if versions is None:
            versions = self._read(lambda cursor: read_versions(cursor, self.schema))
        return versions.get(layer.name)

    def extent(self, layer: Layer) -> Bbox | None:
        statement = sql.SQL(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            "FROM (SELECT ST_Extent(geom) AS e FROM {}) AS extent"
        ).format(self._table(layer))
        with self._cursor() as cursor:
            cursor.execute(statement)
            row = cursor.fetchone()
        return None if row is None or row[0] is None else (row[0], row[1], row[2], row[3])

    def load_runs(self) -> list[LoadRun]:
        statement = sql.SQL("SELECT {} FROM {} ORDER BY started_at").format(
            sql.SQL(", ").join(map(sql.Identifier, LOAD_RUN_FIELDS)),
            sql.Identifier(self.schema, "load_runs"),
        )
        with self._cursor() as cursor:
            cursor.execute(statement)
            return [LoadRun(*row) for row in cursor.fetchall()]

    def close(self) -> None:
        self.versions.close()
        self.engine.dispose()

    # -- audit log (issue 19) ----------------------------------------------------------------

    def record_access(self, entry: AccessEntry) -> None:
        """One INSERT on a pooled session (autocommit): committed when it returns."""
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(self.schema, "access_log"),
            sql.SQL(", ").join(map(sql.Identifier, ACCESS_FIELDS)),
            sql.SQL(", ").join(sql.Placeholder(name) for name in ACCESS_FIELDS),
        )
        with self._cursor() as cursor:
            cursor.execute(statement, {name: getattr(entry, name) for name in ACCESS_FIELDS})

    def access_log(self, limit: int = 1000) -> list[AccessEntry]:
        statement = sql.SQL("SELECT {} FROM {} ORDER BY at DESC, id DESC LIMIT %s").format(
            sql.SQL(", ").join(map(sql.Identifier, ACCESS_FIELDS)),
            sql.Identifier(self.schema, "access_log"),
        )

        def fetch(cursor: psycopg.Cursor[Any]) -> list[AccessEntry]:
            cursor.execute(statement, [max(limit, 0)])
            return [AccessEntry(at.astimezone(UTC), *rest) for at, *rest in cursor.fetchall()]

        return self._read(fetch)


class _PostGISWriter:
    """Stages each layer in a table of its own, then swaps the staged tables in."""

    def __init__(
        self,
        connection: psycopg.Connection[Any],
        schema: str,
        connect: Callable[[], psycopg.Connection[Any]],
    ) -> None:
        self.connection = connection
        self.cursor = connection.cursor()
        self.schema = schema
        self.connect = connect
        self.second: psycopg.Connection[Any] | None = None
        """The other connection indexes are built on, opened at the first build."""
        self.staged: list[Layer] = []
        self.finished: list[tuple[Layer, LoadRun | None]] = []
        self.runs: list[LoadRun] = []
        self.copies: dict[str, Copy] = {}
        self.streams = contextlib.ExitStack()
        self.counters: dict[str, CellCounter] = {}

    def _staged(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, f"_staging_{table}")

    def begin(self, layer: Layer) -> None:
        """An empty copy of the layer's tables, without indexes: COPY fills them, then they are built."""
        for table in _tables(layer):
            self.cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._staged(table)))
            self.cursor.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                    self._staged(table), sql.Identifier(self.schema, table)
                )
            )
        if aggregates(layer):
            self.counters[layer.name] = CellCounter(layer)
        self.staged.append(layer)

    def append(self, layer: Layer, frame: gpd.GeoDataFrame) -> None:
        """Stream the rows into the staged table; one COPY per layer, sent by a background thread
        so that the server parses one chunk while Python prepares the next."""
        rows = conform(layer, frame)
        if rows.empty:
            return
        if layer.name in self.counters:
            self.counters[layer.name].add(rows)
        if layer.name not in self.copies:
            columns = [*layer.properties, "geom"]
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                self._staged(layer.table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            self.copies[layer.name] = self.streams.enter_context(
                self.cursor.copy(statement, writer=QueuedLibpqWriter(self.cursor))
            )
        self.copies[layer.name].write(_csv(layer, rows))

    def finish(self, layer: Layer, run: LoadRun | None) -> None:
        """Build the staged table's indexes as the live table has them, two at a time (bulk builds
        are several times faster than maintaining indexes row by row during COPY, and a spatial
        index takes as long as the other builds together), then its statistics; the primary key
        is laid on its unique index."""
        if layer.name in self.copies:
            self.streams.close()
            self.streams = contextlib.ExitStack()
            del self.copies[layer.name]
        if layer.name in self.counters:
            self._write_cells(layer, self.counters.pop(layer.name))
        indexes = []
        for table in _tables(layer):
            self.cursor.execute(
                _sql("staged_indexes"),
                {"schema": self.schema, "table": table, "staging": f"_staging_{table}",
                 "qualified": f'"{self.schema}"."{table}"'},
            )  # fmt: skip
            indexes.extend(self.cursor.fetchall())
        if self.second is None:
            self.second = self.connect()
        spatial_first = sorted(indexes, key=lambda row: not row[2])
        builds = [sql.SQL(definition) for definition, _, _ in spatial_first]
        _run_two_at_a_time(builds, [self.connection, self.second])
        if aggregates(layer):
            self._cluster(layer)
        for table in _tables(layer):
            self.cursor.execute(sql.SQL("ANALYZE {}").format(self._staged(table)))
        for _, constraint, _ in indexes:
            if constraint is not None:
                self.cursor.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(
                        self._staged(layer.table),
                        sql.Identifier(f"_staging_{constraint}"),
                        sql.Identifier(f"_staging_{constraint}"),
                    )
                )
        self.finished.append((layer, run))

    def _write_cells(self, layer: Layer, counter: CellCounter) -> None:
        """The layer's cells (counted from the rows as they streamed in) into its staged cells table,
        in the order of their index."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            self._staged(cells_table(layer)), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
        options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
        with self.cursor.copy(statement) as copy:
            for cells in counter.cells():
                text = io.BytesIO()
                pa_csv.write_csv(pa.Table.from_pandas(cells, preserve_index=False), text, options)
                copy.write(text.getbuffer())

    def _cluster(self, layer: Layer) -> None:
        """Store a point layer's rows in the order of its spatial index: a zoomed-out tile
        aggregates every point in it, and reads them from a few pages instead of one per point
        (measured on 1,000,000 permits: a z11 tile's heap scan 700 ms -> 130 ms)."""
        self.cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s "
            "AND indexdef LIKE '%% USING gist %%'",
            [self.schema, f"_staging_{layer.table}"],
        )
        spatial = self.cursor.fetchone()
        if spatial is not None:
            self.cursor.execute(
                sql.SQL("CLUSTER {} USING {}").format(self._staged(layer.table), sql.Identifier(spatial[0]))
            )

    def record(self, run: LoadRun) -> None:
        self.runs.append(run)

    def abort(self, error: BaseException) -> None:
        """End a COPY still streaming when the session fails (a file refused halfway): the server
        is told it failed, and the staged tables are dropped."""
        try:
            self.streams.__exit__(type(error), error, error.__traceback__)
        except Exception:  # the copy was already broken
            log.debug("ending an unfinished COPY", exc_info=True)
        self.copies.clear()
        for table in [table for layer in self.staged for table in _tables(layer)]:
            try:
                self.cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._staged(table)))
            except psycopg.Error:  # the connection is gone: the next session's begin drops it
                log.debug("dropping a staged table", exc_info=True)

    def close(self) -> None:
        if self.second is not None:
            self.second.close()

    def swap(self) -> None:
        """Put every finished layer's staged tables in place of the old ones (brief exclusive locks)."""
        for layer, run in self.finished:
            for table in _tables(layer):
                self._swap_table(table)
            self.cursor.execute(
                sql.SQL(
                    "INSERT INTO {} (layer, tag, changed_at) VALUES (%s, %s, now()) ON CONFLICT (layer) "
                    "DO UPDATE SET tag = EXCLUDED.tag, changed_at = EXCLUDED.changed_at"
                ).format(sql.Identifier(self.schema, "layer_versions")),
                [layer.name, uuid.uuid4().hex],
            )
            if run is not None:
                self.runs.append(run)
        for run in self.runs:
            self.cursor.execute(
                sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(self.schema, "load_runs"),
                    sql.SQL(", ").join(map(sql.Identifier, LOAD_RUN_FIELDS)),
                    sql.SQL(", ").join(sql.Placeholder(f) for f in LOAD_RUN_FIELDS),
                ),
                run.as_dict(),
            )

    def _swap_table(self, table: str) -> None:
        retired = sql.Identifier(self.schema, f"_retired_{table}")
        self.cursor.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(self.schema, table), sql.Identifier(f"_retired_{table}")
            )
        )
        self.cursor.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(self._staged(table), sql.Identifier(table))
        )
        self.cursor.execute(sql.SQL("DROP TABLE {}").format(retired))
        self.cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s AND indexname LIKE %s",
            [self.schema, table, "\\_staging\\_%"],
        )
        for (index,) in self.cursor.fetchall():
            self.cursor.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(self.schema, index), sql.Identifier(index.removeprefix("_staging_"))
                )
            )


def _tables(layer: Layer) -> list[str]:
    """A layer's tables, staged and swapped together: its rows, and a point layer's cells."""
    return [layer.table, cells_table(layer)] if aggregates(layer) else [layer.table]


def _run_two_at_a_time(statements: list[sql.SQL], connections: list[psycopg.Connection[Any]]) -> None:
    """Run the statements in order, each on whichever connection is free first; the first error
    is raised once every connection is idle."""
    queue = list(reversed(statements))
    lock = threading.Lock()

    def work(connection: psycopg.Connection[Any]) -> None:
        while True:
            with lock:
                if not queue:
                    return
                statement = queue.pop()
            try:
                connection.execute(statement)
            except BaseException:
                queue.clear()  # the session fails: the other connection starts nothing new
                raise

    with ThreadPoolExecutor(len(connections)) as pool:
        for done in [pool.submit(work, connection) for connection in connections]:
            done.result()


def _condition(condition: Condition, params: dict[str, Any]) -> sql.Composable:
    """A CQL2 condition: catalogue names as identifiers, values and geometries bound."""
    parts: list[sql.Composable] = []
    for part in condition.parts:
        if isinstance(part, str):
            parts.append(sql.SQL(part))
        elif isinstance(part, Column):
            parts.append(sql.Identifier(part.name))
        elif isinstance(part, Value):
            parts.append(sql.Placeholder(name := f"cql{len(params)}"))
            params[name] = part.value
        elif isinstance(part, Spatial):
            parts.append(
                sql.SQL("{}(geom, ST_GeomFromWKB({}, 4326))").format(
                    sql.Identifier(f"st_{part.operation}"), sql.Placeholder(name := f"cql{len(params)}")
                )
            )
            params[name] = part.wkb
    return sql.Composed(parts)


def _cells_from_tallies(layer: Layer) -> sql.Composable:
    """The shared CTE that turns tallies into the tile's aggregates, naming the summary property."""
    summary_name = sql.Identifier(summary_property(layer) or "summary")
    return _sql("cells_from_tallies").format(summary_name=summary_name)


def _summary_column(layer: Layer) -> sql.Composable:
    summary = summary_property(layer)
    return sql.SQL("t.{}").format(sql.Identifier(summary)) if summary else sql.SQL("NULL::text")


def _grid_params(layer: Layer, tile: morecantile.Tile) -> dict[str, Any]:
    """The tile's cells in the global grid (observatory/point_cells.py) and its corner in metres."""
    extra = grid_levels(layer)
    corner = TMS.xy_bounds(tile)
    return {
        "z": tile.z, "level": tile.z + extra, "cells_across": float(2 ** (tile.z + extra)),
        "half_world": HALF_WORLD,
        "first_cx": tile.x << extra, "last_cx": ((tile.x + 1) << extra) - 1,
        "first_cy": tile.y << extra, "last_cy": ((tile.y + 1) << extra) - 1,
        "left": corner.left, "top": corner.top, "size": corner.right - corner.left,
    }  # fmt: skip


def _first(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    assert row is not None, "an aggregate or EXPLAIN returns one row"
    return row


def _evaluable(fetch: Callable[[psycopg.Cursor[Any]], T]) -> Callable[[psycopg.Cursor[Any]], T]:
    """``fetch``, with a filter the data cannot evaluate (a number out of range in its arithmetic)
    reported as the client's error, not the server's."""

    def guarded(cursor: psycopg.Cursor[Any]) -> T:
        try:
            return fetch(cursor)
        except psycopg.errors.DataException as error:
            log.info("filter not evaluable: %s", _reason(error))
            raise InvalidParameter(
                "filter cannot be evaluated on these data (a value out of range)"
            ) from None

    return guarded


def _withheld_condition(layer: Layer) -> sql.Composable:
    """True for the rows public outputs withhold values of (see ``layers.Withholding``)."""
    assert layer.withheld is not None
    return sql.SQL(" AND ").join(
        sql.SQL("{} = ANY({})").format(sql.Identifier(column), sql.Placeholder(f"withheld_{index}"))
        for index, column in enumerate(layer.withheld.when)
    )


def _withheld_params(layer: Layer) -> dict[str, Any]:
    rule = layer.withheld
    if rule is None:
        return {}
    return {
        **{f"withheld_{index}": values for index, values in enumerate(rule.when.values())},
        **{f"withheld_mark_{column}": value for column, value in rule.mark.items()},
    }


def _served_columns(layer: Layer) -> sql.Composable:
    """The layer's columns as public outputs serve them: withheld values null or marked."""
    rule = layer.withheld
    if rule is None:
        return sql.SQL(", ").join(map(sql.Identifier, layer.properties))
    served: list[sql.Composable] = []
    for column in layer.properties:
        name = sql.Identifier(column)
        if column in rule.columns or column in rule.mark:
            instead = sql.Placeholder(f"withheld_mark_{column}") if column in rule.mark else sql.SQL("NULL")
            served.append(
                sql.SQL("CASE WHEN {when} THEN {instead} ELSE {name} END AS {name}").format(
                    when=_withheld_condition(layer), instead=instead, name=name
                )
            )
        else:
            served.append(name)
    return sql.SQL(", ").join(served)


def _csv(layer: Layer, rows: gpd.GeoDataFrame) -> bytes:
    """Conformed rows as CSV for COPY (nulls empty, dates ISO, geometry as hex EWKB), written by
    Arrow: several times faster than pandas for a million rows."""
    arrays = {}
    for column, kind in layer.properties.items():
        array = pa.array(rows[column], from_pandas=True)
        arrays[column] = pc.cast(array, pa.date32()) if kind == "date" else array
    geometries = shapely.set_srid(rows.geometry.values, 4326)
    arrays["geom"] = pa.array(shapely.to_wkb(geometries, hex=True, include_srid=True), type=pa.string())
    sink = io.BytesIO()
    pa_csv.write_csv(
        pa.table(arrays), sink, pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    )
    return sink.getvalue()


@functools.cache
def _sql(name: str) -> sql.SQL:
    """A static statement from ``sql/``, read once."""
    text = resources.files("observatory.store").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
    return sql.SQL(text)


def migrate(url: str, schema: str) -> None:
    """Apply the numbered SQL files under ``migrations/`` that this schema has not seen yet."""
    files = sorted(
        (entry for entry in resources.files("observatory.store").joinpath("migrations").iterdir()
         if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )  # fmt: skip
    with psycopg.connect(url) as db, db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext('observatory-migrations'))")
        db.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        db.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
        for entry in files:
            version = entry.name.removesuffix(".sql")
            if version not in applied:
                db.execute(entry.read_text(encoding="utf-8"))
                db.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [version])
