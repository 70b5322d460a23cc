"""Serving under concurrency, beside tipg, in one run: ../shared/bench (wrk) against each server.

Every server reads the same PostGIS tables (a store loaded with ``observatory load`` into
``--schema``), one process each unless ``--workers``; tipg caps tiles at the same 5,000 features as
our catalogue. Servers, in this order, each started here, measured by ``run_peers.sh url`` (its
CPU sampled), its memory read (VmRSS, VmHWM of every process: workers too), then stopped:

- ``tipg``: tipg 1.6.1 in ``--peer-venv`` (created, or completed with what it cannot import);
- ``ours``: the observatory on PostGIS (tile cache on, the default);
- ``ours-nocache``: the same with ``OBSERVATORY_TILE_CACHE_MB=0`` (every tile built live);
- ``ours-gpkg`` / ``ours-gpkg-nocache``: the GeoPackage store in ``--gpkg-dir``, when given.

Then, for our PostGIS server: the sum of ``count`` over every permits tile of the scenarios beside
the permits the database holds inside that tile (aggregates) or in the buffered tile (single
permits, give or take its edge pixel): every permit must be accounted for. An answer that is not
a tile is recorded (status, first bytes) and the check goes on. Last, the server's memory after
serving every scenario path.

    OBSERVATORY_DATABASE_URL=$(bash /work/main/scripts/postgis.sh) \
      .venv/bin/python benchmarks/bench_concurrency.py --schema bench1m --gpkg-dir /work/bench-data/gpkg1m

Writes OUT/table.md (../shared/bench's side-by-side table, then each server's memory), OUT/counts.md,
OUT/*/results.json, OUT/*/server.log.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

import httpx
import mapbox_vector_tile
import morecantile
import psycopg
from psycopg import sql

from observatory.tiles import BUFFER, EXTENT, lonlat_bounds

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench"
PEER_MODULES = {  # what the peer venv must import: tipg and its server, and what bench.py uses
    "tipg": "tipg==1.6.1",
    "uvicorn": "uvicorn",
    "psycopg": "psycopg[binary]",  # bench.py's wait for an idle database (skipped silently without)
    "mapbox_vector_tile": "mapbox-vector-tile",
    "numpy": "numpy",
}
TMS = morecantile.tms.get("WebMercatorQuad")
MVT = "application/vnd.mapbox-vector-tile"
OUR_TILES = "/collections/{layer}/tiles/WebMercatorQuad/{z}/{y}/{x}"
OUR_ITEMS = "/collections/{layer}/items?limit={limit}&bbox={bbox}&offset={offset}"
PERMIT_TILESETS = ["t3_z14_permits.txt", "t3_z11_permits.txt"]


def ensure_peer(venv: Path) -> Path:
    """The peer venv, created when absent and completed with whatever of PEER_MODULES it cannot
    import (a venv that exists is not necessarily whole), by its own pip."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except ImportError:\n        print(name)"
    )
    found = subprocess.run(
        [str(python), "-c", probe, *PEER_MODULES], capture_output=True, text=True, check=True
    )
    missing = found.stdout.split()
    if missing:
        print(f"peer venv {venv}: installing {', '.join(missing)}", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *(PEER_MODULES[m] for m in missing)], check=True
        )
    return venv


def free_port() -> int:
    """A port nothing listens on (fixed ports collide with other engineers' runs on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def our_command(port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "observatory.api:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


@contextmanager
def started(
    command: list[str], env: dict[str, str], base: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A server in a session of its own (workers included), ready to answer ``base``; stopped after."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        server = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/", timeout=5).status_code < 400:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start; see {log}")
            time.sleep(0.3)
        yield server
    finally:
        with suppress(ProcessLookupError):  # the whole group gone already (a server that died)
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def measure(name: str, base: str, tiles: str, items: str, command: list[str], env: dict[str, str]) -> str:
    """../shared/bench's scenarios against the server, then its memory: a row of the memory table."""
    print(f"== {name}", flush=True)
    with started(command, env, base, Path(env["OUT_DIR"]) / name / "server.log") as server:
        bench = {**env, "BENCH_SERVER_PID": str(server.pid)}  # CPU of its process tree
        subprocess.run(
            ["bash", str(SHARED / "run_peers.sh"), "url", name, base, tiles, items], env=bench, check=True
        )
        memory = memory_of(server.pid)
    each = "; ".join(f"{rss} / {peak}" for rss, peak in memory)
    return f"| {name} | {len(memory)} | {sum(rss for rss, _ in memory)} | {each} |"


