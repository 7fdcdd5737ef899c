"""`radar` commands for data in: sample-data and ingest."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.ingest import IngestError, IngestReport, WorkspaceBusy, ingest_workspace, workspace_lock
from radar.console import console
from radar.settings import Settings, settings_toml

app = typer.Typer()


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
            console.print(
                f"[yellow]{t.table}: ignored columns not in the contract: {escape(', '.join(t.ignored_columns))}[/yellow]"
            )
    total = sum(t.rejected for t in report.tables)
    console.print(f"database: {report.database}", markup=False)
    if total:
        console.print(
            f"[red]{total:,} rejected rows[/red] written to the `rejects` table and {escape(str(report.rejects_dir))}/"
        )
    if report.label_blackout_accounts:
        console.print(
            f"[yellow]labels unknown for {report.label_blackout_accounts:,} account(s)[/yellow] from the start of "
            "their rejected subscription rows (a missing line is not a churn; table label_blackouts)"
        )


@app.command()
def ingest(
    ctx: typer.Context,
    workspace: Annotated[Path, typer.Argument(help="Folder of contract tables (CSV or Parquet).")],
    accept_shrink: Annotated[
        bool,
        typer.Option(
            "--accept-shrink",
            help="Load even if a table lost more than ingest.max_shrink_share of its rows, a required table is "
            "empty or too many rows name unknown accounts (by default such a run is refused as a truncated export).",
        ),
    ] = False,
    accept_rejects: Annotated[
        bool,
        typer.Option(
            "--accept-rejects",
            help="Load even if more than ingest.max_rejected_subscription_share of the subscription rows is rejected "
            "(the labels of their accounts become unknown from each rejected row's start).",
        ),
    ] = False,
) -> None:
    """Validate a workspace folder and load it into the workspace database, all or nothing."""
    settings = _settings(ctx)
    try:
        with (
            workspace_lock(settings.database_path, "ingest", settings.ingest.lock_wait_seconds),
            console.status("ingesting") as status,
        ):
            report = ingest_workspace(
                workspace,
                settings,
                progress=lambda t: status.update(f"ingesting {t}"),
                accept_shrink=accept_shrink,
                accept_rejects=accept_rejects,
            )
    except (IngestError, WorkspaceBusy) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    print_ingest_report(report)


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective settings as a commented radar.toml (every default, documented)."""
    typer.echo(settings_toml(_settings(ctx)))


