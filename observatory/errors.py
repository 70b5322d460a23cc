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


class Unauthorized(ObservatoryError):
    """No valid credentials: a bearer token or API key that is invalid, expired, forged or unknown
    (``error="invalid_token"``), or none where a role is needed (a bare challenge, RFC 6750 §3.1)."""

    status = 401
    title = "Unauthorized"

    def __init__(self, message: str, *, error: str | None = "invalid_token") -> None:
        super().__init__(message)
        challenge = 'Bearer realm="observatory"'
        if error is not None:
            # RFC 6750 §3: error_description is printable ASCII without '"' and '\'.
            description = "".join(c for c in message if " " <= c <= "~" and c not in '"\\')
            challenge += f', error="{error}", error_description="{description}"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ObservatoryError):
    """A valid identity without the role the resource needs."""

    status = 403
    title = "Forbidden"
    headers = {"WWW-Authenticate": 'Bearer realm="observatory", error="insufficient_scope"'}  # noqa: RUF012


class IdentityProviderUnavailable(ObservatoryError):
    """The identity provider's keys could not be fetched: the token may well be valid; retry."""

    status = 503
    title = "Identity provider unavailable"
    retry_after = 5
    headers = {"Retry-After": str(retry_after)}  # noqa: RUF012