class Census(NamedTuple):
    """Permits of a tile by the database: inside it (west and north edges in), within its 64-pixel
    buffer and within a pixel more (edges in)."""

    inside: int
    buffered: int
    wider: int


def permits_in_tile(connection: psycopg.Connection, schema: str, tile: morecantile.Tile) -> Census:
    inner = TMS.xy_bounds(tile)
    pixel = (inner.right - inner.left) / EXTENT
    statement = sql.SQL(
        "SELECT count(*) FILTER (WHERE x >= %(left)s AND x < %(right)s AND y > %(bottom)s AND y <= %(top)s),"
        " count(*) FILTER (WHERE x BETWEEN %(left)s - %(pad)s AND %(right)s + %(pad)s"
        "   AND y BETWEEN %(bottom)s - %(pad)s AND %(top)s + %(pad)s),"
        " count(*) FROM (SELECT ST_X(ST_Transform(geom, 3857)) AS x, ST_Y(ST_Transform(geom, 3857)) AS y"
        " FROM {} WHERE geom && ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326)) AS near"
        " WHERE x BETWEEN %(left)s - %(wide)s AND %(right)s + %(wide)s"
        " AND y BETWEEN %(bottom)s - %(wide)s AND %(top)s + %(wide)s"
    ).format(sql.Identifier(schema, "permits"))
    west, south, east, north = lonlat_bounds(tile, buffer=BUFFER + 2)  # the search box, roomy
    bounds = {"left": inner.left, "right": inner.right, "bottom": inner.bottom, "top": inner.top}
    row = connection.execute(
        statement,
        {**bounds, "pad": BUFFER * pixel, "wide": (BUFFER + 1) * pixel}
        | {"west": west, "south": south, "east": east, "north": north},
    ).fetchone()
    return Census(*map(int, row)) if row else Census(0, 0, 0)