@app.command("sample-data")
def sample_data(
    out: Annotated[Path, typer.Argument(help="Folder to write the sample workspace to.")],
    accounts: Annotated[
        int | None, typer.Option(min=10, help="Number of accounts (default: the product's, 1500 / ledgerly 600).")
    ] = None,
    years: Annotated[
        int | None, typer.Option(min=1, max=10, help="Years of history (default: the product's, 3 / ledgerly 2).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 7,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    product: Annotated[
        str,
        typer.Option(
            help="radar (the default sample: analytics product, monthly and annual plans) or ledgerly (an invoicing "
            "product with its own event names, quarterly and semiannual plans, amounts in quantity and a partial "
            "last month: data the defaults do not fit, for the bring-your-own-data walkthrough)."
        ),
    ] = "radar",
) -> None:
    """Write a realistic sample B2B SaaS workspace in the contract format."""
    from features.sampledata import PRODUCTS, generate_workspace

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter("--format must be parquet or csv")
    if product not in PRODUCTS:
        raise typer.BadParameter(f"--product must be one of {', '.join(PRODUCTS)}")
    with console.status("generating") as status:
        counts = generate_workspace(
            out,
            accounts=accounts,
            years=years,
            seed=seed,
            fmt=fmt,
            progress=lambda step: status.update(f"generating {step}"),
            product=product,
        )
    table = Table(title=f"Sample workspace ({product}) in {escape(str(out))}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)


@app.command("build-features")
def build_features_cmd(
    ctx: typer.Context,
    start: Annotated[
        datetime | None,
        typer.Option(
            "--from", formats=["%Y-%m-%d"], help="First as-of date (default: one longest window after the data starts)."
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last as-of date (default: the end of the data)."),
    ] = None,
    freq: Annotated[str | None, typer.Option(help="month (month-ends) or week (Mondays); default from config.")] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            help="Read the contract tables from this database URL (e.g. postgres://user@host:5432/db) instead of the ingested workspace; default from config (workspace_url)."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="duckdb or spark (Apache Spark through Ibis, same feature definitions; needs the spark extra and Java 17); default from config (features.engine)."
        ),
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL with --engine spark, e.g. local[4] or spark://host:7077; default from config (spark.master)."
        ),
    ] = None,
    refresh_event_types: Annotated[
        bool,
        typer.Option(
            "--refresh-event-types",
            help="Choose the per-event-type features anew (the features.event_type_cap most frequent) instead of keeping the types the last build recorded; retrain afterwards.",
        ),
    ] = False,
) -> None:
    """Build point-in-time account snapshots with labels, features and the health score."""
    from features.build import build_features
    from features.spark import SparkUnavailable

    settings = _settings(ctx)
    if freq not in (None, "month", "week"):
        raise typer.BadParameter("--freq must be month or week")
    if workspace is not None:
        settings = settings.model_copy(update={"workspace_url": workspace})
    if engine not in (None, "duckdb", "spark"):
        raise typer.BadParameter("--engine must be duckdb or spark")
    if engine is not None:
        settings = settings.model_copy(update={"features": settings.features.model_copy(update={"engine": engine})})
    if spark_master is not None:
        settings = settings.model_copy(update={"spark": settings.spark.model_copy(update={"master": spark_master})})
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,} texts"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting", total=None)
        try:
            with workspace_lock(settings.database_path, "build-features", settings.ingest.lock_wait_seconds):
                result = build_features(
                    settings,
                    start.date() if start else None,
                    end.date() if end else None,
                    freq,
                    step=lambda s: progress.update(task, description=s),
                    texts=lambda n: progress.advance(task, n),
                    refresh_event_types=refresh_event_types,
                )
        except (FileNotFoundError, ValueError, SparkUnavailable, WorkspaceBusy) as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}")  # messages may hold [extras]
            raise typer.Exit(1) from exc
    d = result.as_of_dates
    console.print(
        f"{result.rows:,} snapshots of {result.accounts:,} accounts on {len(d)} as-of dates "
        f"({d[0]} … {d[-1]}); evidence quotes: {result.evidence_rows if result.evidence_rows is not None else 'no text tables'}"
    )
    if result.meta is not None:
        console.print(f"data end: {result.meta.data_end}, {result.meta.data_end_source}", markup=False)
    if result.event_choice is not None and result.event_choice.chosen:
        console.print(f"per-event features: {result.event_choice.source_words()}", markup=False)
    for note in result.event_choice.notes() if result.event_choice is not None else []:
        console.print(f"[yellow]event types:[/yellow] {escape(note)}", highlight=False)
    for day, (ref, ref_n, n) in (result.partial or {}).items():
        console.print(
            f"[yellow]partial as-of date:[/yellow] {day} has {n:,} active accounts against {ref_n:,} on {ref} "
            f"({n / ref_n - 1:+.0%}, beyond features.partial_drop_share): a period the data only partly "
            "covers; radar score, drivers, alerts and the digest skip it unless given --as-of or --include-partial",
            highlight=False,
        )
    per = result.findings.per_as_of
    known = per[per["churned_known"] > 0]
    if len(known):
        console.print(
            f"labelled snapshots: churn rate {known['churned_rate'].mean():.1%}, "
            f"expansion rate {known['expanded_rate'].mean():.1%} (mean over as-of dates with known labels)"
        )
    for f, lab, auc in result.findings.leakage:
        console.print(f"[red]leakage alarm:[/red] {f} separates {lab} with AUC {auc:.3f}")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    console.print(f"wrote {result.parquet} and {result.report} ({timing})", markup=False)


