"""Every notebook, executed by a Jupyter kernel (nbclient) against the published tiny AMSS: the
local ones on its store, the partner-feed one on a live server over it.

One kernel serves the module: its namespace is reset before each notebook (``%reset -f``), so a
notebook cannot lean on another's variables, while the imports (the indicator stack, geopandas,
matplotlib) are paid once."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from observatory.settings import Settings
from observatory.store import Store

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHECKS = {
    "quickstart.ipynb": ("counts", ["2017 3.0", "2018 1.0"]),  # permits per year, both squares
    "territory.ipynb": ("wide", ["Oeste", "permits_count", "resolved_within_legal_limit"]),
    "services_mobility_risk_environment.ipynb": ("coverage", ["street_density", "values"]),
    "social.ipynb": ("social", ["violence 1", "land_rent 2", "demography 0"]),  # indicators with values
    "partner_feed.ipynb": ("feed", ["1.1.0 latest 2 municipalities"]),
}
"""Per notebook: the tag of a cell and what its output shows on the tiny AMSS."""


def output_of(notebook: nbformat.NotebookNode, tag: str) -> str:
    cell = next(cell for cell in notebook.cells if tag in cell.metadata.get("tags", []))
    texts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            texts.append(output.text)
        elif "data" in output:
            texts.append(output.data.get("text/plain", ""))
    return " ".join(" ".join(texts).split())


def test_every_notebook_is_checked() -> None:
    assert sorted(CHECKS) == [path.name for path in NOTEBOOKS]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelManager]:
    """A python3 kernel (the running interpreter) in a scratch folder, finding this checkout."""
    manager = KernelManager(kernel_name="python3")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}
    manager.start_kernel(cwd=str(tmp_path_factory.mktemp("notebooks")), env=env)
    yield manager
    manager.shutdown_kernel(now=True)


def setup_cell(settings: Settings, server: str) -> nbformat.NotebookNode:
    """A fresh namespace, the published store as the settings' store, and the server's URL."""
    env = {"OBSERVATORY_DATA_DIR": str(settings.data_dir), "OBSERVATORY_DATABASE_URL": "",
           "OBSERVATORY_URL": server}  # fmt: skip
    return nbformat.v4.new_code_cell(
        "%reset -f\nimport os\nimport matplotlib.pyplot\nfrom observatory.settings import get_settings\n"
        f"matplotlib.pyplot.close('all')\nos.environ.update({json.dumps(env)})\nget_settings.cache_clear()"
    )


@pytest.mark.parametrize("published", ["geopackage"], indirect=True)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(
    path: Path, published: tuple[Store, Settings], published_server: str, kernel: KernelManager
) -> None:
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, setup_cell(published[1], published_server))
    client = NotebookClient(notebook, km=kernel, timeout=120)
    try:
        client.execute()  # a failing cell raises, naming it
    finally:
        if client.kc is not None:  # the shared kernel's manager stays; this client's sockets go
            client.kc.stop_channels()
    tag, expected = CHECKS[path.name]
    shown = output_of(notebook, tag)
    for text in expected:
        assert text in shown, shown
