"""The one rich console every `radar` command prints to.

Piped output (CI logs, files) gets 120 columns rather than rich's 80, unless COLUMNS
says otherwise; the width is decided when a command starts, not at import.
"""
from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

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
    """Print `error: message` and return the exit (code 1) for the command to raise."""
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)
