"""The one rich console every `radar` command prints to.

Piped output (CI logs, files) gets 120 columns rather than rich's 80, unless COLUMNS
says otherwise; the width is decided when a command starts, not at import.
"""
from __future__ import annotations

import os
import sys

from rich.console import Console

console = Console()


def fit_console_to_output() -> None:
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        console.width = 120
