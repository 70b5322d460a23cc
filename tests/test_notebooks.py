"""Every notebook runs top to bottom against a loaded store (code cells executed in order)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from observatory.indicators import REGISTRY
from observatory.settings import Settings
from observatory.store import Store

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("settings", ["geopackage"], indirect=True)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(
    notebook: Path, loaded: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    matplotlib.use("Agg")
    monkeypatch.setenv("OBSERVATORY_DATA_DIR", str(settings.data_dir))
    namespace: dict[str, Any] = {}
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{notebook.name}", "exec"), namespace)
    assert len(namespace["sheets"]) == len(REGISTRY)  # one technical sheet per indicator
    assert namespace["counts"].to_dict() == {2017: 3.0, 2018: 1.0}
