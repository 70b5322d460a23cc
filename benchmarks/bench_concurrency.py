"""Serving under concurrency, beside tipg, in one run: ../shared/bench (wrk) against each server.

Every server reads the same PostGIS tables (a store loaded with ``observatory load`` into
``--schema``), one process each unless ``--workers``; tipg caps tiles at the same 5,000 features as
our catalogue. Servers, in this order, each started, measured and stopped by ``run_peers.sh``:

- ``tipg``: tipg 1.6.1 (installed into benchmarks/.peer on first use);
- ``ours``: the observatory on PostGIS (tile cache on, the default);
- ``ours-nocache``: the same with ``OBSERVATORY_TILE_CACHE_MB=0`` (every tile built live);
- ``ours-gpkg`` / ``ours-gpkg-nocache``: the GeoPackage store in ``--gpkg-dir``, when given.

Then, for our PostGIS server: the sum of ``count`` over every permits tile of the scenarios beside
the permits the database holds inside that tile (aggregation must account for all of them), and
the server's resident memory (VmRSS, VmHWM) after serving every scenario path.

    OBSERVATORY_DATABASE_URL=$(bash /work/main/scripts/postgis.sh) \
      .venv/bin/python benchmarks/bench_concurrency.py --schema bench1m --gpkg-dir /work/bench-data/gpkg1m

Writes OUT/table.md (../shared/bench's side-by-side table), OUT/counts.md, OUT/*/results.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import psycopg
from psycopg import sql

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench"
PEER_VENV = HERE / ".peer"
PEER_PACKAGES = ["tipg==1.6.1", "uvicorn", "psycopg[binary]", "mapbox-vector-tile", "numpy"]
TMS = morecantile.tms.get("WebMercatorQuad")
OUR_TILES = "/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"
OUR_ITEMS = "/collections/{layer}/items?limit={limit}&bbox={bbox}&offset={offset}"
PERMIT_TILESETS = ["t3_z14_permits.txt", "t3_z11_permits.txt"]


def ensure_peer() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return PEER_VENV


def our_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "observatory.api:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def run_peers(env: dict[str, str], *args: str) -> None:
    subprocess.run(["bash", str(SHARED / "run_peers.sh"), *args], env=env, check=True)


def measure(name: str, base: str, tiles: str, items: str, command: list[str], env: dict[str, str]) -> None:
    print(f"== {name}", flush=True)
    run_peers(env, "cmd", name, base, tiles, items, "--", *command)


def permits_in_tile(connection: psycopg.Connection, schema: str, tile: morecantile.Tile) -> int:
    """The permits inside the tile (west and north edges in), counted by the database."""
    bounds = TMS.xy_bounds(tile)
    statement = sql.SQL(
        "SELECT count(*) FROM {} WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) "
        "AND ST_X(ST_Transform(geom, 3857)) >= %s AND ST_X(ST_Transform(geom, 3857)) < %s "
        "AND ST_Y(ST_Transform(geom, 3857)) > %s AND ST_Y(ST_Transform(geom, 3857)) <= %s"
    ).format(sql.Identifier(schema, "permits"))
    west, south, east, north = TMS.bounds(tile)
    pad = 1e-4
    row = connection.execute(
        statement,
        [
            west - pad,
            south - pad,
            east + pad,
            north + pad,
            bounds.left,
            bounds.right,
            bounds.bottom,
            bounds.top,
        ],
    ).fetchone()
    return int(row[0]) if row else 0


def memory_of(pid: int) -> dict[str, str]:
    """VmRSS and VmHWM of the process and its children (uvicorn workers)."""
    report = {}
    for process in [pid, *children(pid)]:
        status = Path(f"/proc/{process}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if line.startswith(("VmRSS", "VmHWM")))
        report[str(process)] = f"RSS {fields['VmRSS'].strip()}, peak {fields['VmHWM'].strip()}"
    return report


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def count_check(schema: str, env: dict[str, str], out: Path, port: int) -> None:
    """Sum of counts per permits tile against the database, then the server's memory."""
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(our_command(port, 1), env=env, stderr=subprocess.DEVNULL)
    lines = ["| tile | features | sum of count | permits in tile (SQL) | bytes |", "|---|---|---|---|---|"]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/conformance", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with psycopg.connect(env["OBSERVATORY_DATABASE_URL"]) as connection:
            for tileset in PERMIT_TILESETS:
                for text in (SHARED / "tilesets" / tileset).read_text().split():
                    z, x, y = map(int, text.split("/"))
                    tile = morecantile.Tile(x, y, z)
                    body = httpx.get(base + OUR_TILES.format(layer="permits", z=z, x=x, y=y), timeout=120)
                    found = mapbox_vector_tile.decode(body.content).get("permits", {"features": []})
                    counts = [feature["properties"]["count"] for feature in found["features"]]
                    expected = permits_in_tile(connection, schema, tile)
                    lines.append(
                        f"| {text} | {len(counts)} | {sum(counts)} | {expected} | {len(body.content)} |"
                    )
        for tileset in Path(SHARED / "tilesets").glob("t[12]_*.txt"):  # the other layers' paths too
            layer = "municipalities" if "municipalities" in tileset.name else "zoning"
            for text in tileset.read_text().split():
                z, x, y = map(int, text.split("/"))
                httpx.get(base + OUR_TILES.format(layer=layer, z=z, x=x, y=y), timeout=120)
        lines += ["", "server memory after every tile above: " + "; ".join(memory_of(server.pid).values())]
    finally:
        server.terminate()
        server.wait(timeout=30)
    (out / "counts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schema", default="bench1m", help="PostgreSQL schema of the loaded store")
    parser.add_argument("--gpkg-dir", type=Path, help="OBSERVATORY_DATA_DIR of a GeoPackage store, same data")
    parser.add_argument("--workers", type=int, default=1, help="our server's worker processes")
    parser.add_argument("--servers", default="tipg,ours,ours-nocache,ours-gpkg,ours-gpkg-nocache")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "concurrency")
    parser.add_argument("--skip-counts", action="store_true", help="skip the sum-of-counts and memory check")
    args = parser.parse_args()

    url = os.environ["OBSERVATORY_DATABASE_URL"]
    args.out.mkdir(parents=True, exist_ok=True)
    peer = ensure_peer()
    env = {
        **os.environ,
        "OUT_DIR": str(args.out),
        "BENCH_VENV": str(peer),
        "BENCH_DSN": url,
        "STATEMENT_TIMEOUT": "keep",  # a shared database: leave its settings alone
        "PYTHONPATH": str(HERE.parent),
    }
    ours = {**env, "OBSERVATORY_DATABASE_URL": url, "OBSERVATORY_DB_SCHEMA": args.schema}
    gpkg = {key: value for key, value in ours.items() if key != "OBSERVATORY_DATABASE_URL"}
    if args.gpkg_dir is not None:
        gpkg["OBSERVATORY_DATA_DIR"] = str(args.gpkg_dir)
    tipg = {
        **env,
        "DATABASE_URL": url,
        "TIPG_DB_SCHEMAS": f'["{args.schema}"]',
        "TIPG_MAX_FEATURES_PER_TILE": "5000",
    }
    variants = {  # our servers: the environment each runs in
        "ours": ours,
        "ours-nocache": {**ours, "OBSERVATORY_TILE_CACHE_MB": "0"},
        "ours-gpkg": gpkg,
        "ours-gpkg-nocache": {**gpkg, "OBSERVATORY_TILE_CACHE_MB": "0"},
    }
    for name in args.servers.split(","):
        if name == "tipg":
            measure(
                "tipg", "http://127.0.0.1:8081",
                f"/collections/{args.schema}.{{layer}}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}",
                f"/collections/{args.schema}.{{layer}}/items?f=geojson&limit={{limit}}&bbox={{bbox}}"
                "&offset={offset}",
                [str(peer / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port", "8081",
                 "--workers", "1", "--no-access-log", "--log-level", "warning"],
                tipg,
            )  # fmt: skip
        elif not (name.startswith("ours-gpkg") and args.gpkg_dir is None):
            measure(
                f"{name}-w{args.workers}", "http://127.0.0.1:8083", OUR_TILES, OUR_ITEMS,
                our_command(8083, args.workers), variants[name],
            )  # fmt: skip
    table = subprocess.run(
        ["bash", str(SHARED / "run_peers.sh"), "report"], env=env, check=True, capture_output=True, text=True
    ).stdout
    (args.out / "table.md").write_text(table)
    print(table)
    if not args.skip_counts:
        count_check(args.schema, ours, args.out, 8083)


if __name__ == "__main__":
    main()
