"""Themes benchmark: indicators computed on the sample generated at three sizes.

``--indicators issue6`` (the default) times the issue-6 indicators (density per urbanised hectare,
mobility, accessibility, services, risk, environment) at the sizes ``default medium large``;
``--indicators all`` times every registered indicator (every theme, the composite index included) at
``default medium-events large-events``, whose permits and incidents grow too (to a million each).

Each size is generated once under ``benchmarks/data/themes-<size>/sources`` and loaded into a fresh
GeoPackage store (timed on its own); then ``compute_indicators``, restricted to those indicators,
runs in a process of its own, measured by ``/usr/bin/time`` (wall seconds and peak resident memory).
That process also times each indicator's compute function (both geographies summed; a cache built
by one indicator, such as the street network or the cells' hazard shares, is counted in the first
indicator that needs it), reading the inputs from the store and regrouping them for 2024: the rest
of the wall time is starting Python and writing the results.

    .venv/bin/python benchmarks/bench_themes.py               # --sizes default medium large --rounds 1
    .venv/bin/python benchmarks/bench_themes.py --indicators all
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench_load import timed  # the same /usr/bin/time measure as the load benchmark

HERE = Path(__file__).resolve().parent
ISSUE6_MODULES = ("mobility", "accessibility", "services", "risk", "environment")
"""Every indicator these modules register belongs to issue 6 ..."""
ISSUE6_ALSO = ("population_density_urbanised",)
"""... and this one of the density module (population_density is older)."""
DEFAULT_PERMITS, DEFAULT_INCIDENTS = 7_017, 17_362
"""Permits and incidents in the sample at scale 1 (the committed sample)."""


@dataclass(frozen=True)
class Size:
    population_pixel_deg: float
    street_segments: int
    bus_routes: int
    raster_resolution_m: float
    permits_scale: float = 1.0
    incidents_scale: float = 1.0


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
SIZES |= {
    f"{name}-events": replace(
        SIZES[name], permits_scale=events / DEFAULT_PERMITS, incidents_scale=events / DEFAULT_INCIDENTS
    )
    for name, events in (("medium", 100_000), ("large", 1_000_000))
}
SCOPES = {"issue6": ("default", "medium", "large"), "all": ("default", "medium-events", "large-events")}
"""The sizes each ``--indicators`` choice runs by default."""


def indicator_ids(scope: str) -> list[str]:
    """Every registered indicator, or those of issue 6."""
    from observatory.indicators import REGISTRY

    return [
        item.id
        for item in REGISTRY.values()
        if scope == "all"
        or item.compute.__module__.rsplit(".", 1)[-1] in ISSUE6_MODULES
        or item.id in ISSUE6_ALSO
    ]


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


def compute(data_dir: Path, timings: Path, scope: str) -> tuple[float, float]:
    """Compute the indicators in a process of its own; its per-indicator times go to ``timings``."""
    command = [sys.executable, __file__, "--indicators", scope, "--child", str(data_dir), str(timings)]
    return timed(command, store_env(data_dir))


def child(timings: Path, scope: str) -> None:
    """In the measured process: compute the indicators, timing each one's function, the reading of
    the inputs and their regrouping for 2024."""
    from observatory.indicators import REGISTRY, compute_indicators
    from observatory.indicators import compute as compute_module
    from observatory.store import open_store

    ids = indicator_ids(scope)
    seconds: dict[str, float] = dict.fromkeys(ids, 0.0)
    steps = {"(reading inputs)": "_read_input", "(regrouping for 2024)": "_regroup_2024"}
    step_seconds: dict[str, float] = dict.fromkeys(steps, 0.0)

    def clocked(spent: dict[str, float], key: str, function: Any) -> Any:
        def run(*arguments: Any, **keywords: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*arguments, **keywords)
            finally:
                spent[key] += time.perf_counter() - start

        return run

    for item_id in ids:
        compute_function = clocked(seconds, item_id, REGISTRY[item_id].compute)
        REGISTRY[item_id] = replace(REGISTRY[item_id], compute=compute_function)
    for key, name in steps.items():
        setattr(compute_module, name, clocked(step_seconds, key, getattr(compute_module, name)))
    store = open_store()
    try:
        start = time.perf_counter()
        outcome = compute_indicators(store, ids)
        total = time.perf_counter() - start
    finally:
        store.close()
    if outcome.skipped:
        sys.exit(f"skipped: {outcome.skipped}")
    measured = {"compute_indicators": total, "indicators": seconds, "steps": step_seconds}
    timings.write_text(json.dumps(measured), encoding="utf-8")


def counts(data_dir: Path) -> dict[str, int]:
    """Rows of the inputs that drive the cost (from the GeoPackage's metadata), and pixels of the
    hazard raster."""
    import pyogrio
    import rasterio

    from observatory.rasters import raster_file
    from observatory.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=None)
    gpkg = data_dir / "observatory.gpkg"
    rows = {
        name: int(pyogrio.read_info(gpkg, layer=name)["features"])
        for name in ("population", "streets", "transit_stops", "permits", "incidents")
    }
    with rasterio.open(raster_file("flood_depth_100y", settings)) as flood:
        rows["raster_pixels"] = flood.width * flood.height
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicators", choices=list(SCOPES), default="issue6", help="which to compute")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), help="default: the scope's three")
    parser.add_argument("--rounds", type=int, default=1, help="compute runs per size (median reported)")
    parser.add_argument("--keep-store", action="store_true", help="reuse a store loaded by an earlier run")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[1], args.indicators)
        return
    results = []
    for name in args.sizes or SCOPES[args.indicators]:
        folder = HERE / "data" / f"themes-{name}"
        sources, data_dir = folder / "sources", folder / "store"
        generate(SIZES[name], sources)
        loaded = (float("nan"), float("nan"))
        if not (args.keep_store and (data_dir / "observatory.gpkg").exists()):
            loaded = load(sources, data_dir)
        runs = [compute(data_dir, folder / "timings.json", args.indicators) for _ in range(args.rounds)]
        wall = statistics.median(seconds for seconds, _ in runs)
        peak = max(megabytes for _, megabytes in runs)
        inside = json.loads((folder / "timings.json").read_text(encoding="utf-8"))
        results.append((name, counts(data_dir), loaded, wall, peak, inside))
        print(f"{name}: load {loaded[0]:.1f} s, compute {wall:.1f} s, peak {peak:.0f} MB", flush=True)
    print(f"\nload average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        "\n| size | population cells | street segments | stops | permits | incidents | hazard pixels "
        f"| load s | load peak MB | compute wall s (median of {args.rounds}) | compute peak MB |\n"
        + "|---" * 11
        + "|"
    )
    for name, rows, loaded, wall, peak, _ in results:
        print(
            f"| {name} | {rows['population']:,} | {rows['streets']:,} | {rows['transit_stops']:,} "
            f"| {rows['permits']:,} | {rows['incidents']:,} | {rows['raster_pixels']:,} "
            f"| {loaded[0]:.1f} | {loaded[1]:.0f} | {wall:.1f} | {peak:.0f} |"
        )
    name, *_, inside = results[-1]
    print(f"\nPer indicator, {name} (last run; both geographies):\n\n| indicator | s |\n|---|---|")
    parts = inside["indicators"] | inside["steps"]
    for item_id, seconds in sorted(parts.items(), key=lambda item: -item[1]):
        print(f"| {item_id} | {seconds:.2f} |")
    rest = inside["compute_indicators"] - sum(parts.values())
    print(f"| (writing results, the rest) | {rest:.2f} |")


if __name__ == "__main__":
    main()