@app.command("features")
def list_features(ctx: typer.Context) -> None:
    """List every snapshot feature: name, description, indicator family, kind (driver or context), source,
    healthy direction."""
    from features.snapshot import feature_registry

    registry = feature_registry(_settings(ctx))
    drivers = sum(f.is_driver for f in registry)
    table = Table(
        title=f"{len(registry)} snapshot features: {drivers} drivers (reasons, playbooks), "
        f"{len(registry) - drivers} context (shown apart)"
    )
    for col in ("feature", "description", "family", "kind", "source", "healthy"):
        table.add_column(col)
    for f in registry:  # generated features carry event names from the data
        table.add_row(f.name, escape(f.description), f.family_name, f.kind, f.source, f.healthy)
    console.print(table)


@app.command("profile")
def profile_cmd(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Argument(
            help="A workspace folder to read usage_events from before ingest (default: the ingested workspace, "
            "or workspace_url)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile as JSON instead of tables.")] = False,
    toml_out: Annotated[
        Path | None, typer.Option("--toml", help="Also write the suggested [features] section to this file.")
    ] = None,
) -> None:
    """List the event types in the usage events (counts, accounts, users, first/last dates) and the feature role
    each is mapped to, and print a ready-to-paste [features] section for radar.toml with suggested roles."""
    import json

    from features import profile

    settings = _settings(ctx)
    try:
        if workspace is not None:
            if not workspace.is_dir():
                raise ValueError(f"{workspace} is not a folder")
            events = profile.raw_usage_events(workspace, settings.ingest.column_mapping.get("usage_events", {}))
            result = profile.profile_events(events, settings.features)
        else:
            from features.build import close_workspace, open_workspace

            ws = open_workspace(settings)
            try:
                if ws.tables["usage_events"] is None:
                    raise ValueError("the workspace has no usage_events table: no event vocabulary to profile")
                result = profile.profile_events(ws.tables["usage_events"], settings.features)
            finally:
                close_workspace(ws)
    except Exception as exc:  # bad folder, unreadable file, no database: a message, not a traceback
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    section = profile.mapping_toml(result)
    if toml_out is not None:
        _write_text(toml_out, section)
    if as_json:
        typer.echo(json.dumps(result.to_json() | {"toml": section}, indent=2, ensure_ascii=False))
        return
    print_profile(result)
    console.print("\n[bold]Paste into radar.toml[/bold] (review the SUGGESTED roles):")
    console.print(section, markup=False, highlight=False, soft_wrap=True)
    if toml_out is not None:
        console.print(f"wrote {toml_out}", markup=False)


def _write_text(path: Path, text: str) -> None:
    """All or nothing: a temporary file in the same folder, renamed over `path`."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def print_profile(result) -> None:
    """The event types (most frequent first) with their roles, then the roles left empty."""
    from features.profile import ROLE_FEATURES

    table = Table(title=f"{len(result.types):,} event types, {result.events:,} events")
    numbers = ("events", "accounts", "users", "with quantity", "quantity total")
    for col in ("event type", *numbers[:3], "first", "last", *numbers[3:], "role"):
        table.add_column(col, justify="right" if col in numbers else "left")
    for t in result.types:
        role = ", ".join(t.roles) if t.roles else f"[yellow]unmapped[/yellow] (suggested: {t.suggested})"
        table.add_row(
            escape(t.event_type),
            f"{t.events:,}",
            f"{t.accounts:,}",
            f"{t.users:,}",
            f"{t.first:%Y-%m-%d}" if t.first else "",
            f"{t.last:%Y-%m-%d}" if t.last else "",
            f"{t.with_quantity:,}" if t.with_quantity else "",
            f"{t.quantity_total:,.2f}" if t.with_quantity else "",
            role,
        )
    console.print(table)
    for role in result.unmapped_roles:
        console.print(
            f"[yellow]warning:[/yellow] no event type in the data is mapped to the {role} role: "
            f"{ROLE_FEATURES[role]} will be constant"
        )
