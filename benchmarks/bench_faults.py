"""Faults: 50 concurrent connections (wrk) on tiles and items, and recovery from a PostgreSQL restart.

Serves an already loaded PostGIS store with ``observatory serve`` (one process) on a free port, then

* ``wrk``: runs ``wrk -t2 -c50 -d60s --latency -s <lua>`` twice, once with a Lua script rotating
  through every WebMercatorQuad tile over the AMSS (lon -89.39..-89.03, lat 13.54..13.92) at z10-14
  of the permits and municipalities layers, once through item pages (``limit=100`` at every offset
  of the loaded permits, and 100-permit pages inside small bounding boxes); prints requests/s,
  p50/p99, non-2xx/3xx responses and socket errors as wrk reports them;
* ``restart`` (only with ``--restart``, it stops every connection to the cluster for a moment):
  a client fetches ``/collections/permits/items?limit=10`` every 50 ms and records the status and
  time of each request; after ``--before`` seconds it runs ``pg_ctlcluster 15 main restart`` and
  reports the statuses seen in between and the time from the restart to the first 200.

    export OBSERVATORY_DATABASE_URL="$(bash scripts/postgis.sh)" OBSERVATORY_DB_SCHEMA=faults \
        OBSERVATORY_DATA_DIR=/tmp/faults
    .venv/bin/observatory load --sample-dir data/sample
    .venv/bin/python benchmarks/bench_faults.py wrk            # --duration 60 --connections 50
    .venv/bin/python benchmarks/bench_faults.py restart --restart
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import morecantile

OBSERVATORY = str(Path(sys.executable).with_name("observatory"))
AMSS = (-89.39, 13.54, -89.03, 13.92)
ZOOMS = range(10, 15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tile_paths() -> list[str]:
    tms = morecantile.tms.get("WebMercatorQuad")
    tiles = list(tms.tiles(*AMSS, zooms=list(ZOOMS)))
    return [
        f"/collections/{layer}/tiles/WebMercatorQuad/{t.z}/{t.y}/{t.x}"
        for layer in ("permits", "municipalities")
        for t in tiles
    ]


def item_paths(permits: int) -> list[str]:
    paths = [f"/collections/permits/items?limit=100&offset={n}" for n in range(0, permits, 100)]
    west, south, east, north = AMSS
    steps = 6
    dx, dy = (east - west) / steps, (north - south) / steps
    for i in range(steps):
        for j in range(steps):
            box = (west + i * dx, south + j * dy, west + (i + 1) * dx, south + (j + 1) * dy)
            paths.append("/collections/permits/items?limit=100&bbox=" + ",".join(f"{v:.4f}" for v in box))
    return paths


def lua_script(paths: list[str]) -> str:
    """Each wrk thread walks the whole list from its own starting point, wrapping around."""
    listed = ",\n".join(json.dumps(p) for p in paths)
    return f"""local paths = {{
{listed}
}}
i = 0
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("i", counter * 7919)
end
init = function(args)
  wrk.headers["Accept-Encoding"] = "gzip"
