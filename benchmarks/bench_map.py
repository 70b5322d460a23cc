"""The map in headless Chromium: time from navigation to the choropleth drawn, to a profile open and
to the permits overlay drawn, on two stores side by side (the sample and a 1,000,000-permit one).

Each store is served by ``observatory serve`` (one process, its own port); one browser visits both,
alternating, ``--rounds`` times, each visit in a fresh browser context (no cache). Times are the
median over the rounds, measured in the page (``performance.now()`` from navigation start):

* choropleth: /map opened on the whole AMSS, the app ready and MapLibre idle (outlines, classes,
  legend, names drawn);
* profile: from choosing San Salvador (0614) to its profile table and charts drawn;
* permits: from ticking the permits overlay at z13 over the centre to the map idle again.

    OBSERVATORY_DATA_DIR=/tmp/sample/var  .venv/bin/observatory demo   # or sample + load + compute
    .venv/bin/observatory sample --out /tmp/1m/sample --permits 1000000
    OBSERVATORY_DATA_DIR=/tmp/1m/var .venv/bin/observatory load --sample-dir /tmp/1m/sample
    OBSERVATORY_DATA_DIR=/tmp/1m/var .venv/bin/observatory compute
    .venv/bin/python benchmarks/bench_map.py /tmp/sample/var /tmp/1m/var --rounds 5
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, sync_playwright

OBSERVATORY = [sys.executable, "-m", "observatory"]
ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
]
ZOOM, CENTRE = 13, (-89.200, 13.700)
"""Where the permits overlay is timed: the centre of San Salvador."""
IDLE = "new Promise((done) => { if (map.loaded() && !map.isMoving()) done(); else map.once('idle', done); })"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "OBSERVATORY_DATA_DIR": str(data_dir)}
    env.pop("OBSERVATORY_DATABASE_URL", None)  # the GeoPackage store of that folder
    process = subprocess.Popen(
        [*OBSERVATORY, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/conformance", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the server over {data_dir} did not start")


def visit(browser: Browser, url: str) -> dict[str, float]:
    """One visit in a fresh context: milliseconds to the choropleth, the profile and the permits."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/map?indicator=permits_count")  # the whole AMSS, as a planner lands on it
    page.wait_for_selector("body[data-ready=true]", timeout=120_000)
    page.evaluate(IDLE)
    choropleth = page.evaluate("performance.now()")
    started = page.evaluate("performance.now()")
    page.select_option("#municipality", "0614")
    page.wait_for_selector("#profile-table", timeout=120_000)
    page.evaluate("new Promise((done) => requestAnimationFrame(() => done()))")
    profile = page.evaluate("performance.now()") - started
    page.evaluate(f"map.jumpTo({{zoom: {ZOOM}, center: {list(CENTRE)}}})")
    page.evaluate(IDLE)  # the streets of the basemap drawn first
    started = page.evaluate("performance.now()")
    page.check("#overlay-permits")
    page.evaluate(IDLE)
    permits = page.evaluate("performance.now()") - started
    context.close()
    return {"choropleth": choropleth, "profile": profile, "permits": permits}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sample", type=Path, help="data dir of the sample store")
    parser.add_argument("large", type=Path, help="data dir of the 1,000,000-permit store")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    servers = {
        name: serve(path) for name, path in (("sample", options.sample), ("1M permits", options.large))
    }
    times: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            for _, url in servers.values():
                visit(browser, url)  # warm-up: the server's first reads
            for _ in range(options.rounds):
                for name, (_, url) in servers.items():
                    times[name].append(visit(browser, url))
            browser.close()
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=10)
    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for name, runs in times.items()
    }
    print("| store | choropleth drawn | profile open | permits overlay drawn (z13) |")
    print("|---|---|---|---|")
    for name, values in medians.items():
        cells = " | ".join(f"{values[key]:.0f} ms" for key in ("choropleth", "profile", "permits"))
        print(f"| {name} | {cells} |")
    large, sample = medians["1M permits"], medians["sample"]
    ratios = " | ".join(f"{large[key] / sample[key]:.2f}" for key in ("choropleth", "profile", "permits"))
    print(f"| 1M / sample | {ratios} |")


if __name__ == "__main__":
    main()
