"""What every endpoint reads from the app's state: the store."""

from __future__ import annotations

from fastapi import Request

from observatory.errors import StoreUnavailable
from observatory.store import Store


def store_of(request: Request) -> Store:
    """The app's store; 503 while it could not be opened yet (the server keeps retrying)."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise StoreUnavailable("the database is not reachable yet; retry later")
    return store