end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
"""


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict[str, object]:
    result: dict[str, object] = {}
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    result["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = to_ms(re.search(rf"\s{pct}%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True))
        if sock
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    )
    return result


def check_paths(base: str, paths: list[str]) -> collections.Counter:
    statuses: collections.Counter = collections.Counter()
    with httpx.Client(timeout=30) as client:
        for path in paths:
            statuses[client.get(base + path).status_code] += 1
    return statuses


def run_wrk(base: str, args: argparse.Namespace, permits: int) -> None:
    workloads = {"tiles": tile_paths(), "items": item_paths(permits)}
    tmp = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    for name, paths in workloads.items():
        # one sequential pass first: checks every URL answers 200 (and warms up)
        statuses = check_paths(base, paths)
        print(f"{name}: {len(paths)} URLs, sequential pass statuses {dict(statuses)}", flush=True)
        script = tmp / f"{name}.lua"
        script.write_text(lua_script(paths))
        cmd = [
            "wrk",
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-s",
            str(script),
            base,
        ]
        print("$ " + " ".join(cmd), flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        print(out, flush=True)
        print(f"RESULT {name} " + json.dumps(parse_wrk(out)), flush=True)


def run_restart(base: str, args: argparse.Namespace) -> None:
    if not args.restart:
        sys.exit("restart stops every connection to the cluster: pass --restart to do it")
    url = base + "/collections/permits/items?limit=10"
    records: list[tuple[float, float, object]] = []  # (start offset s, latency s, status)
    restart_at = restart_done = None
    restart_proc = None
    t0 = time.monotonic()
    with httpx.Client(timeout=args.timeout) as client:
        while True:
            now = time.monotonic() - t0
            if restart_proc is None and now >= args.before:
                restart_at = time.monotonic() - t0
                restart_proc = subprocess.Popen(
                    args.command.split(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            if restart_proc is not None and restart_done is None and restart_proc.poll() is not None:
                restart_done = time.monotonic() - t0
            started = time.monotonic() - t0
            try:
                status: object = client.get(url).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            records.append((started, time.monotonic() - t0 - started, status))
            if restart_done is not None:
                after = [r for r in records if r[0] >= restart_done and r[2] == 200]
                if after and time.monotonic() - t0 - after[0][0] >= args.after:
                    break
            if time.monotonic() - t0 > args.before + args.give_up:
                break
            time.sleep(max(0.0, 0.05 - (time.monotonic() - t0 - started)))
    if restart_proc is not None:
        restart_proc.wait()
        if restart_done is None:
            restart_done = time.monotonic() - t0
        print("pg_ctlcluster rc", restart_proc.returncode, (restart_proc.stdout.read() or "").strip())
    before = [r for r in records if r[0] < restart_at]
    during = [r for r in records if r[0] >= restart_at]
    first_bad = next((r for r in during if r[2] != 200), None)
    last_bad = max((r for r in during if r[2] != 200), key=lambda r: r[0], default=None)
    first_ok_after_bad = (
        next((r for r in during if r[0] > last_bad[0] and r[2] == 200), None) if last_bad else None
    )
    first_ok_after_up = next((r for r in during if r[0] >= restart_done and r[2] == 200), None)
    in_between = [r for r in during if first_ok_after_up is None or r[0] < first_ok_after_up[0]]
    print(
        f"requests before the restart: {len(before)}, "
        f"statuses {dict(collections.Counter(r[2] for r in before))}"
    )
    print(
        f"restart command: began at t={restart_at:.3f} s, returned at t={restart_done:.3f} s "
        f"({restart_done - restart_at:.3f} s)"
    )
    print(
        "statuses from the restart until the first 200 after pg_ctlcluster returned: "
        + str(dict(collections.Counter(r[2] for r in in_between)))
    )
    print("statuses from the restart to the end: " + str(dict(collections.Counter(r[2] for r in during))))
    if first_bad:
        print(
            f"first non-200: t={first_bad[0]:.3f} s "
            f"({first_bad[0] - restart_at:+.3f} s after the restart), {first_bad[2]}"
        )
    if last_bad:
        print(f"last non-200: t={last_bad[0]:.3f} s ({last_bad[0] - restart_at:+.3f} s), {last_bad[2]}")
    if first_ok_after_bad:
        print(
            f"first 200 after the last non-200: request began "
            f"{first_ok_after_bad[0] - restart_at:.3f} s after the restart began, answered "
            f"{first_ok_after_bad[0] + first_ok_after_bad[1] - restart_at:.3f} s after"
        )
    if first_ok_after_up:
        print(
            f"first 200 begun after pg_ctlcluster returned: answered "
            f"{first_ok_after_up[0] + first_ok_after_up[1] - restart_at:.3f} s after the restart began, "
            f"{first_ok_after_up[0] + first_ok_after_up[1] - restart_done:.3f} s after it returned"
        )
    bad5xx = [r for r in during if isinstance(r[2], int) and r[2] >= 500 and r[2] != 503]
    print(f"5xx other than 503: {len(bad5xx)}")
    slow = max(records, key=lambda r: r[1])
    print(f"slowest request: {slow[1]:.3f} s (began t={slow[0]:.3f} s, status {slow[2]})")
    print("timeline around the restart (start offset from restart s, latency s, status):")
    for r in during:
        if first_ok_after_up is None or r[0] <= first_ok_after_up[0] + 0.3:
            print(f"  {r[0] - restart_at:+.3f} {r[1]:.3f} {r[2]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["wrk", "restart"])
    parser.add_argument("--base", help="an already running server; default: start one on a free port")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--permits", type=int, default=7017, help="rows in the permits layer (item offsets)")
    parser.add_argument("--restart", action="store_true", help="really restart PostgreSQL (restart mode)")
    parser.add_argument(
        "--command",
        default="pg_ctlcluster 15 main restart",
        help="the restart command (e.g. 'sleep 1' to try the client loop without a restart)",
    )
    parser.add_argument("--before", type=float, default=5.0, help="seconds of serving before the restart")
    parser.add_argument("--after", type=float, default=5.0, help="seconds to keep fetching after recovery")
    parser.add_argument("--give-up", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="client timeout per request")
    args = parser.parse_args()
    if not os.environ.get("OBSERVATORY_DATABASE_URL") and not args.base:
        sys.exit("set OBSERVATORY_DATABASE_URL (and OBSERVATORY_DB_SCHEMA) to the loaded store")
    server = None
    base = args.base
    server_log = None
    if base is None:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server_log = (Path(tempfile.gettempdir()) / f"bench_faults_serve_{port}.log").open("w")
        server = subprocess.Popen(
            [OBSERVATORY, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=server_log,
        )
        for _ in range(200):
            try:
                if httpx.get(base + "/collections/permits/items?limit=1", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            server.terminate()
            sys.exit("server did not answer")
        print(f"serving on {base} (pid {server.pid})", flush=True)
    try:
        if args.mode == "wrk":
            run_wrk(base, args, args.permits)
        else:
            run_restart(base, args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
            server_log.close()
            print(f"server log: {server_log.name}")


if __name__ == "__main__":
    main()
