"""Dependency audit of the environment this Python runs in: fails (exit 1) on an installed version
with a known vulnerability.

Two sources, because CI reaches the package registries and nothing else:

1. Offline, always: the ``safety-db`` package's database of insecure versions (PyUp.io's public
   database, as last published on PyPI; its date is printed). It is old: advisories published
   after it are not checked.
2. Online, when it answers: ``pip-audit`` against the registry's vulnerability data (current). It
   is probed first with one package; where the registry's per-version JSON is not served (this
   project's machines: every lookup answered 404), the run prints "not audited online: <reason>"
   and does not fail for that.

Run by scripts/test.sh; ``python scripts/audit_dependencies.py``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

Finding = tuple[str, str, str]
"""An installed name and version and what is known against it."""


def installed() -> dict[str, str]:
    """Every distribution installed in this environment, by canonical name."""
    return {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def safety_db() -> tuple[dict[str, list[dict[str, object]]], datetime]:
    """safety-db's advisories by canonical name, and when the database was published. Read from
    the files (its module opens them relative to the working directory and fails on import)."""
    files = metadata.files("safety-db") or []
    path = next(Path(str(file.locate())) for file in files if file.name == "insecure_full.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    published = datetime.fromtimestamp(data.pop("$meta")["timestamp"], UTC)
    return {canonicalize_name(name): entries for name, entries in data.items()}, published


def offline_findings(
    packages: dict[str, str], advisories: dict[str, list[dict[str, object]]]
) -> list[Finding]:
    """The installed versions that an advisory's version specifiers match."""
    found = []
    for name, version in sorted(packages.items()):
        for advisory in advisories.get(name, []):
            if _matches(version, advisory.get("specs", [])):
                text = str(advisory.get("advisory", "")).split(". ")[0]
                found.append((name, version, f"{advisory.get('cve') or advisory.get('id')}: {text}"))
    return found


def _matches(version: str, specs: object) -> bool:
    """Whether ``version`` is in any of the advisory's ranges (each a comma-separated set)."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    for spec in specs if isinstance(specs, list) else []:
        try:
            if parsed in SpecifierSet(str(spec), prereleases=True):
                return True
        except InvalidSpecifier:
            continue
    return False


def pip_audit(paths: Iterable[str] = ()) -> dict[str, object]:
    """pip-audit's JSON report of this environment (or of ``paths``, site-packages folders)."""
    command = [sys.executable, "-m", "pip_audit", "-f", "json", "--progress-spinner", "off"]
    command += ["--skip-editable", *(f"--path={path}" for path in paths)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if not done.stdout.strip():
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no report")
    report: dict[str, object] = json.loads(done.stdout)
    return report


def online_unavailable() -> str | None:
    """Why pip-audit cannot be used here (None: it can), probed with one package (pip itself)."""
    if importlib.util.find_spec("pip_audit") is None:
        return "pip-audit is not installed"
    with tempfile.TemporaryDirectory() as folder:  # a site-packages holding pip's metadata alone
        info = Path(folder) / f"pip-{metadata.version('pip')}.dist-info"
        info.mkdir()
        info.joinpath("METADATA").write_text(f"Name: pip\nVersion: {metadata.version('pip')}\n")
        try:
            report = pip_audit([folder])
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as error:
            return f"pip-audit failed: {error}"
    skipped = [dep.get("skip_reason") for dep in _dependencies(report) if dep.get("skip_reason")]
    return f"the registry did not answer for pip: {skipped[0]}" if skipped else None


def _dependencies(report: dict[str, object]) -> list[dict[str, object]]:
    dependencies = report.get("dependencies", [])
    return [dep for dep in dependencies if isinstance(dep, dict)] if isinstance(dependencies, list) else []


def online_findings(report: dict[str, object]) -> tuple[list[Finding], list[str]]:
    """pip-audit's vulnerabilities, and the packages it could not audit."""
    found, skipped = [], []
    for dep in _dependencies(report):
        if dep.get("skip_reason"):
            skipped.append(str(dep["name"]))
        for vuln in dep.get("vulns", []) or []:  # type: ignore[attr-defined]
            fixed = ", ".join(vuln.get("fix_versions", [])) or "none"
            found.append((str(dep["name"]), str(dep["version"]), f"{vuln['id']} (fixed in {fixed})"))
    return found, skipped


def main() -> int:
    packages = installed()
    advisories, published = safety_db()
    findings = offline_findings(packages, advisories)
    age = (datetime.now(UTC) - published).days
    print(
        f"dependency audit: {len(packages)} packages against safety-db "
        f"(published {published:%Y-%m-%d}, {age} days old: later advisories are not checked)"
    )
    reason = online_unavailable()
    if reason is None:
        found, skipped = online_findings(pip_audit())
        findings += found
        print(f"dependency audit: pip-audit online, {len(packages) - len(skipped)} audited")
        if skipped:
            print(f"not audited online: {', '.join(skipped)}")
    else:
        print(f"not audited online: {reason}")
    for name, version, what in findings:
        print(f"VULNERABLE {name} {version}: {what}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
