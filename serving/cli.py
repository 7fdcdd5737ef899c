"""`radar` commands for serving: serve (the HTTP service) and score (batch CRM enrichment).

The CS team's commands (alerts, digest, drivers) are in `serving.workflow.cli`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from radar.console import console, date_option
from radar.console import fail as _fail
from radar.settings import Settings

app = typer.Typer()


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: serving.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port, 3000).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: serving.workers).")] = None,
) -> None:
    """Start the HTTP service: scores with reasons, rankings, the web pages (/ui/), health and metrics
    (OpenAPI at /docs.json)."""
    import os
    import sys

    from serving.scoring.champions import NoChampion, champion_versions
    from serving.scoring.playbook import PlaybookError, load_playbooks
    from training.outcome import TARGETS
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    settings = _settings(ctx)
    try:  # fail here, clearly, rather than in a worker process after start-up
        load_playbooks(settings.serving.playbooks_file)
        with quiet_mlflow(), console.status("looking up the champion models"):
            versions = champion_versions(settings)
    except (NoChampion, TrackingUnavailable, PlaybookError) as exc:
        raise _fail(str(exc)) from exc
    host = host or settings.serving.host
    port = port or settings.serving.port
    env = dict(os.environ, BENTOML_DO_NOT_TRACK="true", OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    if workers is not None:
        env["RADAR_SERVING__WORKERS"] = str(workers)
    if not settings.database_path.exists():
        console.print(
            f"[yellow]note:[/yellow] no workspace at {settings.database_path}: POST /score works, "
            "the workspace endpoints answer 503 until `radar build-features` has run",
            highlight=False,
        )
    console.print(
        f"serving {' and '.join(f'{TARGETS[t].model_name} v{v}' for t, v in versions.items())} on "
        f"http://{host}:{port} (web pages: http://{host}:{port}/ui/; OpenAPI: /docs.json; Ctrl+C stops)",
        highlight=False,
    )
    sys.stdout.flush()
    args = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:RadarService",
        "--host",
        host,
        "--port",
        str(port),
    ]
    os.execve(sys.executable, args, env)


@app.command()
def score(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="Where the CRM table goes: a .parquet or .csv file, 'workspace' (the DuckDB workspace), "
            "a .duckdb file, or a SQLAlchemy URL such as postgresql+psycopg://user@host/db.",
        ),
    ],
    as_of: Annotated[
        str | None, typer.Option(help="Snapshot date to score (default: the latest that is not partial).")
    ] = None,
    include_partial: Annotated[
        bool,
        typer.Option(
            "--include-partial",
            help="Let the default be a partial as-of date (one whose active accounts fell sharply, as "
            "build-features reports; skipped by default).",
        ),
    ] = False,
    top: Annotated[int, typer.Option(min=0, help="At-risk accounts and opportunities to print.")] = 5,
    engine: Annotated[
        str,
        typer.Option(
            help="local (this process) or spark (each partition scored on the Spark "
            "executors by the same code; needs the spark extra and Java 17)."
        ),
    ] = "local",
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL with --engine spark, e.g. local[4] or "
            "spark://host:7077; default from config (spark.master)."
        ),
    ] = None,
) -> None:
    """Score every active account of the workspace and upsert the CRM table (idempotent)."""
    import contextlib

    from features.ingest import WorkspaceBusy, workspace_lock
    from serving.crm.table import crm_frame
    from serving.crm.write import write_scores
    from serving.scoring.batch import at_risk, load_snapshots, opportunities, partial_note
    from serving.scoring.champions import NoChampion, load_champions
    from serving.scoring.score import lineage_words, score_frame
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    settings = _settings(ctx)
    day = date_option(as_of, "--as-of")
    target = str(settings.database_path) if to == "workspace" else to
    if engine not in ("local", "spark"):
        raise typer.BadParameter("--engine must be local or spark", param_hint="--engine")
    if engine == "spark":
        _score_on_spark(settings, day, target, spark_master)
        return
    writes_workspace = to == "workspace"
    try:
        with quiet_mlflow(), console.status("loading the champion models"):
            models = load_champions(settings)
        if note := partial_note(settings, day, include_partial):
            console.print(note, highlight=False, markup=False)
        with console.status("reading snapshots"):
            frame, day = load_snapshots(settings, day, include_partial)
        with console.status(f"scoring {len(frame):,} accounts with their drivers"):
            scored = score_frame(frame, models, settings)
        with (
            (
                workspace_lock(settings.database_path, "score --to workspace", settings.ingest.lock_wait_seconds)
                if writes_workspace
                else contextlib.nullcontext()
            ),
            console.status(f"writing the CRM table to {escape(_shown_target(target))}"),
        ):
            report = write_scores(crm_frame(scored, settings.serving), target)
    except (NoChampion, TrackingUnavailable, FileNotFoundError, ValueError, WorkspaceBusy) as exc:
        raise _fail(str(exc)) from exc
    lineage = models.lineage
    try:  # the CRM table is written: a report that cannot be printed never fails the run
        console.print(
            f"scored {len(scored):,} accounts at {day} with {lineage_words(lineage)}",
            highlight=False,
            markup=False,
        )
        console.print(
            f"CRM table {_shown_target(target)}: {report.inserted:,} inserted, {report.updated:,} updated, "
            f"{report.unchanged:,} unchanged",
            highlight=False,
            markup=False,
        )
        if top:
            _print_ranking(
                "Call list: red and yellow accounts by expected MRR lost in 90 days (MRR x churn risk)",
                at_risk(scored, limit=top),
                "mrr_at_risk",
                "renewal",
            )
            _print_ranking(
                "Top expansion opportunities (by expansion potential)",
                opportunities(scored, limit=top),
                "expansion_potential",
                "upsell",
            )
    except Exception as exc:
        _warn_unprinted(exc)


def _warn_unprinted(exc: Exception) -> None:
    """After a completed write: the rest of the report could not be printed (a warning, exit 0)."""
    import sys

    message = f"warning: the CRM table was written, but printing the report failed: {type(exc).__name__}: {exc}"
    try:
        console.print(message, highlight=False, markup=False)
    except Exception:
        print(message, file=sys.stderr)


def _score_on_spark(settings: Settings, day, target: str, master: str | None) -> None:
    """`radar score --engine spark`: the CRM rows computed on Spark, written like the local ones."""
    from features.spark import SparkUnavailable
    from serving.crm.spark import score_on_spark
    from serving.crm.write import write_scores
    from serving.scoring.champions import NoChampion
    from serving.scoring.score import lineage_words
    from training.quiet import quiet_mlflow
    from training.track import TrackingUnavailable

    if master is not None:
        settings = settings.model_copy(update={"spark": settings.spark.model_copy(update={"master": master})})
    try:
        with quiet_mlflow(), console.status(f"scoring on Spark ({settings.spark.master})"):
            run = score_on_spark(settings, day)
        with console.status(f"writing the CRM table to {escape(_shown_target(target))}"):
            report = write_scores(run.crm, target)
    except (NoChampion, TrackingUnavailable, SparkUnavailable, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    lineage = run.lineage
    try:  # the CRM table is written: a report that cannot be printed never fails the run
        console.print(
            f"scored {len(run.crm):,} accounts at {run.as_of} on Spark ({settings.spark.master}) with "
            f"{lineage_words(lineage)}",
            highlight=False,
            markup=False,
        )
        console.print(
            f"CRM table {_shown_target(target)}: {report.inserted:,} inserted, {report.updated:,} updated, "
            f"{report.unchanged:,} unchanged (rankings: run without --engine spark)",
            highlight=False,
            markup=False,
        )
    except Exception as exc:
        _warn_unprinted(exc)


def _shown_target(target: str) -> str:
    """The target without a password, for printing."""
    from sqlalchemy.engine import make_url

    if "://" in target and not target.startswith("duckdb://"):
        try:
            return make_url(target).render_as_string(hide_password=True)
        except Exception:  # not a SQLAlchemy URL: the writer reports it
            return target
    return target


def _print_ranking(title: str, rows, value_col: str, target: str) -> None:
    """One short card per account: who, how much, the top 3 reasons, the next step."""
    console.print(f"\n[bold]{title}[/bold]" + ("" if len(rows) else ": none"))
    from serving.scoring.decisions import pct

    tier_colour = {"red": "red", "yellow": "yellow", "green": "green"}
    label = {"mrr_at_risk": "expected MRR lost in 90 days"}.get(value_col, value_col.replace("_", " "))
    for rank, r in enumerate(rows.to_dict("records"), start=1):
        tier = r["risk_tier"]
        console.print(
            f"{rank:>2}. [bold]{escape(str(r.get('name') or r['account_id']))}[/bold] ({escape(str(r['account_id']))}) · "
            f"{escape(str(r.get('csm_owner') or 'no owner'))} · {escape(str(r.get('segment') or ''))} — "
            f"MRR {float(r['mrr']):,.0f}, {label} {r[value_col]:,.0f}, [{tier_colour[tier]}]{tier}[/{tier_colour[tier]}] · "
            f"{escape(r['risk_summary'])} · upsell {pct(r['upsell_likelihood'])}",
            highlight=False,
        )
        # what puts the account on this list first: drivers raising its churn risk (or upsell likelihood)
        for d in [d for d in (r[f"{target}_drivers"] or []) if d["contribution"] > 0][:3]:
            console.print(f"      - {escape(d['reason'])}", highlight=False)
        console.print(
            f"      → {escape(r['recommended_action'])} [dim]({escape(r['action_owner'])})[/dim]", highlight=False
        )
