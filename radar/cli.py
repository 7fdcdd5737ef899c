"""The `radar` command line: one entry point composing each package's commands.

Commands are thin: they load the settings once, call one library function, and report.
"""

from __future__ import annotations

import os

# LightGBM's OpenMP threads spin while waiting; on a busy 2-core machine that made
# training 4-8x slower. Must be set before lightgbm is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path
from typing import Annotated

import typer

from features import cli as features_cli
from radar.console import fit_console_to_output
from radar.settings import CONFIG_FILE_ENV, ConfigError, load_settings
from serving import cli as serving_cli
from serving.workflow import cli as workflow_cli
from training import cli as training_cli

app = typer.Typer(
    help="Account Radar: churn and expansion prediction for B2B SaaS customer success.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings file (default: ./radar.toml if present)."),
    ] = None,
) -> None:
    fit_console_to_output()
    if config is not None:  # processes this command starts (the service) read the same file
        os.environ[CONFIG_FILE_ENV] = str(config.resolve())
    try:
        ctx.obj = load_settings(config)
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


for sub in (features_cli.app, training_cli.app, serving_cli.app, workflow_cli.app):
    app.registered_commands.extend(sub.registered_commands)
    app.registered_groups.extend(sub.registered_groups)  # e.g. `radar users ...`, `radar keys ...`

if __name__ == "__main__":
    app()
