"""Loading benchmark: a million permits from CSV into PostGIS through the sample's manifest, side
by side in one run with GDAL's ogr2ogr (``PG_USE_COPY=YES``) on the very same file.

Both run as separate processes, measured by ``/usr/bin/time`` (wall seconds and peak resident
memory), alternating, each into a schema of its own. Ours checks and places every row (types,
dates, duplicates, geometry, membership in a municipality, rejects report); ogr2ogr reprojects and
copies text columns without checking anything.

    export OBSERVATORY_TEST_DATABASE_URL="$(bash scripts/postgis.sh)"
    .venv/bin/python benchmarks/bench_load.py            # --permits 1000000 --rounds 2

Needs ``ogr2ogr`` (Debian: gdal-bin).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from observatory.sample import REPORT_COUNTS, write_sample

HERE = Path(__file__).resolve().parent


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak memory (MB) of ``command``, which must succeed."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command], env={**os.environ, **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")
    seconds, kilobytes = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), float(kilobytes) / 1024


def reset(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def ours(url: str, sources: Path, schema: str, data_dir: Path) -> tuple[float, float]:
    reset(url, schema)
    env = {
        "OBSERVATORY_DATABASE_URL": url,
        "OBSERVATORY_DB_SCHEMA": schema,
        "OBSERVATORY_DATA_DIR": str(data_dir),
    }
    observatory = str(Path(sys.executable).with_name("observatory"))
    timed([observatory, "load", str(sources / "municipios.toml")], env)  # not timed: the boundaries
    return timed([observatory, "load", str(sources / "permisos.toml"), "--no-recompute"], env)


def ogr2ogr(url: str, sources: Path, schema: str) -> tuple[float, float]:
    reset(url, schema)
    info = psycopg.conninfo.conninfo_to_dict(url)
    pg = " ".join(
        f"{key}={value}"
        for key, value in info.items()
        if key in ("host", "port", "user", "password", "dbname")
    )
    command = [
        "ogr2ogr", "-f", "PostgreSQL", f"PG:{pg}", str(sources / "permisos_opamss.csv"),
        "-oo", "X_POSSIBLE_NAMES=x", "-oo", "Y_POSSIBLE_NAMES=y", "-oo", "KEEP_GEOM_COLUMNS=NO",
        "-s_srs", "EPSG:5460", "-t_srs", "EPSG:4326", "-nln", "permits",
        "-lco", f"SCHEMA={schema}", "-lco", "GEOMETRY_NAME=geom", "--config", "PG_USE_COPY", "YES",
    ]  # fmt: skip
    return timed(command, {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permits", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    url = os.environ.get("OBSERVATORY_TEST_DATABASE_URL", "")
    if not url:
        sys.exit("set OBSERVATORY_TEST_DATABASE_URL (bash scripts/postgis.sh prints it)")
    if shutil.which("ogr2ogr") is None:
        sys.exit("ogr2ogr not found (Debian: apt-get install gdal-bin)")
    data = HERE / "data" / f"permits-{args.permits}"
    sources = data / "sources"
    if not (sources / "permisos_opamss.csv").exists():
        write_sample(sources, permits_scale=args.permits / sum(REPORT_COUNTS.values()))
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "ogr2ogr": []}
    for round_ in range(args.rounds):
        runs["ogr2ogr"].append(ogr2ogr(url, sources, "bench_load_ogr"))
        runs["ours"].append(ours(url, sources, "bench_load_ours", data / "load"))
        print(f"round {round_ + 1}: ogr2ogr {runs['ogr2ogr'][-1]}, ours {runs['ours'][-1]}", flush=True)
    median = {name: statistics.median(s for s, _ in results) for name, results in runs.items()}
    memory = {name: max(m for _, m in results) for name, results in runs.items()}
    print(f"\n| loader | median s ({args.rounds} runs) | peak MB |\n|---|---|---|")
    for name in ("ours", "ogr2ogr"):
        print(f"| {name} | {median[name]:.1f} | {memory[name]:.0f} |")
    print(f"\nours / ogr2ogr time: {median['ours'] / median['ogr2ogr']:.2f}")


if __name__ == "__main__":
    main()
