"""The outsider's attack on disclosure control (issue 19).

The whole sample is loaded into a GeoPackage store, its indicators computed and served. The attack
then gathers everything an anonymous user can read — the indicator items (GeoJSON and CSV, every
page), the partner feed (long and wide), the items of every public collection, every download
format, indicator tiles, the map's profiles, classes and overlays, and the ``observatory export``
folder (GeoJSON, FlatGeobuf, PMTiles, feeds) — and tries to recover each withheld value from it, by:

(a) points: per-incident rows and the public ``incident_cells`` counted per municipality, year and
    type (and no cell published for a withheld municipality, year and type: the public cells count
    every type together, so none for a withheld count of every incident);
(b) raw tables: the police homicide counts of ``statistics`` behind ``homicide_rate_police``;
(c) differencing and algebra: a linear program per period over every published relation (the 14
    districts, their 2024 municipality, the AMSS total, the type relation, victims behind the rates
    through the year's population, the map's class intervals, public cells as lower bounds, public points,
    intervals from the composite); a count pinned to less than one is recovered;
(d) derivation: the composite inverted for a withheld component (and a withheld index recomputed),
    the Empirical-Bayes smoothed rate inverted for a withheld unit's victims;
(e) ordering and filtering: ``sortby`` on value and n, CQL2 and property filters on value, n and the
    stored flag, on the whole sample and on a small store of each kind.

A last test looks for the exact incidents (their points to 6 decimals, their ids) in every public
collection, z20 tile, download and export file.

The only thing read that is not public is the truth: ``store.read_layer`` of the store, which keeps
the withheld values, so that a recovery is checked against the real value. The model of each
indicator (what its ``n`` counts, its numerator, the composite's weights and benchmarks, the
Empirical-Bayes estimator) is the one its technical sheet (``/indicators``) publishes; a first test
checks that every output was read and that the model holds on the truth, so that a pass is not
vacuous."""

from __future__ import annotations

import gzip
import io
import itertools
import math
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import mapbox_vector_tile
import morecantile
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.optimize import least_squares, linprog
from scipy.spatial import cKDTree

from etl import load_source, read_manifest
from etl.plan import load_order
from layers import get_layer
from observatory.export import export_snapshot
from observatory.indicators import REGISTRY, compute_indicators
from observatory.settings import Settings
from observatory.store import Store, conform, open_store
from tests import fixtures
from tests.conftest import STORES, fresh_settings, serving

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample"
COMPOSITE_SPEC = ROOT / "observatory" / "indicators" / "composite.toml"
TMS = morecantile.tms.get("WebMercatorQuad")
G2007, G2024, METROPOLITAN = "municipios_2007", "municipios_2024", "AMSS"
RESTRICTED = "incidents"
CELLS = "incident_cells"
SUPPRESSED = "suppressed"
THRESHOLD = 5
DOWNLOAD_FORMATS = ("csv", "geojson", "gpkg", "fgb", "parquet")
EXPORT_ZOOM = 8
INDICATOR_TILE_ZOOMS = (8, 10, 12)
OWN_POINT_SOURCES = ("facilities", "transit_stops", "permits", "complaints")
"""Point layers loaded from sources of their own (schools, stops, permits, complaints)."""
EXACT = 5e-7
"""Degrees: a public coordinate this close to an incident is its exact point (6 decimals ≈ 0.1 m)."""

TYPES = ("homicidio", "robo", "extorsion", "lesiones", "violencia_sexual")
"""The incident types of the police manifest (``data/sample/incidentes_pnc.toml``)."""
EVENTS = tuple(f"E:{kind}" for kind in TYPES)
ALL_TYPES = "*"
"""The type of a count of incidents of every type (the public cells tell no type apart)."""
VICTIMS, POLICE = "V", "P"
VARIABLES = (*EVENTS, VICTIMS, POLICE)
"""Unknown counts per district and year: events of each type, homicide victims, police homicides."""

N_COUNTS = {
    "homicide_rate": ("E:homicidio",),
    "homicide_rate_smoothed": ("E:homicidio",),
    "violent_incident_rate": EVENTS,
    "robbery_rate": ("E:robo",),
    "extortion_rate": ("E:extorsion",),
    "homicide_rate_police": (POLICE,),
}
"""What each violence indicator's ``n`` counts, as its sheet says (``n = hechos``, ``n = homicidios``)."""
NUMERATORS = {
    "homicide_rate": (VICTIMS,),
    "violent_incident_rate": EVENTS,
    "robbery_rate": ("E:robo",),
    "extortion_rate": ("E:extorsion",),
    "homicide_rate_police": (POLICE,),
}
"""The count over the year's population × 100 000 of each rate, as its sheet's formula says."""
PUBLISHES_ZEROS = {
    "homicide_rate",
    "violent_incident_rate",
    "robbery_rate",
    "extortion_rate",
    "homicide_rate_police",
}
"""The count indicators whose zeros are published (README, "Disclosure control"), so that a withheld
one is known to be at least 1."""
INCIDENT_TYPES = {
    "homicide_rate": ("homicidio",),
    "homicide_rate_smoothed": ("homicidio",),
    "violent_incident_rate": TYPES,
    "robbery_rate": ("robo",),
    "extortion_rate": ("extorsion",),
}
"""The incident types each indicator's ``n`` counts."""

Key = tuple[str, str, str, int]
"""(indicator_id, geography, municipality_code, period)."""


# ---------------------------------------------------------------- the sample, its truth, the server


@dataclass
class Sample:
    store: Store
    settings: Settings
    folder: Path


def load_sample(store: Store, settings: Settings) -> None:
    """Every manifest of the sample, in the order ``observatory load`` uses, then the indicators."""
    manifests = load_order([read_manifest(path) for path in sorted(SAMPLE_DIR.glob("*.toml"))])
    for manifest in manifests:
        load_source(store, manifest, settings=settings)
    compute_indicators(store, settings=settings)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sample]:
    folder = tmp_path_factory.mktemp("attack")
    settings = Settings(data_dir=folder / "store")
    store = open_store(settings)
    load_sample(store, settings)
    yield Sample(store, settings, folder)
    store.close()


@dataclass
class Truth:
    """The store's true values (withheld ones included): the one non-public input of the attack."""

    indicators: pd.DataFrame
    incidents: gpd.GeoDataFrame
    statistics: pd.DataFrame

    def row(self, key: Key) -> pd.Series:
        return self.indicators.loc[key]


@pytest.fixture(scope="module")
def truth(sample: Sample) -> Truth:
    indicators = pd.DataFrame(sample.store.read_layer(get_layer("indicators")).drop(columns="geom"))
    indicators["period"] = indicators["period"].astype(int)
    indicators = indicators.set_index(["indicator_id", "geography", "municipality_code", "period"])
    incidents = sample.store.read_layer(get_layer("incidents"))
    statistics = pd.DataFrame(sample.store.read_layer(get_layer("statistics")).drop(columns="geom"))
    assert set(incidents["type"]) <= set(TYPES), "the sample's incident types are the manifest's"
    return Truth(indicators.sort_index(), incidents, statistics)


@pytest.fixture(scope="module")
def base_url(sample: Sample) -> Iterator[str]:
    with serving(sample.store, sample.settings) as url:
        yield url


# ---------------------------------------------------------------- what the outsider gathers


def number(text: Any) -> float | None:
    """A published number, or None for null, empty or absent."""
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return None
    result = float(text)
    return None if math.isnan(result) else result


def tolerance(value: float) -> float:
    """Half a unit of the last decimal a published number carries (full floats: a relative 1e-9)."""
    text = repr(float(value))
    if "e" in text or "." not in text:
        return 1e-9 * max(1.0, abs(value))
    decimals = len(text.split(".")[1])
    return max(0.5 * 10.0**-decimals, 1e-9 * abs(value)) if decimals < 10 else 1e-9 * max(1.0, abs(value))


@dataclass(frozen=True)
class Observation:
    """One indicator value as one public output shows it."""

    source: str
    key: Key
    value: float | None
    n: float | None
    flag: str | None


def observe(source: str, properties: dict[str, Any], geography: str | None = None) -> Observation | None:
    if not properties.get("indicator_id") or properties.get("period") in (None, ""):
        return None
    key = (
        str(properties["indicator_id"]),
        str(properties.get("geography") or geography),
        str(properties["municipality_code"]),
        int(float(properties["period"])),
    )
    flag = properties.get("flag")
    return Observation(
        source,
        key,
        number(properties.get("value")),
        number(properties.get("n")),
        None if flag in (None, "") or (isinstance(flag, float) and math.isnan(flag)) else str(flag),
    )


