"""`radar` commands for data in: sample-data and ingest."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from features.config import Settings, settings_toml
from features.ingest import IngestError, IngestReport, ingest_workspace

app = typer.Typer()
console = Console()


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


def print_ingest_report(report: IngestReport) -> None:
    table = Table(title="Ingest", show_lines=False)
    for col in ("table", "source", "read", "accepted", "rejected", "top reasons"):
        table.add_column(col, justify="right" if col in ("read", "accepted", "rejected") else "left")
    for t in report.tables:
        if t.status == "missing":
            table.add_row(t.table, "[dim]missing (optional)[/dim]", "", "", "", "features from it will be missing")
            continue
        reasons = "\n".join(f"{r} ×{n:,}" for r, n in t.top_reasons)
        rejected = f"[red]{t.rejected:,}[/red]" if t.rejected else "0"
        table.add_row(t.table, t.source, f"{t.read:,}", f"{t.accepted:,}", rejected, reasons)
    console.print(table)
    for t in report.tables:
        if t.ignored_columns:
            console.print(f"[yellow]{t.table}: ignored columns not in the contract: {', '.join(t.ignored_columns)}[/yellow]")
    total = sum(t.rejected for t in report.tables)
    console.print(f"database: {report.database}")
    if total:
        console.print(f"[red]{total:,} rejected rows[/red] written to the `rejects` table and {report.rejects_dir}/")


@app.command()
def ingest(
    ctx: typer.Context,
    workspace: Annotated[Path, typer.Argument(help="Folder of contract tables (CSV or Parquet).")],
) -> None:
    """Validate a workspace folder and load it into the workspace database."""
    settings = _settings(ctx)
    with console.status("ingesting") as status:
        try:
            report = ingest_workspace(workspace, settings, progress=lambda t: status.update(f"ingesting {t}"))
        except IngestError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    print_ingest_report(report)


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective settings as a commented radar.toml (every default, documented)."""
    typer.echo(settings_toml(_settings(ctx)))
