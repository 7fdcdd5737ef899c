"""The one rich console every `radar` command prints to.

Piped output (CI logs, files) gets 120 columns rather than rich's 80, unless COLUMNS
says otherwise; the width is decided when a command starts, not at import.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

console = Console()


def fit_console_to_output() -> None:
    """Set the width for this command: COLUMNS if set, else 120 when piped; a terminal
    keeps its own. Set every time, so one command's width never leaks into the next
    (several commands run in one process in tests and notebooks)."""
    if sys.stdout.isatty() and "COLUMNS" not in os.environ:
        return
    try:
        console.width = max(40, int(os.environ.get("COLUMNS", "120")))
    except ValueError:
        console.width = 120


def fail(message: str) -> typer.Exit:
    """Print `error: message` (plain text, never markup) and return the exit (code 1) for the command to raise."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False)  # messages hold user data
    return typer.Exit(1)


def date_option(value: str | None, option: str):
    """A YYYY-MM-DD option value as a date (None stays None); a bad one names the option."""
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"'{value}' is not a date (YYYY-MM-DD)", param_hint=option) from exc
