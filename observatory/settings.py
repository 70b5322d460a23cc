"""All configuration, from environment variables prefixed ``OBSERVATORY_``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STORAGE_CRS = "EPSG:4326"
"""Geometries are stored in WGS84 lon/lat (RFC 7946)."""

METRIC_CRS = "EPSG:32616"
"""Areas and distances are computed in UTM zone 16N, which covers all of El Salvador."""

PERMITS_SOURCE_CRS = "EPSG:5460"
"""The El Salvador Lambert grid in which OPAMSS records permit coordinates."""

COUNTRY_BOUNDS = (-90.2, 13.0, -87.6, 14.5)
"""El Salvador in lon/lat, generously: geometries read outside it were read in the wrong CRS."""

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "data" / "reference"
"""Reference data shipped with the project: boundaries, official facts, names and crosswalks."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBSERVATORY_", env_nested_delimiter="__", extra="ignore")

    database_url: str | None = None
    """``postgresql://…`` selects PostGIS; unset selects the embedded GeoPackage store."""
    db_schema: str = "observatory"
    """PostgreSQL schema holding the observatory's tables."""
    db_connect_timeout: float = 5.0
    """Seconds to wait for a PostgreSQL connection (or a free pooled one) before answering 503."""
    db_statement_timeout: float = 15.0
    """Seconds a read may run; the client gives up 2 s later even if the server is frozen."""
    db_startup_wait: float = 10.0
    """Seconds the server waits for the database at start-up before serving 503s while it keeps
    retrying in the background."""
    tile_cache_mb: float = Field(default=256.0, ge=0)
    """Memory the server keeps encoded tiles in (least recently used out); 0 turns the cache off."""
    data_dir: Path = Path("var")
    """Folder of the embedded store, the rejects reports and other run output."""
    max_shrink: float = Field(default=0.5, ge=0, le=1)
    """Largest share of a layer's rows a load may remove: a file cut short, or an export of one
    month, is refused unless the load is run with ``--allow-shrink``."""
    legal_limit_business_days: int = 30
    """Legal time limit for resolving a permit, in business days (Ley Especial de Agilización de
    Trámites para el Fomento de Proyectos de Construcción)."""
    legal_limit_business_days_rulings: int = 30
    """Legal time limit for a site-suitability ruling (calificación de lugar), in business days. The
    same law sets it; its figure is to be confirmed against the law's text, hence a setting of its own."""
    complaint_permit_distance_m: float = Field(default=50.0, gt=0)
    """A complaint of illegal construction is covered by a construction permit granted within this
    many metres of it."""
    complaint_permit_days: int = Field(default=365, ge=0)
    """...and submitted at most this many days before the complaint."""

    public_url: str | None = None
    """The address the public reaches the API at (``https://observatorio.opamss.org.sv/api``): every
    absolute link and redirect is built on it. Unset: on the request's ``Host``, which must then be
    one of ``allowed_hosts`` (or the address the connection arrived at)."""
    allowed_hosts: list[str] = ["localhost", "127.0.0.1", "[::1]"]
    """``Host`` names the server answers (``*.example.org`` for a domain and its subdomains, ``*``
    for any); others get a 400, as Django's ``ALLOWED_HOSTS``. The address the connection arrived
    at and the host of ``public_url`` are always allowed."""
    forwarded_allow_ips: str = ""
    """Proxies (comma-separated IPs or networks, ``*`` for any) whose ``X-Forwarded-Proto`` and
    ``X-Forwarded-For`` uvicorn honours; empty: none."""

    small_n: int = Field(default=5, ge=1)
    """An indicator value resting on fewer records than this is flagged ``small_n``: shown to
    analysts, marked (or suppressed, for counts of people and events) in public outputs."""

    oidc_issuer: str | None = None
    """OpenID Connect issuer whose bearer tokens (JWTs) are accepted, e.g.
    ``https://sso.example.org/realms/amss``; unset: no identity provider, only API keys."""
    oidc_audience: str | None = None
    """The ``aud`` a token must carry (the client id the issuer gave this server); required with
    an issuer, else a token the issuer gave any other application would be accepted here."""
    oidc_jwks_url: str | None = None
    """The issuer's signing keys; unset: the ``jwks_uri`` of its
    ``/.well-known/openid-configuration``."""
    oidc_role_claim: str = "roles"
    """The claim holding the caller's roles (a list, or a space-separated string); a dotted path
    reads a nested claim (Keycloak: ``realm_access.roles``). Role names: ``analyst``, ``admin``."""
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    """Signature algorithms accepted (JSON in the environment: ``'["RS256"]'``); never ``none``
    or a shared-secret (HS*) one."""
    oidc_leeway: float = Field(default=30.0, ge=0, le=300)
    """Seconds of clock difference tolerated on ``exp``, ``nbf`` and ``iat``."""
    api_keys_file: Path | None = None
    """The API keys (their SHA-256 digests only; see ``observatory apikey``); unset:
    ``<data_dir>/api_keys.toml``."""

    @model_validator(mode="after")
    def _identity_provider(self) -> Settings:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError(
                "OBSERVATORY_OIDC_AUDIENCE must be set with OBSERVATORY_OIDC_ISSUER: without it a "
                "token the issuer gave any other application would be accepted here"
            )
        unsafe = [name for name in self.oidc_algorithms if name.lower() == "none" or name.startswith("HS")]
        if unsafe:
            raise ValueError(f"OBSERVATORY_OIDC_ALGORITHMS: {unsafe} cannot verify an issuer's tokens")
        return self

    @property
    def api_keys_path(self) -> Path:
        """The API keys file (``api_keys_file``, or ``api_keys.toml`` in the data folder)."""
        return self.api_keys_file or self.data_dir / "api_keys.toml"

    @field_validator("public_url")
    @classmethod
    def _absolute(cls, url: str | None) -> str | None:
        """An absolute http(s) URL without a trailing slash, query or fragment."""
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(
                f"public_url must be an absolute http(s) URL such as https://host/api, not {url!r}"
            )
        return url.rstrip("/")

    @property
    def geopackage_path(self) -> Path:
        return self.data_dir / "observatory.gpkg"

    @property
    def reports_dir(self) -> Path:
        """Where each load's report of rejected and repaired rows goes."""
        return self.data_dir / "reports"


@cache
def get_settings() -> Settings:
    return Settings()
