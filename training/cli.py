"""`radar` commands for models: train, promote, models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from radar.console import console
from radar.console import fail as _fail
from radar.settings import Settings
from training.quiet import quiet_mlflow

app = typer.Typer()


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


def _errors():
    from mlflow.exceptions import MlflowException

    from training.dataset import DatasetError
    from training.promote import PromotionError
    from training.track import TrackingUnavailable

    return DatasetError, PromotionError, MlflowException, TrackingUnavailable


def _tables(
    settings: Settings,
    target: str,
    snapshots: Path | None,
    label: str | None,
    id_col: str | None,
    time_col: str | None,
    name: str | None,
) -> list:
    """(training table, source file) per target to train."""
    from training.dataset import DatasetError, from_file, from_snapshots
    from training.outcome import TARGETS

    if label is not None or name is not None:
        if snapshots is None or label is None or name is None:
            raise DatasetError("a table of your own needs --snapshots FILE, --label COL and --name NAME")
        return [(from_file(snapshots, label, id_col, time_col, name), snapshots)]
    if id_col is not None or time_col is not None:
        raise DatasetError("--id-col and --time-col are for your own table (with --label and --name)")
    if target not in (*TARGETS, "all"):
        raise DatasetError(f"unknown target '{target}': use {', '.join(TARGETS)} or all")
    path = snapshots or settings.output_dir / "snapshots.parquet"
    if not path.exists():
        raise DatasetError(f"no snapshots yet at {path}: run `radar build-features` first")
    frame = pd.read_parquet(path)
    names = list(TARGETS) if target == "all" else [target]
    return [(from_snapshots(frame, TARGETS[t], settings), path) for t in names]


@app.command()
def train(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Option(
            help="renewal (churn within the horizon), upsell, next_renewal (churn by the next renewal) or all."
        ),
    ] = "all",
    tune: Annotated[
        int, typer.Option(min=0, help="Optuna trials before the final fit (0 = the configured parameters).")
    ] = 0,
    promote: Annotated[
        bool, typer.Option("--promote", help="Promote the new version to champion if it beats the current one.")
    ] = False,
    snapshots: Annotated[
        Path | None,
        typer.Option(
            help="Table to train on (default: the workspace's snapshots.parquet); with --label, your own CSV or Parquet table."
        ),
    ] = None,
    label: Annotated[str | None, typer.Option(help="Your own table: the 0/1 label column.")] = None,
    id_col: Annotated[
        str | None, typer.Option(help="Your own table: the id column (default: each row is its own id).")
    ] = None,
    time_col: Annotated[
        str | None, typer.Option(help="Your own table: the time column (default: none; stratified cross-validation).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Your own table: the target's name; the model is registered as radar-NAME.")
    ] = None,
) -> None:
    """Train, evaluate against the baselines, log to MLflow and register a challenger version."""
    from training.pipeline import summary_table
    from training.promote import promote as promote_version
    from training.registry_access import open_registry, registry_errors
    from training.track import check_tracking, train_and_log

    settings = _settings(ctx)
    errors = _errors()
    try:
        tables = _tables(settings, target, snapshots, label, id_col, time_col, name)
        check_tracking(settings.training)  # before minutes of training, not after
        with quiet_mlflow():
            open_registry(settings.training)  # a damaged store fails now, not after training
        with (
            registry_errors(settings.training),
            quiet_mlflow(),
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} targets"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task("starting", total=len(tables))
            failed = []
            for table, source in tables:
                try:  # one target failing does not stop the others
                    outcome, tracked = train_and_log(
                        table,
                        settings,
                        source=source,
                        tune_trials=tune,
                        progress=lambda msg: progress.update(task, description=msg),
                    )
                    # each target's report as soon as it is done (above the progress bar)
                    _print_outcome(outcome, summary_table(outcome), tracked, settings)
                    if promote and tracked.version is not None:
                        progress.update(task, description=f"{table.target.name}: comparing with the champion")
                        _print_decision(promote_version(tracked.model_name, settings, version=tracked.version))
                except errors as exc:
                    if len(tables) == 1:
                        raise
                    failed.append(table.target.name)
                    console.print(f"[red]error:[/red] {escape(table.target.name)}: {escape(str(exc))}", highlight=False)
                progress.advance(task)
    except errors as exc:
        raise _fail(str(exc)) from exc
    if failed:
        raise _fail(f"{', '.join(failed)} failed (see above); the other targets were trained")


def _print_outcome(outcome, summary: pd.DataFrame, tracked, settings: Settings) -> None:
    table = Table(
        title=f"{outcome.target.name}: P({outcome.target.positive}) — test {outcome.split.get('test', '')}",
        caption="value [95% bootstrap interval]",
    )
    table.add_column("metric")
    for col in summary.columns:
        table.add_column(col, justify="right")
    for metric, row in summary.iterrows():
        table.add_row(str(metric), *[str(v) for v in row])
    console.print(table)
    if outcome.bands is not None:
        console.print(_bands_table(outcome))
    if outcome.base_rate is not None:
        console.print(
            f"base rate (typical risk, the reference of the tiers): {outcome.base_rate:.1%} "
            f"({outcome.model.metadata.get('base_rate_from', '')})",
            highlight=False,
        )
    for warning in outcome.warnings:
        console.print(f"[yellow]warning: {warning}[/yellow]", highlight=False)
    from training.track import experiment_url, ui_command

    where = (
        f"logged run '{tracked.run_name}' ({tracked.run_id}) in experiment '{tracked.experiment}' "
        f"({settings.training.tracking_uri})"
    )
    if tracked.version is None:
        console.print(
            f"{escape(where)}; [yellow]{tracked.model_name} {escape(tracked.not_registered or '')}[/yellow]",
            highlight=False,
        )
    else:
        console.print(
            f"{escape(where)}; registered {tracked.model_name} v{tracked.version} as challenger", highlight=False
        )
    if tracked.experiment_id:
        ui = ui_command(settings.training)
        console.print(
            f"runs: {experiment_url(settings.training, tracked.experiment_id)}" + (f" (after `{ui}`)" if ui else ""),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _bands_table(outcome) -> Table:
    """The model's test figures per band of days to the next renewal."""

    def cell(row, m: str) -> str:
        value, low, high = row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]
        if pd.isna(value):
            return "n/a"
        return f"{value:.3f}" + ("" if pd.isna(low) else f" [{low:.3f}, {high:.3f}]")

    rate = lambda v: "" if pd.isna(v) else f"{v:.1%}"
    table = Table(
        title=f"{outcome.target.name}: test by days to the next renewal (LightGBM)",
        caption="value [95% bootstrap interval]; n/a: one class only",
    )
    for col in ("days", "rows", "positives", "observed", "predicted", "roc_auc", "pr_auc", "ece"):
        table.add_column(col, justify="left" if col == "days" else "right")
    for _, r in outcome.bands.iterrows():
        table.add_row(
            r.band,
            f"{r.rows:,}",
            f"{r.positives:,}",
            rate(r.observed_rate),
            rate(r.predicted_rate),
            *(cell(r, m) for m in ("roc_auc", "pr_auc", "ece")),
        )
    return table