def observe_frame(source: str, frame: pd.DataFrame, geography: str | None = None) -> list[Observation]:
    rows = pd.DataFrame(frame.drop(columns=[c for c in ("geometry", "geom", "WKT") if c in frame]))
    found = []
    for record in rows.astype(object).where(rows.notna(), None).to_dict("records"):
        if "municipality_code" in record and record["municipality_code"] is not None:
            record["municipality_code"] = str(record["municipality_code"])
        if (observation := observe(source, record, geography)) is not None:
            found.append(observation)
    return found


def observe_wide(source: str, frame: pd.DataFrame, geography: str) -> list[Observation]:
    """The feed's wide format: ``{id}``, ``{id}__n``, ``{id}__flag`` per municipality (and period)."""
    found = []
    rows = frame.astype(object).where(frame.notna(), None)
    ids = [c for c in frame.columns if c in REGISTRY]
    for record in rows.to_dict("records"):
        period = record.get("period")
        for indicator in ids:
            if period is None:
                continue
            found.append(
                Observation(
                    source,
                    (indicator, geography, str(record["municipality_code"]), int(float(period))),
                    number(record.get(indicator)),
                    number(record.get(f"{indicator}__n")),
                    record.get(f"{indicator}__flag") or None,
                )
            )
    return found


@dataclass
class Public:
    """Everything the outsider gathered."""

    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    observations: list[Observation] = field(default_factory=list)
    statistics: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    downloads: dict[tuple[str, str], gpd.GeoDataFrame | pd.DataFrame] = field(default_factory=dict)
    classes: list[dict[str, Any]] = field(default_factory=list)
    sheets: dict[str, dict[str, Any]] = field(default_factory=dict)
    export: Path | None = None
    export_frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    tile_properties: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    restricted_answers: dict[str, int] = field(default_factory=dict)
    overlays: list[str] = field(default_factory=list)

    def consolidated(self) -> dict[Key, tuple[float | None, float | None]]:
        """Per key, the published value and n (the first non-null across outputs; items first)."""
        values: dict[Key, float] = {}
        counts: dict[Key, float] = {}
        for observation in self.observations:
            if observation.value is not None:
                values.setdefault(observation.key, observation.value)
            if observation.n is not None:
                counts.setdefault(observation.key, observation.n)
        return {key: (values.get(key), counts.get(key)) for key in set(values) | set(counts)}

    def withheld_keys(self) -> set[Key]:
        return {o.key for o in self.observations if o.flag == SUPPRESSED}

    def municipalities(self) -> pd.DataFrame:
        rows = [feature["properties"] for feature in self.items["municipalities"]]
        frame = pd.DataFrame(rows).set_index("code")
        geometries = [shapely.geometry.shape(f["geometry"]) for f in self.items["municipalities"]]
        return gpd.GeoDataFrame(frame, geometry=geometries, crs="EPSG:4326")


def all_pages(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every feature of an items query, following its ``next`` links."""
    features: list[dict[str, Any]] = []
    url: str = path
    query: dict[str, Any] | None = {**(params or {}), "limit": 10000}
    while True:
        response = client.get(url, params=query)
        response.raise_for_status()
        page = response.json()
        features += page["features"]
        following = [link["href"] for link in page.get("links", []) if link["rel"] == "next"]
        if not following or not page["features"]:
            return features
        url, query = following[0], None


def all_csv_pages(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    frames, offset = [], 0
    while True:
        response = client.get(path, params={**(params or {}), "f": "csv", "limit": 10000, "offset": offset})
        response.raise_for_status()
        frame = pd.read_csv(io.StringIO(response.text), dtype=str, keep_default_na=False)
        frames.append(frame)
        if len(frame) < 10000:
            return pd.concat(frames, ignore_index=True)
        offset += len(frame)


def read_download(content: bytes, fmt: str, folder: Path, name: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(content), dtype={"municipality_code": str, "code": str})
    path = folder / f"{name}.{fmt}"
    path.write_bytes(content)
    if fmt == "parquet":
        try:
            return gpd.read_parquet(path)
        except ValueError:
            return pd.read_parquet(path)
    return gpd.read_file(path)


def decode_tile(content: bytes, z: int, x: int, y: int) -> list[tuple[str, dict[str, Any], shapely.Geometry]]:
    """The features of a Mapbox vector tile, geometry in lon/lat."""
    if content[:2] == b"\x1f\x8b":
        content = gzip.decompress(content)
    bounds = TMS.xy_bounds(morecantile.Tile(x, y, z))
    found = []
    for name, layer in mapbox_vector_tile.decode(content).items():
        extent = layer.get("extent", 4096)

        def to_lonlat(xy: np.ndarray, extent: int = extent) -> np.ndarray:
            mx = bounds.left + xy[:, 0] / extent * (bounds.right - bounds.left)
            my = bounds.bottom + xy[:, 1] / extent * (bounds.top - bounds.bottom)
            lon = np.degrees(mx / 6378137.0)
            lat = np.degrees(2 * np.arctan(np.exp(my / 6378137.0)) - np.pi / 2)
            return np.column_stack([lon, lat])

        for feature in layer["features"]:
            geometry = shapely.geometry.shape(feature["geometry"])
            found.append((name, feature["properties"], shapely.transform(geometry, to_lonlat)))
    return found


def fetch_many(client: httpx.Client, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """GET each (path, query), a few at a time, in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda request: client.get(request[0], params=request[1]), requests))


def amss_tiles(bounds: tuple[float, float, float, float], z: int) -> list[morecantile.Tile]:
    return list(TMS.tiles(*bounds, zooms=[z]))


def gather_indicators(client: httpx.Client, public: Public, bounds: tuple[float, ...]) -> None:
    for feature in all_pages(client, "/collections/indicators/items"):
        public.observations.append(observe("items (GeoJSON)", feature["properties"]))  # type: ignore[arg-type]
    csv = all_csv_pages(client, "/collections/indicators/items")
    public.observations += observe_frame("items (CSV)", csv)
    for geography in (G2007, G2024):
        query = {"period": "all", "geography": geography}
        feed = client.get("/feeds/v1/indicators", params=query).json()
        public.observations += [
            o for f in feed["features"] if (o := observe("feed (GeoJSON, long)", f["properties"], geography))
        ]
        text = client.get("/feeds/v1/indicators", params={**query, "f": "csv"}).text
        public.observations += observe_frame(
            "feed (CSV, long)", pd.read_csv(io.StringIO(text), dtype={"municipality_code": str}), geography
        )
        wide = client.get("/feeds/v1/indicators", params={**query, "format": "wide"}).json()
        public.observations += observe_wide(
            "feed (GeoJSON, wide)", pd.DataFrame([f["properties"] for f in wide["features"]]), geography
        )
    # Indicator tiles: the violence theme and the composite indices behind it, over the whole area at
    # low zooms and over each municipality at z12 (one filter per request keeps tiles under their cap).
    places = public.municipalities().representative_point()
    tiles = [(z, t) for z in INDICATOR_TILE_ZOOMS[:-1] for t in amss_tiles(bounds, z)]
    tiles += sorted(
        {(INDICATOR_TILE_ZOOMS[-1], TMS.tile(p.x, p.y, INDICATOR_TILE_ZOOMS[-1])) for p in places}
    )
    queries = ({"theme": "violence"}, {"indicator_id": "cpi_violence"}, {"indicator_id": "cpi_overall"})
    requests = [(z, tile, query) for query in queries for z, tile in tiles]
    responses = fetch_many(
        client,
        [(f"/collections/indicators/tiles/WebMercatorQuad/{z}/{t.y}/{t.x}", q) for z, t, q in requests],
    )
    for (z, tile, _), response in zip(requests, responses, strict=True):
        if response.status_code != 200:
            continue
        for _, properties, _ in decode_tile(response.content, z, tile.x, tile.y):
            if (observation := observe(f"tiles z{z}", properties)) is not None:
                public.observations.append(observation)


def gather_map(client: httpx.Client, public: Public, withheld: set[Key]) -> None:
    """``/map/profile`` of every municipality (violence: the period with most withheld values, with the
    series of every period; composite: the latest), and ``/indicators/{id}/classes`` of every rate
    and period holding a withheld value."""
    codes = {
        G2007: sorted(public.municipalities().index),
        G2024: sorted(set(public.municipalities()["municipality_2024_code"])),
    }
    periods = pd.Series([key[3] for key in withheld])
    busiest, latest = int(periods.mode().iloc[0]), int(periods.max()) + 1
    asked = [
        (geography, code, theme, period)
        for geography, places in codes.items()
        for code in places
        for theme, period in (("violence", busiest), ("composite", latest))
    ]
    responses = fetch_many(
        client,
        [(f"/map/profile/{c}", {"theme": t, "period": p, "geography": g}) for g, c, t, p in asked],
    )
    for (geography, code, theme, period), response in zip(asked, responses, strict=True):
        if response.status_code != 200:
            continue
        source = f"/map/profile ({theme} {period})"
        for entry in response.json()["indicators"]:
            public.observations.append(
                Observation(
                    source,
                    (entry["id"], geography, code, period),
                    number(entry["value"]),
                    number(entry["n"]),
                    entry["flag"],
                )
            )
            for point in entry["series"]:
                public.observations.append(
                    Observation(
                        f"{source} series",
                        (entry["id"], geography, code, int(point["period"])),
                        number(point["value"]),
                        None,
                        None,
                    )
                )
    classified = sorted({(k[0], k[1], k[3]) for k in withheld if k[0] in NUMERATORS})
    responses = fetch_many(
        client, [(f"/indicators/{i}/classes", {"period": p, "geography": g}) for i, g, p in classified]
    )
    public.classes += [response.json() for response in responses if response.status_code == 200]


