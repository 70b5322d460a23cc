"""Feed and download benchmark, each beside a peer in the same run, on both stores.

- the wide feed (every indicator, each one's latest period: one request) beside paging the same
  values out of the indicators collection (``/collections/indicators/items?limit=10000``), which
  is how a partner had to gather them before the feed;
- the whole permits layer as a GeoPackage (``/collections/permits/download?f=gpkg``) beside
  ``ogr2ogr`` copying the same table out of the store (GDAL, the partner's usual tool);
- the full static snapshot (``observatory export``), reported alone.

    bash scripts/postgis.sh                                   # prints the database URL
    OBSERVATORY_TEST_DATABASE_URL=... .venv/bin/python benchmarks/bench_feed.py --permits 100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from bench_serving import HERE, _env, load_all, server, timed

from observatory.export import export_snapshot
from observatory.indicators import compute_indicators
from observatory.sample import REPORT_COUNTS, write_sample
from observatory.settings import Settings
from observatory.store import open_store

SCHEMA = "bench_feed"
REPEATS = 3


def best_of(action: Callable[[], object]) -> float:
    """The median of ``REPEATS`` timed runs, after one warm-up run."""
    action()
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def paged_items(client: httpx.Client, url: str) -> int:
    """Every feature of a collection, page after page; how many."""
    count, following = 0, url
    while following:
        page = client.get(following).raise_for_status().json()
        count += len(page["features"])
        following = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    return count


def ogr2ogr_copy(settings: Settings, target: Path) -> None:
    """The permits table copied out of the store into a GeoPackage by GDAL's ogr2ogr."""
    if settings.database_url:
        source = f"PG:{settings.database_url}"
        layer = f"{settings.db_schema}.permits"
    else:
        source, layer = str(settings.geopackage_path), "permits"
    target.unlink(missing_ok=True)
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(target), source, layer, "-nln", "permits"], check=True,
                   capture_output=True)  # fmt: skip


Row = tuple[str, str, float, float | None, str]


def download(client: httpx.Client, url: str, target: Path) -> None:
    """A download streamed to a file, as a partner's client saves it."""
    with client.stream("GET", url) as response, target.open("wb") as file:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            file.write(chunk)


def measure(name: str, settings: Settings, port: int, sources: Path) -> list[Row]:
    """Load, compute, serve one store and time its workloads beside their peers."""
    timed(f"load into {name}", lambda: load_all(settings, sources))
    store = open_store(settings)
    timed(f"compute on {name}", lambda: compute_indicators(store, settings=settings))
    command = [sys.executable, "-m", "uvicorn", "--factory", "observatory.api:create_app",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    feed, items = "/feeds/v1/indicators?format=wide", "/collections/indicators/items?limit=10000"
    rows: list[Row] = []
    with (
        server(command, _env(settings), f"http://127.0.0.1:{port}/conformance") as base,
        httpx.Client(timeout=600, base_url=base) as client,
        tempfile.TemporaryDirectory() as scratch,
    ):
        wide = client.get(feed).raise_for_status().json()
        values = paged_items(client, items)
        shape = (
            f"{wide['numberReturned']} municipalities × {len(wide['indicators'])} indicators; {values} values"
        )
        rows.append((name, "wide feed, latest (1 request) vs paging the values",
                     best_of(lambda: client.get(feed).raise_for_status()),
                     best_of(lambda: paged_items(client, items)), shape))  # fmt: skip
        target = Path(scratch) / "permits.gpkg"
        ours = best_of(lambda: download(client, "/collections/permits/download?f=gpkg", target))
        peer = best_of(lambda: ogr2ogr_copy(settings, Path(scratch) / "copy.gpkg"))
        size = f"{target.stat().st_size / 1e6:.1f} MB"
        rows.append((name, "permits as GeoPackage: download vs ogr2ogr", ours, peer, size))
        seconds = timed(f"export on {name}", lambda: export_snapshot(store, Path(scratch) / "snapshot"))
        rows.append((name, "observatory export (whole snapshot)", seconds, None, ""))
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--permits", type=int, default=100_000)
    args = parser.parse_args()
    url = os.environ.get("OBSERVATORY_TEST_DATABASE_URL")
    if not url:
        sys.exit("set OBSERVATORY_TEST_DATABASE_URL (bash scripts/postgis.sh prints it)")
    data = HERE / "data" / f"feed-{args.permits}"
    sources = data / "sources"
    if not (sources / "permisos_opamss.csv").exists():
        timed(
            "sample", lambda: write_sample(sources, permits_scale=args.permits / sum(REPORT_COUNTS.values()))
        )
    rows = measure(
        "postgis", Settings(database_url=url, db_schema=SCHEMA, data_dir=data / "pg"), 8111, sources
    )
    rows += measure("geopackage", Settings(data_dir=data / "gpkg"), 8112, sources)
    print(f"\n{args.permits:,} permits\n")
    print("| store | workload | ours | peer | ours / peer | |")
    print("|---|---|---|---|---|---|")
    for name, workload, ours, peer, detail in rows:
        ratio = f"{ours / peer:.2f}" if peer else "–"
        peer_text = f"{peer:.2f} s" if peer else "–"
        print(f"| {name} | {workload} | {ours:.2f} s | {peer_text} | {ratio} | {detail} |")


if __name__ == "__main__":
    main()
