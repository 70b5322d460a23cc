"""Loading while serving: a million permits loaded again while a client keeps fetching pages.

The server (``observatory serve``, one process) serves a store already holding the generated
permits; a client fetches pages of 100 permits at random offsets under 10,000, sequentially, first
for ``--idle`` seconds with nothing else running, then for as long as ``observatory load`` takes to
load the same permits again (a manifest with a new hash, so the load is not skipped as unchanged).
The table gives the reader's latency percentiles in both phases and the load's wall time.

    export OBSERVATORY_TEST_DATABASE_URL="$(bash scripts/postgis.sh)"
    .venv/bin/python benchmarks/bench_load_serving.py            # --store geopackage, --permits N
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from observatory.sample import REPORT_COUNTS, write_sample

HERE = Path(__file__).resolve().parent
SCHEMA = "bench_load_serving"
OBSERVATORY = str(Path(sys.executable).with_name("observatory"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(client: httpx.Client, base: str) -> tuple[float, int]:
    offset = random.randrange(0, 10_000)
    started = time.perf_counter()
    response = client.get(f"{base}/collections/permits/items", params={"limit": 100, "offset": offset})
    return time.perf_counter() - started, response.status_code


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"{len(ordered):,} | {statistics.median(ordered) * 1000:.0f} | {p99 * 1000:.0f} | "
        f"{ordered[-1] * 1000:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permits", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["postgis", "geopackage"], default="postgis")
    parser.add_argument("--idle", type=float, default=15.0, help="seconds of reads before the load")
    args = parser.parse_args()
    data = HERE / "data" / f"permits-{args.permits}"
    sources = data / "sources"
    if not (sources / "permisos_opamss.csv").exists():
        write_sample(sources, permits_scale=args.permits / sum(REPORT_COUNTS.values()))
    work = data / f"load-serving-{args.store}"
    shutil.rmtree(work, ignore_errors=True)
    env = {**os.environ, "OBSERVATORY_DATA_DIR": str(work), "OBSERVATORY_DATABASE_URL": ""}
    if args.store == "postgis":
        url = os.environ.get("OBSERVATORY_TEST_DATABASE_URL", "")
        if not url:
            sys.exit("set OBSERVATORY_TEST_DATABASE_URL (bash scripts/postgis.sh prints it)")
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        env.update(OBSERVATORY_DATABASE_URL=url, OBSERVATORY_DB_SCHEMA=SCHEMA)

    def observatory(*command: str) -> None:
        subprocess.run([OBSERVATORY, *command], env=env, check=True, capture_output=True)

    observatory("load", str(sources / "municipios.toml"))
    observatory("load", str(sources / "permisos.toml"), "--no-recompute")
    again = sources / "permisos_again.toml"  # the same file, a new manifest hash: loaded again
    again.write_text(
        (sources / "permisos.toml").read_text(encoding="utf-8") + "\n# again\n", encoding="utf-8"
    )

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([OBSERVATORY, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        with httpx.Client(timeout=60) as client:
            for _ in range(200):
                try:
                    if client.get(f"{base}/conformance").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            idle: list[float] = []
            until = time.perf_counter() + args.idle
            while time.perf_counter() < until:
                seconds, status = fetch(client, base)
                assert status == 200, status
                idle.append(seconds)
            busy: list[float] = []
            failed = 0
            started = time.perf_counter()
            load = subprocess.Popen(
                [OBSERVATORY, "load", str(again), "--no-recompute"], env=env, stdout=subprocess.DEVNULL
            )
            while load.poll() is None:
                seconds, status = fetch(client, base)
                busy.append(seconds)
                failed += status != 200
            took = time.perf_counter() - started
            if load.returncode != 0:
                sys.exit("the load failed")
    finally:
        server.terminate()
        server.wait(timeout=30)
        again.unlink(missing_ok=True)
    print(f"\n{args.store}, {args.permits:,} permits; load while serving: {took:.1f} s wall\n")
    print("| reader | requests | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|")
    print(f"| idle | {percentiles(idle)} |")
    print(f"| during the load | {percentiles(busy)} |")
    print(f"\nnon-200 answers during the load: {failed}")


if __name__ == "__main__":
    main()
