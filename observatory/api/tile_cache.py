"""Encoded tiles kept in memory, keyed by the layer version, so loads purge them by construction.

A key names everything a tile's bytes depend on: the layer, its version (which every load and
recomputation changes in the transaction that swaps the rows in), the tile, the normalised query
and the content coding. A tile built from rows newer than the version its key names is harmless
(that version is never asked for again once the new one is known); one built from rows older than
its key's version cannot happen, since a version becomes known only after its rows are visible.
Entries of older versions are never served again and age out, least recently used first, within
``max_bytes``.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple

GZIP_MIN_BYTES = 1024
"""Smaller tiles go out as they are, as the gzip middleware would leave them."""
GZIP_LEVEL = 4


class Body(NamedTuple):
    content: bytes
    encoding: str | None
    """``gzip`` when ``content`` is compressed."""


class TileCache:
    """A byte-bounded, least-recently-used map of keys to encoded bodies; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Body] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> Body | None:
        """The cached body of ``key`` (now the most recently used), or None; never builds, never
        waits on a build, so the event loop may ask."""
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def get(self, key: Hashable, build: Callable[[], Body]) -> Body:
        """The cached body of ``key``, else ``build()``'s, kept if it fits the bound."""
        body = self.peek(key)
        if body is not None:
            return body
        body = build()
        if len(body.content) <= self.max_bytes:
            with self._lock:
                if key not in self._entries:
                    self._entries[key] = body
                    self._size += len(body.content)
                while self._size > self.max_bytes:
                    _, evicted = self._entries.popitem(last=False)
                    self._size -= len(evicted.content)
        return body

    @property
    def size(self) -> int:
        """Bytes held."""
        return self._size

    def __len__(self) -> int:
        return len(self._entries)


def encoded(content: bytes, *, gzip_accepted: bool) -> Body:
    """The body as sent: gzipped once here (not by the middleware on every hit) when the client
    accepts it and the tile is large enough to gain from it."""
    if not gzip_accepted or len(content) < GZIP_MIN_BYTES:
        return Body(content, None)
    return Body(gzip.compress(content, GZIP_LEVEL, mtime=0), "gzip")