def gather_collections(client: httpx.Client, public: Public, folder: Path) -> None:
    listing = client.get("/collections", params={"f": "json"}).json()["collections"]
    public.collections = {c["id"]: c for c in listing}
    for name in public.collections:
        if name != "indicators":
            public.items[name] = all_pages(client, f"/collections/{name}/items")
    asked = [(name, fmt) for name in public.collections for fmt in DOWNLOAD_FORMATS]
    responses = fetch_many(client, [(f"/collections/{name}/download", {"f": fmt}) for name, fmt in asked])
    for (name, fmt), response in zip(asked, responses, strict=True):
        if response.status_code == 200:
            public.downloads[(name, fmt)] = read_download(response.content, fmt, folder, f"{name}-{fmt}")
    for (name, fmt), frame in public.downloads.items():
        if name == "indicators":
            public.observations += observe_frame(f"download f={fmt}", frame)
    for feature in public.items.get("statistics", []):
        public.statistics.append(("statistics items", feature["properties"]))
    for fmt in DOWNLOAD_FORMATS:
        if ("statistics", fmt) in public.downloads:
            frame = public.downloads[("statistics", fmt)]
            for record in pd.DataFrame(frame).to_dict("records"):
                public.statistics.append((f"statistics download f={fmt}", record))
    public.overlays = [o["name"] for o in client.get("/map/context").json()["overlays"]]
    tile = TMS.tile(-89.19, 13.70, 12)
    for path in (
        f"/collections/{RESTRICTED}/items",
        *(f"/collections/{RESTRICTED}/download?f={fmt}" for fmt in DOWNLOAD_FORMATS),
        f"/collections/{RESTRICTED}/tiles/WebMercatorQuad/12/{tile.y}/{tile.x}",
    ):
        response = client.get(path)
        public.restricted_answers[path] = response.status_code
        if response.status_code == 401:
            assert response.headers["content-type"].startswith("application/problem+json"), path


def gather_export(store: Store, public: Public, folder: Path) -> None:
    """``observatory export`` into a folder, read back: GeoJSON, FlatGeobuf, CSV feeds, PMTiles."""
    from pmtiles.reader import MmapSource, Reader, all_tiles

    public.export = folder / "export"
    export_snapshot(store, public.export, max_zoom=EXPORT_ZOOM)
    for path in sorted(public.export.rglob("*")):
        relative = str(path.relative_to(public.export))
        if path.suffix in (".geojson", ".fgb") and path.stat().st_size > 0:
            frame = gpd.read_file(path)
            public.export_frames[relative] = frame
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, dtype={"municipality_code": str})
            public.export_frames[relative] = frame
        elif path.suffix == ".pmtiles":
            with path.open("rb") as file:
                reader = Reader(MmapSource(file))
                for (z, x, y), content in all_tiles(reader.get_bytes):
                    for _, properties, _ in decode_tile(content, z, x, y):
                        public.tile_properties.append((f"export {relative} z{z}", properties))
                        if (observation := observe(f"export {relative}", properties)) is not None:
                            public.observations.append(observation)
    for relative, frame in public.export_frames.items():
        if "feeds/" in relative:
            if "wide" in relative:
                continue  # the latest wide files carry no period; the long ones hold the same values
            geography = G2024 if G2024 in relative else G2007
            public.observations += observe_frame(f"export {relative}", frame, geography)
        elif relative.startswith("collections/indicators/"):
            public.observations += observe_frame(f"export {relative}", frame)


