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
    url, peer_python, postgis, geopackage, sources = prepare(args.permits)
    results: dict[str, dict[str, float]] = {"load": {}}
    results["load"]["ours-postgis"] = timed("load into PostGIS", lambda: load_all(postgis, sources))
    results["load"]["ours-geopackage"] = timed("load into GeoPackage", lambda: load_all(geopackage, sources))

    workloads: Workloads = {
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
    peer_env = {"TIPG_MAX_FEATURES_PER_TILE": "5000", "TIPG_TILE_BUFFER": "64"}
    results.update(
        side_by_side(url, postgis, geopackage, peer_python, workloads, port=8101, peer_env=peer_env)
    )

    print("\n| workload | ours (PostGIS) | ours (GeoPackage) | tipg | ours PostGIS / tipg |")
    print("|---|---|---|---|---|")
    for workload, row in results.items():
        peer_seconds = row.get("tipg")
        ratio = f"{row['ours-postgis'] / peer_seconds:.2f}" if peer_seconds else "–"
        cells = [f"{row[k]:.2f} s" if k in row else "–" for k in ("ours-postgis", "ours-geopackage", "tipg")]
        print(f"| {workload} | {' | '.join(cells)} | {ratio} |")


def prepare(permits: int) -> tuple[str, Path, Settings, Settings, Path]:
    """The database URL, tipg's Python, our two stores' settings and the generated sources
    (written once per size under ``benchmarks/data``)."""
    url = os.environ.get("OBSERVATORY_TEST_DATABASE_URL")
    if not url:
        sys.exit("set OBSERVATORY_TEST_DATABASE_URL (bash scripts/postgis.sh prints it)")
    peer_python = ensure_peer()
    data = HERE / "data" / f"permits-{permits}"
    sources = data / "sources"
    if not (sources / "permisos_opamss.csv").exists():
        timed("sample", lambda: write_sample(sources, permits_scale=permits / sum(REPORT_COUNTS.values())))
    postgis = Settings(database_url=url, db_schema=SCHEMA, data_dir=data / "pg")
    return url, peer_python, postgis, Settings(data_dir=data / "gpkg"), sources


Workloads = dict[str, Callable[[str, bool], list[str]]]
"""Workload name -> the URLs to fetch, given a server's base URL and whether it is tipg."""


def side_by_side(
    url: str,
    postgis: Settings,
    geopackage: Settings,
    peer_python: Path,
    workloads: Workloads,
    *,
    port: int,
    peer_env: dict[str, str],
) -> dict[str, dict[str, float]]:
    """Seconds of every workload on our server over each store and on tipg over the same PostGIS
    table (``peer_env``: tipg's settings besides its database), one server at a time."""
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
    servers = {
        "ours-postgis": (ours, _env(postgis), port, False),
        "ours-geopackage": (ours, _env(geopackage), port + 1, False),
        "tipg": (peer, {"DATABASE_URL": url, "TIPG_DB_SCHEMAS": f'["{SCHEMA}"]', **peer_env}, port + 2, True),
    }
    results: dict[str, dict[str, float]] = {}
    for name, (command, env, own_port, is_tipg) in servers.items():
        probe = f"http://127.0.0.1:{own_port}/conformance"
        with (
            server([*command, "--port", str(own_port)], env, probe) as base,
            httpx.Client(timeout=300) as client,
        ):
            for workload, make_urls in workloads.items():
                seconds, size = run_workload(client, make_urls(base, is_tipg))
                results.setdefault(workload, {})[name] = seconds
                print(f"{name:16s} {workload:40s} {seconds:7.2f} s {size / 1e6:8.2f} MB", flush=True)
    return results


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
