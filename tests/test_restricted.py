# ruff: noqa: F811 - fixtures of other modules (issuer, amss) are imported, then named as arguments
"""Restricted data through the same API: the exact incidents and the withheld values reach an
authorised analyst (a token from a real local OpenID provider, or an API key), never an anonymous
caller or a forged or expired token, and every such read is in the audit log; both stores."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from observatory.access import Role, create_api_key
from observatory.export import export_snapshot
from observatory.indicators import compute_indicators
from observatory.settings import Settings
from observatory.store import Store
from tests.conftest import serving
from tests.test_access import AUDIENCE, Issuer, bearer, issuer  # noqa: F401 - the issuer fixture
from tests.test_violence import INCIDENTS, TO_LONLAT, W_IN, amss, load_manifest, write_incidents  # noqa: F401

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture
def incidents_server(amss: Store, settings: Settings, issuer: Issuer, tmp_path: Path) -> Iterator[str]:
    """The tiny AMSS with its eight incidents loaded and computed, behind a server trusting the issuer."""
    load_manifest(amss, write_incidents(tmp_path, INCIDENTS), settings)
    compute_indicators(amss, ["homicide_rate"], settings=settings)
    trusting = settings.model_copy(update={"oidc_issuer": issuer.url, "oidc_audience": AUDIENCE})
    with serving(amss, trusting) as url:
        yield url


def incident_tile(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    lon, lat = TO_LONLAT.transform(*W_IN)
    tile = TMS.tile(lon, lat, 20)
    return httpx.get(
        f"{url}/collections/incidents/tiles/WebMercatorQuad/20/{tile.y}/{tile.x}", headers=headers
    )


def test_anonymous_callers_get_no_exact_incident_anywhere(
    incidents_server: str,
    amss: Store,
    tmp_path: Path,
) -> None:
    listed = [c["id"] for c in httpx.get(f"{incidents_server}/collections").json()["collections"]]
    assert "incidents" not in listed and "incident_cells" in listed
    for path in (
        "/collections/incidents",
        "/collections/incidents/items",
        "/collections/incidents/download?f=csv",
    ):
        refused = httpx.get(incidents_server + path)
        assert refused.status_code == 401, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "H1" not in refused.text
    assert incident_tile(incidents_server).status_code == 401
    # Nor the static export: no incidents collection, no incident id in any file.
    export_snapshot(amss, tmp_path / "export", max_zoom=12)
    written = [path for path in (tmp_path / "export").rglob("*") if path.is_file()]
    assert not any("incidents" in path.parts for path in written)
    assert not any(
        b"H1" in path.read_bytes() for path in written if path.suffix in {".json", ".geojson", ".csv"}
    )


def test_an_analyst_reads_the_exact_incidents_and_each_read_is_audited(
    incidents_server: str,
    amss: Store,
    issuer: Issuer,
) -> None:
    token = bearer(issuer.token(sub="u-17", roles=["analyst"]))
    listed = [
        c["id"] for c in httpx.get(f"{incidents_server}/collections", headers=token).json()["collections"]
    ]
    assert "incidents" in listed
    items = httpx.get(f"{incidents_server}/collections/incidents/items", params={"limit": 50}, headers=token)
    assert items.status_code == 200
    assert sorted(f["properties"]["incident_id"] for f in items.json()["features"]) == sorted(
        i[0] for i in INCIDENTS
    )
    assert items.headers["cache-control"] == "private, no-store" and "Authorization" in items.headers["vary"]
    tile = incident_tile(incidents_server, token)
    assert tile.status_code == 200
    features = mapbox_vector_tile.decode(tile.content)["incidents"]["features"]
    assert {f["properties"]["incident_id"] for f in features} >= {"H1", "H2", "R1", "L1", "H3"}
    download = httpx.get(
        f"{incidents_server}/collections/incidents/download", params={"f": "csv"}, headers=token
    )
    assert set(pd.read_csv(io.StringIO(download.text))["incident_id"]) == {i[0] for i in INCIDENTS}
    # The exact tile, built for the analyst, is not answered from the cache to anyone else.
    assert incident_tile(incidents_server).status_code == 401
    reads = [(e.subject, e.role, e.layer, e.path) for e in amss.access_log()]
    assert ("u-17", "analyst", "incidents", "/collections/incidents/items") in reads
    assert ("u-17", "analyst", "incidents", "/collections/incidents/download") in reads
    assert sum(1 for e in reads if e[3].startswith("/collections/incidents/tiles")) == 1


def test_expired_forged_and_roleless_tokens_are_refused(incidents_server: str, issuer: Issuer) -> None:
    items = f"{incidents_server}/collections/incidents/items"
    expired = issuer.token(roles=["analyst"], exp=int(time.time()) - 600)
    forged = issuer.token(
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048), roles=["analyst"]
    )
    for token in (expired, forged, "obs_not-a-key"):
        answer = httpx.get(items, headers=bearer(token))
        assert answer.status_code == 401 and "H1" not in answer.text
    # Nor are they taken for the anonymous public on a public route: the caller is told.
    public = httpx.get(f"{incidents_server}/collections/indicators/items", headers=bearer("obs_not-a-key"))
    assert public.status_code == 401 and public.headers["content-type"] == "application/problem+json"
    roleless = httpx.get(items, headers=bearer(issuer.token(roles=[])))
    assert roleless.status_code == 403 and "H1" not in roleless.text


def test_an_analysts_download_holds_the_withheld_values_the_publics_does_not(
    incidents_server: str,
    amss: Store,
    settings: Settings,
) -> None:
    key = create_api_key("notebook", Role.ANALYST, settings)
    download = f"{incidents_server}/collections/indicators/download"

    def homicide_rates(headers: dict[str, str] | None) -> pd.DataFrame:
        text = httpx.get(download, params={"f": "geojson"}, headers=headers).text
        rows = pd.DataFrame([f["properties"] for f in json.loads(text)["features"]])
        return rows[rows["indicator_id"] == "homicide_rate"].set_index("value_id")

    public, analyst = homicide_rates(None), homicide_rates(bearer(key))
    # West's 2019 (2 events, 3 victims) is withheld from the public; the analyst has it.
    assert public.loc["homicide_rate:0001:2019", "flag"] == "suppressed"
    assert pd.isna(public.loc["homicide_rate:0001:2019", "value"])
    assert analyst.loc["homicide_rate:0001:2019", "value"] == pytest.approx(30.0)
    assert analyst.loc["homicide_rate:0001:2019", "n"] == 2
    assert [(e.subject, e.layer) for e in amss.access_log()] == [("notebook", "indicators")]
