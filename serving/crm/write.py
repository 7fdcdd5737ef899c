"""`write_scores`: the one entry that writes the CRM tables into any target, all or nothing.

The target decides the writer: a `.parquet`/`.csv` file or a DuckDB database
(`serving.crm.files`), or a SQLAlchemy URL (`serving.crm.sql`). Each writes the history
rows it is given into `crm_score_history` and the account rows they make
(`serving.crm.accounts`) into `crm_accounts`, in one transaction (files: see
`serving.crm.files`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from serving.crm.files import FILE_SUFFIXES, write_duckdb, write_file
from serving.crm.sql import write_sql
from serving.crm.table import KEY, WriteReport, normalise


def _check(frame: pd.DataFrame) -> None:
    dupes = frame.duplicated(list(KEY), keep=False)
    if dupes.any():
        first = frame[dupes].iloc[0]
        raise ValueError(f"{int(dupes.sum())} CRM rows share a key, e.g. {first.account_id} at {first.as_of}")


def write_scores(
    frame: pd.DataFrame, target: str | Path, *, written_at: datetime | None = None, change_points: int | None = None
) -> WriteReport:
    """Write CRM history rows (`crm_frame`: the whole portfolio at its as_of) and the account
    rows they make into `target`, all or nothing; see the module doc. `written_at` (default
    now) is the `changed_at` of the account rows this write changes; `change_points`
    (`ServingSettings.crm_change_points`, its default when None) how far a likelihood
    integer must move from its value at the last change to count as changed."""
    rows = normalise(frame)
    _check(rows)
    target = str(target)
    if target.startswith("duckdb:///"):  # duckdb:///relative/path or duckdb:////absolute/path
        return write_duckdb(
            rows, Path(target.removeprefix("duckdb:///")), written_at=written_at, change_points=change_points
        )
    if "://" in target:
        return write_sql(rows, target, written_at=written_at, change_points=change_points)
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix in FILE_SUFFIXES:
        return write_file(rows, path, written_at=written_at, change_points=change_points)
    if suffix in (".duckdb", ".db"):
        return write_duckdb(rows, path, written_at=written_at, change_points=change_points)
    raise ValueError(
        f"unknown CRM target {target!r}: use a .parquet or .csv file, a .duckdb database "
        "or a SQLAlchemy URL such as postgresql+psycopg://user@host/db"
    )
