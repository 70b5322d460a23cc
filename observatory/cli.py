"""The ``observatory`` command: sample data, loads, indicator computation and the server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from observatory.errors import ObservatoryError
from observatory.spreadsheet import neutralise_frame
from observatory.store import Store, open_store

app = typer.Typer(help="AMSS urban observatory.", no_args_is_help=True, add_completion=False)
console = Console()

SAMPLE_DIR = Path("data/sample")
"""The sample's source files and their manifests (``*.toml``)."""


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console,
    )  # fmt: skip


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="folder to write the source files to")] = SAMPLE_DIR,
    seed: Annotated[
        int | None,
        typer.Option(help="random seed (default: the committed sample's); same seed, same files"),
    ] = None,
    permits: Annotated[
        int | None,
        typer.Option(
            help="files approved in the report's year, 2016 (default: the report's 1,953, 547 permits "
            "and 1,406 rulings); other years, denials and withdrawals scale alike (about 3.6 × N rows)"
        ),
    ] = None,
) -> None:
    """Write deterministic sample source files calibrated on the OPAMSS report."""
    # Imported here: the generators bring the whole indicator stack, which a load does not need.
    from observatory.sample import DEFAULT_SEED, REPORT_COUNTS, write_sample

    scale = 1.0 if permits is None else permits / sum(REPORT_COUNTS.values())
    with console.status("writing sample files"):
        write_sample(out, seed=DEFAULT_SEED if seed is None else seed, permits_scale=scale)
    for path in sorted(out.iterdir()):
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


@app.command()
def load(
    target: Annotated[
        Path | None,
        typer.Argument(
            help="a source manifest (.toml), or a layer name followed by a file; "
            "every manifest in --sample-dir when omitted"
        ),
    ] = None,
    source: Annotated[Path | None, typer.Argument(help="with a layer name: the file to load")] = None,
    sample_dir: Annotated[Path, typer.Option(help="folder of the sample's manifests")] = SAMPLE_DIR,
    crs: Annotated[str | None, typer.Option(help="with a layer name: CRS of the file's coordinates")] = None,
    dry_run: Annotated[bool, typer.Option(help="check every row and report, write nothing")] = False,
    recompute: Annotated[bool, typer.Option(help="recompute the indicators a load made stale")] = True,
    allow_shrink: Annotated[
        bool, typer.Option(help="accept a file that removes more of a layer than OBSERVATORY_MAX_SHRINK")
    ] = False,
) -> None:
    """Load source files into the store (atomic, idempotent; a report lists rejected and repaired rows)."""
    from etl import LoadResult, default_manifest, load_source, read_manifest
    from etl.plan import load_order

    if target is None:
        manifests = load_order([read_manifest(path) for path in sorted(sample_dir.glob("*.toml"))])
    elif target.suffix.lower() == ".toml":
        manifests = [read_manifest(target)]
    elif source is None:
        raise typer.BadParameter("give a manifest, or a layer name and the file to load")
    else:
        manifests = [default_manifest(str(target), source, crs=crs)]
    store = open_store()
    results: list[LoadResult] = []
    try:
        with _progress() as progress:
            for manifest in manifests:
                results.append(
                    load_source(
                        store, manifest, dry_run=dry_run, allow_shrink=allow_shrink, progress=progress
                    )
                )
        _print_loads(results)
        withdrawn = sorted({i for result in results for i in result.withdrawn_indicators})
        if withdrawn and recompute and not dry_run:
            console.print(f"recomputing {len(withdrawn)} indicator(s) computed from the reloaded layers")
            _compute(store, None)
        elif withdrawn:
            console.print(f"withdrawn until recomputed: {', '.join(withdrawn)} (run `observatory compute`)")
    finally:
        store.close()


def _print_loads(results: list[Any]) -> None:
    table = Table("layer", "read", "loaded", "repaired", "rejected", "run", "report")
    for result in results:
        run = result.run
        for item in (run, *result.rederived):
            name = item.layer + (" (derived again)" if item is not run else "")
            table.add_row(
                name + (" (dry run)" if result.dry_run else ""),
                str(item.rows_read), "unchanged" if result.unchanged else str(item.rows_loaded),
                str(item.rows_repaired), str(item.rows_rejected), item.run_id,
                "-" if result.dry_run or not (item.rows_rejected or item.rows_repaired) else item.report_file,
            )  # fmt: skip
    console.print(table)
    for result in results:
        if result.dry_run and result.reasons:
            console.print(f"[bold]{result.run.layer}[/bold]: rejected rows by reason")
            for reason, count in result.reasons.most_common():
                console.print(f"  {count:>8,}  {reason}")


@app.command()
def compute(
    indicator: Annotated[
        list[str] | None, typer.Option(help="indicator id (repeatable); all by default")
    ] = None,
    period: Annotated[
        int | None, typer.Option(help="recompute only this year's values; the other periods stay as stored")
    ] = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="every indicator, every period (what no option does too)"),
    ] = False,
) -> None:
    """Compute indicators per municipality and period into the store; list the ones skipped and why.

    With no option every indicator is computed for every period its inputs give, each recomputed
    period replacing its earlier values; ``--period`` narrows that to one year.
    """
    if every and (indicator or period is not None):
        raise typer.BadParameter("--all is every indicator and every period: drop --indicator and --period")
    store = open_store()
    try:
        _compute(store, indicator or None, period=period)
    finally:
        store.close()


