"""Schemathesis against the live server on both stores: every check, every phase (examples,
coverage, fuzzing, and stateful through the document's OpenAPI links), zero failures.

The run is kept short (a few examples per operation); its settings, and why some schema-valid
requests may get a 400, are in ``tests/schemathesis.toml``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("st")


def test_schemathesis_finds_nothing(server: str, tmp_path: Path) -> None:
    command = [
        str(SCHEMATHESIS), "--no-color", "--config-file", str(CONFIG),
        "run", f"{server}/openapi.json", "--checks", "all", "--max-examples", "6", "--workers", "2",
        "--generation-database", "none", "--request-timeout", "20",
    ]  # fmt: skip
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    summary = run.stdout[run.stdout.find("SUMMARY") :]
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    operations = len(httpx.get(f"{server}/openapi.json").json()["paths"])
    assert f"Tested: {operations}" in summary and "failures" not in summary.split("Test cases:")[-1], summary