def _print_decision(decision) -> None:
    colour = {"promoted": "green", "forced": "magenta", "refused": "yellow", "unchanged": "dim", "rolled back": "cyan"}[
        decision.outcome
    ]
    console.print(f"[{colour}]{escape(decision.message)}[/{colour}]", highlight=False)
    for note in decision.notes:
        console.print(f"[yellow]note: {escape(note)}[/yellow]", highlight=False)


@app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(help="renewal, upsell, next_renewal, your own table's NAME, or a registered model name."),
    ],
    version: Annotated[
        str | None, typer.Option(help="Version to put through the promotion rule (default: the challenger).")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Roll back: make this version champion without the rule (after checking it loads); "
            "the replaced one stays as the previous_champion alias.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if the rule refuses (recorded with --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why, recorded with the decision (use with --force or --to).")
    ] = None,
) -> None:
    """Make the challenger champion if it is better on the same test rows with the configured probability
    (paired bootstrap over accounts), or roll back with --to VERSION."""
    from training.promote import promote, roll_back
    from training.track import check_tracking

    settings = _settings(ctx)
    if to is not None and (version is not None or force):
        raise typer.BadParameter("--to rolls back to a version by hand; it takes no --version or --force")
    name = model_name(target)
    try:
        check_tracking(settings.training)
        if to is not None:
            with quiet_mlflow(), console.status(f"rolling {name} back to v{to}"):
                decision = roll_back(name, to, settings, reason=reason)
        else:
            with quiet_mlflow(), console.status(f"comparing {name} challenger and champion"):
                decision = promote(name, settings, version=version, force=force, reason=reason)
    except _errors() as exc:
        raise _fail(str(exc)) from exc
    _print_decision(decision)


def model_name(target: str) -> str:
    """The registered model of a target: renewal -> radar-renewal, next_renewal ->
    radar-next-renewal (TARGETS), NAME -> radar-NAME; radar-x stays radar-x."""
    from training.outcome import TARGETS

    if target in TARGETS:
        return TARGETS[target].model_name
    return target if target.startswith("radar-") else f"radar-{target}"


@app.command("models")
def models_cmd(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(help="Only this target or registered model.")] = None,
) -> None:
    """List registered model versions: aliases, creation time, key test metrics, promotion and run."""
    from training.registry_access import open_registry, registry_errors
    from training.registry_view import model_versions
    from training.track import check_tracking

    settings = _settings(ctx)
    try:
        check_tracking(settings.training)
        with quiet_mlflow(), registry_errors(settings.training):
            open_registry(settings.training)
            rows = model_versions(settings, [model_name(target)] if target else None)
    except _errors() as exc:
        raise _fail(str(exc)) from exc
    if rows.empty:
        console.print(f"no registered models in {settings.training.tracking_uri}: run `radar train` first")
        return
    console.print(f"tracking store: {settings.training.tracking_uri}", highlight=False)
    for name, versions in rows.groupby("model", sort=True):
        table = Table(title=name, title_justify="left", box=box.SIMPLE_HEAD)
        for col in ("v", "aliases", "created (UTC)", "test period", *SHOWN, "base rate", "promotion", "run"):
            # narrow terminals shorten the created time, test period and run id first
            table.add_column(
                col,
                justify="right" if col in SHOWN or col in ("v", "base rate") else "left",
                no_wrap=col != "test period",
                min_width=MIN_WIDTH.get(col),
            )
        for r in versions.itertuples(index=False):
            aliases = ", ".join(
                "[bold green]champion[/bold green]" if a == "champion" else escape(a)
                for a in r.aliases.split(", ")
                if a
            )
            table.add_row(
                str(r.version),
                aliases,
                r.created,
                r.test,
                *["" if pd.isna(getattr(r, m)) else f"{getattr(r, m):.3f}" for m in SHOWN],
                "" if pd.isna(r.base_rate) else f"{r.base_rate:.1%}",
                r.promotion,
                r.run_id[:8],
            )
        console.print(table)


SHOWN = ("pr_auc", "roc_auc", "brier")  # the key test metrics `radar models` prints
MIN_WIDTH = {"v": 2, "aliases": 10, "pr_auc": 6, "roc_auc": 7, "brier": 5, "base rate": 5, "promotion": 8}
