"""Tiles the GeoPackage store built, kept on disk per layer version: each is encoded once in Python.

The embedded store has no ``ST_AsMVT``; its Python encoder is several times slower than PostGIS's.
But its layers change only on load, so a tile built once stays right until the layer's version
changes: this SQLite file beside the store keeps every tile built, shared by all worker processes
and kept across restarts. A row is served only under the layer version it was built for; the rows
of older versions are deleted as the new ones come in.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS tiles (
    layer TEXT NOT NULL, z INTEGER NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL,
    query TEXT NOT NULL, version TEXT NOT NULL, content BLOB NOT NULL,
    PRIMARY KEY (layer, z, x, y, query)
) WITHOUT ROWID
"""


class BuiltTiles:
    """``get``/``put`` encoded tiles by (layer, version, z, x, y, query)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._purged: dict[str, str] = {}
        """Per layer, the version whose older rows this process deleted already."""

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=5)
        try:
            if not self._ready:
                db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
                db.execute(SCHEMA)
                self._ready = True
            yield db
        finally:
            db.close()

    def get(self, layer: str, version: str, z: int, x: int, y: int, query: str) -> bytes | None:
        if not self.path.exists():
            return None
        with self._connection() as db:
            row = db.execute(
                "SELECT content FROM tiles WHERE layer = ? AND z = ? AND x = ? AND y = ? AND query = ? "
                "AND version = ?",
                [layer, z, x, y, query, version],
            ).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, layer: str, version: str, z: int, x: int, y: int, query: str, content: bytes) -> None:
        """Keep a tile; a busy or read-only file only means it is built again next time."""
        try:
            with self._connection() as db, db:
                if self._purged.get(layer) != version:
                    db.execute("DELETE FROM tiles WHERE layer = ? AND version <> ?", [layer, version])
                    self._purged[layer] = version
                db.execute(
                    "INSERT OR REPLACE INTO tiles VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [layer, z, x, y, query, version, content],
                )
        except sqlite3.OperationalError as error:
            log.info("tile %s/%s/%s of %s not kept: %s", z, x, y, layer, error)
