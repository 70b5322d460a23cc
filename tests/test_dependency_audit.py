"""The dependency audit scripts/test.sh runs (scripts/audit_dependencies.py): it flags a known
vulnerable version from the offline database, reads pip-audit's report, and passes this
environment."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit_dependencies.py"


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerable_version_is_flagged_offline(audit: ModuleType) -> None:
    advisories, published = audit.safety_db()
    assert published.year >= 2021 and len(advisories) > 1000
    found = audit.offline_findings({"jinja2": "2.11.2", "urllib3": "1.24.1", "rich": "13.7.0"}, advisories)
    assert {name for name, _, _ in found} == {"jinja2", "urllib3"}
    assert any("CVE-2020-28493" in what for name, _, what in found if name == "jinja2")
    assert audit.offline_findings({"jinja2": "3.1.6", "urllib3": "2.5.0"}, advisories) == []


def test_pip_audit_reports_are_read(audit: ModuleType) -> None:
    report = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "2.11.2",
                "vulns": [{"id": "PYSEC-2021-66", "fix_versions": ["2.11.3"]}],
            },
            {"name": "rich", "version": "13.7.0", "vulns": []},
            {"name": "watchfiles", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        ]
    }
    found, skipped = audit.online_findings(report)
    assert found == [("jinja2", "2.11.2", "PYSEC-2021-66 (fixed in 2.11.3)")] and skipped == ["watchfiles"]


def test_this_environment_passes_the_audit() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "against safety-db (published 2021-07-01" in done.stdout
    assert "pip-audit online" in done.stdout or "not audited online: " in done.stdout
