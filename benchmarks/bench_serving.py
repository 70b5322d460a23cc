"""Serving benchmark: our API (PostGIS and GeoPackage stores) side by side with tipg, the peer.

All three servers run on 127.0.0.1 against the same generated permits (1,000,000 by default):
ours on PostGIS and tipg read the very same table. Each workload is run once to warm up, then
timed; the table reports seconds per workload and our time as a ratio of tipg's.

    bash scripts/postgis.sh                       # prints the database URL
    OBSERVATORY_TEST_DATABASE_URL=... .venv/bin/python benchmarks/bench_serving.py

tipg is installed into ``benchmarks/.peer`` (its own virtual environment) on first use.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import morecantile

from etl import load_source, read_manifest
from etl.plan import load_order
from observatory.sample import REPORT_COUNTS, write_sample
from observatory.settings import Settings
from observatory.store import open_store

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".peer"
PEER_VERSION = "tipg==1.6.1"
SCHEMA = "bench"
AMSS = (-89.35, 13.62, -89.02, 13.85)
TMS = morecantile.tms.get("WebMercatorQuad")


def ensure_peer() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER_VERSION, "uvicorn"], check=True)
    return python


def timed(label: str, action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.2f} s", flush=True)
    return seconds


def load_all(settings: Settings, sources: Path) -> None:
    store = open_store(settings)
    try:
        for manifest in load_order([read_manifest(path) for path in sorted(sources.glob("*.toml"))]):
            load_source(store, manifest, settings=settings)
    finally:
        store.close()


@contextmanager
def server(command: list[str], env: dict[str, str], url: str) -> Iterator[str]:
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"{command} did not start: {process.stderr.read() if process.stderr else ''}")
        yield url.rsplit("/", 1)[0]
    finally:
        process.terminate()
        process.wait(timeout=20)


def tiles_over_amss(zoom: int) -> list[morecantile.Tile]:
    return list(TMS.tiles(*AMSS, zooms=[zoom]))


def run_workload(client: httpx.Client, urls: list[str]) -> tuple[float, int]:
    """Seconds to fetch every URL once in sequence, and bytes received (after one warm-up pass)."""
    for url in urls:
        client.get(url).raise_for_status()
    started = time.perf_counter()
    size = sum(len(client.get(url).content) for url in urls)
    return time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--permits", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=50, help="feature pages per workload")
    args = parser.parse_args()
    url = os.environ.get("OBSERVATORY_TEST_DATABASE_URL")
    if not url:
        sys.exit("set OBSERVATORY_TEST_DATABASE_URL (bash scripts/postgis.sh prints it)")
    peer_python = ensure_peer()

    data = HERE / "data" / f"permits-{args.permits}"
    sources = data / "sources"
    if not (sources / "permisos_opamss.csv").exists():
        timed(
            "sample", lambda: write_sample(sources, permits_scale=args.permits / sum(REPORT_COUNTS.values()))
        )
    postgis = Settings(database_url=url, db_schema=SCHEMA, data_dir=data / "pg")
    geopackage = Settings(data_dir=data / "gpkg")
    results: dict[str, dict[str, float]] = {"load": {}}
    results["load"]["ours-postgis"] = timed("load into PostGIS", lambda: load_all(postgis, sources))
    results["load"]["ours-geopackage"] = timed("load into GeoPackage", lambda: load_all(geopackage, sources))

    ours = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "observatory.api:create_app",
        "--log-level",
        "warning",
    ]
    peer = [str(peer_python), "-m", "uvicorn", "tipg.main:app", "--log-level", "warning"]
    peer_env = {
        "DATABASE_URL": url,
        "TIPG_DB_SCHEMAS": f'["{SCHEMA}"]',
        "TIPG_MAX_FEATURES_PER_TILE": "5000",
        "TIPG_TILE_BUFFER": "64",
    }
    workloads: dict[str, Callable[[str, bool], list[str]]] = {
        "tiles z12 (permits)": lambda base, tipg: _tile_urls(base, tipg, 12),
        "tiles z14 (permits)": lambda base, tipg: _tile_urls(base, tipg, 14),
        "items pages limit=100": lambda base, tipg: [
            f"{base}/collections/{_collection(tipg)}/items?limit=100&offset={k * 997}"
            for k in range(args.pages)
        ],
        "items bbox limit=100": lambda base, tipg: [
            f"{base}/collections/{_collection(tipg)}/items?limit=100&bbox={_bbox(k)}"
            for k in range(args.pages)
        ],
    }
    servers = {
        "ours-postgis": (
            [*ours, "--port", "8101"],
            _env(postgis),
            "http://127.0.0.1:8101/conformance",
            False,
        ),
        "ours-geopackage": (
            [*ours, "--port", "8102"],
            _env(geopackage),
            "http://127.0.0.1:8102/conformance",
            False,
        ),
        "tipg": ([*peer, "--port", "8103"], peer_env, "http://127.0.0.1:8103/conformance", True),
    }
    for name, (command, env, probe, is_tipg) in servers.items():
        with server(command, env, probe) as base, httpx.Client(timeout=120) as client:
            for workload, make_urls in workloads.items():
                seconds, size = run_workload(client, make_urls(base, is_tipg))
                results.setdefault(workload, {})[name] = seconds
                print(f"{name:16s} {workload:24s} {seconds:7.2f} s {size / 1e6:8.2f} MB", flush=True)

    print("\n| workload | ours (PostGIS) | ours (GeoPackage) | tipg | ours PostGIS / tipg |")
    print("|---|---|---|---|---|")
    for workload, row in results.items():
        peer_seconds = row.get("tipg")
        ratio = f"{row['ours-postgis'] / peer_seconds:.2f}" if peer_seconds else "–"
        cells = [f"{row[k]:.2f} s" if k in row else "–" for k in ("ours-postgis", "ours-geopackage", "tipg")]
        print(f"| {workload} | {' | '.join(cells)} | {ratio} |")


def _env(settings: Settings) -> dict[str, str]:
    env = {"OBSERVATORY_DATA_DIR": str(settings.data_dir), "OBSERVATORY_DB_SCHEMA": settings.db_schema}
    env["OBSERVATORY_DATABASE_URL"] = settings.database_url or ""
    return env


def _collection(tipg: bool) -> str:
    return f"{SCHEMA}.permits" if tipg else "permits"


def _tile_urls(base: str, tipg: bool, zoom: int) -> list[str]:
    path = f"{base}/collections/{_collection(tipg)}/tiles/WebMercatorQuad"
    return [
        f"{path}/{t.z}/{t.x}/{t.y}" if tipg else f"{path}/{t.z}/{t.y}/{t.x}" for t in tiles_over_amss(zoom)
    ]


def _bbox(k: int) -> str:
    west = AMSS[0] + (k % 10) * 0.03
    south = AMSS[1] + (k // 10 % 5) * 0.04
    return f"{west:.4f},{south:.4f},{west + 0.01:.4f},{south + 0.01:.4f}"


if __name__ == "__main__":
    main()
