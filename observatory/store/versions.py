"""Layer versions held in memory, so a request never asks the store which version a layer is at.

Every response's ETag and every cached tile's key depend on the layer version; reading it from the
database on each request cost more than the small tiles themselves. Here:

- PostGIS: a listener thread keeps its own connection, ``LISTEN``\\ s on :data:`CHANNEL` and re-reads
  the (tiny) ``layer_versions`` table when a write session of the same schema notifies, which it
  does inside the transaction that swaps the rows in, so the notice arrives only once they are
  visible. While the listener is not connected (start-up, a database restart) callers read the
  table themselves, as before: a notice missed then cannot leave a stale version behind.
- GeoPackage: every write replaces the file, so its identity (inode, size, modification time) is
  a cheap check made per request (one ``stat``); the table is re-read only when it changed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from observatory.store.base import LayerVersion

log = logging.getLogger(__name__)

CHANNEL = "observatory_layer_versions"
"""The notification channel; the payload is the schema whose versions changed."""

Versions = dict[str, LayerVersion]


def read_versions(cursor: psycopg.Cursor[Any], schema: str) -> Versions:
    """Every layer's version in the schema's ``layer_versions`` table."""
    cursor.execute(
        sql.SQL("SELECT layer, tag, changed_at FROM {}").format(sql.Identifier(schema, "layer_versions"))
    )
    return {layer: LayerVersion(tag, changed_at) for layer, tag, changed_at in cursor.fetchall()}


def notify(cursor: psycopg.Cursor[Any], schema: str) -> None:
    """Tell every listener the schema's versions changed (delivered when the transaction commits)."""
    cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, schema])


class ListenedVersions:
    """The versions of one PostgreSQL schema, kept current by a listener thread started on first use."""

    def __init__(self, conninfo: str, schema: str, *, retry_delay: float = 1.0) -> None:
        self.conninfo, self.schema, self.retry_delay = conninfo, schema, retry_delay
        self._current: Versions | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> Versions | None:
        """The versions, or None while the listener is not connected (the caller reads them)."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(target=self._listen, name="layer-versions", daemon=True)
                    self._thread.start()
        return self._current

    def replace(self, versions: Versions) -> None:
        """Versions read by this process right after its own write committed: current at once,
        without waiting for the notice to come back."""
        if self._current is not None:
            self._current = versions

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as connection:
                    connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    self._reread(connection)  # after LISTEN: nothing committed later is missed
                    while not self._stopping.is_set():
                        changed = False
                        for notice in connection.notifies(timeout=0.5):
                            changed = changed or notice.payload == self.schema
                        if changed:
                            self._reread(connection)
            except psycopg.Error as error:
                log.info("layer version listener of %s: %s; retrying", self.schema, error)
            self._current = None
            self._stopping.wait(self.retry_delay)

    def _reread(self, connection: psycopg.Connection[Any]) -> None:
        with connection.cursor() as cursor:
            self._current = read_versions(cursor, self.schema)

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class FileVersions:
    """The versions of a GeoPackage file, re-read only when the file was replaced."""

    def __init__(self, path: Path, read: Callable[[], Versions]) -> None:
        self.path, self.read = path, read
        self._seen: tuple[tuple[int, int, int] | None, Versions] = (None, {})

    def current(self) -> Versions:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return {}
        identity = (status.st_ino, status.st_size, status.st_mtime_ns)
        seen, versions = self._seen
        if identity != seen:
            versions = self.read()
            self._seen = (identity, versions)
        return versions