def memory_of(pid: int) -> list[tuple[int, int]]:
    """VmRSS and VmHWM (peak) in MB of the server and of every process under it (uvicorn's workers)."""
    found = []
    for process in [pid, *descendants(pid)]:
        try:
            status = Path(f"/proc/{process}/status").read_text().splitlines()
        except FileNotFoundError:
            continue  # gone since it was listed
        fields = {key: int(value.split()[0]) for key, value in (line.split(":", 1) for line in status)
                  if key in ("VmRSS", "VmHWM")}  # fmt: skip
        found.append((fields["VmRSS"] // 1024, fields["VmHWM"] // 1024))
    return found


def descendants(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [grandchild for child in map(int, found) for grandchild in [child, *descendants(child)]]


class NotATile(Exception):
    """A permits tile's answer that is not a tile: no answer, an error status, another content type
    or a body that does not decode."""


def tile_counts(url: str) -> tuple[list[int], int]:
    """The ``count`` of every feature of the permits tile at ``url``, and its size in bytes."""
    try:
        response = httpx.get(url, timeout=120)
    except httpx.HTTPError as error:
        raise NotATile(repr(error)) from error
    kind = response.headers.get("content-type", "")
    head = f"body {response.content[:120]!r}"
    if response.status_code != 200 or not kind.startswith(MVT):
        raise NotATile(f"{response.status_code} {kind}; {head}")
    try:
        found = mapbox_vector_tile.decode(response.content).get("permits", {"features": []})
    except Exception as error:  # the protobuf decoder raises its own, unexported errors
        raise NotATile(f"200 but undecodable ({error!r}); {head}") from error
    return [int(feature["properties"]["count"]) for feature in found["features"]], len(response.content)


def accounted(counts: list[int], census: Census) -> bool:
    """Aggregates count the permits inside the tile; singles (count 1) are the permits of the
    buffered tile, whose edge is blurred by about a pixel (the index compares float4 boxes, and
    ST_AsMVTGeom snaps to whole tile units before it clips)."""
    singles = all(count == 1 for count in counts) and census.buffered <= len(counts) <= census.wider
    return sum(counts) == census.inside or singles


def count_check(schema: str, env: dict[str, str], out: Path) -> None:
    """Every permits tile of the scenarios against the database (a failed answer is recorded, the
    check goes on), then the memory of the server that served every scenario path once."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    lines = [
        "| tile | status | features | sum of count | permits inside (SQL) | in the buffer, 64–65 px (SQL) |"
        " bytes | accounted |",
        "|---|---|---|---|---|---|---|---|",
    ]
    failed, matched, checked = [], 0, 0
    with (
        started(our_command(port, 1), env, base, out / "counts-server.log") as server,
        psycopg.connect(env["OBSERVATORY_DATABASE_URL"]) as connection,
    ):
        for tileset in PERMIT_TILESETS:
            for text in (SHARED / "tilesets" / tileset).read_text().split():
                z, x, y = map(int, text.split("/"))
                checked += 1
                census = permits_in_tile(connection, schema, morecantile.Tile(x, y, z))
                known = f"{census.inside} | {census.buffered}–{census.wider}"
                try:
                    counts, size = tile_counts(base + OUR_TILES.format(layer="permits", z=z, x=x, y=y))
                except NotATile as error:
                    failed.append(f"- {text}: {error}")
                    lines.append(f"| {text} | not a tile | | | {known} | | NO |")
                    continue
                ok = accounted(counts, census)
                matched += ok
                lines.append(
                    f"| {text} | 200 | {len(counts)} | {sum(counts)} | {known} | {size} |"
                    f" {'yes' if ok else 'NO'} |"
                )
        for other in (SHARED / "tilesets").glob("t[12]_*.txt"):  # the other layers' paths too
            layer = "municipalities" if "municipalities" in other.name else "zoning"
            for text in other.read_text().split():
                z, x, y = map(int, text.split("/"))
                httpx.get(base + OUR_TILES.format(layer=layer, z=z, x=x, y=y), timeout=120)
        memory = memory_of(server.pid)
    lines += [
        "",
        f"{checked} permits tiles checked, {matched} accounted for every permit, {len(failed)} failed"
        + (":" if failed else "."),
        *failed,
        "",
        "server memory after every scenario path once, VmRSS / VmHWM MB: "
        + "; ".join(f"{rss} / {peak}" for rss, peak in memory),
    ]
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
    parser.add_argument(
        "--peer-venv", type=Path, default=HERE / ".peer", help="tipg's venv (completed if not)"
    )
    args = parser.parse_args()

    url = os.environ["OBSERVATORY_DATABASE_URL"]
    args.out.mkdir(parents=True, exist_ok=True)
    peer = ensure_peer(args.peer_venv)
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
    memory = [
        "| server | processes | VmRSS total MB | VmRSS / VmHWM MB of each process (server first) |",
        "|---|---|---|---|",
    ]
    for name in args.servers.split(","):
        port = free_port()
        if name == "tipg":
            row = measure(
                "tipg", f"http://127.0.0.1:{port}",
                f"/collections/{args.schema}.{{layer}}/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}",
                f"/collections/{args.schema}.{{layer}}/items?f=geojson&limit={{limit}}&bbox={{bbox}}"
                "&offset={offset}",
                [str(peer / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", "1", "--no-access-log", "--log-level", "warning"],
                tipg,
            )  # fmt: skip
        elif not (name.startswith("ours-gpkg") and args.gpkg_dir is None):
            row = measure(
                f"{name}-w{args.workers}", f"http://127.0.0.1:{port}", OUR_TILES, OUR_ITEMS,
                our_command(port, args.workers), variants[name],
            )  # fmt: skip
        else:
            continue
        memory.append(row)
    table = subprocess.run(
        ["bash", str(SHARED / "run_peers.sh"), "report"], env=env, check=True, capture_output=True, text=True
    ).stdout
    table += "\nServer memory after its scenarios:\n\n" + "\n".join(memory) + "\n"
    (args.out / "table.md").write_text(table)
    print(table)
    if not args.skip_counts:
        count_check(args.schema, ours, args.out)


if __name__ == "__main__":
    main()
