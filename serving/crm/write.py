"""`write_scores`: the one entry that upserts CRM rows into any target, all or nothing.

The target decides the writer: a `.parquet`/`.csv` file or a DuckDB database
(`serving.crm.files`), or a SQLAlchemy URL (`serving.crm.sql`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from serving.crm.files import write_duckdb, write_file
from serving.crm.sql import write_sql
from serving.crm.table import KEY, WriteReport, normalise


def _check(frame: pd.DataFrame) -> None:
    dupes = frame.duplicated(list(KEY), keep=False)
    if dupes.any():
        first = frame[dupes].iloc[0]
        raise ValueError(f"{int(dupes.sum())} CRM rows share a key, e.g. {first.account_id} at {first.as_of}")


def write_scores(frame: pd.DataFrame, target: str | Path) -> WriteReport:
    """Upsert CRM rows (`crm_frame`) into `target`, all or nothing; see the module doc."""
    rows = normalise(frame)
    _check(rows)
    target = str(target)
    if target.startswith("duckdb:///"):  # duckdb:///relative/path or duckdb:////absolute/path
        return write_duckdb(rows, Path(target.removeprefix("duckdb:///")))
    if "://" in target:
        return write_sql(rows, target)
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".csv"):
        return write_file(rows, path)
    if suffix in (".duckdb", ".db"):
        return write_duckdb(rows, path)
    raise ValueError(
        f"unknown CRM target {target!r}: use a .parquet or .csv file, a .duckdb database "
        "or a SQLAlchemy URL such as postgresql+psycopg://user@host/db"
    )