@pytest.fixture(scope="module")
def public(sample: Sample, base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Public:
    folder = tmp_path_factory.mktemp("public")
    gathered = Public()
    with httpx.Client(base_url=base_url, timeout=120) as client:
        gathered.sheets = {
            s["id"]: s for s in client.get("/indicators", params={"f": "json"}).json()["indicators"]
        }
        gather_collections(client, gathered, folder)
        bounds = tuple(gathered.municipalities().total_bounds)
        gather_indicators(client, gathered, bounds)
        gather_map(client, gathered, gathered.withheld_keys())
    gather_export(sample.store, gathered, folder)
    return gathered


@pytest.fixture(scope="module")
def withheld(public: Public, truth: Truth) -> dict[Key, pd.Series]:
    """Every withheld value (flag ``suppressed`` in some public output) with its true row."""
    keys = public.withheld_keys()
    assert keys, "the sample has withheld values"
    missing = [key for key in keys if key not in truth.indicators.index]
    assert not missing, f"withheld rows not in the store: {missing[:5]}"
    return {key: truth.row(key) for key in sorted(keys)}


# ---------------------------------------------------------------- recoveries and their report


@dataclass(frozen=True)
class Recovery:
    method: str
    output: str
    key: Key
    found: float
    true: float
    how: str

    def __str__(self) -> str:
        indicator, geography, code, period = self.key
        return (
            f"{indicator} {code} {period} ({geography}) recovered = {self.found:g} (true {self.true:g}) "
            f"by {self.method} from {self.output}: {self.how}"
        )


def assert_none_recovered(recoveries: list[Recovery], total: int, what: str) -> None:
    """Fail naming every recovery (how, from which output) when there is any."""
    if recoveries:
        pytest.fail(report(recoveries, total, what), pytrace=False)


def report(recoveries: list[Recovery], total: int, what: str) -> str:
    by_method: dict[str, int] = defaultdict(int)
    for recovery in recoveries:
        by_method[recovery.method] += 1
    keys = len({r.key for r in recoveries})
    lines = [f"{keys} of {total} withheld values recovered {what} ({dict(by_method)}):"]
    lines += [f"  {r}" for r in recoveries[:25]]
    if len(recoveries) > 25:
        lines.append(f"  … and {len(recoveries) - 25} more")
    return "\n".join(lines)


def true_count(row: pd.Series) -> float:
    return float(row["n"])


class People:
    """Each district's population in a year by the rule the rate sheets print: the public yearly
    estimate (``statistics``, ``poblacion_estimada``) of that year, else the latest before it, else
    the 2007 census."""

    def __init__(self, census: dict[str, float], estimates: dict[str, dict[int, float]]) -> None:
        self.census, self.estimates = census, estimates

    def of(self, district: str, year: int) -> float:
        earlier = [y for y in self.estimates.get(district, {}) if y <= year]
        return self.estimates[district][max(earlier)] if earlier else self.census[district]


def crosswalk(public: Public) -> tuple[dict[str, list[str]], People]:
    """Units (2007 codes, 2024 codes, AMSS) -> their districts, and every district's population."""
    municipalities = public.municipalities()
    census = {code: float(p) for code, p in municipalities["population_2007"].items()}
    estimates: dict[str, dict[int, float]] = defaultdict(dict)
    for _, record in public.statistics:
        if record.get("variable") == "poblacion_estimada" and number(record.get("value")) is not None:
            estimates[str(record["municipality_code"])][int(float(record["period"]))] = float(record["value"])
    units: dict[str, list[str]] = {code: [code] for code in municipalities.index}
    for code, parent in municipalities["municipality_2024_code"].items():
        units.setdefault(parent, []).append(code)
    units[METROPOLITAN] = sorted(municipalities.index)
    return units, People(census, dict(estimates))


def geography_codes(public: Public) -> dict[str, list[str]]:
    """The municipalities of each geography: the 14 of 2007 and the 2024 ones they became districts of."""
    municipalities = public.municipalities()
    return {G2007: sorted(municipalities.index), G2024: sorted(set(municipalities["municipality_2024_code"]))}


def unit_population(units: dict[str, list[str]], population: People, code: str, year: int) -> float:
    return sum(population.of(d, year) for d in units[code])


def true_numerator(key: Key, row: pd.Series, units: dict[str, list[str]], population: People) -> float:
    return float(row["value"]) * unit_population(units, population, key[2], key[3]) / 1e5


# ---------------------------------------------------------------- the contract's public surface


OUTPUT_FAMILIES = (
    "items (GeoJSON)", "items (CSV)", "feed (GeoJSON, long)", "feed (CSV, long)", "feed (GeoJSON, wide)",
    *(f"download f={fmt}" for fmt in DOWNLOAD_FORMATS), *(f"tiles z{z}" for z in INDICATOR_TILE_ZOOMS),
    "export collections/indicators/indicators.geojson", "export collections/indicators/indicators.fgb",
    "export feeds/v1/", "/map/profile",
)  # fmt: skip


def test_the_outsider_saw_every_output(public: Public, withheld: dict[Key, pd.Series], truth: Truth) -> None:
    """The attack is not vacuous: every output was read and shows withheld rows as withheld, and the
    relations the linear program uses hold on the truth (else the model, not the product, is wrong)."""
    seen: dict[str, set[Key]] = {family: set() for family in OUTPUT_FAMILIES}
    for observation in public.observations:
        for family in OUTPUT_FAMILIES:
            if observation.source.startswith(family) and observation.flag == SUPPRESSED:
                seen[family].add(observation.key)
    unseen = [family for family, keys in seen.items() if not keys]
    assert not unseen, f"outputs read without a withheld row in them (parsing broken?): {unseen}"
    assert public.classes, "no /indicators/{id}/classes read"
    violence = truth.indicators[truth.indicators.index.get_level_values(0).isin(list(N_COUNTS))]
    # The smoothed rate of a unit whose own rate is withheld (its published neighbours' prior) has
    # no n: it counts nothing of the unit's.
    exact = {
        key: (float(row["value"]), float(row["n"])) for key, row in violence.iterrows() if pd.notna(row["n"])
    }
    contradicted = [
        period
        for period in sorted({key[3] for key in withheld})
        if build_system(public, period, exact, truth, []).bounds({0: 1.0}) is None
    ]
    assert not contradicted, (
        f"the truth contradicts the relations the linear program assumes in {contradicted}"
    )


def test_exact_incidents_are_restricted_and_published_as_cells(public: Public) -> None:
    """The exact incidents are not a public collection (401 problem+json for items, download and
    tiles; no export files) and their public form is ``incident_cells``: H3 counts of 5 or more."""
    assert RESTRICTED not in sorted(public.collections), "/collections lists the exact incidents layer"
    assert RESTRICTED not in public.overlays, (
        f"the map offers the exact incidents as an overlay: {public.overlays}"
    )
    refused = {path: status for path, status in public.restricted_answers.items() if status != 401}
    assert not refused, f"anonymous requests for the exact incidents are answered {refused}"
    assert public.export is not None
    files = [
        str(p.relative_to(public.export))
        for p in public.export.rglob("*")
        if "collections/incidents/" in str(p)
    ]
    assert not files, f"observatory export writes the exact incidents: {files}"
    assert CELLS in public.collections, "no public incident_cells collection"
    cells = public.items[CELLS]
    assert cells, "incident_cells is empty"
    wanted = {"cell_id", "h3_cell", "municipality_code", "year", "incidents"}
    for feature in cells:
        properties = feature["properties"]
        assert wanted <= set(properties), f"incident_cells properties {sorted(properties)}"
        assert feature["geometry"]["type"] == "MultiPolygon", feature["geometry"]["type"]
        assert isinstance(properties["year"], int) and isinstance(properties["incidents"], int), properties
        assert properties["incidents"] >= THRESHOLD, f"a cell below the threshold is published: {properties}"


def test_withheld_values_are_null_in_every_output(
    public: Public, truth: Truth, withheld: dict[Key, pd.Series]
) -> None:
    """A value withheld anywhere is null everywhere (items, CSV, feed, downloads, tiles, export,
    profile, classes), and no violence value resting on fewer than 5 events is published."""
    recoveries = [
        Recovery(
            "another output",
            o.source,
            o.key,
            o.value if o.value is not None else o.n,  # type: ignore[arg-type]
            float(withheld[o.key]["value"] if o.value is not None else withheld[o.key]["n"]),
            f"value={o.value} n={o.n} flag={o.flag} where another output says suppressed",
        )
        for o in public.observations
        if o.key in withheld and (o.value is not None or o.n is not None)
    ]
    for document in public.classes:
        for code in document["assigned"]:
            key = (document["indicator_id"], document["geography"], code, int(document["period"]))
            if key in withheld:
                row = withheld[key]
                band = document["classes"][document["assigned"][code]]
                recoveries.append(
                    Recovery(
                        "class assignment",
                        f"/indicators/{key[0]}/classes",
                        key,
                        band["min"],
                        float(row["value"]),
                        f"assigned class {band}",
                    )
                )
    # The policy (README, "Disclosure control"): 1 to THRESHOLD - 1 records are withheld; a zero
    # points at no one and is published.
    small = (truth.indicators["n"] >= 1) & (truth.indicators["n"] < THRESHOLD)
    violence = truth.indicators[(truth.indicators["theme"] == "violence") & small]
    published = public.consolidated()
    for key, row in violence.iterrows():
        if key not in withheld and key in published and published[key] != (None, None):
            recoveries.append(
                Recovery(
                    "primary suppression missing",
                    "indicators",
                    key,
                    published[key][1] or 0.0,
                    float(row["n"]),
                    f"n = {row['n']} < {THRESHOLD} is published",
                )
            )
    assert_none_recovered(recoveries, len(withheld), "straight from a public output")


# ---------------------------------------------------------------- (a) points


@dataclass
class PointCounts:
    """A public layer's rows counted per (district, year, type): events (or published cell counts)
    and, where rows carry them, homicide victims."""

    layer: str
    aggregated: bool
    events: dict[tuple[str, int, str], float]
    victims: dict[tuple[str, int], float]
    years: set[int]


def incident_like(features: list[dict[str, Any]]) -> bool:
    """Per-incident rows (a known type), or the public cells (counts of every type)."""
    sample = [f["properties"] for f in features[:2000]]
    return bool({p.get("type") for p in sample} & set(TYPES)) or all("incidents" in p for p in sample)


def count_points(layer: str, features: list[dict[str, Any]], municipalities: gpd.GeoDataFrame) -> PointCounts:
    frame = pd.DataFrame([f["properties"] for f in features])
    if "municipality_code" not in frame:
        geometries = gpd.GeoSeries([shapely.geometry.shape(f["geometry"]) for f in features], crs="EPSG:4326")
        joined = gpd.sjoin(
            gpd.GeoDataFrame(geometry=geometries.representative_point()),
            municipalities[["geometry"]].reset_index(names="municipality_code"),
            predicate="within",
            how="left",
        )
        frame["municipality_code"] = joined.groupby(level=0)["municipality_code"].first()
    for column in ("year", "period", "date"):
        if column in frame:
            frame["year"] = frame[column].astype(str).str[:4].astype(int)
            break
    aggregated = "incidents" in frame
    frame["weight"] = frame["incidents"].astype(float) if aggregated else 1.0
    if "type" not in frame:  # counts of every type together
        frame["type"] = ALL_TYPES
    events = frame.groupby(["municipality_code", "year", "type"])["weight"].sum().to_dict()
    victims: dict[tuple[str, int], float] = {}
    if "fatalities" in frame:
        homicides = frame[frame["type"] == "homicidio"]
        victims = homicides.groupby(["municipality_code", "year"])["fatalities"].sum().astype(float).to_dict()
    return PointCounts(layer, aggregated, events, victims, set(frame["year"]))


def attack_points(public: Public, withheld: dict[Key, pd.Series]) -> list[Recovery]:
    """Per-incident rows (points or not) and the public cells, counted per unit, year and type."""
    units, population = crosswalk(public)
    municipalities = public.municipalities()
    recoveries = []
    for layer, features in public.items.items():
        if not features or not incident_like(features):
            continue
        counts = count_points(layer, features, municipalities)
        for key, row in withheld.items():
            indicator, _, code, period = key
            if indicator not in INCIDENT_TYPES or period not in counts.years or code not in units:
                continue
            kinds = INCIDENT_TYPES[indicator] + ((ALL_TYPES,) if INCIDENT_TYPES[indicator] == TYPES else ())
            found = sum(counts.events.get((d, period, t), 0.0) for d in units[code] for t in kinds)
            if found == true_count(row) and (found > 0 or not counts.aggregated):
                how = "cells summed" if counts.aggregated else "rows counted"
                recoveries.append(
                    Recovery(
                        "points",
                        f"/collections/{layer}/items",
                        key,
                        found,
                        true_count(row),
                        f"{how} per municipality, year and type {INCIDENT_TYPES[indicator]}",
                    )
                )
            if indicator == "homicide_rate" and counts.victims:
                victims = sum(counts.victims.get((d, period), 0.0) for d in units[code])
                rate = victims / unit_population(units, population, code, period) * 1e5
                if math.isclose(rate, float(row["value"]), rel_tol=1e-9, abs_tol=1e-9):
                    recoveries.append(
                        Recovery(
                            "points",
                            f"/collections/{layer}/items",
                            key,
                            rate,
                            float(row["value"]),
                            "homicide victims (fatalities) summed over the year's population",
                        )
                    )
            if counts.aggregated and len(units[code]) == 1 and key[1] == G2007:
                published = [(code, period, t) for t in kinds if (code, period, t) in counts.events]
                if published:
                    recoveries.append(
                        Recovery(
                            "points",
                            f"/collections/{layer}/items",
                            key,
                            sum(counts.events[p] for p in published),
                            true_count(row),
                            f"cells published for a withheld (municipality, year, type): {published}",
                        )
                    )
    return recoveries


def test_no_withheld_count_from_points(public: Public, withheld: dict[Key, pd.Series]) -> None:
    recoveries = attack_points(public, withheld)
    assert_none_recovered(recoveries, len(withheld), "from public points or cells")


# ---------------------------------------------------------------- (b) raw tables


def police_counts(public: Public) -> dict[tuple[str, int], tuple[float, str]]:
    """The published police homicide counts per (municipality, year), with the output they came from."""
    found: dict[tuple[str, int], tuple[float, str]] = {}
    for source, record in public.statistics:
        if record.get("variable") != "homicidios":
            continue
        value = number(record.get("value"))
        if value is not None:
            found.setdefault(
                (str(record["municipality_code"]), int(float(record["period"]))), (value, source)
            )
    return found


def attack_raw_tables(public: Public, withheld: dict[Key, pd.Series]) -> list[Recovery]:
    units, _ = crosswalk(public)
    counts = police_counts(public)
    recoveries = []
    for key, row in withheld.items():
        indicator, _, code, period = key
        if indicator != "homicide_rate_police" or code not in units:
            continue
        parts = [counts.get((d, period)) for d in units[code]]
        if all(part is not None for part in parts):
            total = sum(part[0] for part in parts)  # type: ignore[index]
            if total == true_count(row):
                recoveries.append(
                    Recovery(
                        "raw table",
                        parts[0][1],
                        key,
                        total,
                        true_count(row),  # type: ignore[index]
                        f"statistics 'homicidios' of {units[code]} {period}",
                    )
                )
    return recoveries


def test_no_withheld_count_from_raw_statistics(public: Public, withheld: dict[Key, pd.Series]) -> None:
    recoveries = attack_raw_tables(public, withheld)
    assert_none_recovered(recoveries, len(withheld), "from the raw statistics")
    served = [
        (source, r["municipality_code"], r["period"], r["value"])
        for source, r in public.statistics
        if r.get("variable") == "homicidios" and number(r.get("value")) is not None
    ]
    if served:
        pytest.fail(f"statistics serves the police homicide counts: {served[:5]} ({len(served)} rows)", False)


# ---------------------------------------------------------------- (c) differencing and algebra


@dataclass
class LinearSystem:
    """Counts of one period: variables (variable, district) >= 0 and interval constraints on sums."""

    districts: list[str]
    rows: list[dict[int, float]] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)

    def index(self, variable: str, district: str) -> int:
        return VARIABLES.index(variable) * len(self.districts) + self.districts.index(district)

    def expression(
        self, variables: Iterable[str], districts: Iterable[str], scale: float = 1.0
    ) -> dict[int, float]:
        return {self.index(v, d): scale for v in variables for d in districts}

    def constrain(self, expression: dict[int, float], low: float, high: float) -> None:
        self.rows.append(expression)
        self.lower.append(low)
        self.upper.append(high)

    def inequalities(self) -> tuple[np.ndarray, np.ndarray]:
        """The constraints as A x <= b (infinite sides left out)."""
        size = len(VARIABLES) * len(self.districts)
        lines, limits = [], []
        for row, low, high in zip(self.rows, self.lower, self.upper, strict=True):
            for sign, limit in ((1.0, high), (-1.0, -low)):
                if math.isfinite(limit):
                    line = np.zeros(size)
                    for j, c in row.items():
                        line[j] = sign * c
                    lines.append(line)
                    limits.append(limit)
        return np.array(lines).reshape(-1, size), np.array(limits)

    def bounds(self, expression: dict[int, float]) -> tuple[float, float] | None:
        """Min and max of the expression under the constraints (None: the constraints contradict)."""
        if not hasattr(self, "_inequalities"):
            self._inequalities = self.inequalities()
        matrix, limits = self._inequalities
        objective = np.zeros(matrix.shape[1])
        for j, c in expression.items():
            objective[j] = c
        low = linprog(objective, A_ub=matrix, b_ub=limits, bounds=(0, None), method="highs")
        high = linprog(-objective, A_ub=matrix, b_ub=limits, bounds=(0, None), method="highs")
        if low.status == 2 or high.status == 2:  # infeasible: the published values contradict the model
            return None
        return (low.fun if low.status == 0 else 0.0), (-high.fun if high.status == 0 else math.inf)


