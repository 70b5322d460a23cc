"""The ``observatory`` command as a user runs it, in a subprocess, on the embedded store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import httpx
import pandas as pd

from layers import get_layer
from observatory.settings import Settings
from observatory.store import open_store


def run(*args: str, data_dir: Path, database_url: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OBSERVATORY_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    env["OBSERVATORY_DATABASE_URL"] = database_url
    command = [sys.executable, "-c", "from observatory.cli import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_sample_load_compute_then_reload_is_unchanged(tmp_path: Path) -> None:
    sources, store_dir = tmp_path / "sample", tmp_path / "var"

    # --permits 400: the report's year holds 400 approved files; the register has the other years,
    # the denied, withdrawn and pending files beside them.
    assert run("sample", "--out", str(sources), "--permits", "400", data_dir=store_dir).returncode == 0
    rows = len(pd.read_csv(sources / "permisos_opamss.csv"))
    loaded = run("load", "--sample-dir", str(sources), data_dir=store_dir)
    assert loaded.returncode == 0, loaded.stderr
    assert "permits" in loaded.stdout and f"{rows:,} rows loaded" in loaded.stdout
    computed = run("compute", data_dir=store_dir)
    assert computed.returncode == 0, computed.stderr
    assert "land_use_mix" in computed.stdout

    store = open_store(Settings(data_dir=store_dir))
    assert len(store.read_layer(get_layer("permits"))) == rows
    municipalities = store.read_layer(get_layer("municipalities"))
    assert (municipalities["valid_to"] == pd.Timestamp("2024-04-30")).all()
    values = store.read_layer(get_layer("indicators"))
    density = values[values["indicator_id"] == "population_density"]
    assert density.groupby("geography").size().to_dict() == {"municipios_2007": 14, "municipios_2024": 6}

    again = run("load", "--sample-dir", str(sources), data_dir=store_dir)
    assert again.stdout.count("│ unchanged") == len(list(sources.glob("*.toml")))  # every manifest


def test_errors_are_one_clear_line_without_traceback(tmp_path: Path) -> None:
    result = run("load", "permits", str(tmp_path / "missing.csv"), data_dir=tmp_path / "var")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "missing.csv: file not found" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    url = "postgresql://observer:s3cret@127.0.0.1:9/observatory"
    result = run("compute", data_dir=tmp_path / "var", database_url=url)
    assert result.returncode == 2
    output = " ".join((result.stdout + result.stderr).split())
    assert "cannot reach PostGIS at postgresql+psycopg://observer:***@127.0.0.1:9/observatory" in output
    assert "s3cret" not in output and "Traceback" not in output


def test_a_csv_in_another_crs_loads_with_crs_option(tmp_path: Path) -> None:
    sources, store_dir = tmp_path / "sample", tmp_path / "var"
    run("sample", "--out", str(sources), "--permits", "100", data_dir=store_dir)
    run("load", str(sources / "municipios.toml"), data_dir=store_dir)
    permits = pd.read_csv(sources / "permisos_opamss.csv")
    points = gpd.GeoSeries.from_xy(permits["x"], permits["y"], crs="EPSG:5460").to_crs(4326)
    permits["x"], permits["y"] = points.x, points.y
    permits.to_csv(tmp_path / "lonlat.csv", index=False)

    manifest = (sources / "permisos.toml").read_text(encoding="utf-8")
    manifest = manifest.replace("permisos_opamss.csv", "lonlat.csv").replace("EPSG:5460", "EPSG:4326")
    (tmp_path / "lonlat.toml").write_text(manifest, encoding="utf-8")

    checked = run("load", str(tmp_path / "lonlat.toml"), "--dry-run", data_dir=store_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "dry run" in checked.stdout
    assert open_store(Settings(data_dir=store_dir)).read_layer(get_layer("permits")).empty

    result = run("load", str(tmp_path / "lonlat.toml"), data_dir=store_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(open_store(Settings(data_dir=store_dir)).read_layer(get_layer("permits"))) == len(permits)


def test_a_load_that_shrinks_a_layer_needs_allow_shrink(tmp_path: Path) -> None:
    sources, store_dir = tmp_path / "sample", tmp_path / "var"
    run("sample", "--out", str(sources), "--permits", "100", data_dir=store_dir)
    run("load", str(sources / "municipios.toml"), data_dir=store_dir)
    assert run("load", str(sources / "permisos.toml"), "--no-recompute", data_dir=store_dir).returncode == 0
    permits = sources / "permisos_opamss.csv"
    lines = permits.read_text(encoding="utf-8").splitlines(True)
    permits.write_text("".join(lines[:41]), encoding="utf-8")
    before = len(lines) - 1

    refused = run("load", str(sources / "permisos.toml"), "--no-recompute", data_dir=store_dir)
    assert refused.returncode == 2
    output = " ".join((refused.stdout + refused.stderr).split())
    shrink = f"would shrink permits from {before:,} to 40 rows ({(40 - before) / before:+.1%})"
    assert shrink in output and "--allow-shrink" in output
    assert "Traceback" not in output
    manifest = str(sources / "permisos.toml")
    allowed = run("load", manifest, "--no-recompute", "--allow-shrink", data_dir=store_dir)
    assert allowed.returncode == 0, allowed.stderr
    assert len(open_store(Settings(data_dir=store_dir)).read_layer(get_layer("permits"))) == 40


def test_serve_runs_the_workers_asked_for_without_an_access_log(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OBSERVATORY_DATA_DIR": str(tmp_path / "store"), "OBSERVATORY_DATABASE_URL": ""}
    command = [sys.executable, "-c", "from observatory.cli import main; main()", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--workers", "2", "--no-access-log"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/conformance", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.2)
        assert answer.status_code == 200
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout
        workers = [
            pid for pid in children.split() if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()
        ]
        assert len(workers) == 2
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert b"Started parent process" in output and b"GET /conformance" not in output
