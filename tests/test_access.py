"""Access control: OIDC bearer tokens from a real local issuer, hashed API keys made by the CLI, the
audit log on both stores, and /access/me and /access/log through a live server.

The identity provider is a real HTTP server on 127.0.0.1 publishing its OpenID configuration and
the public half of an RSA key generated here; tokens are signed with PyJWT. Nothing we own is
replaced by a stand-in.
"""

from __future__ import annotations

import hashlib
import json
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from starlette.requests import Request
from typer.testing import CliRunner

from observatory.access import (
    ANONYMOUS,
    Principal,
    Role,
    authenticate,
    authorize,
    create_api_key,
    describe,
    key_digest,
    list_api_keys,
    revoke_api_key,
    token_role,
)
from observatory.api.access import audit
from observatory.cli import app as cli
from observatory.errors import Forbidden, ObservatoryError, Unauthorized
from observatory.settings import Settings, get_settings
from observatory.store import AccessEntry, Store, open_store
from tests import fixtures
from tests.conftest import serving

AUDIENCE = "observatory-api"


@dataclass
class Issuer:
    """A running OpenID provider: its URL (the ``iss``), its signing key and the key's id."""

    url: str
    key: rsa.RSAPrivateKey
    kid: str
    requests: list[str]

    def token(
        self, *, key: Any = None, algorithm: str = "RS256", kid: str | None = None, **claims: Any
    ) -> str:
        """A token for ``sub`` ``claims``, valid for 5 minutes from this issuer for our audience;
        ``claims`` override (None drops a claim)."""
        now = int(time.time())
        payload = {"iss": self.url, "aud": AUDIENCE, "sub": "ana", "iat": now, "exp": now + 300, **claims}
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key or self.key, algorithm=algorithm, headers={"kid": kid or self.kid})


def _public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex[:8]
    requests: list[str] = []
    documents: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/realms/amss"
    documents["/realms/amss/.well-known/openid-configuration"] = json.dumps(
        {"issuer": url, "jwks_uri": f"{url}/protocol/openid-connect/certs"}
    ).encode()
    documents["/realms/amss/protocol/openid-connect/certs"] = json.dumps(
        {"keys": [_public_jwk(key, kid)]}
    ).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Issuer(url, key, kid, requests)
    server.shutdown()
    server.server_close()


@pytest.fixture
def oidc(issuer: Issuer, tmp_path: Path) -> Settings:
    """Settings trusting the local issuer (keys found through its discovery document)."""
    return Settings(data_dir=tmp_path, oidc_issuer=issuer.url, oidc_audience=AUDIENCE)


def refused(header: str | None, settings: Settings) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        authenticate(header, settings)
    assert caught.value.status == 401
    return caught.value


def assert_invalid_token(error: Unauthorized, reason: str) -> None:
    challenge = error.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert reason in error.message


# -- anonymous and OIDC -------------------------------------------------------------------------


def test_no_credentials_is_the_anonymous_public(oidc: Settings) -> None:
    assert authenticate(None, oidc) == ANONYMOUS
    assert authenticate("", oidc) == ANONYMOUS
    assert ANONYMOUS.role == Role.PUBLIC and ANONYMOUS.via == "anonymous"
    assert Role.PUBLIC < Role.ANALYST < Role.ADMIN


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"roles": ["analyst"]}, Role.ANALYST),
        ({"roles": ["offline_access", "admin", "analyst"]}, Role.ADMIN),
        ({"roles": "uma_authorization analyst"}, Role.ANALYST),
    ],
)
def test_a_valid_token_gives_its_subject_and_role(
    issuer: Issuer, oidc: Settings, claims: dict[str, Any], role: Role
) -> None:
    token = issuer.token(sub="f3a9-analyst", **claims)
    assert authenticate(f"Bearer {token}", oidc) == Principal("f3a9-analyst", role, "oidc")
    # The scheme is case-insensitive (RFC 7235).
    assert authenticate(f"bearer {token}", oidc).role == role