def cell_lower_bounds(public: Public) -> dict[tuple[str, int, str], float]:
    if CELLS not in public.items or not public.items[CELLS]:
        return {}
    return count_points(CELLS, public.items[CELLS], public.municipalities()).events


def build_system(
    public: Public,
    period: int,
    published: dict[Key, tuple[float | None, float | None]],
    truth: Truth,
    inversions: list[Inversion],
) -> LinearSystem:
    units, population = crosswalk(public)
    system = LinearSystem(sorted(units[METROPOLITAN]))
    for key, (value, n) in published.items():
        indicator, _, code, year = key
        if year != period or code not in units:
            continue
        if n is not None and indicator in N_COUNTS:
            system.constrain(system.expression(N_COUNTS[indicator], units[code]), n - 1e-6, n + 1e-6)
        elif n is None and value is None and indicator in N_COUNTS and indicator in PUBLISHES_ZEROS:
            # The policy publishes a zero: a withheld count is at least one record.
            system.constrain(system.expression(N_COUNTS[indicator], units[code]), 1.0, math.inf)
        if value is not None and indicator in NUMERATORS:
            scale = unit_population(units, population, code, period) / 1e5
            slack = tolerance(value) * scale
            system.constrain(
                system.expression(NUMERATORS[indicator], units[code]),
                value * scale - slack,
                value * scale + slack,
            )
    for (code, year), (value, _) in police_counts(public).items():
        if year == period and code in system.districts:
            system.constrain(system.expression([POLICE], [code]), value - 1e-6, value + 1e-6)
    for document in public.classes:
        indicator = document["indicator_id"]
        if int(document["period"]) != period or indicator not in NUMERATORS:
            continue
        for code, band in document["assigned"].items():
            low, high = document["classes"][band]["min"], document["classes"][band]["max"]
            scale = unit_population(units, population, code, period) / 1e5
            system.constrain(
                system.expression(NUMERATORS[indicator], units[code]),
                low * scale * (1 - 1e-9),
                high * scale * (1 + 1e-9),
            )
    for inversion in inversions:
        indicator, _, code, year = inversion.key
        if year == period and indicator in NUMERATORS:
            scale = unit_population(units, population, code, period) / 1e5
            system.constrain(
                system.expression(NUMERATORS[indicator], units[code]),
                inversion.low * scale,
                inversion.high * scale,
            )
    for layer, features in public.items.items():
        if layer != CELLS and features and incident_like(features):
            counts = count_points(layer, features, public.municipalities())
            if period in counts.years and not counts.aggregated:
                for district in system.districts:
                    for kind in TYPES:
                        count = counts.events.get((district, period, kind), 0.0)
                        system.constrain(system.expression([f"E:{kind}"], [district]), count, count)
    for (code, year, kind), count in cell_lower_bounds(public).items():
        if year == period and code in system.districts:
            kinds = list(EVENTS) if kind == ALL_TYPES else [f"E:{kind}"]
            system.constrain(system.expression(kinds, [code]), count, math.inf)
    # Every homicide has a victim (checked on the truth before the attacker may use it).
    homicides = truth.incidents[truth.incidents["type"] == "homicidio"]
    if len(homicides) and int(homicides["fatalities"].min()) >= 1:
        for district in system.districts:
            expression = {system.index(VICTIMS, district): 1.0, system.index("E:homicidio", district): -1.0}
            system.constrain(expression, 0.0, math.inf)
    return system


LP_OUTPUTS = "published n and values (both geographies), statistics, classes, cells, points, composite"


