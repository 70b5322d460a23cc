"""Who is asking, and with what role: OpenID Connect bearer tokens and hashed API keys.

Every request carries at most one credential, in ``Authorization: Bearer <credential>``:

- a JWT (three dot-separated parts) issued by the configured OpenID Connect provider, verified
  with PyJWT against the provider's published keys (signature, ``iss``, ``aud``, ``exp``);
- otherwise an API key made by ``observatory apikey create``, of which the server keeps only the
  SHA-256 digest (see :func:`key_digest` for why a plain digest is enough).

No credential is the anonymous public, who sees public data only. A credential that does not
verify is refused (401), never downgraded to anonymous: a client that meant to be an analyst
must learn its token expired rather than silently get the public view.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import jwt

from observatory.errors import Forbidden, IdentityProviderUnavailable, InvalidParameter, Unauthorized
from observatory.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "obs_"
"""API keys start with it: recognisable in a leaked file or a secret scanner's rules."""
REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
FETCH_TIMEOUT = 5.0
"""Seconds to wait for the identity provider's discovery document or keys."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


class Role(IntEnum):
    """What a caller may read: each role sees everything the ones below it see."""

    PUBLIC = 0
    ANALYST = 1
    ADMIN = 2

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Role:
        """The role named ``name`` (``public``, ``analyst`` or ``admin``)."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise InvalidParameter(f"unknown role {name!r}: public, analyst or admin") from None


Via = Literal["anonymous", "oidc", "api_key"]


@dataclass(frozen=True)
class Principal:
    """The caller: an identity provider's ``sub``, an API key's name, or ``anonymous``."""

    subject: str
    role: Role
    via: Via

    @property
    def anonymous(self) -> bool:
        return self.via == "anonymous"


ANONYMOUS = Principal("anonymous", Role.PUBLIC, "anonymous")


def authenticate(authorization_header: str | None, settings: Settings) -> Principal:
    """The caller named by an ``Authorization`` header value; :data:`ANONYMOUS` without one.

    Raises :class:`Unauthorized` (401) for any credential that does not verify, and
    :class:`IdentityProviderUnavailable` (503) when the provider's keys cannot be fetched.
    """
    if authorization_header is None or not authorization_header.strip():
        return ANONYMOUS
    scheme, _, credential = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized(f"the {scheme} scheme is not accepted: send a bearer token", error=None)
    credential = credential.strip()
    if not credential:
        raise Unauthorized("the bearer token is empty", error="invalid_request")
    if credential.count(".") == 2:
        return _verify_token(credential, settings)
    return _verify_api_key(credential, settings)


def authorize(principal: Principal, role: Role) -> Principal:
    """``principal`` if it holds ``role``; else 401 for the anonymous (who should authenticate)
    and 403 for an identity without it."""
    if principal.role >= role:
        return principal
    if principal.anonymous:
        raise Unauthorized(f"this needs the {role} role: authenticate with a bearer token", error=None)
    raise Forbidden(f"this needs the {role} role; {principal.subject} has the {principal.role} role")


# -- OpenID Connect -----------------------------------------------------------------------------


def _verify_token(token: str, settings: Settings) -> Principal:
    if not settings.oidc_issuer:
        raise Unauthorized("no identity provider is configured: bearer tokens are not accepted")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise Unauthorized("the bearer token is not a well-formed JWT") from None
    if header.get("alg") not in settings.oidc_algorithms:  # before any key is fetched ("none" too)
        raise Unauthorized(f"tokens signed with {header.get('alg')!r} are not accepted")
    keys = _key_client(_jwks_url(settings))
    try:
        key = keys.get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError as error:
        log.warning("identity provider keys unavailable: %s", error)
        raise IdentityProviderUnavailable("the identity provider's keys cannot be fetched; retry") from None
    except jwt.PyJWTError:
        raise Unauthorized("the bearer token was not signed by a key of the identity provider") from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=settings.oidc_algorithms,
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
            leeway=settings.oidc_leeway,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the bearer token has expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("the bearer token was issued for another audience") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized("the bearer token was issued by another issuer") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("the bearer token's signature does not verify") from None
    except jwt.MissingRequiredClaimError as error:
        raise Unauthorized(f"the bearer token lacks the {error.claim!r} claim") from None
    except jwt.PyJWTError:
        raise Unauthorized("the bearer token is invalid") from None
    return Principal(str(claims["sub"]), token_role(claims, settings.oidc_role_claim), "oidc")


def token_role(claims: dict[str, Any], claim: str) -> Role:
    """The highest role named in the claim at the dotted path ``claim`` (a list of names or a
    space-separated string); ``public`` when it names none. Only ``analyst`` and ``admin`` count:
    an identity provider's other roles (``offline_access``…) are not ours."""
    value: Any = claims
    for part in claim.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    names = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    found = [Role[name.upper()] for name in names if isinstance(name, str) and name in ("analyst", "admin")]
    return max(found, default=Role.PUBLIC)


def _jwks_url(settings: Settings) -> str:
    if settings.oidc_jwks_url:
        return settings.oidc_jwks_url
    assert settings.oidc_issuer is not None
    return _discovered_jwks_url(settings.oidc_issuer)