def test_keycloak_roles_under_a_dotted_claim_path(issuer: Issuer, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        oidc_role_claim="realm_access.roles",
    )
    token = issuer.token(realm_access={"roles": ["default-roles-amss", "admin"]}, roles=["analyst"])
    assert authenticate(f"Bearer {token}", settings).role == Role.ADMIN
    # Read from the configured path only: a top-level "roles" is not ours to read then.
    only_top = issuer.token(roles=["admin"])
    assert authenticate(f"Bearer {only_top}", settings).role == Role.PUBLIC


def test_a_token_without_our_roles_is_an_identity_with_the_public_role(
    issuer: Issuer, oidc: Settings
) -> None:
    caller = authenticate(f"Bearer {issuer.token(roles=['offline_access', 'Admin'])}", oidc)
    assert caller == Principal("ana", Role.PUBLIC, "oidc")
    with pytest.raises(Forbidden) as caught:
        authorize(caller, Role.ANALYST)
    assert caught.value.status == 403 and "insufficient_scope" in caught.value.headers["WWW-Authenticate"]
    with pytest.raises(Unauthorized):  # the anonymous are asked to authenticate instead
        authorize(ANONYMOUS, Role.ANALYST)
    assert authorize(authenticate(f"Bearer {issuer.token(roles=['admin'])}", oidc), Role.ANALYST)


def test_role_claim_ignores_names_that_are_not_ours() -> None:
    assert token_role({"roles": ["administrator", "analysts", 7, None]}, "roles") == Role.PUBLIC
    assert token_role({"realm_access": "admin"}, "realm_access.roles") == Role.PUBLIC
    assert token_role({}, "a.b.c") == Role.PUBLIC


def test_an_expired_token_is_refused(issuer: Issuer, oidc: Settings) -> None:
    now = int(time.time())
    token = issuer.token(roles=["admin"], iat=now - 600, exp=now - 120)  # past the 30 s leeway
    error = refused(f"Bearer {token}", oidc)
    assert_invalid_token(error, "expired")
    assert token not in error.message and token not in error.headers["WWW-Authenticate"]
    # Within the leeway (a clock a few seconds apart) it is still taken.
    assert authenticate(f"Bearer {issuer.token(exp=now - 5)}", oidc).subject == "ana"


def test_a_token_without_expiry_is_refused(issuer: Issuer, oidc: Settings) -> None:
    assert_invalid_token(refused(f"Bearer {issuer.token(exp=None)}", oidc), "'exp'")


def test_a_token_signed_by_another_key_is_refused(issuer: Issuer, oidc: Settings) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = issuer.token(key=other, roles=["admin"])  # same kid, same claims, another key
    assert_invalid_token(refused(f"Bearer {forged}", oidc), "signature")
    unknown_kid = issuer.token(key=other, kid="not-a-key-of-theirs", roles=["admin"])
    assert_invalid_token(refused(f"Bearer {unknown_kid}", oidc), "not signed by a key")


def test_a_tampered_token_is_refused(issuer: Issuer, oidc: Settings) -> None:
    header, _, signature = issuer.token(roles=["analyst"]).split(".")
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "ana", "exp": now + 300, "roles": ["admin"]}
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    assert_invalid_token(refused(f"Bearer {header}.{body}.{signature}", oidc), "signature")


def test_unsigned_and_shared_secret_tokens_are_refused(issuer: Issuer, oidc: Settings) -> None:
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "ana", "exp": now + 300, "roles": ["admin"]}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": issuer.kid})
    assert_invalid_token(refused(f"Bearer {unsigned}", oidc), "'none'")
    # A shared-secret algorithm is never taken from an issuer of public keys (key confusion).
    hs256 = jwt.encode(
        claims, "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256", headers={"kid": issuer.kid}
    )
    assert_invalid_token(refused(f"Bearer {hs256}", oidc), "'HS256'")