def attack_linear_program(public: Public, truth: Truth, withheld: dict[Key, pd.Series]) -> list[Recovery]:
    units, population = crosswalk(public)
    published = public.consolidated()
    recoveries = []
    inversions = composite_inversions(public, withheld)
    for period in sorted({key[3] for key in withheld}):
        system = build_system(public, period, published, truth, inversions)
        targets = [(k, r) for k, r in withheld.items() if k[3] == period and k[2] in units]
        for key, row in targets:
            indicator, _, code, _ = key
            checks = []
            if indicator in N_COUNTS:
                checks.append(("n", N_COUNTS[indicator], true_count(row)))
            if indicator in NUMERATORS:
                checks.append(
                    ("numerator", NUMERATORS[indicator], true_numerator(key, row, units, population))
                )
            for what, variables, true in checks:
                found = system.bounds(system.expression(variables, units[code]))
                if found is None:
                    continue  # published values contradict the model (noise?): nothing to solve
                low, high = found
                # Pinned to less than one count, and to the true one (a wrong model pins nothing).
                if high - low < 1 and abs((low + high) / 2 - true) < 0.5:
                    recoveries.append(
                        Recovery(
                            "linear program",
                            LP_OUTPUTS,
                            key,
                            round((low + high) / 2, 6),
                            true,
                            f"{what} ({'+'.join(variables)} over {units[code]}) "
                            f"lies in [{low:.6g}, {high:.6g}]",
                        )
                    )
    return recoveries


def test_no_withheld_count_by_linear_programming(
    public: Public, truth: Truth, withheld: dict[Key, pd.Series]
) -> None:
    recoveries = attack_linear_program(public, truth, withheld)
    assert_none_recovered(recoveries, len(withheld), "by differencing (linear program per period)")


# ---------------------------------------------------------------- (d) derivation


@dataclass
class CompositeSpec:
    dimensions: dict[str, float]
    components: dict[str, tuple[str, float, float, float]]
    """indicator -> (dimension, weight, min, max)."""
    directions: dict[str, str]

    def score(self, indicator: str, value: float) -> float:
        _, _, low, high = self.components[indicator]
        raw = (
            (value - low) / (high - low)
            if self.directions[indicator] == "higher_is_better"
            else (high - value) / (high - low)
        )
        return 100 * min(1.0, max(0.0, raw))

    def invert(self, indicator: str, score: float) -> float:
        _, _, low, high = self.components[indicator]
        if self.directions[indicator] == "higher_is_better":
            return low + score / 100 * (high - low)
        return high - score / 100 * (high - low)


def composite_spec(public: Public) -> CompositeSpec:
    spec = tomllib.loads(COMPOSITE_SPEC.read_text(encoding="utf-8"))
    dimensions = {name: float(d["weight"]) for name, d in spec["dimensions"].items()}
    components = {
        i["id"]: (i["dimension"], float(i["weight"]), float(i["min"]), float(i["max"]))
        for i in spec["indicators"]
    }
    directions = {i: public.sheets[i]["direction"] for i in components}
    return CompositeSpec(dimensions, components, directions)


def latest_at(periods: list[int], period: int) -> int | None:
    earlier = [p for p in periods if p <= period]
    return max(earlier) if earlier else None


@dataclass(frozen=True)
class Inversion:
    """A withheld composite component solved from the published index: its value, and the interval
    the published numbers' precision leaves it in."""

    key: Key
    found: float
    low: float
    high: float
    output: str
    how: str


def published_values(
    public: Public, withheld: dict[Key, pd.Series]
) -> tuple[dict[Key, float], dict[tuple[str, str], list[int]]]:
    """Every published value by key, and the periods each (indicator, geography) has, withheld ones
    included: what the composite's inversions read."""
    published = public.consolidated()
    values = {key: value for key, (value, _) in published.items() if value is not None}
    periods: dict[tuple[str, str], list[int]] = defaultdict(list)
    for key in {*published, *withheld}:
        periods[(key[0], key[1])].append(key[3])
    return values, periods


def composite_inversions(public: Public, withheld: dict[Key, pd.Series]) -> list[Inversion]:
    """Solve cpi_<dimension> (published, or from cpi_overall and the other dimensions) for each withheld
    component, given the other components' published values."""
    spec = composite_spec(public)
    values, periods = published_values(public, withheld)
    found = []
    for key in withheld:
        indicator, geography, code, period = key
        if indicator not in spec.components:
            continue
        dimension, weight, *_ = spec.components[indicator]
        index_id = f"cpi_{dimension}"
        for q in sorted(set(periods[(index_id, geography)])):
            if latest_at(periods[(indicator, geography)], q) != period:
                continue
            index = values.get((index_id, geography, code, q))
            output = f"{index_id} {q}"
            if index is not None:
                slack = tolerance(index)
            else:
                overall = values.get(("cpi_overall", geography, code, q))
                others = {
                    d: values.get((f"cpi_{d}", geography, code, q)) for d in spec.dimensions if d != dimension
                }
                if overall is None or None in others.values():
                    continue
                total = sum(spec.dimensions.values())
                known = sum(spec.dimensions[d] * v for d, v in others.items())  # type: ignore[misc]
                index = (total * overall - known) / spec.dimensions[dimension]
                slack = (
                    total * tolerance(overall)
                    + sum(spec.dimensions[d] * tolerance(v) for d, v in others.items())  # type: ignore[arg-type]
                ) / spec.dimensions[dimension]
                output = f"cpi_overall {q} minus the other dimensions"
            siblings = [i for i, c in spec.components.items() if c[0] == dimension and i != indicator]
            used = {s: latest_at(periods[(s, geography)], q) for s in siblings}
            given = {
                s: values.get((s, geography, code, used[s])) if used[s] is not None else None
                for s in siblings
            }
            if None in given.values():
                continue
            weights = sum(c[1] for c in spec.components.values() if c[0] == dimension)
            scores = {s: spec.score(s, v) for s, v in given.items()}  # type: ignore[arg-type]
            own = (weights * index - sum(spec.components[s][1] * v for s, v in scores.items())) / weight
            slack = (
                weights * slack
                + sum(
                    spec.components[s][1]
                    * 100
                    * tolerance(v)
                    / (spec.components[s][3] - spec.components[s][2])  # type: ignore[arg-type]
                    for s, v in given.items()
                )
            ) / weight
            if own - slack <= 0:
                continue  # the component may lie anywhere beyond its worst benchmark
            ends = sorted(
                [spec.invert(indicator, own - slack), spec.invert(indicator, min(100.0, own + slack))]
            )
            if own + slack >= 100:
                ends[spec.directions[indicator] == "higher_is_better"] = (
                    math.inf if spec.directions[indicator] == "higher_is_better" else -math.inf
                )
            found.append(
                Inversion(key, spec.invert(indicator, own), ends[0], ends[1],
                          f"{output}, {', '.join(siblings) or 'no other component'}",
                          f"score {own:.6g} ± {slack:.2g} of {indicator} inverted")
            )  # fmt: skip
            break
    return found


def recomputed_indices(public: Public, withheld: dict[Key, pd.Series]) -> list[tuple[Key, float, str]]:
    """A withheld index value computed again from what is published: a dimension from its components
    (their latest values no later than its period) or from cpi_overall and the other dimensions, and
    cpi_overall from the dimensions."""
    spec = composite_spec(public)
    values, periods = published_values(public, withheld)
    found = []
    for key in withheld:
        indicator, geography, code, q = key
        dimensions = {d: values.get((f"cpi_{d}", geography, code, q)) for d in spec.dimensions}
        if indicator == "cpi_overall" and None not in dimensions.values():
            total = sum(spec.dimensions[d] * v for d, v in dimensions.items())  # type: ignore[misc]
            found.append((key, total / sum(spec.dimensions.values()), "the published dimensions"))
            continue
        dimension = indicator.removeprefix("cpi_")
        if dimension not in spec.dimensions:
            continue
        members = [i for i, c in spec.components.items() if c[0] == dimension]
        used = {i: latest_at(periods[(i, geography)], q) for i in members}
        given = {
            i: values.get((i, geography, code, used[i])) if used[i] is not None else None for i in members
        }
        if None not in given.values():
            weights = sum(spec.components[i][1] for i in members)
            score = sum(spec.components[i][1] * spec.score(i, v) for i, v in given.items()) / weights  # type: ignore[arg-type]
            found.append((key, score, f"its published components {members}"))
            continue
        overall = values.get(("cpi_overall", geography, code, q))
        others = {d: v for d, v in dimensions.items() if d != dimension}
        if overall is not None and None not in others.values():
            known = sum(spec.dimensions[d] * v for d, v in others.items())  # type: ignore[misc]
            value = (sum(spec.dimensions.values()) * overall - known) / spec.dimensions[dimension]
            found.append((key, value, f"cpi_overall {q} minus the other dimensions"))
    return found


def attack_composite(public: Public, withheld: dict[Key, pd.Series]) -> list[Recovery]:
    recoveries = []
    for key, value, how in recomputed_indices(public, withheld):
        true = float(withheld[key]["value"])
        if math.isclose(value, true, rel_tol=1e-6, abs_tol=1e-9):
            recoveries.append(Recovery("composite recomputed", how, key, value, true, "the sheet's formula"))
    for inversion in composite_inversions(public, withheld):
        true = float(withheld[inversion.key]["value"])
        found = max(inversion.found, 0.0) if NUMERATORS.get(inversion.key[0]) else inversion.found
        if math.isclose(found, true, rel_tol=1e-6, abs_tol=1e-9):
            recoveries.append(
                Recovery("composite inversion", inversion.output, inversion.key, found, true, inversion.how)
            )
    return recoveries


