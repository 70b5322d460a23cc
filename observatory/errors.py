"""Domain errors: a user message and an HTTP status, mapped to problem+json in one place (api)."""

from __future__ import annotations


class ObservatoryError(Exception):
    """Base error; ``message`` is safe to show to a user, ``status`` is the HTTP status."""

    status = 500
    title = "Internal error"
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only, replaced (not mutated) by subclasses
    """Extra response headers (e.g. ``Retry-After``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(ObservatoryError):
    status = 400
    title = "Invalid parameter"


class NotFound(ObservatoryError):
    status = 404
    title = "Not found"


class LoadError(ObservatoryError):
    """A source file that cannot be loaded at all; nothing in the store changed."""

    status = 422
    title = "Load failed"


class MissingInput(ObservatoryError):
    """An indicator or a load needs a layer that has not been loaded yet."""

    status = 409
    title = "Missing input"


class StoreUnavailable(ObservatoryError):
    """The configured database cannot be reached, or did not answer in time; worth retrying."""

    status = 503
    title = "Store unavailable"
    retry_after = 5
    headers = {"Retry-After": str(retry_after)}  # noqa: RUF012
