"""A client-side deadline for database connections.

A server that is frozen (stopped, swapped out, behind a dead link) never enforces its own
``statement_timeout``, and libpq has no client-side one: a read would wait forever, holding a thread
and a pooled connection. The watchdog shuts down the socket of a connection that outlives its
deadline, so the blocked call fails at once with a connection error.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)
_TICK = 0.1


@dataclass
class Guard:
    socket: socket.socket
    """A duplicate of the connection's descriptor: shutting it down reaches the connection's
    socket, and it stays valid (never reused for another socket) even if the driver closes its
    own descriptor first."""
    deadline: float
    fired: bool = False


class Watchdog:
    """One daemon thread watching every guarded connection (created on first use)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, Guard] = {}
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, fileno: int, seconds: float) -> Iterator[Guard]:
        """Shut ``fileno`` down if the block has not ended ``seconds`` from now."""
        guard = Guard(socket.socket(fileno=os.dup(fileno)), time.monotonic() + seconds)
        with self._lock:
            self._by_id[id(guard)] = guard
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="db-watchdog", daemon=True)
                self._thread.start()
        try:
            yield guard
        finally:
            # Under the lock: once this returns the socket is never touched again, so a connection
            # handed back to the pool cannot be shut down by a late tick.
            with self._lock:
                del self._by_id[id(guard)]
            guard.socket.close()

    def _watch(self) -> None:
        while True:
            time.sleep(_TICK)
            now = time.monotonic()
            with self._lock:
                for guard in self._by_id.values():
                    if not guard.fired and now > guard.deadline:
                        guard.fired = True
                        _shutdown(guard.socket)


def _shutdown(duplicate: socket.socket) -> None:
    try:
        duplicate.shutdown(socket.SHUT_RDWR)  # acts on the socket, so libpq's wait ends at once
    except OSError as error:
        log.debug("watchdog: could not shut down a socket: %s", error)


WATCHDOG = Watchdog()