@functools.cache
def _discovered_jwks_url(issuer: str) -> str:
    """The ``jwks_uri`` of the issuer's OpenID configuration (fetched once per process); the
    document must name the same issuer (OpenID Connect Discovery §4.3). Failures are not cached."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    if not url.startswith(("https://", "http://")):  # urllib would read file:// too
        raise IdentityProviderUnavailable("the identity provider's issuer is not an http(s) URL")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
            document = json.load(response)
    except (OSError, ValueError) as error:
        log.warning("cannot read %s: %s", url, error)
        raise IdentityProviderUnavailable("the identity provider's configuration cannot be read") from None
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        log.error("%s names issuer %r, not %r", url, document.get("issuer"), issuer)
        raise IdentityProviderUnavailable("the identity provider's configuration names another issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
        raise IdentityProviderUnavailable("the identity provider's configuration has no jwks_uri")
    return jwks_uri


@functools.cache
def _key_client(url: str) -> jwt.PyJWKClient:
    """One client per keys URL: it caches the key set for 5 minutes and refetches it (at most
    every 30 s) when a token names a key it does not hold, as after a key rotation."""
    return jwt.PyJWKClient(url, lifespan=300, timeout=FETCH_TIMEOUT)


# -- API keys -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """What the keys file keeps of a key: never the key itself."""

    name: str
    role: Role
    sha256: str
    created_at: str


def key_digest(key: str) -> str:
    """The hex SHA-256 of an API key: what the keys file holds.

    A fast, unkeyed digest is enough here, unlike for passwords: a key is 32 bytes from
    ``secrets`` (256 bits), so no dictionary or brute-force search of the digest can find it, and
    a slow hash (bcrypt, argon2) would only add its cost to every request. A keyed hash (HMAC)
    would add a second secret to keep, protecting nothing more.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(name: str, role: Role | str, settings: Settings) -> str:
    """A new API key for ``name`` with ``role``: its digest is stored, the key is returned (once:
    it cannot be recovered later). Refuses a name already in use."""
    if not _NAME.fullmatch(name):
        raise InvalidParameter(f"key name {name!r}: 1–64 letters, digits and _ . @ -, starting alphanumeric")
    role = Role.parse(role) if isinstance(role, str) else role
    if role == Role.PUBLIC:
        raise InvalidParameter("a key for the public role is pointless: anonymous callers have it")
    with _keys_lock(settings):
        keys = _read_keys(settings.api_keys_path)
        if any(key.name == name for key in keys):
            raise InvalidParameter(f"a key named {name!r} exists: revoke it first")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        _write_keys(settings.api_keys_path, [*keys, ApiKey(name, role, key_digest(key), created)])
    return key


def revoke_api_key(name: str, settings: Settings) -> None:
    """Remove the key named ``name``; it is refused from the next request on."""
    with _keys_lock(settings):
        keys = _read_keys(settings.api_keys_path)
        if not any(key.name == name for key in keys):
            raise InvalidParameter(f"no key named {name!r}")
        _write_keys(settings.api_keys_path, [key for key in keys if key.name != name])


def list_api_keys(settings: Settings) -> list[ApiKey]:
    """The keys on file, oldest first."""
    return list(_read_keys(settings.api_keys_path))


def _verify_api_key(key: str, settings: Settings) -> Principal:
    digest = key_digest(key)
    found = None
    for entry in _read_keys(settings.api_keys_path):  # every entry compared: no early exit
        if hmac.compare_digest(entry.sha256, digest):
            found = entry
    if found is None:
        raise Unauthorized("unknown or revoked API key")
    return Principal(found.name, found.role, "api_key")


def _read_keys(path: Path) -> tuple[ApiKey, ...]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return ()
    return _parse_keys(path, stat.st_mtime_ns, stat.st_size, stat.st_ino)


@functools.lru_cache(maxsize=8)
def _parse_keys(path: Path, mtime_ns: int, size: int, inode: int) -> tuple[ApiKey, ...]:
    """The file's keys, parsed once per version of the file (a revocation replaces it)."""
    with open(path, "rb") as file:
        entries = tomllib.load(file).get("keys", [])
    return tuple(
        ApiKey(str(e["name"]), Role.parse(str(e["role"])), str(e["sha256"]), str(e["created_at"]))
        for e in entries
    )


def _write_keys(path: Path, keys: list[ApiKey]) -> None:
    """Write the file whole, readable by its owner only, and move it over the old one."""
    lines = ["# API keys of the observatory: SHA-256 digests only (observatory apikey).", ""]
    for key in keys:
        lines += ["[[keys]]", *(f"{field} = {json.dumps(value)}" for field, value in (
            ("name", key.name), ("role", str(key.role)), ("sha256", key.sha256),
            ("created_at", key.created_at),
        )), ""]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
            file.write("\n".join(lines))
            file.flush()
            os.fsync(file.fileno())
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


_LOCAL = threading.Lock()


@contextlib.contextmanager
def _keys_lock(settings: Settings) -> Iterator[None]:
    """One change to the keys file at a time, across processes (read, change, write back)."""
    path = settings.api_keys_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCAL, open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# -- what the server accepts --------------------------------------------------------------------


def describe(settings: Settings) -> dict[str, Any]:
    """What the server accepts, for the landing page and the collections' access note."""
    keys = len(_read_keys(settings.api_keys_path))
    if settings.oidc_issuer:
        note = f"bearer tokens from {settings.oidc_issuer} give the analyst and admin roles"
    elif keys:
        note = "no identity provider configured: API keys give the analyst and admin roles"
    else:
        note = "no identity provider configured: public data only"
    return {
        "roles": [str(role) for role in Role],
        "identity_provider": settings.oidc_issuer,
        "audience": settings.oidc_audience,
        "api_keys": keys > 0,
        "api_key_count": keys,
        "anonymous": "public data only",
        "note": note,
    }
