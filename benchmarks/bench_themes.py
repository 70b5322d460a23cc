"""Themes benchmark: the issue-6 indicators (density per urbanised hectare, mobility, accessibility,
services, risk, environment) computed on the sample generated at three sizes.

Each size is generated once under ``benchmarks/data/themes-<size>/sources`` and loaded into a fresh
GeoPackage store (timed on its own); then ``compute_indicators``, restricted to those indicators,
runs in a process of its own, measured by ``/usr/bin/time`` (wall seconds and peak resident memory).
That process also times each indicator's compute function (both geographies summed; a cache built
by one indicator, such as the street network or the cells' hazard shares, is counted in the first
indicator that needs it): the rest of the wall time is starting Python, reading the inputs from the
store and writing the results.

    .venv/bin/python benchmarks/bench_themes.py               # --sizes default medium large --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
THEME_MODULES = ("mobility", "accessibility", "services", "risk", "environment")
"""Every indicator these modules register belongs to issue 6 ..."""
ALSO = ("population_density_urbanised",)
"""... and this one of the density module (population_density is older)."""


@dataclass(frozen=True)
class Size:
    population_pixel_deg: float
    street_segments: int
    bus_routes: int
    raster_resolution_m: float


SIZES = {
    "default": Size(
        population_pixel_deg=0.00225, street_segments=11_000, bus_routes=36, raster_resolution_m=30
    ),
    "medium": Size(
        population_pixel_deg=0.0012, street_segments=25_000, bus_routes=40, raster_resolution_m=20
    ),
    "large": Size(
        population_pixel_deg=0.00065, street_segments=50_000, bus_routes=45, raster_resolution_m=10
    ),
}


def theme_ids() -> list[str]:
    from observatory.indicators import REGISTRY

    return [
        item.id
        for item in REGISTRY.values()
        if item.compute.__module__.rsplit(".", 1)[-1] in THEME_MODULES or item.id in ALSO
    ]


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


def store_env(data_dir: Path) -> dict[str, str]:
    """The GeoPackage store in ``data_dir``, whatever database the environment names."""
    return {"OBSERVATORY_DATA_DIR": str(data_dir), "OBSERVATORY_DATABASE_URL": ""}


def generate(size: Size, sources: Path) -> None:
    from observatory.sample import write_sample

    if not (sources / "poblacion.toml").exists():
        write_sample(sources, **vars(size))


def load(sources: Path, data_dir: Path) -> tuple[float, float]:
    """Load every source into a fresh GeoPackage store in ``data_dir``."""
    shutil.rmtree(data_dir, ignore_errors=True)
    observatory = str(Path(sys.executable).with_name("observatory"))
    return timed([observatory, "load", "--sample-dir", str(sources), "--no-recompute"], store_env(data_dir))


def compute(data_dir: Path, timings: Path) -> tuple[float, float]:
    """Compute the themes' indicators in a process of its own; its per-indicator times go to ``timings``."""
    return timed([sys.executable, __file__, "--child", str(data_dir), str(timings)], store_env(data_dir))


def child(timings: Path) -> None:
    """In the measured process: compute the indicators, timing each one's function."""
    from observatory.indicators import REGISTRY, compute_indicators
    from observatory.store import open_store

    ids = theme_ids()
    seconds: dict[str, float] = dict.fromkeys(ids, 0.0)

    def clocked(item_id: str, function: Any) -> Any:
        def run(**arguments: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(**arguments)
            finally:
                seconds[item_id] += time.perf_counter() - start

        return run

    for item_id in ids:
        REGISTRY[item_id] = replace(REGISTRY[item_id], compute=clocked(item_id, REGISTRY[item_id].compute))
    store = open_store()
    try:
        start = time.perf_counter()
        outcome = compute_indicators(store, ids)
        total = time.perf_counter() - start
    finally:
        store.close()
    if outcome.skipped:
        sys.exit(f"skipped: {outcome.skipped}")
    timings.write_text(json.dumps({"compute_indicators": total, "indicators": seconds}), encoding="utf-8")


def counts(data_dir: Path) -> dict[str, int]:
    """Rows of the inputs that drive the cost, and pixels of the hazard raster."""
    import rasterio

    from layers import get_layer
    from observatory.rasters import raster_file
    from observatory.settings import Settings
    from observatory.store import open_store

    settings = Settings(data_dir=data_dir, database_url=None)
    store = open_store(settings)
    try:
        rows = {
            name: len(store.read_layer(get_layer(name)))
            for name in ("population", "streets", "transit_stops")
        }
    finally:
        store.close()
    with rasterio.open(raster_file("flood_depth_100y", settings)) as flood:
        rows["raster_pixels"] = flood.width * flood.height
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--rounds", type=int, default=1, help="compute runs per size (median reported)")
    parser.add_argument("--keep-store", action="store_true", help="reuse a store loaded by an earlier run")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[1])
        return
    results = []
    for name in args.sizes:
        folder = HERE / "data" / f"themes-{name}"
        sources, data_dir = folder / "sources", folder / "store"
        generate(SIZES[name], sources)
        loaded = (float("nan"), float("nan"))
        if not (args.keep_store and (data_dir / "observatory.gpkg").exists()):
            loaded = load(sources, data_dir)
        runs = [compute(data_dir, folder / "timings.json") for _ in range(args.rounds)]
        wall = statistics.median(seconds for seconds, _ in runs)
        peak = max(megabytes for _, megabytes in runs)
        inside = json.loads((folder / "timings.json").read_text(encoding="utf-8"))
        results.append((name, counts(data_dir), loaded, wall, peak, inside))
        print(f"{name}: load {loaded[0]:.1f} s, compute {wall:.1f} s, peak {peak:.0f} MB", flush=True)
    print(f"\nload average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        "\n| size | population cells | street segments | stops | hazard pixels | load s | load peak MB "
        f"| compute wall s (median of {args.rounds}) | compute peak MB |\n" + "|---" * 9 + "|"
    )
    for name, rows, loaded, wall, peak, _ in results:
        print(
            f"| {name} | {rows['population']:,} | {rows['streets']:,} | {rows['transit_stops']:,} "
            f"| {rows['raster_pixels']:,} | {loaded[0]:.1f} | {loaded[1]:.0f} | {wall:.1f} | {peak:.0f} |"
        )
    name, *_, inside = results[-1]
    print(f"\nPer indicator, {name} (last run; both geographies):\n\n| indicator | s |\n|---|---|")
    for item_id, seconds in sorted(inside["indicators"].items(), key=lambda item: -item[1]):
        print(f"| {item_id} | {seconds:.2f} |")
    rest = inside["compute_indicators"] - sum(inside["indicators"].values())
    print(f"| (reading inputs, regrouping, writing results) | {rest:.2f} |")


if __name__ == "__main__":
    main()
