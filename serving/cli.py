"""`radar` commands for serving: serve (the HTTP service) and score (batch CRM enrichment)."""
from __future__ import annotations

import typer

from features.config import Settings
from features.console import console

app = typer.Typer()


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)