def test_wrong_audience_or_issuer_is_refused(issuer: Issuer, oidc: Settings) -> None:
    other_app = issuer.token(aud="another-client", roles=["admin"])
    assert_invalid_token(refused(f"Bearer {other_app}", oidc), "audience")
    no_audience = issuer.token(aud=None, roles=["admin"])
    assert_invalid_token(refused(f"Bearer {no_audience}", oidc), "'aud'")
    elsewhere = issuer.token(iss="https://sso.example.org/realms/amss", roles=["admin"])
    assert_invalid_token(refused(f"Bearer {elsewhere}", oidc), "issuer")


def test_tokens_are_refused_when_no_issuer_is_configured(issuer: Issuer, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    error = refused(f"Bearer {issuer.token(roles=['admin'])}", settings)
    assert_invalid_token(error, "no identity provider")


def test_an_issuer_needs_an_audience_and_asymmetric_algorithms(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="OIDC_AUDIENCE"):
        Settings(data_dir=tmp_path, oidc_issuer="https://sso.example.org/realms/amss")
    with pytest.raises(ValueError, match="OIDC_ALGORITHMS"):
        Settings(data_dir=tmp_path, oidc_algorithms=["RS256", "HS256"])


def test_keys_from_a_configured_jwks_url(issuer: Issuer, tmp_path: Path) -> None:
    """Without discovery: the configured keys URL is the one read."""
    ec_key = ec.generate_private_key(ec.SECP256R1())
    settings = Settings(
        data_dir=tmp_path, oidc_issuer=issuer.url, oidc_audience=AUDIENCE,
        oidc_jwks_url=f"{issuer.url}/protocol/openid-connect/certs",
    )  # fmt: skip
    assert authenticate(f"Bearer {issuer.token(roles=['analyst'])}", settings).role == Role.ANALYST
    # An ES256 token whose kid the issuer does not publish: refused, though ES256 is accepted.
    es = issuer.token(key=ec_key, algorithm="ES256", kid="ec-unpublished")
    assert_invalid_token(refused(f"Bearer {es}", settings), "not signed by a key")
    missing = Settings(
        data_dir=tmp_path,
        oidc_issuer=issuer.url,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=f"{issuer.url}/nowhere",
    )
    with pytest.raises(ObservatoryError) as caught:  # the provider is at fault, not the token
        authenticate(f"Bearer {issuer.token()}", missing)
    assert caught.value.status == 503


def test_other_schemes_and_malformed_tokens_are_refused(oidc: Settings) -> None:
    basic = refused("Basic YW5hOnNlY3JldA==", oidc)
    assert basic.headers["WWW-Authenticate"] == 'Bearer realm="observatory"'  # no error code: RFC 6750 §3.1
    assert "YW5h" not in basic.message
    refused("Bearer ", oidc)
    assert_invalid_token(refused("Bearer not.a.jwt", oidc), "well-formed")


# -- API keys -----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The CLI's settings (its own data folder), as the environment gives them."""
    monkeypatch.setenv("OBSERVATORY_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield Settings(data_dir=tmp_path / "data")
    get_settings.cache_clear()


def cli_key(*args: str) -> str:
    done = CliRunner().invoke(cli, ["apikey", "create", *args])
    assert done.exit_code == 0, done.output
    keys = [line for line in done.output.splitlines() if line.startswith("obs_")]
    assert len(keys) == 1 and "cannot be shown again" in done.output
    return keys[0]


def test_an_api_key_made_by_the_cli_gives_its_role(cli_env: Settings) -> None:
    analyst = cli_key("notebooks", "--role", "analyst")
    admin = cli_key("ops", "--role", "admin")
    assert authenticate(f"Bearer {analyst}", cli_env) == Principal("notebooks", Role.ANALYST, "api_key")
    assert authenticate(f"Bearer {admin}", cli_env) == Principal("ops", Role.ADMIN, "api_key")
    assert len(analyst) >= len("obs_") + 43  # 32 random bytes
    listed = CliRunner().invoke(cli, ["apikey", "list"])
    assert "notebooks" in listed.output and "ops" in listed.output and analyst not in listed.output
    assert [key.name for key in list_api_keys(cli_env)] == ["notebooks", "ops"]


def test_the_keys_file_holds_no_key(cli_env: Settings) -> None:
    key = cli_key("notebooks", "--role", "analyst")
    path = cli_env.api_keys_path
    text = path.read_text()
    assert key not in text and key.removeprefix("obs_") not in text
    assert hashlib.sha256(key.encode()).hexdigest() in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unknown_altered_and_revoked_keys_are_refused(cli_env: Settings) -> None:
    kept = cli_key("notebooks", "--role", "analyst")
    gone = cli_key("laptop", "--role", "admin")
    assert authenticate(f"Bearer {gone}", cli_env).subject == "laptop"
    done = CliRunner().invoke(cli, ["apikey", "revoke", "laptop"])
    assert done.exit_code == 0, done.output
    assert_invalid_token(refused(f"Bearer {gone}", cli_env), "unknown or revoked")
    assert authenticate(f"Bearer {kept}", cli_env).subject == "notebooks"
    altered = kept[:-1] + ("A" if kept[-1] != "A" else "B")
    assert_invalid_token(refused(f"Bearer {altered}", cli_env), "unknown")
    # The digest on file is no credential either.
    assert_invalid_token(refused(f"Bearer {key_digest(kept)}", cli_env), "unknown")
    assert_invalid_token(refused("Bearer obs_never-issued", cli_env), "unknown")


def test_key_names_are_unique_and_roles_checked(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    create_api_key("notebooks", Role.ANALYST, settings)
    for name, role in [("notebooks", "admin"), ("bad name", "analyst"), ("x", "superuser"), ("y", "public")]:
        with pytest.raises(ObservatoryError) as caught:
            create_api_key(name, role, settings)
        assert caught.value.status == 400
    with pytest.raises(ObservatoryError):
        revoke_api_key("nobody", settings)
    assert len(list_api_keys(settings)) == 1


def test_describe_says_what_the_server_accepts(issuer: Issuer, oidc: Settings, tmp_path: Path) -> None:
    bare = describe(Settings(data_dir=tmp_path / "bare"))
    assert bare["note"] == "no identity provider configured: public data only"
    assert bare["identity_provider"] is None and bare["api_keys"] is False
    create_api_key("notebooks", Role.ANALYST, oidc)
    described = describe(oidc)
    assert described["identity_provider"] == issuer.url
    assert described["api_keys"] is True and described["api_key_count"] == 1
    assert "public data only" not in described["note"]


# -- the audit log in both stores ---------------------------------------------------------------


def entry(seconds: int, subject: str, *, layer: str | None = "incidents", status: int = 200) -> AccessEntry:
    at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=seconds % 2)
    return AccessEntry(at, subject, "analyst", "oidc", "GET", f"/collections/{layer}/items", layer, status)


def test_access_log_round_trip(store: Store, settings: Settings, tmp_path: Path) -> None:
    assert store.access_log() == []
    first, second = entry(0, "ana"), entry(90, "beto", layer=None, status=404)
    store.record_access(first)
    # A load replaces the layers (the GeoPackage: the whole file); the log is kept.
    folder = tmp_path / "sources"
    folder.mkdir()
    fixtures.load(store, "municipalities", fixtures.write_municipalities(folder), settings=settings)
    store.record_access(second)
    store.record_access(entry(30, "carla"))  # recorded late, ordered by its time
    assert store.access_log() == [second, entry(30, "carla"), first]
    assert store.access_log(limit=1) == [second]
    assert all(found.at.utcoffset() == timedelta(0) for found in store.access_log())
    reopened = open_store(settings)
    try:
        assert reopened.access_log(limit=5) == [second, entry(30, "carla"), first]
    finally:
        reopened.close()
    with pytest.raises(ValueError, match="timezone"):
        AccessEntry(datetime(2026, 1, 1), "ana", "analyst", "oidc", "GET", "/", None, 200)


def test_audit_records_identified_reads_only(store: Store) -> None:
    app = FastAPI()
    app.state.store = store
    scope = {"type": "http", "method": "GET", "path": "/collections/incidents/items", "headers": [],
             "query_string": b"", "app": app}  # fmt: skip
    audit(Request(scope), ANONYMOUS, "incidents", 200)
    assert store.access_log() == []
    audit(Request(scope), Principal("ana", Role.ANALYST, "oidc"), "incidents", 200)
    (found,) = store.access_log()
    assert (found.subject, found.role, found.via, found.method, found.path, found.layer, found.status) == (
        "ana", "analyst", "oidc", "GET", "/collections/incidents/items", "incidents", 200,
    )  # fmt: skip
    assert abs(datetime.now(UTC) - found.at) < timedelta(minutes=1)


# -- through a live server ----------------------------------------------------------------------


@pytest.fixture
def access_server(store: Store, settings: Settings, issuer: Issuer) -> Iterator[str]:
    """A live server over each store, trusting the local issuer."""
    trusting = settings.model_copy(update={"oidc_issuer": issuer.url, "oidc_audience": AUDIENCE})
    with serving(store, trusting) as url:
        yield url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_access_me_over_http(access_server: str, issuer: Issuer) -> None:
    anonymous = httpx.get(f"{access_server}/access/me")
    assert anonymous.status_code == 200
    assert anonymous.json()["subject"] == "anonymous" and anonymous.json()["role"] == "public"
    assert anonymous.json()["access"]["identity_provider"] == issuer.url
    analyst = httpx.get(
        f"{access_server}/access/me", headers=bearer(issuer.token(sub="u-17", roles=["analyst"]))
    )
    assert analyst.status_code == 200
    assert (analyst.json()["subject"], analyst.json()["role"], analyst.json()["via"]) == (
        "u-17",
        "analyst",
        "oidc",
    )
    now = int(time.time())
    expired = httpx.get(f"{access_server}/access/me", headers=bearer(issuer.token(exp=now - 600)))
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert expired.headers["content-type"] == "application/problem+json"
    assert "expired" in expired.json()["detail"]


def test_access_log_is_for_admins_only(access_server: str, issuer: Issuer, store: Store) -> None:
    log = f"{access_server}/access/log"
    anonymous = httpx.get(log)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    analyst = httpx.get(log, headers=bearer(issuer.token(sub="u-17", roles=["analyst"])))
    assert analyst.status_code == 403
    forged = issuer.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048), roles=["admin"])
    assert httpx.get(log, headers=bearer(forged)).status_code == 401
    store.record_access(entry(0, "u-17"))
    admin = httpx.get(log, headers=bearer(issuer.token(sub="root-1", roles=["admin"])), params={"limit": 10})
    assert admin.status_code == 200
    entries = admin.json()["entries"]
    # Reading the log is itself logged (newest first); the refused requests are not reads.
    assert [(e["subject"], e["role"], e["path"]) for e in entries] == [
        ("root-1", "admin", "/access/log"), ("u-17", "analyst", "/collections/incidents/items"),
    ]  # fmt: skip
    assert entries[1] == {**entry(0, "u-17").as_dict()}


def test_access_log_with_an_api_key(store: Store, settings: Settings) -> None:
    key = create_api_key("ops", Role.ADMIN, settings)
    with serving(store, settings) as url:  # no identity provider: keys only
        me = httpx.get(f"{url}/access/me", headers=bearer(key)).json()
        assert (me["subject"], me["role"], me["via"]) == ("ops", "admin", "api_key")
        assert me["access"]["identity_provider"] is None and me["access"]["api_keys"] is True
        assert httpx.get(f"{url}/access/log", headers=bearer(key)).status_code == 200
        revoke_api_key("ops", settings)
        assert httpx.get(f"{url}/access/log", headers=bearer(key)).status_code == 401
    assert [found.subject for found in store.access_log()] == ["ops"]