def _compute(store: Store, ids: list[str] | None, *, period: int | None = None) -> None:
    from observatory.indicators import compute_indicators

    with _progress() as progress:
        outcome = compute_indicators(store, ids, period=period, progress=progress)
    values = outcome.values
    table = Table("indicator", "geography", "periods", "values")
    if not values.empty:
        summary = values.groupby(["indicator_id", "geography"])["period"].agg(["min", "max", "count"])
        for (indicator_id, geography), row in summary.iterrows():
            table.add_row(str(indicator_id), str(geography), f"{row['min']}–{row['max']}", str(row["count"]))
    console.print(table)
    if period is not None and values.empty:
        console.print(f"[yellow]no indicator has values for {period}[/yellow]; nothing was replaced")
    for indicator_id, reason in outcome.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {indicator_id}: {reason}")


@app.command()
def sensitivity(
    out: Annotated[Path, typer.Option(help="CSV file to write the rank table to")] = Path(
        "cpi_sensitivity.csv"
    ),
    geography: Annotated[str, typer.Option(help="municipios_2007 or municipios_2024")] = "municipios_2007",
    period: Annotated[int | None, typer.Option(help="year of the index; the latest by default")] = None,
    draws: Annotated[int, typer.Option(min=1, max=100_000, help="weightings drawn")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same table")] = 0,
) -> None:
    """Ranks on the composite index under the spec's weights, under random (Dirichlet) weights and
    under geometric instead of arithmetic aggregation of the dimensions."""
    from layers import get_layer
    from observatory.indicators.composite import GEOMETRIC_FLOOR, stored_sensitivity

    store = open_store()
    try:
        stored = store.read_layer(get_layer("indicators"))
    finally:
        store.close()
    year, table = stored_sensitivity(stored, geography=geography, period=period, draws=draws, seed=seed)
    neutralise_frame(table).to_csv(out, index_label="municipality_code", float_format="%.4g")
    console.print(
        f"cpi_overall {year} on {geography}: ranks over {draws} weightings and under geometric "
        f"aggregation (dimension scores below {GEOMETRIC_FLOOR:g} taken as {GEOMETRIC_FLOOR:g}) "
        f"written to {out}"
    )
    console.print(table.round(2).to_string())


@app.command()
def export(
    folder: Annotated[Path, typer.Argument(help="folder of the snapshot (an earlier one is replaced)")],
    max_zoom: Annotated[int, typer.Option(min=0, max=20, help="deepest zoom of the PMTiles archives")] = 14,
) -> None:
    """A static snapshot to host anywhere: layers (GeoJSON, FlatGeobuf, PMTiles), feed, STAC catalogue."""
    from observatory.export import export_snapshot

    store = open_store()
    try:
        with _progress() as progress:
            exported = export_snapshot(store, folder, max_zoom=max_zoom, progress=progress)
    finally:
        store.close()
    files = sum(len(names) for names in exported.collections.values()) + len(exported.feeds)
    console.print(f"{len(exported.collections)} collections, {files} files and {folder / 'catalog.json'}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="processes; each keeps its own tile cache in memory")
    ] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request (costs time per request)")] = True,
) -> None:
    """Serve the API and the map."""
    from observatory.api.public_url import uvicorn_options
    from observatory.settings import get_settings

    console.print(f"map at http://{host}:{port}/map · API at http://{host}:{port}/?f=json · docs at /docs")
    # An import string, so that each worker process builds its own app.
    uvicorn.run(
        "observatory.api:create_app", factory=True, host=host, port=port, workers=workers,
        access_log=access_log, log_level="info", **uvicorn_options(get_settings()),
    )  # fmt: skip


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
    if not any(sample_dir.glob("*.csv")):
        sample(out=sample_dir, seed=None, permits=None)
    load(
        target=None,
        source=None,
        sample_dir=sample_dir,
        crs=None,
        dry_run=False,
        recompute=False,
        allow_shrink=False,
    )
    compute(indicator=None, period=None, every=False)
    console.print(f"ready in {time.perf_counter() - started:.1f} s")
    serve(host=host, port=port)


apikey = typer.Typer(
    help="API keys: analysts' and admins' credentials (only their digests are kept).", no_args_is_help=True
)
app.add_typer(apikey, name="apikey")


@apikey.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="who or what holds the key (a person, a notebook server)")],
    role: Annotated[str, typer.Option(help="analyst or admin")] = "analyst",
) -> None:
    """Make a key and print it once: only its SHA-256 is kept, it cannot be shown again."""
    from observatory.access import create_api_key
    from observatory.settings import get_settings

    settings = get_settings()
    key = create_api_key(name, role, settings)
    console.print(f"API key for {name} ({role}), stored hashed in {settings.api_keys_path}:")
    print(key)  # plain, on its own line: for copying, never wrapped or styled
    console.print(
        "[yellow]keep it now: it is not stored and cannot be shown again[/yellow]; "
        "send it as `Authorization: Bearer <key>`"
    )


@apikey.command("list")
def apikey_list() -> None:
    """The keys on file: name, role and creation time (never the keys)."""
    from observatory.access import list_api_keys
    from observatory.settings import get_settings

    table = Table("name", "role", "created", "sha256 (first 12)")
    for key in list_api_keys(get_settings()):
        table.add_row(key.name, str(key.role), key.created_at, key.sha256[:12])
    console.print(table)


@apikey.command("revoke")
def apikey_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Remove a key: refused from the next request on."""
    from observatory.access import revoke_api_key
    from observatory.settings import get_settings

    revoke_api_key(name, get_settings())
    console.print(f"revoked the key of {name}")


def main() -> None:
    try:
        app()
    except ObservatoryError as error:
        # On stderr, one line however narrow the terminal, and never read as rich markup.
        errors = Console(stderr=True, soft_wrap=True)
        errors.print("[red]error:[/red] ", end="")
        errors.print(error.message, markup=False, highlight=False)
        raise SystemExit(2) from None