def test_no_withheld_value_by_inverting_the_composite(public: Public, withheld: dict[Key, pd.Series]) -> None:
    recoveries = attack_composite(public, withheld)
    assert_none_recovered(recoveries, len(withheld), "by inverting the composite index")


def empirical_bayes(victims: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Marshall's global Empirical-Bayes rates (per person), as the sheet names it (esda's
    Empirical_Bayes), every unit taking the overall rate when the variance estimate is negative."""
    mean = victims.sum() / population.sum()
    rate = victims / population
    variance = (population * (rate - mean) ** 2).sum() / population.sum() - mean / population.mean()
    if variance <= 0:
        return np.full_like(rate, mean)
    weight = variance / (variance + mean / population)
    return weight * rate + (1 - weight) * mean


def solve_mean_and_variance(
    rates: np.ndarray, smoothed: np.ndarray, population: np.ndarray
) -> tuple[float, float] | None:
    """The overall rate and the variance estimate behind the published smoothed rates of units whose raw
    rate is public (least squares over them; needs two)."""
    if len(rates) < 2:
        return None
    if np.allclose(smoothed, smoothed[0], rtol=1e-12, atol=0):
        return float(smoothed[0]), 0.0
    scale = float(np.mean(smoothed))

    def residual(p: np.ndarray) -> np.ndarray:
        mean, variance = p[0] * scale, p[1] * scale**2
        weight = variance / (variance + mean / population)
        return (weight * rates + (1 - weight) * mean - smoothed) / scale

    best = None
    for start in (0.5, 1.0, 2.0):
        result = least_squares(
            residual,
            x0=[1.0, start * 1e-4 / scale],
            bounds=([0, 0], [np.inf, np.inf]),
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None
    if best.cost > 1e-18:
        return None
    return float(best.x[0] * scale), float(best.x[1] * scale**2)


def attack_smoothed(public: Public, withheld: dict[Key, pd.Series]) -> list[Recovery]:
    """Invert the Empirical-Bayes smoothed homicide rate for withheld units, given the published raw
    rates (victims) of the others."""
    units, population = crosswalk(public)
    published = public.consolidated()
    recoveries = []
    groups = sorted({(k[1], k[3]) for k in withheld if k[0] in ("homicide_rate", "homicide_rate_smoothed")})
    for geography, period in groups:
        codes = geography_codes(public)[geography]
        people = np.array([unit_population(units, population, c, period) for c in codes])
        raw = [published.get(("homicide_rate", geography, c, period), (None, None))[0] for c in codes]
        smooth = [
            published.get(("homicide_rate_smoothed", geography, c, period), (None, None))[0] for c in codes
        ]
        known = [i for i, r in enumerate(raw) if r is not None]
        unknown = [i for i, r in enumerate(raw) if r is None]
        if not unknown:
            continue
        fitted = [i for i in known if smooth[i] is not None]
        solved = solve_mean_and_variance(
            np.array([raw[i] / 1e5 for i in fitted]),
            np.array([smooth[i] / 1e5 for i in fitted]),
            people[fitted],
        )
        if solved is None:
            continue
        mean, variance = solved
        victims = {i: raw[i] * people[i] / 1e5 for i in known}  # type: ignore[operator]
        remaining = mean * people.sum() - sum(victims.values())
        found: dict[int, float] = {}
        if variance > 0:
            for i in unknown:
                if smooth[i] is not None:
                    weight = variance / (variance + mean / people[i])
                    found[i] = (mean + (smooth[i] / 1e5 - mean) / weight) * people[i]
        rest = [i for i in unknown if i not in found]
        left = remaining - sum(found.values())
        if len(rest) == 1:
            found[rest[0]] = left
        elif (
            1 < len(rest) <= 4 and variance > 0 and abs(left - round(left)) < 1e-6 and 0 <= round(left) <= 60
        ):
            matches = []
            for split in itertools.product(range(round(left) + 1), repeat=len(rest) - 1):
                if sum(split) > round(left):
                    continue
                trial = dict(victims) | dict(zip(rest, [*split, round(left) - sum(split)], strict=True))
                counts = np.array([trial[i] for i in range(len(codes))])
                rates = counts / people
                m = counts.sum() / people.sum()
                v = (people * (rates - m) ** 2).sum() / people.sum() - m / people.mean()
                if math.isclose(v, variance, rel_tol=1e-6):
                    matches.append([trial[i] for i in rest])
            for j, i in enumerate(rest):
                if matches and len({m[j] for m in matches}) == 1:
                    found[i] = matches[0][j]
        for i, count in found.items():
            for indicator in ("homicide_rate", "homicide_rate_smoothed"):
                key = (indicator, geography, codes[i], period)
                if key not in withheld:
                    continue
                true = float(withheld[key]["value"])
                rate = count / people[i] * 1e5
                if indicator == "homicide_rate_smoothed":
                    trial = dict(victims) | {i: count}
                    if len(trial) != len(codes):
                        continue
                    rate = float(
                        empirical_bayes(np.array([trial[k] for k in range(len(codes))]), people)[i] * 1e5
                    )
                if math.isclose(rate, true, rel_tol=1e-6, abs_tol=1e-9):
                    recoveries.append(
                        Recovery(
                            "Empirical-Bayes inversion",
                            "homicide_rate_smoothed and homicide_rate",
                            key,
                            rate,
                            true,
                            f"victims {count:.6g} of {codes[i]} solved from the "
                            f"smoothed rates of {len(fitted)} units with public raw rates",
                        )
                    )
    return recoveries


def test_no_withheld_value_by_inverting_the_smoothed_rate(
    public: Public, withheld: dict[Key, pd.Series]
) -> None:
    recoveries = attack_smoothed(public, withheld)
    assert_none_recovered(recoveries, len(withheld), "by inverting the Empirical-Bayes smoothed rate")


# ---------------------------------------------------------------- (e) ordering and filtering


def suppressed_order(features: list[dict[str, Any]]) -> list[str]:
    return [str(f["id"]) for f in features if f["properties"].get("flag") == SUPPRESSED]


def by_id(order: list[str]) -> bool:
    """Whether rows come in id order (either way): an order that owes nothing to hidden values."""
    return order in (sorted(order), sorted(order, reverse=True))


def ordering_leaks(client: httpx.Client, indicator: str, hidden: dict[str, tuple[float, float]]) -> list[str]:
    """What ``sortby=value``/``-value`` and ``sortby=n``/``-n`` tell about withheld rows (id -> value, n)."""
    values = {i: value for i, (value, _) in hidden.items()}
    counts = {i: n for i, (_, n) in hidden.items()}
    return sort_leaks(client, indicator, values, "value") + sort_leaks(client, indicator, counts, "n")


def sort_leaks(client: httpx.Client, indicator: str, hidden: dict[str, float], key: str) -> list[str]:
    leaks = []
    ascending = all_pages(client, "/collections/indicators/items", {"indicator_id": indicator, "sortby": key})
    descending = all_pages(
        client, "/collections/indicators/items", {"indicator_id": indicator, "sortby": f"-{key}"}
    )
    up, down = suppressed_order(ascending), suppressed_order(descending)
    by_hidden = sorted(up, key=lambda i: hidden.get(i, math.nan))
    if up != down and not (by_id(up) and by_id(down)):
        leaks.append(
            f"{indicator}: withheld rows ordered differently by sortby={key} and -{key} "
            f"(ascending {up[:6]}…, descending {down[:6]}…, hidden-value order {by_hidden[:6]}…)"
        )
    elif up == by_hidden and not by_id(up) and len({hidden.get(i) for i in up}) > 1:
        leaks.append(f"{indicator}: withheld rows follow their hidden values under sortby={key} ({up[:6]}…)")
    for name, features in ((f"sortby={key}", ascending), (f"sortby=-{key}", descending)):
        marks = [f["properties"].get("flag") == SUPPRESSED for f in features]
        if True in marks:
            first, last = marks.index(True), len(marks) - 1 - marks[::-1].index(True)
            between = [f for f in features[first:last] if f["properties"].get(key) is not None]
            if between:
                leaks.append(
                    f"{indicator} {name}: withheld rows interleaved with {len(between)} published values"
                )
    return leaks


def filter_leaks(client: httpx.Client, indicator: str, hidden: dict[str, tuple[float, float]]) -> list[str]:
    """CQL2 and property filters on value and n find no withheld row; one on the stored flag finds all
    of them or none (a part would tell withheld small counts from complementary suppressions)."""
    leaks = []
    for query in ({"flag": "small_n"}, {"filter": "flag = 'small_n'"}):
        response = client.get(
            "/collections/indicators/items", params={"indicator_id": indicator, "limit": 10000, **query}
        )
        if response.status_code == 200:
            found = {
                f["id"] for f in response.json()["features"] if f["properties"].get("flag") == SUPPRESSED
            }
            if found and found != set(hidden):
                leaks.append(f"{indicator} {query}: finds {len(found)} of the {len(hidden)} withheld rows")
    queries: list[dict[str, Any]] = [
        {"filter": "value >= 0"},
        {"filter": "value < 1000000000"},
        {"filter": "n >= 0"},
        {"filter": "n < 5"},
        *({"n": k} for k in range(THRESHOLD)),
    ]
    for value, n in list(hidden.values())[:3]:
        queries += [{"filter": f"value = {value!r}"}, {"value": repr(value)}, {"filter": f"n = {int(n)}"}]
    for query in queries:
        response = client.get(
            "/collections/indicators/items", params={"indicator_id": indicator, "limit": 10000, **query}
        )
        if response.status_code != 200:
            continue  # a refused filter says nothing
        page = response.json()
        found = [f["id"] for f in page["features"] if f["properties"].get("flag") == SUPPRESSED]
        if found:
            leaks.append(f"{indicator} {query}: finds withheld rows {found[:5]}")
        if page.get("numberMatched") is not None and page["numberMatched"] != len(page["features"]):
            leaks.append(
                f"{indicator} {query}: numberMatched {page['numberMatched']} but {len(page['features'])} rows"
            )
    return leaks


def test_sorting_and_filtering_ignore_withheld_values(base_url: str, withheld: dict[Key, pd.Series]) -> None:
    """On the whole sample (GeoPackage): the order of withheld rows and the rows a filter finds do not
    depend on their hidden values."""
    leaks = []
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for indicator in sorted({key[0] for key in withheld}):
            rows = {key: row for key, row in withheld.items() if key[0] == indicator}
            hidden = {str(r["value_id"]): (float(r["value"]), float(r["n"])) for r in rows.values()}
            leaks += ordering_leaks(client, indicator, hidden) + filter_leaks(client, indicator, hidden)
    if leaks:
        pytest.fail(
            "ordering and filters on the withheld values (indicators items):\n" + "\n".join(leaks), False
        )


EXTRA_WITHHELD = [("0001", 2018, 50.0, 3), ("0002", 2018, 10.0, 1)]
"""Two more withheld homicide rates (value, n): with fixtures.WITHHELD_VALUES' 0001 2017 (20, n 2),
three withheld rows whose hidden order (10 < 20 < 50) is neither their id order nor its reverse."""


def publish_with_withheld(store: Store, folder: Path, settings: Settings) -> None:
    fixtures.publish(store, folder, settings=settings)
    layer = get_layer("indicators")
    values = store.read_layer(layer)
    template = values[values["indicator_id"] == "homicide_rate"].iloc[0]
    added = []
    for code, period, value, n in EXTRA_WITHHELD:
        row = template.copy()
        outline = values[(values["municipality_code"] == code) & (values["geography"] == G2007)].iloc[0]
        row["value_id"], row["municipality_code"], row["period"] = (
            f"homicide_rate:{code}:{period}",
            code,
            period,
        )
        row["municipality_name"], row["geom"] = outline["municipality_name"], outline["geom"]
        row["value"], row["n"], row["flag"] = value, n, "suppressed"
        added.append(row)
    frame = pd.concat([values, gpd.GeoDataFrame(added, geometry="geom", crs=values.crs)], ignore_index=True)
    store.replace_layer(layer, conform(layer, gpd.GeoDataFrame(frame, geometry="geom")), run=None)


@pytest.fixture(scope="module", params=STORES)
def small_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp(f"withheld-{request.param}")
    with fresh_settings(request.param, folder) as settings:
        store = open_store(settings)
        try:
            publish_with_withheld(store, folder, settings)
            with serving(store, settings) as url:
                yield url
        finally:
            store.close()


def test_sorting_and_filtering_ignore_withheld_values_on_both_stores(small_server: str) -> None:
    code, value, n, _ = fixtures.WITHHELD_VALUES[0]
    hidden = {f"homicide_rate:{c}:{p}": (v, k) for c, p, v, k in EXTRA_WITHHELD}
    hidden[f"homicide_rate:{code}:2017"] = (value, n)
    with httpx.Client(base_url=small_server, timeout=60) as client:
        rows = all_pages(client, "/collections/indicators/items", {"indicator_id": "homicide_rate"})
        assert sorted(suppressed_order(rows)) == sorted(hidden), "the fixture's three values are withheld"
        leaks = ordering_leaks(client, "homicide_rate", hidden) + filter_leaks(
            client, "homicide_rate", hidden
        )
    if leaks:
        pytest.fail("ordering and filters on the withheld values:\n" + "\n".join(leaks), pytrace=False)


# ---------------------------------------------------------------- exact incident points


def coordinates_of(geometries: Iterable[Any]) -> np.ndarray:
    found = [shapely.get_coordinates(g) for g in geometries if g is not None and not shapely.is_empty(g)]
    return np.vstack(found) if found else np.zeros((0, 2))


def exact_hits(tree: cKDTree, coordinates: np.ndarray) -> int:
    if not len(coordinates):
        return 0
    distances, _ = tree.query(coordinates[:, :2], distance_upper_bound=EXACT)
    return int(np.isfinite(distances).sum())


def ids_in(values: Iterable[Any], ids: set[str]) -> int:
    return sum(1 for v in values if isinstance(v, str) and v in ids)


def test_no_exact_incident_point_in_any_public_output(
    public: Public, truth: Truth, base_url: str, sample: Sample
) -> None:
    """No public collection, z20 tile, download or export file holds an incident's exact point or id."""
    points = np.round(shapely.get_coordinates(truth.incidents.geometry.to_numpy()), 6)
    # An incident placed exactly at a school, a stop, a permit or a complaint of their own public
    # sources proves nothing: those points are left out (the sample has one, a robbery at a school).
    others = [sample.store.read_layer(get_layer(name)) for name in OWN_POINT_SOURCES]
    public_points = cKDTree(np.vstack([shapely.get_coordinates(o.geometry.to_numpy()) for o in others]))
    distances, _ = public_points.query(points, distance_upper_bound=EXACT)
    tree = cKDTree(points[~np.isfinite(distances)])
    ids = set(truth.incidents["incident_id"].astype(str))
    found: dict[str, tuple[int, int]] = {}

    def check(source: str, geometries: Iterable[Any], values: Iterable[Any]) -> None:
        hits, named = exact_hits(tree, coordinates_of(geometries)), ids_in(values, ids)
        if hits or named:
            before = found.get(source, (0, 0))
            found[source] = (before[0] + hits, before[1] + named)

    for name, features in public.items.items():
        geometries = [shapely.geometry.shape(f["geometry"]) for f in features if f.get("geometry")]
        values = [v for f in features for v in f["properties"].values()] + [f.get("id") for f in features]
        check(f"/collections/{name}/items", geometries, values)
    for (name, fmt), frame in public.downloads.items():
        geometries = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else []
        wkt = [c for c in frame.columns if str(c).lower() in ("wkt", "geometry", "geom")]
        if fmt == "csv" and wkt:
            geometries = shapely.from_wkt(frame[wkt[0]].dropna().to_numpy())
        text = frame.select_dtypes(include=["object", "str"])
        check(f"/collections/{name}/download?f={fmt}", geometries, text.to_numpy().ravel())
    for relative, frame in public.export_frames.items():
        geometries = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else []
        check(
            f"export {relative}",
            geometries,
            frame.select_dtypes(include=["object", "str"]).to_numpy().ravel(),
        )
    check("export PMTiles", [], [v for _, p in public.tile_properties for v in p.values()])
    sample = truth.incidents.sort_values("incident_id").iloc[:: max(1, len(truth.incidents) // 25)]
    asked = [(name, TMS.tile(p.x, p.y, 20)) for name in public.collections for p in sample.geometry]
    with httpx.Client(base_url=base_url, timeout=60) as client:
        responses = fetch_many(
            client, [(f"/collections/{name}/tiles/WebMercatorQuad/20/{t.y}/{t.x}", {}) for name, t in asked]
        )
    for (name, tile), response in zip(asked, responses, strict=True):
        if response.status_code != 200 or not response.content:
            continue
        features = decode_tile(response.content, 20, tile.x, tile.y)
        check(
            f"/collections/{name}/tiles z20",
            [g for *_, g in features],
            [v for _, p, _ in features for v in p.values()],
        )
    summary = {
        source: f"{hits} exact points, {named} incident ids" for source, (hits, named) in found.items()
    }
    if found:
        lines = "\n".join(f"  {source}: {what}" for source, what in summary.items())
        pytest.fail(f"exact incidents are public in {len(found)} outputs:\n{lines}", pytrace=False)
