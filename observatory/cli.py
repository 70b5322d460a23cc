"""The ``observatory`` command: sample data, loads, indicator computation and the server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from observatory.errors import ObservatoryError
from observatory.sample import DEFAULT_SEED
from observatory.store import open_store

app = typer.Typer(help="AMSS urban observatory.", no_args_is_help=True, add_completion=False)
console = Console()

SAMPLE_DIR = Path("data/sample")
SAMPLE_FILES = {
    "municipalities": "municipios_amss.geojson",
    "zoning": "esquema_director.gpkg",
    "permits": "permisos_opamss.csv",
}
"""Load order matters: permits are placed in municipalities."""


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console,
    )  # fmt: skip


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="folder to write the source files to")] = SAMPLE_DIR,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same files")] = DEFAULT_SEED,
    permits: Annotated[
        int | None, typer.Option(help="number of permits (default: the report's 1,953)")
    ] = None,
) -> None:
    """Write deterministic sample source files calibrated on the OPAMSS report."""
    from observatory.sample import REPORT_COUNTS, write_sample

    scale = 1.0 if permits is None else permits / sum(REPORT_COUNTS.values())
    with console.status("writing sample files"):
        files = write_sample(out, seed=seed, permits_scale=scale)
    for path in (files.municipalities, files.zoning, files.permits):
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


@app.command()
def load(
    layer: Annotated[str | None, typer.Argument(help="layer to load; all sample layers when omitted")] = None,
    source: Annotated[Path | None, typer.Argument(help="source file for that layer")] = None,
    sample_dir: Annotated[Path, typer.Option(help="where the sample files are")] = SAMPLE_DIR,
    crs: Annotated[str | None, typer.Option(help="CRS of x/y columns when the source is a CSV")] = None,
) -> None:
    """Load source files into the store (atomic, idempotent; rejects are reported)."""
    from etl import load_layer

    if layer is None:
        jobs = [(name, sample_dir / file) for name, file in SAMPLE_FILES.items()]
    elif source is None:
        raise typer.BadParameter("give the source file to load for that layer")
    else:
        jobs = [(layer, source)]
    store = open_store()
    try:
        with _progress() as progress:
            results = [load_layer(store, name, path, table_crs=crs, progress=progress) for name, path in jobs]
    finally:
        store.close()
    table = Table("layer", "loaded", "rejected", "run", "rejects report")
    for result in results:
        run = result.run
        table.add_row(
            run.layer, "unchanged" if result.unchanged else str(run.rows_loaded),
            str(run.rows_rejected), run.run_id, run.rejects_file if run.rows_rejected else "-",
        )  # fmt: skip
    console.print(table)


@app.command()
def compute(
    indicator: Annotated[
        list[str] | None, typer.Option(help="indicator id (repeatable); all by default")
    ] = None,
) -> None:
    """Compute indicators per municipality and period into the store."""
    from observatory.indicators import compute_indicators

    store = open_store()
    try:
        with _progress() as progress:
            values = compute_indicators(store, indicator or None, progress=progress)
    finally:
        store.close()
    summary = values.groupby("indicator_id")["period"].agg(["min", "max", "count"])
    table = Table("indicator", "periods", "values")
    for indicator_id, row in summary.iterrows():
        table.add_row(str(indicator_id), f"{row['min']}–{row['max']}", str(row["count"]))
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Serve the API and the map."""
    from observatory.api import create_app

    console.print(f"map at http://{host}:{port}/map · API at http://{host}:{port}/?f=json · docs at /docs")
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    sample_dir: Annotated[
        Path, typer.Option(help="where the sample files are (written if missing)")
    ] = SAMPLE_DIR,
) -> None:
    """The whole job: sample data (if missing) -> load -> compute -> serve the map."""
    started = time.perf_counter()
    if not all((sample_dir / file).exists() for file in SAMPLE_FILES.values()):
        sample(out=sample_dir, seed=DEFAULT_SEED, permits=None)
    load(layer=None, source=None, sample_dir=sample_dir, crs=None)
    compute(indicator=None)
    console.print(f"ready in {time.perf_counter() - started:.1f} s")
    serve(host=host, port=port)


def main() -> None:
    try:
        app()
    except ObservatoryError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise SystemExit(2) from None
